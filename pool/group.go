package pool

import (
	"fmt"
	"sync"
)

// A Group caps the connections that one group of borrowers (sqlpool's
// partitions) holds at once, inside the pool's own wait queue: a caller of
// a group at its cap waits in that queue like any other, at its priority,
// boosted when it starves, within its one AcquireTimeout, listed by Queue
// and the deadlock report; hand-offs skip it until its group has room, and
// a borrowing of the group that ends lets the best waiter that may take a
// connection (of any group with room, this one included) take it.
//
// A borrowing counts against its group from the moment its acquisition is
// served until its Release, Destroy or reclaim, exactly once. A Group
// serves one Pool: its counts are guarded by that pool's lock.
type Group struct {
	name    string // in errors: "partition \"acme\""
	max     int    // the cap
	maxWait int    // callers that may wait at the cap; 0: no limit

	// owner is the lock of the pool the group serves, set on its first
	// acquisition; a Group used with two pools panics.
	owner *sync.Mutex

	// guarded by the owner's Pool.mu:
	inUse     int   // borrowings, and acquisitions served and not yet done
	queued    int   // waiters of the group that hold no slot of it
	timeouts  int64 // waits that timed out held back by the cap
	queueFull int64 // callers refused by maxWait
}

// NewGroup returns a group whose borrowers hold at most limit connections of
// a pool at once (limit >= 1), and of whose callers at most maxWait wait while
// it is at its cap (0: no limit; ErrQueueFull beyond). name says what the
// group is in errors, such as `partition "acme"`.
func NewGroup(name string, limit, maxWait int) *Group {
	if limit < 1 {
		panic(fmt.Sprintf("pool: NewGroup(%q) with a cap of %d: want 1 or more", name, limit))
	}
	return &Group{name: name, max: limit, maxWait: max(maxWait, 0)}
}

// GroupStats is a snapshot of a Group.
type GroupStats struct {
	Max       int   // the cap
	InUse     int   // connections the group's borrowers hold (or are being readied for them)
	Waiting   int   // callers held back by the cap: waiting while the group is at it
	Timeouts  int64 // acquisitions that timed out held back by the cap
	QueueFull int64 // callers refused because Waiting was at the group's maxWait
}

// GroupStats returns a snapshot of g, a group of p's borrowers.
func (p *Pool[T]) GroupStats(g *Group) GroupStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := GroupStats{Max: g.max, InUse: g.inUse, Timeouts: g.timeouts, QueueFull: g.queueFull}
	if g.fullLocked() {
		s.Waiting = g.queued
	}
	return s
}

// fullLocked reports whether g is at its cap. A nil group never is.
func (g *Group) fullLocked() bool { return g != nil && g.inUse >= g.max }

// bindLocked ties g to p on its first use.
func (p *Pool[T]) bindLocked(g *Group) {
	switch g.owner {
	case &p.mu:
	case nil:
		g.owner = &p.mu
	default:
		panic(fmt.Sprintf("pool: Group %s used with two pools", g.name))
	}
}

// takeGroupLocked counts one more borrowing of g (which has room). When it
// reaches its cap, its waiters are held back (waitQueue.blocked).
func (p *Pool[T]) takeGroupLocked(g *Group) {
	g.inUse++
	if g.inUse == g.max {
		p.queue.blocked += g.queued
	}
}

// leaveGroupLocked counts one borrowing of g fewer, and reports whether
// waiters it held back may now be served: the caller then wakes them
// (wakeLocked), unless it hands a connection to the best of them itself.
func (p *Pool[T]) leaveGroupLocked(g *Group) (unblocked bool) {
	if g.inUse == g.max {
		p.queue.blocked -= g.queued
		unblocked = g.queued > 0
	}
	g.inUse--
	return unblocked
}

// queueFullError is the error of a caller refused by its group's maxWait.
func (g *Group) queueFullError() error {
	return fmt.Errorf("%w (%s: %d callers already wait at its MaxSize of %d)", ErrQueueFull, g.name, g.queued, g.max)
}
