package pool

import (
	"context"
	"time"

	"github.com/sqlpool/sqlpool/internal/clock"
)

// Release returns the connection to the pool: to the next waiter, or to the
// top of the idle stack. A connection past its lifetime, or released after
// its MaxUses-th acquisition, is closed instead. It reports whether the
// pool took the connection back: false when it had been reclaimed
// (Config.ReclaimBorrowed), and is closed; the borrower should then drop
// what it keeps of it.
func (c *Conn[T]) Release() bool { return c.ReleaseAt(clock.Now()) }

// ReleaseAt is Release for a borrower that has read the clock: now is when
// the borrowing ended.
func (c *Conn[T]) ReleaseAt(now time.Time) bool {
	p := c.p
	if c.reclaimed.Load() {
		return false
	}
	c.lastUsed = now
	o := p.settle(c, false)
	switch {
	case p.expired(c, now):
		closed, _ := p.closeConn(c, CloseLifetime, keepNone, o)
		return closed
	case p.cfg.MaxUses > 0 && c.uses >= p.cfg.MaxUses:
		closed, _ := p.closeConn(c, CloseUsage, keepNone, o)
		return closed
	}
	if p.cfg.ValidateOnRelease {
		abandoned, _, err := p.check(context.Background(), c, keepNone, o)
		if abandoned { // counted closed, unless reclaimed; closed when Validate returns
			return !c.reclaimed.Load()
		}
		if err != nil && err != errClosing { // errClosing: putBack closes it
			closed, _ := p.closeConn(c, CloseValidation, keepNone, o)
			return closed
		}
	}
	return p.putBack(c, now, o, false)
}

// Destroy closes the connection instead of returning it. CloseErrors and
// CloseValidation mark the pool's idle connections suspect: each is
// validated before it is lent again, and maintenance checks them now.
// CloseErrors counts the borrowing as failed for adaptive aging. Like
// Release, it reports whether the pool took the connection: false when it
// had been reclaimed (and closed by the pool).
func (c *Conn[T]) Destroy(reason CloseReason) bool {
	if c.reclaimed.Load() {
		return false
	}
	closed, _ := c.p.closeConn(c, reason, keepNone, c.p.settle(c, reason == CloseErrors))
	return closed
}

// put hands c, counted in use, to the next waiter or pushes it on the idle stack.
func (p *Pool[T]) put(c *Conn[T]) { p.putBack(c, clock.Now(), noOutcome, false) }

// putBack is put with the time read by the caller and the outcome of the
// borrowing that ends. With inPlace, c goes back where its last use puts
// it in the idle stack, not on top. It reports false, doing nothing, when
// c was reclaimed.
func (p *Pool[T]) putBack(c *Conn[T], now time.Time, o outcome, inPlace bool) bool {
	p.mu.Lock()
	if c.reclaimed.Load() { // reclaimed since the borrower's check
		p.mu.Unlock()
		return false
	}
	p.recordLocked(o)
	unblocked := p.ungroupLocked(c) // before the hand-off: its group's waiters may take c
	if p.closed {
		p.mu.Unlock()
		p.destroy(c, ClosePoolClosed)
		return true
	}
	if p.tracking() {
		p.returnedLocked(c, now)
	}
	if p.total > p.cfg.MaxSize { // Resize shrank the pool
		p.mu.Unlock()
		p.destroy(c, CloseEvicted)
		return true
	}
	// A connection checked last before a sibling failed (taken back from
	// its parker, or pinged meanwhile) goes to the idle stack, from which
	// waiters take it validated.
	suspect := inPlace && p.suspectLocked(c)
	if p.queue.len > 0 && !p.suspended && !suspect {
		if w := p.nextLocked(p.freeLocked()+1, now); w != nil {
			w.conn = c // stays in use
			w.ready <- struct{}{}
			if unblocked { // the group's waiters may take an idle connection or a dial
				p.wakeLocked()
			}
			p.mu.Unlock()
			return true
		}
	}
	if w := p.dialers.head; w != nil && !p.suspended && !suspect { // no waiter took it: a caller waiting for its dial
		p.dialers.remove(w)
		w.conn = c // stays in use
		w.ready <- struct{}{}
		p.mu.Unlock()
		return true
	}
	p.returnLocked(c, inPlace)
	if suspect {
		p.wakeLocked()
	}
	p.mu.Unlock()
	return true
}

// destroy closes c, counted in use, and frees its slot for the next waiter.
func (p *Pool[T]) destroy(c *Conn[T], reason CloseReason) {
	p.closeConn(c, reason, keepNone, noOutcome)
}

// What closeConn does with the slot of the connection it closes.
const (
	keepNone       = iota // free it for the next waiter
	keepSlot              // keep it for the caller's replacement dial
	keepBackground        // keep it for a background dial, counted in Pool.background
)

// closeConn closes c, counted in use, recording the outcome of the
// borrowing that ends. With keepSlot or keepBackground, the caller keeps
// c's slot to dial a replacement when MaxConcurrentConnects and MaxSize
// allow, and closeConn reports whether it did; otherwise the slot goes to
// the next waiter. It does nothing, and reports closed false, when c was
// reclaimed.
func (p *Pool[T]) closeConn(c *Conn[T], reason CloseReason, keep int, o outcome) (closed, dial bool) {
	closed, dial = p.retire(c, reason, keep, o, true)
	if closed {
		p.f.Close(c.value, reason)
	}
	return closed, dial
}

// retire is closeConn without the Factory.Close, which is left to the
// caller when it reports closed. blame says whether a connection closed as
// bad (CloseErrors, CloseValidation) counts against the circuit breaker:
// not when its borrower's cancellation cut its check short.
func (p *Pool[T]) retire(c *Conn[T], reason CloseReason, keep int, o outcome, blame bool) (closed, dial bool) {
	p.mu.Lock()
	if c.reclaimed.Load() {
		p.mu.Unlock()
		return false, false
	}
	now := clock.Now()
	p.recordLocked(o)
	if p.tracking() {
		p.returnedLocked(c, now)
	}
	var suspect []*Conn[T]
	if reason == CloseErrors || reason == CloseValidation {
		if blame {
			p.badConnLocked()
		}
		p.suspectSince = now
		suspect = p.stealLocked(-1) // parked before now: validated before they are lent again
		select {
		case p.trigger <- struct{}{}:
		default:
		}
	}
	if keep != keepNone && !p.closed && p.dialing < p.cfg.MaxConcurrentConnects && p.total <= p.cfg.MaxSize &&
		p.breakerAllowsDialLocked() {
		unblocked := p.ungroupLocked(c)
		p.redialLocked(c, reason, now)
		dial = true
		if keep == keepBackground {
			p.background.Add(1) // under mu, so never after Close began to wait
		}
		if unblocked {
			p.wakeLocked()
		}
	} else {
		p.dropLocked(c, reason, now)
		p.wakeLocked()
	}
	p.mu.Unlock()
	p.unsteal(suspect)
	return true, dial
}
