package pool

import (
	"context"
	"log/slog"
	"time"
)

// Maintainer is an optional interface of a Factory, for periodic work of
// its own. The pool calls Maintain at the end of every maintenance pass, on
// the maintenance goroutine, with the pool's context, which Close cancels
// before it waits for that goroutine. Maintenance waits for Maintain, so
// Maintain must not wait: not for I/O, and above all not for an Acquire of
// this pool, which may need the pass it holds up. Start a goroutine for
// such work, ended by ctx.
type Maintainer interface {
	Maintain(ctx context.Context)
}

// maintain is the pool's one background goroutine: it dials InitialSize
// connections, then on every MaintenanceInterval tick (or trigger) closes
// expired idle connections, checks suspect ones, pings those due a
// keepalive, checks borrowings held too long (checkBorrowed), gives soft
// warnings, refills to MinSize (or PredictiveWarmup's target: warmup.go)
// and calls the Factory's Maintain. With LeakThreshold set, it also checks
// borrowings every LeakThreshold/4, and with DeadlockThreshold set, it
// checks for stalls every DeadlockThreshold/4.
func (p *Pool[T]) maintain() {
	defer p.background.Done()
	ctx := p.ctx
	p.fill(ctx, p.cfg.InitialSize)
	t := time.NewTicker(p.cfg.MaintenanceInterval)
	defer t.Stop()
	probe := time.NewTimer(time.Hour) // the circuit breaker's probe (circuitTick)
	probe.Stop()
	defer probe.Stop()
	var detect, leaks <-chan time.Time // nil: never
	if p.cfg.DeadlockThreshold > 0 {
		dt := time.NewTicker(max(p.cfg.DeadlockThreshold/4, time.Millisecond))
		defer dt.Stop()
		detect = dt.C
	}
	if d := leakCheckInterval(p.cfg.LeakThreshold); p.cfg.LeakThreshold > 0 && d < p.cfg.MaintenanceInterval {
		lt := time.NewTicker(d)
		defer lt.Stop()
		leaks = lt.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-detect:
			p.checkDeadlock()
			continue
		case now := <-leaks:
			p.checkBorrowed(now)
			continue
		case <-p.circuitC:
			p.armProbe(probe)
			continue
		case <-probe.C:
			p.armProbe(probe)
			continue
		case <-t.C:
		case <-p.trigger:
		}
		p.runMaintenance(ctx)
	}
}

// armProbe starts the circuit breaker's probe if it is due, or sets the
// probe timer for when it is (see circuitTick), and logs the circuit's
// opening.
func (p *Pool[T]) armProbe(probe *time.Timer) {
	d, arm, opened := p.circuitTick()
	if opened != nil {
		p.logger().Warn("sqlpool: circuit breaker open: acquisitions that need a new connection fail at once with ErrCircuitOpen until a probe dial succeeds",
			slog.Int("failures", opened.Failures), slog.Any("last_error", opened.LastErr), slog.Duration("probe_every", opened.BreakFor))
	}
	if arm {
		probe.Reset(d)
	}
}

// runMaintenance does one maintenance pass.
func (p *Pool[T]) runMaintenance(ctx context.Context) {
	now := time.Now()
	if p.cfg.MaxBorrowTime > 0 || p.cfg.LeakThreshold > 0 {
		p.checkBorrowed(now)
	}
	var closing []*Conn[T]
	var reasons []CloseReason
	var suspect, ping []*Conn[T]
	var warnings []Warning
	var warned []*Conn[T]
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	// Parked connections come back first, so that idle timeouts and
	// keepalives apply to them; their borrowers park them again.
	p.unstealLocked(p.unparkAllLocked())
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.warmupLocked(now)
	floor := p.floorLocked() // MinSize, or the warm-up target
	// The bottom of the stack holds the least recently used connections.
	keep := p.idle[:0]
	for _, c := range p.idle {
		switch {
		case p.expired(c, now):
			p.dropIdleLocked(c, CloseLifetime, now)
			closing, reasons = append(closing, c), append(reasons, CloseLifetime)
		case p.cfg.IdleTimeout > 0 && now.Sub(c.lastUsed) >= p.cfg.IdleTimeout &&
			p.total > floor:
			p.dropIdleLocked(c, CloseIdle, now)
			closing, reasons = append(closing, c), append(reasons, CloseIdle)
		case p.suspectLocked(c):
			p.warm.held++  // not a borrower's
			p.lendLocked() // checked like a borrowed connection
			suspect = append(suspect, c)
		case p.cfg.KeepaliveInterval > 0 && now.Sub(c.checked()) >= p.cfg.KeepaliveInterval:
			p.stats.keepalives++
			p.warm.held++  // not a borrower's
			p.lendLocked() // checked like a borrowed connection
			ping = append(ping, c)
		default:
			if p.cfg.WarnFraction > 0 {
				if w, ok := p.softWarning(c, now); ok {
					warnings, warned = append(warnings, w), append(warned, c)
				}
			}
			keep = append(keep, c)
		}
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	p.wakeLocked()
	if p.cfg.OnQueuePosition != nil {
		p.repositionLocked(now) // boosts move waiters with time
	}
	p.mu.Unlock()

	for i, c := range closing {
		p.f.Close(c.value, reasons[i])
	}
	for i, w := range warnings {
		p.warn(warned[i].value, w)
	}
	p.keepalive(ctx, ping)
	for _, c := range suspect {
		abandoned, _, err := p.check(ctx, c, keepNone, noOutcome)
		switch {
		case abandoned: // counted closed; closed when Validate returns
			continue
		case err == errClosing:
			p.put(c) // closes it
			continue
		case err != nil:
			p.destroy(c, CloseValidation)
			continue
		}
		c.lastUsed = time.Now()
		p.put(c)
	}
	if n := len(suspect) + len(ping); n > 0 {
		p.mu.Lock()
		p.warm.held -= n // every one is back, or closed
		p.mu.Unlock()
	}
	p.fill(ctx, floor)
	if m, ok := p.f.(Maintainer); ok && ctx.Err() == nil {
		m.Maintain(ctx)
	}
}

// fill dials until the pool holds target connections, stopping at the first
// failure (it is recorded; the next pass tries again).
func (p *Pool[T]) fill(ctx context.Context, target int) {
	for {
		p.mu.Lock()
		if p.closed || p.total >= target || !p.canDialLocked() {
			p.mu.Unlock()
			return
		}
		p.reserveDialLocked()
		p.warm.held++ // not a borrower's
		p.mu.Unlock()
		c, err := p.create(ctx)
		if err == nil {
			p.put(c)
		}
		p.mu.Lock()
		p.warm.held--
		p.mu.Unlock()
		p.noteFill(err)
		if err != nil {
			return
		}
	}
}

// noteFill logs the first of a run of failed background dials, and the
// first success after them. Run by the maintenance goroutine only.
func (p *Pool[T]) noteFill(err error) {
	switch {
	case err != nil && !p.fillFailing:
		p.logger().Warn("sqlpool: background dial failed; retrying every maintenance interval",
			slog.Any("error", err), slog.Int("min_size", p.cfg.MinSize))
	case err == nil && p.fillFailing:
		p.logger().Info("sqlpool: background dials succeed again")
	}
	p.fillFailing = err != nil
}
