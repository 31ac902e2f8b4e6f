package sqlpool

import "github.com/sqlpool/sqlpool/pool"

// ErrWouldTimeout: an operation was refused at once because it was unlikely
// to get a connection before its deadline (see Config.FailFastBelow). Such
// an error also matches ErrAcquireTimeout, and context.DeadlineExceeded when
// the context's deadline was the binding one.
var ErrWouldTimeout = pool.ErrWouldTimeout

// ErrCircuitOpen: an operation needed a new physical connection while the
// circuit breaker was open (see Config.BreakAfter), and was refused at
// once. Such errors are *CircuitOpenError; they never match
// driver.ErrBadConn.
var ErrCircuitOpen = pool.ErrCircuitOpen

// CircuitOpenError is the type of an ErrCircuitOpen error: the consecutive
// connection failures that opened the circuit, the last dial error (check
// it: is the database up and reachable?), and the interval at which the
// pool tries a connection by itself.
type CircuitOpenError = pool.CircuitOpenError

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
