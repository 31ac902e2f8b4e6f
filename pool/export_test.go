package pool

import "fmt"

// PoissonAtLeast exposes the tail of the Poisson distribution that
// FailFastBelow uses.
var PoissonAtLeast = poissonAtLeast

// CheckCounts reports an error when the pool's connection counts break the
// invariants stated in slots.go.
func (p *Pool[T]) CheckCounts() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var closed int64
	for _, n := range p.stats.closed {
		closed += n
	}
	switch {
	case p.total != p.dialing+len(p.idle)+p.inUse:
		return fmt.Errorf("total %d != dialing %d + idle %d + in use %d", p.total, p.dialing, len(p.idle), p.inUse)
	case p.stats.created-closed != int64(len(p.idle)+p.inUse):
		return fmt.Errorf("created %d - closed %d != idle %d + in use %d", p.stats.created, closed, len(p.idle), p.inUse)
	case p.dialing < 0 || p.inUse < 0 || p.dialing > p.cfg.MaxConcurrentConnects:
		return fmt.Errorf("dialing %d (MaxConcurrentConnects %d), in use %d", p.dialing, p.cfg.MaxConcurrentConnects, p.inUse)
	}
	return nil
}

// CheckGroups reports an error when the counts of groups, which must be
// every Group used with p, disagree with the wait queue: each group's
// borrowings within its cap, its waiters holding no slot counted in
// queued, and the waiters of groups at their cap counted blocked.
func (p *Pool[T]) CheckGroups(groups ...*Group) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	queued := make(map[*Group]int)
	for _, h := range p.queue.head {
		for w := h; w != nil; w = w.next {
			if w.group != nil && !w.held {
				queued[w.group]++
			}
		}
	}
	blocked := 0
	for _, g := range groups {
		switch {
		case g.inUse < 0 || g.inUse > g.max:
			return fmt.Errorf("group %s: %d in use, cap %d", g.name, g.inUse, g.max)
		case g.queued != queued[g]:
			return fmt.Errorf("group %s: %d queued counted, %d in the queue", g.name, g.queued, queued[g])
		}
		if g.fullLocked() {
			blocked += g.queued
		}
	}
	if blocked != p.queue.blocked {
		return fmt.Errorf("%d waiters blocked counted, %d held back by their group's cap", p.queue.blocked, blocked)
	}
	return nil
}

// TakeParked takes back every parked connection, as a waiter or a failed
// sibling does under mu, and returns the function that puts them back, as
// they do once they have released it: a test runs what may happen in
// between.
func (p *Pool[T]) TakeParked() (putBack func()) {
	p.mu.Lock()
	stolen := p.stealLocked(-1)
	p.mu.Unlock()
	return func() { p.unsteal(stolen) }
}
