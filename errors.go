package sqlpool

import (
	"errors"

	"github.com/sqlpool/sqlpool/partition"
	"github.com/sqlpool/sqlpool/pool"
)

// Sentinel errors, matched with errors.Is. They are the pool package's values,
// so errors.Is matches either name.
var (
	// ErrAcquireTimeout: no connection could be had within AcquireTimeout or
	// the caller's deadline. The error's text describes the pool at that
	// moment; when the caller's deadline ended the wait it also matches
	// context.DeadlineExceeded.
	ErrAcquireTimeout = pool.ErrAcquireTimeout
	// ErrQueueFull: MaxWaitQueue callers were already waiting.
	ErrQueueFull = pool.ErrQueueFull
	// ErrClosed: the Connector has been closed.
	ErrClosed = pool.ErrClosed
)

// ErrConnLost: the connection failed after a statement (or a COMMIT) was
// sent to the server, so it may have run. sqlpool returns it instead of the
// driver's driver.ErrBadConn for drivers that report a lost connection that
// way whatever was sent (lib/pq), so that database/sql does not run the
// statement a second time. Retry only what is safe to run twice.
var ErrConnLost = errors.New("sqlpool: connection lost after the statement was sent; it may have run")

// ErrPartitionMismatch: an operation of a transaction or *sql.Conn, whose
// session is pinned to the partition it started in, came with a context
// routed to another partition. sqlpool refuses it rather than run one
// tenant's statement on another tenant's session: start a transaction or
// *sql.Conn per tenant, each with its tenant's context.
var ErrPartitionMismatch = errors.New("sqlpool: context routed to another partition than its transaction's or *sql.Conn's")

// Partition errors, the partition package's values: a request for a new
// partition past RouterConfig.MaxPartitions, and a routing key that cannot
// name a partition (invalid UTF-8, a control character, longer than
// partition.MaxNameLen bytes). Neither creates a partition or dials.
var (
	ErrTooManyPartitions    = partition.ErrTooManyPartitions
	ErrInvalidPartitionName = partition.ErrInvalidPartitionName
)

// CloseReason says why a physical connection was closed: the keys of
// Stats().Closed.
type CloseReason = pool.CloseReason

// Close reasons.
const (
	CloseIdle       = pool.CloseIdle       // idle past IdleTimeout
	CloseLifetime   = pool.CloseLifetime   // older than its lifetime
	CloseErrors     = pool.CloseErrors     // broken, or its session could not be set up
	CloseValidation = pool.CloseValidation // failed a health check or a session reset
	CloseEvicted    = pool.CloseEvicted    // discarded: left in a transaction, vetoed, replaced, resized
	ClosePoolClosed = pool.ClosePoolClosed // the Connector closed
	CloseUsage      = pool.CloseUsage      // released after MaxUses borrowings
	CloseReclaimed  = pool.CloseReclaimed  // borrowed past MaxBorrowTime, with ReclaimBorrowed
)

// TimeoutError is the type of an ErrAcquireTimeout error; errors.As gives the
// state of the pool when the acquisition gave up.
type TimeoutError = pool.TimeoutError

// Priority is the wait-queue priority of an acquisition, set with
// WithPriority. A released connection goes to the longest waiter of the
// highest priority.
type Priority = pool.Priority

// Priorities, lowest first. The zero value is PriorityNormal.
const (
	PriorityLow      = pool.PriorityLow
	PriorityNormal   = pool.PriorityNormal
	PriorityHigh     = pool.PriorityHigh
	PriorityCritical = pool.PriorityCritical
)
