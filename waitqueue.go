package sqlpool

import "github.com/sqlpool/sqlpool/pool"

// ErrWouldTimeout: an operation was refused at once because it was unlikely
// to get a connection before its deadline (see Config.FailFastBelow). Such
// an error also matches ErrAcquireTimeout, and context.DeadlineExceeded when
// the context's deadline was the binding one.
var ErrWouldTimeout = pool.ErrWouldTimeout

// DeadlockReport describes a pool stalled past Config.DeadlockThreshold: its
// borrowers with their acquisition stacks and how long each has held its
// connection, and its waiters. SelfDeadlocked names the goroutines that wait
// while holding a connection.
type DeadlockReport = pool.DeadlockReport

// BorrowerInfo describes a borrowed physical connection in a DeadlockReport.
type BorrowerInfo = pool.BorrowerInfo

// WaiterInfo describes an operation waiting for a physical connection.
type WaiterInfo = pool.WaiterInfo

// Queue returns the operations waiting for a connection, in the order they
// will be served, with their positions, priorities (as asked and after
// starvation boosts) and how long they have waited.
func (c *Connector) Queue() []WaiterInfo { return c.pool.Queue() }
