package pool

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sqlpool/sqlpool/internal/clock"
)

// dial creates a connection in a slot reserved by the caller (counted in total
// and dialing) and returns it in use. The dial runs on its own goroutine with
// the caller's values but the pool's cancellation: if the caller gives up
// first, the dial goes on and its connection goes to the next waiter or the
// idle stack, so impatient callers cannot starve the pool of connections.
//
// Meanwhile the caller is listed as a dialer: a connection released while
// no waiter in the queue takes it is handed to the longest-dialing caller
// (never a dial slot), which takes it and abandons its dial, whose
// connection then goes to the next waiter or the idle stack likewise. An
// abandoned dial is an orphan (Pool.orphans): the callers that find nothing
// idle meanwhile wait for it rather than dial more.
func (p *Pool[T]) dial(ctx context.Context, deadline time.Time) (*Conn[T], error) {
	if err := p.circuitGate(); err != nil {
		return nil, err
	}
	d := &pendingDial[T]{done: make(chan struct{})}
	p.background.Add(1)
	go func() {
		defer p.background.Done()
		c, err := p.create(valuesContext{Context: p.ctx, values: ctx})
		if d.finish(c, err) {
			return
		}
		// An orphan: the caller was served otherwise, or gave up.
		p.mu.Lock()
		p.orphans--
		if c == nil {
			p.wakeLocked() // a waiter may dial in its place
		}
		p.mu.Unlock()
		if c != nil {
			p.put(c)
		}
	}()
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	w := p.waiters.Get().(*waiter[T])
	defer p.recycle(w)
	for {
		var ready <-chan struct{} // nil when not listed
		var fresh *Conn[T]
		var stolen []*Conn[T]
		p.mu.Lock()
		if !p.closed {
			// A connection released after this dial was reserved, before
			// the caller was listed, went to the idle stack: take it.
			if fresh = p.popFreshLocked(clock.Now()); fresh == nil {
				p.dialers.push(w)
				ready = w.ready
				stolen = p.stealLocked(1) // parked before the caller counted in the dialers' waiting
			}
		}
		p.mu.Unlock()
		p.unsteal(stolen) // to the waiters, or to this caller
		stolen = nil
		var cause error
		received := false
		handed := fresh
		if fresh == nil {
			select {
			case <-d.done:
			case <-ready:
				received = true
			case <-ctx.Done():
				cause = ctx.Err()
			case <-timeout:
				cause = errTimedOut
			}
			p.mu.Lock()
			if w.queued {
				p.dialers.remove(w)
				ready = nil
			}
			p.mu.Unlock()
			if ready != nil && !received {
				<-ready // handed a connection as the wait ended: serving sends under mu
			}
			handed, w.conn = w.conn, nil
		}
		if handed != nil && cause != nil {
			p.put(handed) // pass it on: nothing is lost
			handed = nil
		}
		if handed != nil {
			c := p.takeHanded(ctx, handed)
			if c == nil {
				continue // it was bad: wait for the dial, or another
			}
			if !p.abandon(d) { // the dial finished too
				<-d.done
				if d.err == nil {
					p.put(d.c)
				}
			}
			return c, nil
		}
		if cause != nil && p.abandon(d) {
			return nil, p.ctxError(cause)
		}
		<-d.done
		if d.err != nil {
			return nil, d.err
		}
		p.lent(d.c, clock.Now())
		return d.c, nil
	}
}

// takeHanded readies for the caller of dial a connection handed off by its
// last borrower (counted in use): it returns it, or nil when it was bad
// (closed) or ctx ended (passed on).
func (p *Pool[T]) takeHanded(ctx context.Context, c *Conn[T]) *Conn[T] {
	now := clock.Now()
	if p.expired(c, now) {
		p.closeConn(c, CloseLifetime, keepNone, noOutcome)
		return nil
	}
	if err := p.f.Reset(ctx, c.value); err != nil {
		if ctx.Err() != nil {
			p.put(c) // the caller gave up; the connection may be fine
		} else {
			p.closeConn(c, CloseValidation, keepNone, noOutcome)
		}
		return nil
	}
	p.lent(c, now)
	return c
}

// dialerList is the FIFO list of callers waiting for their own dial, which
// a released connection may serve (see Pool.dial). It links waiters
// through the fields the wait queue uses: a waiter is never in both.
type dialerList[T any] struct {
	head, tail *waiter[T]
	waiting    atomic.Int32 // the callers listed, for parkers (park.go)
}

func (l *dialerList[T]) push(w *waiter[T]) {
	w.prev, w.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = w
	} else {
		l.head = w
	}
	l.tail = w
	w.queued = true
	l.waiting.Add(1)
}

func (l *dialerList[T]) remove(w *waiter[T]) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		l.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		l.tail = w.prev
	}
	w.next, w.prev = nil, nil
	w.queued = false
	l.waiting.Add(-1)
}

// abandon gives up on d unless it has finished, counting it an orphan (see
// Pool.orphans); it reports whether it did.
func (p *Pool[T]) abandon(d *pendingDial[T]) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !d.abandon() {
		return false
	}
	p.orphans++ // under mu with abandon: the dial's end counts it out after
	return true
}

// pendingDial is a dial that its caller may abandon.
type pendingDial[T any] struct {
	done chan struct{} // closed by finish when the caller still wants the result

	mu        sync.Mutex
	abandoned bool // guarded by mu
	finished  bool // guarded by mu
	c         *Conn[T]
	err       error
}

// finish hands the result to the caller and reports whether it was taken.
func (d *pendingDial[T]) finish(c *Conn[T], err error) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.abandoned {
		return false
	}
	d.finished, d.c, d.err = true, c, err
	close(d.done)
	return true
}

// abandon gives up on the dial unless it has finished; it reports whether it did.
func (d *pendingDial[T]) abandon() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.abandoned = !d.finished
	return d.abandoned
}

// valuesContext has the values of one context and the deadline and
// cancellation of another.
type valuesContext struct {
	context.Context
	values context.Context
}

func (c valuesContext) Value(key any) any { return c.values.Value(key) }

// create dials in a reserved slot, bounded by ConnectTimeout. On success the
// connection is in use; on failure the slot is freed for a waiter.
func (p *Pool[T]) create(ctx context.Context) (*Conn[T], error) {
	dctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
	var v T
	var err error
	if p.limiter != nil {
		if err = p.limiter.Wait(dctx); err != nil {
			err = fmt.Errorf("sqlpool: ConnectRate: %w", err) // the pool's, not the Factory's
		}
	}
	if err == nil {
		if v, err = p.f.Create(dctx); err != nil {
			err = &ConnectError{Err: err}
		}
	}
	cancel()

	p.mu.Lock()
	p.dialDoneLocked(err)
	p.dialedLocked(err, clock.Now())
	if err != nil {
		p.wakeLocked()
		p.mu.Unlock()
		return nil, err
	}
	if p.closed {
		p.mu.Unlock()
		p.f.Close(v, ClosePoolClosed)
		return nil, ErrClosed
	}
	p.wakeLocked() // a dial slot is free again
	lifetime := p.drawLifetimeLocked()
	p.mu.Unlock()
	now := clock.Now()
	return &Conn[T]{p: p, value: v, created: now, lifetime: lifetime, lastUsed: now}, nil
}
