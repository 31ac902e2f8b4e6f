package pool

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors returned by Acquire. The root package re-exports them, so errors.Is
// matches either name.
var (
	ErrClosed         = errors.New("sqlpool: pool is closed")
	ErrAcquireTimeout = errors.New("sqlpool: acquire timed out")
	ErrQueueFull      = errors.New("sqlpool: wait queue is full (MaxWaitQueue callers already waiting): raise MaxSize if the server can take it, or MaxWaitQueue, or shed load")
	// ErrWouldTimeout: the acquisition was refused at once because it was
	// unlikely to be served before its deadline (see Config.FailFastBelow).
	// Its errors also match ErrAcquireTimeout, and context.DeadlineExceeded
	// when the caller's deadline was the binding one.
	ErrWouldTimeout = errors.New("sqlpool: acquire would time out")
	// ErrCircuitOpen: the acquisition needed a new connection while the
	// circuit breaker was open (see Config.BreakAfter), and was refused at
	// once. Its errors are *CircuitOpenError.
	ErrCircuitOpen = errors.New("sqlpool: circuit open: connections to the database keep failing")
)

// CircuitOpenError is the error of an acquisition refused by the open
// circuit breaker (Config.BreakAfter): it needed a new connection, and the
// last ones tried failed. It matches ErrCircuitOpen with errors.Is, and
// nothing else: not LastErr (which may be driver.ErrBadConn, which
// database/sql would retry).
type CircuitOpenError struct {
	Failures int           // consecutive connection failures when it was refused
	LastErr  error         // the last dial error, nil if none is known
	BreakFor time.Duration // the interval between probes
}

func (e *CircuitOpenError) Error() string {
	last := "none recorded"
	if e.LastErr != nil {
		last = e.LastErr.Error()
	}
	return fmt.Sprintf("sqlpool: circuit open after %d consecutive connection failures (last: %s): "+
		"the database looks down or refuses connections, so no new connection is tried and acquisitions "+
		"that need one fail at once; check the last error (is the server up and reachable, are the "+
		"credentials and max_connections right?). Idle connections still serve, and the pool tries one "+
		"connection every %v by itself, closing the circuit as soon as one succeeds",
		e.Failures, last, e.BreakFor)
}

// Unwrap returns ErrCircuitOpen.
func (e *CircuitOpenError) Unwrap() error { return ErrCircuitOpen }

// ConnectError is the error of an acquisition whose dial failed; Err is the
// Factory's error, unchanged.
type ConnectError struct{ Err error }

func (e *ConnectError) Error() string { return "sqlpool: connect: " + e.Err.Error() }

// Unwrap returns the Factory's error.
func (e *ConnectError) Unwrap() error { return e.Err }

// TimeoutError is the error of an acquisition that timed out, or that was
// refused at once because it would have (ErrWouldTimeout). It matches
// ErrAcquireTimeout with errors.Is, ErrWouldTimeout when it was refused, and
// context.DeadlineExceeded as well when the caller's deadline ended (or
// would have ended) the wait. It describes the pool at that moment.
type TimeoutError struct {
	Timeout                             time.Duration // the AcquireTimeout in force
	Size, MaxSize, InUse, Idle, Waiting int
	LastErr                             error // the last dial error, if any
	// Waited is how long the acquisition waited in all, when its caller
	// measured it (sqlpool's Connector does).
	Waited time.Duration

	// With ErrWouldTimeout: the waiters sure to be served first, the
	// estimated mean wait, and the time that was left.
	Ahead          int
	Expected, Left time.Duration

	// Group names the Group whose cap held the acquisition back when it
	// timed out (see NewGroup), "" if none; GroupMax is that cap,
	// GroupInUse its borrowings and GroupWaiting the callers it held back
	// then, this one included.
	Group                              string
	GroupMax, GroupInUse, GroupWaiting int

	deadline  bool // the caller's deadline, not AcquireTimeout
	predicted bool // refused at once: ErrWouldTimeout
}

func (e *TimeoutError) Error() string {
	bound := fmt.Sprintf("AcquireTimeout %v", e.Timeout)
	if e.deadline {
		bound = "the context deadline"
	}
	if e.Group != "" {
		return e.groupError(bound)
	}
	var s string
	if e.predicted {
		s = fmt.Sprintf("sqlpool: acquire would time out: %d waiters ahead, expected wait %v, %v left before %s",
			e.Ahead, e.Expected.Round(time.Millisecond), e.Left.Round(time.Millisecond), bound)
	} else if e.deadline {
		s = "sqlpool: acquire timed out at the context deadline"
	} else {
		s = "sqlpool: acquire timed out after " + bound
	}
	s += fmt.Sprintf(" (pool: %d/%d connections, %d in use, %d idle, %d waiting)",
		e.Size, e.MaxSize, e.InUse, e.Idle, e.Waiting)
	if e.Waited > 0 {
		s += fmt.Sprintf(", after waiting %v", e.Waited.Round(time.Millisecond))
	}
	if e.LastErr != nil {
		s += "; last connect error: " + e.LastErr.Error() + ": check that the server answers"
	} else if e.InUse >= e.MaxSize {
		s += ": every connection is borrowed; if the load is real raise MaxSize (within the server's max_connections) or AcquireTimeout, " +
			"otherwise look for connections held too long (LeakThreshold and the leak report, Stats().Leaks, /api/leaks)"
	}
	return s
}

// groupError is the text of a timeout of a caller held back by its group's
// cap: what held it back, and what to do.
func (e *TimeoutError) groupError(bound string) string {
	s := "sqlpool: acquire timed out after " + bound
	if e.deadline {
		s = "sqlpool: acquire timed out at " + bound
	}
	s += fmt.Sprintf(" waiting for %s, at its MaxSize of %d (%d in use, %d waiting; pool: %d/%d connections, %d in use, %d idle)",
		e.Group, e.GroupMax, e.GroupInUse, e.GroupWaiting, e.Size, e.MaxSize, e.InUse, e.Idle)
	if e.Waited > 0 {
		s += fmt.Sprintf(", after waiting %v", e.Waited.Round(time.Millisecond))
	}
	return s + ": raise its MaxSize if the server can take it, or look for its connections held too long " +
		"(LeakThreshold and the leak report, Stats().Leaks, /api/leaks)"
}

// Unwrap returns ErrAcquireTimeout, ErrWouldTimeout when the acquisition was
// refused at once, and context.DeadlineExceeded when the caller's deadline
// ended (or would have ended) the wait.
func (e *TimeoutError) Unwrap() []error {
	errs := []error{ErrAcquireTimeout}
	if e.predicted {
		errs = append(errs, ErrWouldTimeout)
	}
	if e.deadline {
		errs = append(errs, context.DeadlineExceeded)
	}
	return errs
}

// timeoutErrorLocked describes the pool in a TimeoutError.
func (p *Pool[T]) timeoutErrorLocked() *TimeoutError {
	return &TimeoutError{
		Timeout: p.cfg.AcquireTimeout,
		Size:    p.total,
		MaxSize: p.cfg.MaxSize,
		InUse:   p.inUse,
		Idle:    len(p.idle),
		Waiting: p.queue.len - p.queue.blocked,
		LastErr: p.lastConnErr,
	}
}
