package pool

import "time"

// Priority orders waiters: a released connection goes to the longest waiter
// of the highest priority. The zero value is PriorityNormal.
type Priority int8

// Priorities, lowest first.
const (
	PriorityLow      Priority = -1
	PriorityNormal   Priority = 0
	PriorityHigh     Priority = 1
	PriorityCritical Priority = 2
)

const numPriorities = 4

// index maps p to a queue index, clamping values outside the named range.
func (p Priority) index() int {
	return int(min(max(p, PriorityLow), PriorityCritical) - PriorityLow)
}

// String returns the priority's name.
func (p Priority) String() string {
	switch {
	case p <= PriorityLow:
		return "low"
	case p == PriorityNormal:
		return "normal"
	case p == PriorityHigh:
		return "high"
	default:
		return "critical"
	}
}

// A waiter is one Acquire waiting for a connection. Waiters are reused
// through Pool.waiters, so waiting allocates nothing in steady state.
//
// Serving a waiter (under Pool.mu) removes it from the queue, sets exactly one
// of conn, dial or err, then sends on ready; the waiter reads those fields only
// after receiving, so the channel orders the accesses.
type waiter[T any] struct {
	ready chan struct{} // buffered 1: the serve signal
	timer *time.Timer   // AcquireTimeout, reused

	prio       Priority
	next, prev *waiter[T] // guarded by Pool.mu
	queued     bool       // guarded by Pool.mu: in the queue, not yet served

	conn *Conn[T] // a connection handed off, counted in use
	dial bool     // a dial slot reserved for this waiter
	err  error    // the pool closed
}

// waitQueue holds one FIFO list per priority. Not safe for concurrent use:
// the pool guards it with its mutex.
type waitQueue[T any] struct {
	head, tail [numPriorities]*waiter[T]
	len        int
}

func (q *waitQueue[T]) push(w *waiter[T]) {
	i := w.prio.index()
	w.prev, w.next = q.tail[i], nil
	if q.tail[i] != nil {
		q.tail[i].next = w
	} else {
		q.head[i] = w
	}
	q.tail[i] = w
	w.queued = true
	q.len++
}

// pop removes and returns the longest waiter of the highest priority, or nil.
func (q *waitQueue[T]) pop() *waiter[T] {
	for i := numPriorities - 1; i >= 0; i-- {
		if w := q.head[i]; w != nil {
			q.remove(w)
			return w
		}
	}
	return nil
}

func (q *waitQueue[T]) remove(w *waiter[T]) {
	i := w.prio.index()
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		q.head[i] = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		q.tail[i] = w.prev
	}
	w.next, w.prev = nil, nil
	w.queued = false
	q.len--
}
