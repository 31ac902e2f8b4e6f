package pool

import (
	"context"
	"time"

	"github.com/sqlpool/sqlpool/internal/clock"
)

// Acquire returns a connection: an idle one, a new one if the pool is below
// MaxSize, or the next one released, waiting at priority prio. It gives up
// when ctx ends (returning ctx.Err()) or after AcquireTimeout (an error
// matching ErrAcquireTimeout, and context.DeadlineExceeded too when ctx's
// deadline came first). It fails at once with ErrQueueFull when MaxWaitQueue
// callers already wait, with ErrWouldTimeout when it is unlikely to be
// served in time (see Config.FailFastBelow), and with ErrCircuitOpen when
// it would dial while the circuit breaker is open (see Config.BreakAfter).
func (p *Pool[T]) Acquire(ctx context.Context, prio Priority) (*Conn[T], error) {
	return p.AcquireLabeled(ctx, prio, 0)
}

// AcquireLabeled is Acquire preferring, among the idle connections, the most
// recently used one whose Label is label (0: no preference). A connection
// handed over by a releasing borrower goes to the longest waiter whatever its
// label.
func (p *Pool[T]) AcquireLabeled(ctx context.Context, prio Priority, label uint64) (*Conn[T], error) {
	return p.AcquireAt(ctx, clock.Now(), prio, label)
}

// AcquireAt is AcquireLabeled for a caller that has read the clock: start
// is when its acquisition began, and the pool measures the AcquireTimeout
// and the connection's ages from it, reading the clock again only if it
// has to wait. The wait is the connection's LentAt minus start. (Like
// rate.Limiter's AllowN, it spares a hot path a clock reading it already
// made.)
func (p *Pool[T]) AcquireAt(ctx context.Context, start time.Time, prio Priority, label uint64) (*Conn[T], error) {
	return p.AcquireSince(ctx, start, start, prio, label)
}

// AcquireSince is AcquireAt for an acquisition that began (at began) before
// it reached the pool (at now), having waited elsewhere first, such as for
// a partition's slot: the AcquireTimeout runs from began, so the caller has
// one deadline, while ages and the wait (LentAt) are measured from now.
func (p *Pool[T]) AcquireSince(ctx context.Context, began, now time.Time, prio Priority, label uint64) (*Conn[T], error) {
	return p.AcquireGroup(ctx, began, now, prio, label, nil)
}

// AcquireGroup is AcquireSince for a borrower of group g (nil: none): while
// g's borrowers hold its cap of connections, the caller waits in the
// pool's queue, at its priority and within its one AcquireTimeout, and is
// passed over until g has room. The connection returned counts against g
// until it is released, destroyed or reclaimed. A caller refused because
// g's maxWait callers already wait at its cap gets an error matching
// ErrQueueFull; one that times out held back by the cap, a TimeoutError
// naming g.
func (p *Pool[T]) AcquireGroup(ctx context.Context, began, now time.Time, prio Priority, label uint64, g *Group) (*Conn[T], error) {
	held := false // whether the acquisition holds a slot of g
	c, err := p.acquire(ctx, now, began, prio, label, g, &held)
	switch {
	case c != nil && p.tracking():
		p.list(c, g)
	case c != nil:
		c.group = g
	case held: // failed after it was served: its slot goes to the next
		p.mu.Lock()
		p.leaveGroupLocked(g)
		p.wakeLocked()
		p.mu.Unlock()
	}
	return c, err
}

// acquire is AcquireGroup without the bookkeeping of the connection it
// returns; *held reports whether the caller holds a slot of g, also when
// it fails.
func (p *Pool[T]) acquire(ctx context.Context, start, began time.Time, prio Priority, label uint64, g *Group, held *bool) (*Conn[T], error) {
	if err := ctx.Err(); err != nil {
		return nil, p.ctxError(err)
	}
	queued := false // whether the caller has queued before (admitted)
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		if g != nil {
			p.bindLocked(g)
		}
		if p.cfg.FairQueue && p.queue.len > 0 {
			// Serve every earlier waiter that can be served: what is left
			// is what none of them may take.
			p.wakeLocked()
		}
		if !p.suspended && p.mayTakeLocked(prio) && (*held || !g.fullLocked()) {
			if c, validate := p.popIdleLocked(start, label); c != nil {
				p.holdLocked(g, held)
				p.mu.Unlock()
				if c, err := p.checkout(ctx, c, validate, start, began); c != nil || err != nil {
					return c, err
				}
				continue
			}
			if stolen := p.stealLocked(1); stolen != nil { // a parked connection, rather than a dial
				p.mu.Unlock()
				p.unsteal(stolen)
				continue
			}
			if p.dialWantedLocked(false) {
				p.reserveDialLocked()
				p.holdLocked(g, held)
				p.mu.Unlock()
				return p.dial(ctx, p.deadline(began))
			}
			if p.refusingLocked() { // the circuit is open: no dial, no wait
				err := p.refuseLocked()
				p.mu.Unlock()
				return nil, err
			}
		}
		now := clock.Now()
		deadline := p.deadline(began)
		// capped: held back by g's cap, not by the pool. Then g's MaxWait
		// applies at admission (once per Acquire), not the pool's.
		capped := !*held && g.fullLocked()
		if !queued {
			switch {
			case capped && g.maxWait > 0 && g.queued >= g.maxWait:
				g.queueFull++
				p.stats.queueFull++
				err := g.queueFullError()
				p.mu.Unlock()
				return nil, err
			case !capped && p.cfg.MaxWaitQueue > 0 && p.queue.len-p.queue.blocked >= p.cfg.MaxWaitQueue:
				p.stats.queueFull++
				p.mu.Unlock()
				return nil, ErrQueueFull
			}
			// FailFastBelow's estimate is the pool's: a caller held back by
			// its group waits for the group's borrowers instead.
			if !capped {
				if err := p.predictLocked(ctx, prio.index(), deadline, now); err != nil {
					p.mu.Unlock()
					return nil, err
				}
			}
			p.stats.waits++
		}
		w := p.waiters.Get().(*waiter[T])
		w.prio = prio.index()
		w.deadline = deadline
		w.stack = nil
		w.group, w.held = g, *held
		if !capped && p.queue.len == p.queue.blocked { // the first waiting for the pool
			p.serves.begin(now)
		}
		if p.cfg.FairQueue {
			// Served in the order the Acquire calls began: a caller that
			// queues again after a failed connection keeps its place.
			w.since = began
			p.queue.insert(w)
		} else {
			w.since = now
			p.queue.push(w)
		}
		queued = true
		p.armExpiryLocked(deadline, now)
		if p.cfg.OnQueuePosition != nil {
			if w.moved == nil {
				w.moved = make(chan struct{}, 1)
			}
			p.repositionLocked(now)
		}
		// Connections parked before this caller counted in the queue's
		// waiting: one, or, for a caller held back by g's cap, every one,
		// so that those of g give back their slots.
		n := 1
		if capped {
			n = -1
		}
		stolen := p.stealLocked(n)
		p.mu.Unlock()
		p.unsteal(stolen)
		if p.cfg.DeadlockThreshold > 0 {
			p.publishStack(w)
		}

		conn, validate, dial, h, served, err := p.wait(ctx, w, now)
		*held = h
		switch {
		case err != nil:
			return nil, err
		case dial:
			return p.dial(ctx, deadline)
		case conn != nil:
			// A connection handed off by its last borrower needs a reset but
			// no validation; one from the idle stack may need both.
			if c, err := p.checkout(ctx, conn, validate, served, began); c != nil || err != nil {
				return c, err
			}
		}
	}
}

// holdLocked counts the caller's acquisition against g, unless it holds a
// slot of g already (or g is nil).
func (p *Pool[T]) holdLocked(g *Group, held *bool) {
	if g != nil && !*held {
		p.takeGroupLocked(g)
		*held = true
	}
}

// mayTakeLocked reports whether an acquisition at priority prio may take a
// free connection (idle or not yet dialed) without eating into the
// CriticalReserve.
func (p *Pool[T]) mayTakeLocked(prio Priority) bool {
	return p.cfg.CriticalReserve == 0 || prio >= PriorityCritical || p.freeLocked() > p.cfg.CriticalReserve
}

// popIdleLocked pops the most recently used idle connection labeled label,
// or else the most recently used, if any, and says whether it must be
// validated before use.
func (p *Pool[T]) popIdleLocked(now time.Time, label uint64) (c *Conn[T], validate bool) {
	n := len(p.idle)
	if n == 0 {
		return nil, false
	}
	i := n - 1
	if label != 0 {
		for j := n - 1; j >= 0; j-- {
			if p.idle[j].label == label {
				i = j
				break
			}
		}
	}
	c = p.idle[i]
	if i < n-1 {
		copy(p.idle[i:], p.idle[i+1:])
	}
	p.idle[n-1] = nil
	p.idle = p.idle[:n-1]
	p.lendLocked()
	return c, p.mustValidateLocked(c, now)
}

// popFreshLocked pops the most recently used idle connection if it needs
// no validation and no waiter is queued (they are served first); else it
// returns nil.
func (p *Pool[T]) popFreshLocked(now time.Time) *Conn[T] {
	n := len(p.idle)
	if n == 0 || p.suspended || p.queue.len > 0 || p.mustValidateLocked(p.idle[n-1], now) {
		return nil
	}
	c, _ := p.popIdleLocked(now, 0)
	return c
}

// mustValidateLocked reports whether the idle connection c must be
// validated before it is lent at now.
func (p *Pool[T]) mustValidateLocked(c *Conn[T], now time.Time) bool {
	return p.cfg.ValidationBypass < 0 || now.Sub(c.checked()) > p.cfg.ValidationBypass || p.suspectLocked(c)
}

// suspectLocked reports whether c was last used before a sibling failed.
func (p *Pool[T]) suspectLocked(c *Conn[T]) bool {
	return !p.suspectSince.IsZero() && !c.checked().After(p.suspectSince)
}

// checkout readies a connection popped for a borrower (counted in use). It
// returns the connection, or an error for the caller, or neither when the
// connection was bad and the caller should try again. With FairQueue, the
// caller keeps the bad connection's slot and dials its replacement. now is
// the time, start when the acquisition began.
func (p *Pool[T]) checkout(ctx context.Context, c *Conn[T], validate bool, now, start time.Time) (*Conn[T], error) {
	keep := keepNone
	if p.cfg.FairQueue {
		keep = keepSlot
	}
	reason := CloseLifetime
	if !p.expired(c, now) {
		var err error
		if validate {
			var abandoned, dial bool
			abandoned, dial, err = p.check(ctx, c, keep, noOutcome)
			switch {
			case err == errClosing:
				p.put(c) // closes it
				return nil, ErrClosed
			case abandoned && dial:
				return p.dial(ctx, p.deadline(start))
			case abandoned && ctx.Err() != nil:
				return nil, p.ctxError(ctx.Err())
			case abandoned:
				return nil, nil
			}
		}
		if err == nil {
			err = p.f.Reset(ctx, c.value)
		}
		if err == nil {
			p.lent(c, now)
			return c, nil
		}
		if ctx.Err() != nil {
			p.put(c) // the caller gave up; the connection may be fine
			return nil, p.ctxError(ctx.Err())
		}
		reason = CloseValidation
	}
	if _, dial := p.closeConn(c, reason, keep, noOutcome); dial {
		return p.dial(ctx, p.deadline(start))
	}
	return nil, nil
}

// deadline returns the AcquireTimeout deadline of an acquisition begun at
// start, or zero when there is none.
func (p *Pool[T]) deadline(start time.Time) time.Time {
	if p.cfg.AcquireTimeout <= 0 {
		return time.Time{}
	}
	return start.Add(p.cfg.AcquireTimeout)
}
