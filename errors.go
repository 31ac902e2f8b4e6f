package sqlpool

import "github.com/sqlpool/sqlpool/pool"

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
