package pool

import (
	"context"
	"errors"
	"time"

	"github.com/sqlpool/sqlpool/internal/clock"
)

// The circuit breaker (Config.BreakAfter) stops a pool from dialing a
// database that keeps refusing it: without it every caller that finds no
// idle connection dials, and waits out its dial (up to ConnectTimeout), the
// queued ones behind it one dial after another until AcquireTimeout.
//
// It counts consecutive connection failures: failed dials, and connections
// discarded as bad (the same events that make the idle siblings suspect,
// see retire). A dial that succeeds resets the count and closes the
// circuit. The circuit opens when a failed dial brings the count to
// BreakAfter; when bad connections alone have brought it there, dials go
// one at a time (breakerAllowsDialLocked), and the first that fails opens
// it, so that a restart, after which every idle connection is bad but the
// next dial succeeds, does not.
//
// While it is open: an acquisition that finds no idle connection and would
// dial is refused at once (refuseLocked in acquire, refuseWaitersLocked
// for the queue, the check at the top of dial for a dial slot handed out
// just before it opened); nothing else dials, but for the probe. The
// maintenance goroutine owns the probe's timer: openLocked and the end of
// a probe signal it on circuitC, and it starts the probe, on a goroutine
// counted in background, when BreakFor has passed (circuitTick). The
// probe's success closes the circuit (dialedLocked) and its connection
// goes to a waiter or the idle stack; its failure opens the circuit for
// another BreakFor.

// breaker is the circuit breaker's state; guarded by Pool.mu.
type breaker struct {
	failures int       // consecutive failures since the last dial that succeeded
	open     bool      // the circuit is open: acquisitions that would dial are refused
	probing  bool      // the probe dial is in progress (open stays set until it succeeds)
	probeAt  time.Time // while open and not probing: when the probe is due
	opens    int64     // times the circuit opened (from closed)
	refused  int64     // acquisitions refused while it was open
	logged   int64     // the opens logged so far (circuitTick)
}

// CircuitOpen reports whether the circuit breaker is open (see
// Config.BreakAfter): the pool refuses acquisitions that need a new
// connection and dials nothing but its probe. It takes no lock.
func (p *Pool[T]) CircuitOpen() bool { return p.circuitOpen.Load() }

// breakerAllowsDialLocked reports whether the circuit breaker lets a dial
// start now: the circuit is closed and, once the failures have reached
// BreakAfter (bad connections alone bring them there), no other dial is in
// progress.
func (p *Pool[T]) breakerAllowsDialLocked() bool {
	b := &p.breaker
	return p.cfg.BreakAfter == 0 || !b.open && (b.failures < p.cfg.BreakAfter || p.dialing == 0)
}

// refusingLocked reports whether an acquisition that finds no idle
// connection is refused: the circuit is open and it would otherwise dial
// (the pool is below MaxSize). At MaxSize, acquisitions wait for a release
// as usual: a slot freed later refuses them (wakeLocked).
func (p *Pool[T]) refusingLocked() bool {
	return p.breaker.open && p.total < p.cfg.MaxSize
}

// refuseLocked counts one refused acquisition and returns its error.
func (p *Pool[T]) refuseLocked() error {
	p.breaker.refused++
	return p.circuitErrorLocked()
}

// circuitErrorLocked describes the open circuit.
func (p *Pool[T]) circuitErrorLocked() *CircuitOpenError {
	return &CircuitOpenError{Failures: p.breaker.failures, LastErr: p.lastConnErr, BreakFor: p.cfg.BreakFor}
}

// refuseWaitersLocked fails, with a CircuitOpenError, every queued waiter
// that would be given a dial slot now: those not held back by their
// group's cap, nor by the CriticalReserve.
func (p *Pool[T]) refuseWaitersLocked(now time.Time) {
	var err error
	critOnly := p.freeLocked() <= p.cfg.CriticalReserve
	for _, w := range p.queue.head {
		for w != nil {
			next := w.next
			if w.eligible() && (!critOnly || w.prio == critical) {
				if err == nil {
					err = p.circuitErrorLocked() // one for all: errors are not changed
				}
				p.dequeueLocked(w, now)
				p.breaker.refused++
				w.err = err
				w.ready <- struct{}{}
			}
			w = next
		}
	}
	if err != nil && p.cfg.OnQueuePosition != nil {
		p.repositionLocked(now)
	}
}

// openLocked opens the circuit until BreakFor from now, and tells the
// maintenance goroutine to arm the probe.
func (p *Pool[T]) openLocked(now time.Time) {
	b := &p.breaker
	b.open = true
	b.opens++
	b.probeAt = now.Add(p.cfg.BreakFor)
	p.circuitOpen.Store(true)
	p.signalCircuit()
}

// signalCircuit tells the maintenance goroutine that the probe's time
// changed.
func (p *Pool[T]) signalCircuit() {
	select {
	case p.circuitC <- struct{}{}:
	default:
	}
}

// dialedLocked tells the breaker how a dial ended (err is create's): a
// success closes the circuit; a failure counts, and opens the circuit when
// it brings the count to BreakAfter. The caller wakes the waiters after
// it, which refuses them when the circuit opened.
func (p *Pool[T]) dialedLocked(err error, now time.Time) {
	if p.cfg.BreakAfter == 0 {
		return
	}
	b := &p.breaker
	var ce *ConnectError
	switch {
	case err == nil:
		b.failures = 0
		if b.open {
			b.open = false
			p.circuitOpen.Store(false)
		}
	case !errors.As(err, &ce), errors.Is(ce.Err, context.Canceled), p.closed:
		// not the database's doing: ConnectRate's throttle, a
		// cancellation, Close
	default:
		b.failures++
		if !b.open && b.failures >= p.cfg.BreakAfter {
			p.openLocked(now)
		}
	}
}

// badConnLocked counts a connection discarded as bad (CloseErrors,
// CloseValidation) against the breaker. It does not open the circuit: see
// breakerAllowsDialLocked.
func (p *Pool[T]) badConnLocked() {
	if p.cfg.BreakAfter > 0 {
		p.breaker.failures++
	}
}

// circuitGate refuses the dial of a slot reserved before the circuit
// opened (a waiter given a dial slot, a caller replacing a bad
// connection): it frees the slot and returns the caller's error; nil when
// the dial may go on.
func (p *Pool[T]) circuitGate() error {
	if p.cfg.BreakAfter == 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.breaker.open {
		return nil
	}
	p.cancelDialLocked()
	err := p.refuseLocked()
	p.wakeLocked()
	return err
}

// circuitTick, on the maintenance goroutine, starts the probe if it is
// due, and returns when to look again (arm false: at the next signal on
// circuitC). Without room for the probe's dial (MaxSize connections open,
// or MaxConcurrentConnects dials in progress) it puts the probe off by
// BreakFor. opened describes the circuit if it opened since the last
// call, for the log.
func (p *Pool[T]) circuitTick() (next time.Duration, arm bool, opened *CircuitOpenError) {
	now := clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	b := &p.breaker
	if p.closed || !b.open || b.probing {
		return 0, false, nil
	}
	if b.logged != b.opens {
		b.logged = b.opens
		opened = p.circuitErrorLocked()
	}
	if d := b.probeAt.Sub(now); d > 0 {
		return d, true, opened
	}
	if p.total >= p.cfg.MaxSize || p.dialing >= p.cfg.MaxConcurrentConnects {
		b.probeAt = now.Add(p.cfg.BreakFor)
		return p.cfg.BreakFor, true, opened
	}
	b.probing = true
	p.reserveDialLocked()
	p.background.Add(1) // under mu, so never after Close began to wait
	go p.probe()
	return 0, false, opened
}

// probe is the half-open circuit's one dial. Its success has closed the
// circuit (dialedLocked) and its connection goes to a waiter or the idle
// stack; on failure the circuit stays open for another BreakFor.
func (p *Pool[T]) probe() {
	defer p.background.Done()
	c, err := p.create(p.ctx)
	p.mu.Lock()
	p.breaker.probing = false
	if p.breaker.open && !p.closed {
		p.breaker.probeAt = clock.Now().Add(p.cfg.BreakFor)
		p.signalCircuit()
	}
	p.mu.Unlock()
	if err == nil {
		p.logger().Info("sqlpool: circuit breaker closed: a probe dial succeeded")
		p.put(c)
	}
}
