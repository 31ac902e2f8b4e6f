package pool

import (
	"context"
	"errors"
	"time"

	"github.com/sqlpool/sqlpool/internal/clock"
)

// wait blocks until w, queued at start, is served, expires (see expire) or
// gives up. It returns a handed-off connection (and whether it must be
// validated), or dial set when a dial slot was reserved for the caller, or an
// error; held reports whether the caller holds a slot of its group (w.group)
// now, even with an error. With OnQueuePosition set, it calls it, on this
// goroutine, each time w's position changes.
func (p *Pool[T]) wait(ctx context.Context, w *waiter[T], start time.Time) (conn *Conn[T], validate, dial, held bool, now time.Time, err error) {
	received := false // the ready signal
	var cause error   // why the wait ended early: ctx.Err() or errTimedOut
wait:
	for {
		select {
		case <-w.ready:
			received = true
			break wait
		case <-ctx.Done():
			cause = ctx.Err()
			break wait
		case <-w.moved: // nil unless OnQueuePosition is set
			p.mu.Lock()
			pos, queued := w.pos, w.queued
			p.mu.Unlock()
			if queued {
				p.cfg.OnQueuePosition(ctx, pos)
			}
		}
	}

	now = clock.Now()
	p.waitTime.Add(int64(now.Sub(start)))
	if received && !w.expired && w.err == nil {
		// Served: what the server set before the signal is ours to read,
		// without the lock.
		conn, validate, dial, held = w.conn, w.validate, w.dial, w.held
		p.recycle(w)
		return conn, validate, dial, held, now, nil
	}
	p.mu.Lock()
	if !received && w.queued {
		var capped *Group // the group whose cap held w back, if any
		if !w.eligible() {
			capped = w.group
		}
		held = w.held
		p.dequeueLocked(w, now)
		if p.cfg.OnQueuePosition != nil {
			p.repositionLocked(now)
		}
		err := p.giveUpErrorLocked(cause, capped)
		p.mu.Unlock()
		p.recycle(w)
		return nil, false, false, held, now, err
	}
	if cause == nil && w.expired {
		cause = errTimedOut
	}
	if cause != nil {
		var capped *Group
		if w.capped {
			capped = w.group
		}
		err = p.giveUpErrorLocked(cause, capped)
	}
	held = w.held
	p.mu.Unlock()

	if !received {
		// Served, or expired, in the same instant as giving up. Both send
		// on ready under mu, so the signal is there.
		<-w.ready
	}
	conn, validate, dial, closedErr := w.conn, w.validate, w.dial, w.err
	p.recycle(w)
	switch {
	case closedErr != nil:
		return nil, false, false, held, now, closedErr
	case err == nil:
		return conn, validate, dial, held, now, nil
	case conn != nil: // pass it on: nothing is lost
		p.put(conn)
	case dial:
		p.mu.Lock()
		p.cancelDialLocked()
		p.wakeLocked()
		p.mu.Unlock()
	}
	return nil, false, false, held, now, err
}

// armExpiryLocked makes sure the expiry timer fires by deadline (zero: no
// AcquireTimeout). One timer serves every waiter: arming it per waiter cost
// more than the rest of a short wait. It fires at the earliest deadline
// known when it was armed; by then that waiter has usually been served, and
// expire arms it again for the earliest one left, so in steady state it
// fires about once per AcquireTimeout.
func (p *Pool[T]) armExpiryLocked(deadline, now time.Time) {
	if deadline.IsZero() || !p.expiryAt.IsZero() && !deadline.Before(p.expiryAt) {
		return
	}
	p.expiryAt = deadline
	if p.expiry == nil {
		p.expiry = time.AfterFunc(deadline.Sub(now), p.expire)
		return
	}
	p.expiry.Reset(deadline.Sub(now))
}

// expire ends the waits past their AcquireTimeout (their waiters find
// expired set), and arms the expiry timer for the earliest deadline left.
func (p *Pool[T]) expire() {
	now := clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expiryAt = time.Time{}
	if p.closed {
		return
	}
	var next time.Time
	expired := false
	for _, w := range p.queue.head {
		for w != nil {
			after := w.next
			switch {
			case w.deadline.IsZero():
			case !w.deadline.After(now):
				w.capped = !w.eligible()
				p.dequeueLocked(w, now)
				w.expired = true
				w.ready <- struct{}{}
				expired = true
			case next.IsZero() || w.deadline.Before(next):
				next = w.deadline
			}
			w = after
		}
	}
	if expired && p.cfg.OnQueuePosition != nil {
		p.repositionLocked(now)
	}
	p.armExpiryLocked(next, now)
}

// recycle clears w, out of the queue, and returns it to Pool.waiters.
func (p *Pool[T]) recycle(w *waiter[T]) {
	w.conn, w.validate, w.dial, w.err, w.expired = nil, false, false, nil, false
	w.pos, w.stack = 0, nil
	w.group, w.held, w.capped = nil, false, false
	select {
	case <-w.moved: // a position change nobody will read
	default:
	}
	p.waiters.Put(w)
}

// errTimedOut marks a wait ended by AcquireTimeout.
var errTimedOut = errors.New("acquire timeout")

// giveUpErrorLocked counts an abandoned acquisition and returns its error;
// capped is the group whose cap held it back, if any.
func (p *Pool[T]) giveUpErrorLocked(cause error, capped *Group) error {
	if cause == context.Canceled {
		p.stats.canceled++
		return cause
	}
	p.stats.timeouts++
	e := p.timeoutErrorLocked()
	e.deadline = cause != errTimedOut
	if capped != nil {
		capped.timeouts++
		// the caller is out of the queue by now: counted back in
		e.Group, e.GroupMax, e.GroupInUse, e.GroupWaiting = capped.name, capped.max, capped.inUse, capped.queued+1
	}
	return e
}

// ctxError is the error for an acquisition whose context ended.
func (p *Pool[T]) ctxError(err error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.giveUpErrorLocked(err, nil)
}

// wakeLocked serves waiters while there is something for them: an idle
// connection, or room to dial.
func (p *Pool[T]) wakeLocked() {
	if p.queue.len == 0 || p.closed || p.suspended {
		return
	}
	now := clock.Now()
	for p.queue.len > 0 {
		var w *waiter[T]
		switch {
		case len(p.idle) > 0:
			if w = p.nextLocked(p.freeLocked(), now); w == nil {
				return
			}
			w.conn, w.validate = p.popIdleLocked(now, 0)
		case p.dialWantedLocked(true):
			if w = p.nextLocked(p.freeLocked(), now); w == nil {
				return
			}
			p.reserveDialLocked()
			w.dial = true
		case p.refusingLocked():
			p.refuseWaitersLocked(now)
			return
		default:
			return
		}
		w.ready <- struct{}{}
	}
}

// nextLocked removes and returns the waiter to serve with one of free
// connections (idle or not yet dialed, counting one being released): the
// first in service order, or the longest-waiting PriorityCritical caller
// when only the CriticalReserve is free. It returns nil when no waiter may
// take it.
//
// Waiters held back by their group's cap are skipped; the waiter returned
// holds a slot of its group (waiter.held) from now on.
func (p *Pool[T]) nextLocked(free int, now time.Time) *waiter[T] {
	w := p.queue.best(now, p.cfg.StarvationAfter)
	if w != nil && w.prio != critical && free <= p.cfg.CriticalReserve {
		w = p.queue.bestCritical()
	}
	if w == nil {
		return nil
	}
	p.dequeueLocked(w, now)
	if g := w.group; g != nil && !w.held {
		p.takeGroupLocked(g)
		w.held = true
	}
	p.serves.served(now)
	if p.cfg.OnQueuePosition != nil {
		p.repositionLocked(now)
	}
	return w
}

// dequeueLocked removes w from the queue, counting its boosts.
func (p *Pool[T]) dequeueLocked(w *waiter[T], now time.Time) {
	p.queue.remove(w)
	p.stats.boosts += int64(level(w, now, p.cfg.StarvationAfter) - w.prio)
	if p.queue.len == p.queue.blocked { // nobody waits for the pool: the backlog ends
		p.serves.end()
	}
}

// repositionLocked updates the waiters' positions and signals those that
// changed (OnQueuePosition).
func (p *Pool[T]) repositionLocked(now time.Time) {
	p.queue.walk(now, p.cfg.StarvationAfter, func(w *waiter[T], pos int) bool {
		if w.pos != pos {
			w.pos = pos
			select {
			case w.moved <- struct{}{}:
			default: // a change not yet read: the waiter reads the latest
			}
		}
		return true
	})
}
