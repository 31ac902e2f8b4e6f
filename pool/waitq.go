package pool

import (
	"sync/atomic"
	"time"
)

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

// critical is the queue index of PriorityCritical.
const critical = numPriorities - 1

// index maps p to a queue index, clamping values outside the named range.
func (p Priority) index() int {
	return int(min(max(p, PriorityLow), PriorityCritical) - PriorityLow)
}

// priorityAt is the inverse of index.
func priorityAt(i int) Priority { return Priority(i) + PriorityLow }

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
// of conn, dial, err or expired, then sends on ready; the waiter reads those fields only
// after receiving, so the channel orders the accesses.
type waiter[T any] struct {
	ready chan struct{} // buffered 1: the serve signal
	moved chan struct{} // buffered 1: pos changed; made on first use by OnQueuePosition

	// stackBuf is where the waiting goroutine captures its stack when the
	// deadlock detector is on; owned by that goroutine, reused.
	stackBuf []byte

	prio       int        // queue index of the priority asked for; set before push
	group      *Group     // the caller's Group, nil if none; set before push
	held       bool       // guarded by Pool.mu: the caller holds a slot of its group (served before, or now)
	capped     bool       // guarded by Pool.mu: expired while held back by its group's cap
	deadline   time.Time  // AcquireTimeout's, zero if none; set before push
	since      time.Time  // guarded by Pool.mu: when it joined the queue; with FairQueue, when its Acquire began
	next, prev *waiter[T] // guarded by Pool.mu
	queued     bool       // guarded by Pool.mu: in the queue, not yet served
	pos        int        // guarded by Pool.mu: last position told (OnQueuePosition), 0 if none
	stack      []byte     // guarded by Pool.mu: the published stackBuf, nil until published

	conn     *Conn[T] // a connection handed off, counted in use
	validate bool     // conn comes from the idle stack and needs validation
	dial     bool     // a dial slot reserved for this waiter
	err      error    // the pool closed
	expired  bool     // the deadline passed (Pool.expire)
}

// waitQueue holds one FIFO list per priority, each ordered by waiter.since,
// oldest first. Not safe for concurrent use: the pool guards it with its
// mutex.
//
// A waiter's effective priority rises one level for every boost interval it
// has waited (starvation prevention), up to PriorityCritical. Boosting moves
// nothing: since each list is ordered by age, its head is also its highest
// effective priority, so the next waiter to serve is always one of the four
// heads, and the service order is a merge of the four lists.
//
// Waiters of a Group at its cap that hold no slot of it are blocked: they
// keep their place, and service skips them (eligible) until their group
// has room.
type waitQueue[T any] struct {
	head, tail [numPriorities]*waiter[T]
	n          [numPriorities]int // waiters per list
	len        int
	// blocked counts the waiters held back by their group's cap; kept by
	// added, remove and the Pool's takeGroupLocked and leaveGroupLocked.
	// While it is 0, every waiter is eligible and best needs no scan.
	blocked int
	// waiting mirrors len for parkers, which read it without the lock
	// (park.go).
	waiting atomic.Int32
}

// push appends w to the tail of its list.
func (q *waitQueue[T]) push(w *waiter[T]) {
	i := w.prio
	w.prev, w.next = q.tail[i], nil
	if q.tail[i] != nil {
		q.tail[i].next = w
	} else {
		q.head[i] = w
	}
	q.tail[i] = w
	q.added(w)
}

// insert puts w in its list by w.since, behind waiters of the same age. It
// scans from the tail: a newcomer's place is at or near it, a waiter that
// queues again with its original arrival time may be further up.
func (q *waitQueue[T]) insert(w *waiter[T]) {
	i := w.prio
	at := q.tail[i] // w goes after at
	for at != nil && at.since.After(w.since) {
		at = at.prev
	}
	if at == nil { // oldest of all: the new head
		w.prev, w.next = nil, q.head[i]
		if q.head[i] != nil {
			q.head[i].prev = w
		} else {
			q.tail[i] = w
		}
		q.head[i] = w
		q.added(w)
		return
	}
	w.prev, w.next = at, at.next
	if at.next != nil {
		at.next.prev = w
	} else {
		q.tail[i] = w
	}
	at.next = w
	q.added(w)
}

func (q *waitQueue[T]) added(w *waiter[T]) {
	w.queued = true
	q.n[w.prio]++
	q.len++
	q.waiting.Add(1)
	if g := w.group; g != nil && !w.held {
		g.queued++
		if g.fullLocked() {
			q.blocked++
		}
	}
}

func (q *waitQueue[T]) remove(w *waiter[T]) {
	i := w.prio
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
	q.n[i]--
	q.len--
	q.waiting.Add(-1)
	if g := w.group; g != nil && !w.held {
		g.queued--
		if g.fullLocked() {
			q.blocked--
		}
	}
}

// eligible reports whether w may be served now: it has no group, holds a
// slot of it, or its group has room.
func (w *waiter[T]) eligible() bool {
	return w.group == nil || w.held || !w.group.fullLocked()
}

// level returns w's effective priority index at now: its own, raised one
// level per boost interval waited, up to critical. boost <= 0 disables it.
func level[T any](w *waiter[T], now time.Time, boost time.Duration) int {
	if boost <= 0 || w.prio == critical {
		return w.prio
	}
	return min(critical, w.prio+int(now.Sub(w.since)/boost))
}

// before reports whether a is served before b at now: the higher effective
// priority first, then the longer waiting, then the higher priority asked.
func before[T any](a, b *waiter[T], now time.Time, boost time.Duration) bool {
	la, lb := level(a, now, boost), level(b, now, boost)
	if la != lb {
		return la > lb
	}
	if !a.since.Equal(b.since) {
		return a.since.Before(b.since)
	}
	return a.prio > b.prio
}

// best returns the eligible waiter to serve next at now, without removing
// it, or nil. With blocked waiters it walks the service order past them.
func (q *waitQueue[T]) best(now time.Time, boost time.Duration) *waiter[T] {
	if q.blocked == 0 {
		return pick(&q.head, now, boost)
	}
	cursors := q.head
	for {
		w := pick(&cursors, now, boost)
		if w == nil || w.eligible() {
			return w
		}
		cursors[w.prio] = w.next
	}
}

// bestCritical returns the longest-waiting eligible PriorityCritical
// waiter, or nil.
func (q *waitQueue[T]) bestCritical() *waiter[T] {
	w := q.head[critical]
	for w != nil && !w.eligible() {
		w = w.next
	}
	return w
}

// pick returns the first in service order of the waiters in heads, or nil.
func pick[T any](heads *[numPriorities]*waiter[T], now time.Time, boost time.Duration) *waiter[T] {
	var w *waiter[T]
	for i := critical; i >= 0; i-- {
		h := heads[i]
		if h == nil {
			continue
		}
		if w == nil {
			w = h
			if boost <= 0 {
				return w // no boosts: the highest non-empty list
			}
			continue
		}
		if before(h, w, now, boost) {
			w = h
		}
	}
	return w
}

// walk calls f with each waiter in service order at now, and its position
// (1 is next), until f returns false.
func (q *waitQueue[T]) walk(now time.Time, boost time.Duration, f func(w *waiter[T], pos int) bool) {
	cursors := q.head
	for pos := 1; ; pos++ {
		w := pick(&cursors, now, boost)
		if w == nil || !f(w, pos) {
			return
		}
		cursors[w.prio] = w.next
	}
}

// oldest returns the longest waiting waiter, or nil.
func (q *waitQueue[T]) oldest() *waiter[T] {
	var o *waiter[T]
	for _, h := range q.head {
		if h != nil && (o == nil || h.since.Before(o.since)) {
			o = h
		}
	}
	return o
}

// atOrAbove returns the number of waiters whose own priority is i or higher:
// those sure to be served before a newcomer of priority i.
func (q *waitQueue[T]) atOrAbove(i int) int {
	n := 0
	for ; i < numPriorities; i++ {
		n += q.n[i]
	}
	return n
}
