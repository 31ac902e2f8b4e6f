package pool

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/bits"
	"slices"
	"sort"
	"time"
)

// This file holds the connection lifecycle: jittered and adaptive
// lifetimes, the reuse limit, soft warnings, the one check of borrowings
// held too long (the leak threshold, the borrowed-time limit with reclaim),
// keepalive pings of idle connections and Replace.

// Limit names a connection limit, in a Warning.
type Limit uint8

// Limits.
const (
	LimitLifetime   Limit = iota // MaxLifetime, jittered and maybe shortened by adaptive aging
	LimitUses                    // MaxUses
	LimitBorrowTime              // MaxBorrowTime
)

// String returns the limit's name as used in logs: lifetime, uses,
// borrow_time.
func (l Limit) String() string {
	switch l {
	case LimitLifetime:
		return "lifetime"
	case LimitUses:
		return "uses"
	case LimitBorrowTime:
		return "borrow_time"
	}
	return fmt.Sprintf("Limit(%d)", uint8(l))
}

// Warning describes a connection that reached Config.WarnFraction of one of
// its limits, or passed Config.MaxBorrowTime.
type Warning struct {
	Limit Limit
	// Exceeded says the limit itself was passed, which only MaxBorrowTime
	// reports (the other limits close the connection). False: the
	// connection reached WarnFraction of the limit.
	Exceeded bool
	// Reclaimed says the connection was taken back from its borrower and
	// closed (Config.ReclaimBorrowed).
	Reclaimed bool

	Age      time.Duration // since the connection was created
	Lifetime time.Duration // its lifetime (jittered; shortened by adaptive aging if so); 0: none
	Uses     int64         // acquisitions so far, the current one included
	MaxUses  int64         // Config.MaxUses; 0: no limit
	// Held is the time since the current borrowing began (LimitBorrowTime
	// only), and MaxBorrowTime the limit.
	Held, MaxBorrowTime time.Duration
}

// Warner is an optional interface of a Factory. The pool calls Warn for
// each Warning, outside its lock, on the goroutine that noticed it: the
// acquiring one (lifetime and uses, on acquisition) or the maintenance
// goroutine (lifetime of idle connections, borrow time). The connection may
// be in use by its borrower meanwhile: Warn must not use it. Without a
// Warner, the pool logs warnings to Config.Logger.
type Warner[T any] interface {
	Warn(c T, w Warning)
}

// goldenStep is the golden ratio's fractional part: stepping through [0,1)
// by it spreads any n consecutive points at least 1/(√5·n) apart (the
// three-gap theorem; the worst case approaches that bound from above).
const goldenStep = 0.6180339887498949

// drawLifetimeLocked returns the lifetime of a connection being created,
// drawn once (see Config.LifetimeJitter); 0 means none.
func (p *Pool[T]) drawLifetimeLocked() time.Duration {
	l := p.cfg.MaxLifetime
	if l <= 0 {
		return 0
	}
	if j := p.cfg.LifetimeJitter; j > 0 {
		p.jitter = math.Mod(p.jitter+goldenStep, 1)
		l = time.Duration(float64(l) * (1 + j*(2*p.jitter-1)))
	}
	return l
}

// outcomes is a window of recent borrowings' outcomes, newest in bit 0, a
// set bit for a failure.
type outcomes struct {
	bits uint64
	n    uint8 // borrowings recorded, up to the window
}

func (o *outcomes) push(failed bool, window int) {
	o.bits <<= 1
	if failed {
		o.bits |= 1
	}
	if int(o.n) < window {
		o.n++
	}
}

// rate returns the failed share of the window, or -1 with fewer than min
// borrowings recorded.
func (o *outcomes) rate(min int) float64 {
	if int(o.n) < min || o.n == 0 {
		return -1
	}
	mask := uint64(1)<<o.n - 1
	if o.n == 64 {
		mask = ^uint64(0)
	}
	return float64(bits.OnesCount64(o.bits&mask)) / float64(o.n)
}

// scale maps an error rate to the share of the lifetime span (between
// MinLifetime and the connection's lifetime) kept: 1 at or below
// ErrorThreshold, falling linearly to 0 when every borrowing failed.
func (p *Pool[T]) scale(rate float64) float64 {
	t := p.cfg.ErrorThreshold
	if rate <= t {
		return 1
	}
	return (1 - rate) / (1 - t)
}

// outcome is what a borrower reported of a borrowing, for adaptive aging.
type outcome uint8

const (
	noOutcome outcome = iota // not a borrowing, or adaptive aging off
	succeeded
	failed
)

// settle ends c's borrowing for adaptive aging: it records its outcome in
// c's window and returns it for the pool's. Only c's borrower calls it.
func (p *Pool[T]) settle(c *Conn[T], failure bool) outcome {
	failure = failure || c.failed
	c.failed = false
	if p.cfg.ErrorThreshold <= 0 {
		return noOutcome
	}
	c.window.push(failure, p.cfg.ErrorWindow)
	if failure {
		return failed
	}
	return succeeded
}

// recordLocked adds a borrowing's outcome to the pool's window, and updates
// the pool's lifetime scale.
func (p *Pool[T]) recordLocked(o outcome) {
	if o == noOutcome {
		return
	}
	p.window.push(o == failed, p.cfg.ErrorWindow)
	s := 1.0
	if r := p.window.rate(p.cfg.ErrorWindow); r >= 0 {
		s = p.scale(r)
	}
	p.poolScale.Store(math.Float64bits(s))
}

// lifetimeOf returns c's lifetime now: drawn at creation, shortened by
// adaptive aging when c's or the pool's recent borrowings failed too often.
// 0 means none. The caller owns c (its borrower, or maintenance under mu
// while it is idle).
func (p *Pool[T]) lifetimeOf(c *Conn[T]) time.Duration {
	if c.lifetime <= 0 || p.cfg.ErrorThreshold <= 0 {
		return c.lifetime // inlined: the hot path's case
	}
	return p.adaptedLifetime(c)
}

// adaptedLifetime is lifetimeOf with adaptive aging on.
func (p *Pool[T]) adaptedLifetime(c *Conn[T]) time.Duration {
	l := c.lifetime
	s := math.Float64frombits(p.poolScale.Load())
	if r := c.window.rate(max(p.cfg.ErrorWindow/4, 1)); r >= 0 {
		s = min(s, p.scale(r))
	}
	if s >= 1 {
		return l
	}
	floor := min(p.cfg.MinLifetime, l)
	return floor + time.Duration(float64(l-floor)*s)
}

// expired reports whether c has outlived its lifetime. The caller owns c.
func (p *Pool[T]) expired(c *Conn[T], now time.Time) bool {
	l := p.lifetimeOf(c)
	return l > 0 && now.Sub(c.created) >= l
}

// ReportError records that the current borrowing failed: the connection or
// the server returned an error that was not caused by the borrower (a
// canceled context is the borrower's doing, and should not be reported).
// Release, Destroy or Replace then counts the borrowing as failed for
// adaptive aging (Config.ErrorThreshold); Destroy(CloseErrors) counts it
// failed anyway. Only the borrower may call it.
func (c *Conn[T]) ReportError() { c.failed = true }

// Reclaimed reports whether the pool took the connection back from its
// borrower (Config.ReclaimBorrowed, or Close after Config.CloseTimeout): it is closed, or being closed, and
// Release, Destroy and Replace do nothing. It is safe to call from any
// goroutine.
func (c *Conn[T]) Reclaimed() bool { return c.reclaimed.Load() }

// Replace closes the connection instead of returning it, like Destroy, and
// dials a replacement in the background, which goes to the next waiter or
// the idle stack, so that the next borrower does not wait for the dial.
// Without room for the dial (the pool closed or above MaxSize,
// MaxConcurrentConnects dials in progress) it is Destroy. Like Release, it
// reports whether the pool took the connection: false when it had been
// reclaimed.
func (c *Conn[T]) Replace(reason CloseReason) bool {
	p := c.p
	if c.reclaimed.Load() {
		return false
	}
	closed, dial := p.closeConn(c, reason, keepBackground, p.settle(c, reason == CloseErrors))
	if dial {
		go func() {
			defer p.background.Done()
			if nc, err := p.create(p.ctx); err == nil {
				p.put(nc)
			}
		}()
	}
	return closed
}

// ReleaseUnused is Release for an acquisition that made no use of the
// connection (a probe): it does not count towards MaxUses.
func (c *Conn[T]) ReleaseUnused() bool {
	c.p.mu.Lock() // the maintenance walk reads uses of a listed borrowing under mu
	c.uses--
	c.p.mu.Unlock()
	return c.Release()
}

// Lifetime returns the connection's lifetime now: drawn at its creation
// (Config.LifetimeJitter), shortened by adaptive aging; 0 means none. Only
// its borrower may call it.
func (c *Conn[T]) Lifetime() time.Duration { return c.p.lifetimeOf(c) }

// lent does the bookkeeping of a connection handed to a borrower by an
// acquisition: counted an acquisition, and used (use).
func (p *Pool[T]) lent(c *Conn[T], now time.Time) {
	p.acquires.Add(1)
	p.use(c, now)
}

// use counts the use of c by a new borrowing, begun at now, and gives the
// soft warnings due. The caller owns c.
func (p *Pool[T]) use(c *Conn[T], now time.Time) {
	c.uses++
	c.lastUsed = now
	c.failed = false
	if p.cfg.WarnFraction > 0 {
		if w, ok := p.softWarning(c, now); ok {
			p.warn(c.value, w)
		}
	}
}

// Bits of Conn.warned: the soft warnings already given.
const (
	warnedLifetime uint8 = 1 << iota
	warnedUses
)

// softWarning returns the lifetime or use warning due for c, if any, and
// marks it given. The caller owns c.
func (p *Pool[T]) softWarning(c *Conn[T], now time.Time) (Warning, bool) {
	f := p.cfg.WarnFraction
	if c.warned&warnedUses == 0 && p.cfg.MaxUses > 0 && float64(c.uses) >= f*float64(p.cfg.MaxUses) {
		c.warned |= warnedUses
		return Warning{Limit: LimitUses, Age: now.Sub(c.created), Lifetime: p.lifetimeOf(c), Uses: c.uses, MaxUses: p.cfg.MaxUses}, true
	}
	if c.warned&warnedLifetime == 0 && c.lifetime > 0 {
		if l, age := p.lifetimeOf(c), now.Sub(c.created); float64(age) >= f*float64(l) {
			c.warned |= warnedLifetime
			return Warning{Limit: LimitLifetime, Age: age, Lifetime: l, Uses: c.uses, MaxUses: p.cfg.MaxUses}, true
		}
	}
	return Warning{}, false
}

// warn delivers a warning to the Factory's Warn, or else to the logger.
func (p *Pool[T]) warn(v T, w Warning) {
	p.warnings.Add(1)
	if p.warner != nil {
		p.warner.Warn(v, w)
		return
	}
	LogWarning(p.logger(), w)
}

// LogWarning writes w to l: at Warn level for the borrowed-time limit, at
// Debug for the others (every connection nears its lifetime: it is its
// normal life, not news), with attrs first.
func LogWarning(l *slog.Logger, w Warning, attrs ...slog.Attr) {
	level, msg := slog.LevelDebug, "sqlpool: connection near its "+w.Limit.String()+" limit"
	if w.Limit == LimitBorrowTime {
		level = slog.LevelWarn
	}
	switch {
	case w.Reclaimed:
		msg = "sqlpool: connection borrowed past MaxBorrowTime reclaimed"
	case w.Exceeded:
		msg = "sqlpool: connection borrowed past MaxBorrowTime"
	}
	attrs = append(attrs, slog.String("limit", w.Limit.String()), slog.Duration("age", w.Age), slog.Int64("uses", w.Uses))
	switch w.Limit {
	case LimitLifetime:
		attrs = append(attrs, slog.Duration("lifetime", w.Lifetime))
	case LimitUses:
		attrs = append(attrs, slog.Int64("max_uses", w.MaxUses))
	case LimitBorrowTime:
		attrs = append(attrs, slog.Duration("held", w.Held), slog.Duration("max_borrow_time", w.MaxBorrowTime))
	}
	l.LogAttrs(context.Background(), level, msg, attrs...)
}

func (p *Pool[T]) logger() *slog.Logger { return orDiscard(p.cfg.Logger) }

// orDiscard returns l, or a logger that discards everything when l is nil:
// a library is silent unless asked.
func orDiscard(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return discard
}

var discard = slog.New(slog.DiscardHandler)

// tracking reports whether borrowed connections are listed: for the
// deadlock detector, the borrowed-time limit, the leak threshold or
// CloseTimeout.
func (p *Pool[T]) tracking() bool {
	return p.cfg.DeadlockThreshold > 0 || p.cfg.MaxBorrowTime > 0 || p.cfg.LeakThreshold > 0 || p.cfg.CloseTimeout > 0
}

// Leaker is an optional interface of a Factory. With Config.LeakThreshold,
// the pool calls Leak once per borrowing held past it, with how long it has
// been held, outside its lock, on the maintenance goroutine. The
// connection is in use by its borrower meanwhile, and may even have been
// released and lent again since the check: Leak must not use it, only read
// what the borrower keeps of the borrowing, safely. Leak returns whether
// it reported the borrowing; false (the Factory knows of no borrower yet,
// or the borrowing is its own) makes the pool ask again at the next
// check. Without a Leaker, the pool logs leaks to Config.Logger.
type Leaker[T any] interface {
	Leak(c T, held time.Duration) bool
}

// leakCheckInterval is how often maintenance checks borrowings for leaks:
// a quarter of the threshold, so a leak is reported at most 25% late, but
// no more often than every 10ms.
func leakCheckInterval(threshold time.Duration) time.Duration {
	return max(threshold/4, 10*time.Millisecond)
}

// Borrowing is a borrowed connection and how long it has been held.
type Borrowing[T any] struct {
	Value T
	Held  time.Duration
}

// Borrowings returns the connections borrowed for at least minHeld at now,
// longest held first, while the pool lists borrowed connections (any of
// Config.LeakThreshold, MaxBorrowTime, DeadlockThreshold or CloseTimeout
// set); nil otherwise. As with Leaker, the values are in use by their
// borrowers.
func (p *Pool[T]) Borrowings(now time.Time, minHeld time.Duration) []Borrowing[T] {
	var bs []Borrowing[T]
	p.mu.Lock()
	for c := p.borrowed; c != nil; c = c.bnext {
		if held := now.Sub(c.borrowedAt); held >= minHeld {
			bs = append(bs, Borrowing[T]{c.value, held})
		}
	}
	p.mu.Unlock()
	slices.SortStableFunc(bs, func(a, b Borrowing[T]) int { return cmp.Compare(b.Held, a.Held) })
	return bs
}

// checkBorrowed is the one check of borrowings held too long, on the
// maintenance goroutine: it reports those past LeakThreshold, reports (and
// with ReclaimBorrowed, reclaims) those past MaxBorrowTime, and gives the
// soft warnings of those past WarnFraction of it.
func (p *Pool[T]) checkBorrowed(now time.Time) {
	type notice struct {
		c *Conn[T]
		w Warning
	}
	var notices []notice
	var reclaimed []*Conn[T]
	var leaks []Borrowing[*Conn[T]]
	limit, f, leakAfter := p.cfg.MaxBorrowTime, p.cfg.WarnFraction, p.cfg.LeakThreshold
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	for c, next := p.borrowed, (*Conn[T])(nil); c != nil; c = next {
		next = c.bnext
		held := now.Sub(c.borrowedAt)
		if leakAfter > 0 && held >= leakAfter && !c.leaked {
			c.leaked = true // only this goroutine sets it: see reportLeaks
			leaks = append(leaks, Borrowing[*Conn[T]]{c, held})
		}
		if limit <= 0 {
			continue
		}
		// c.window may be written by the borrower now: Lifetime is the
		// drawn one.
		w := Warning{Limit: LimitBorrowTime, Age: now.Sub(c.created), Lifetime: c.lifetime,
			Uses: c.uses, MaxUses: p.cfg.MaxUses, Held: held, MaxBorrowTime: limit}
		switch {
		case held >= limit && !c.overdue:
			c.overdue = true
			p.stats.overdue++
			w.Exceeded = true
			if p.cfg.ReclaimBorrowed {
				w.Reclaimed = true
				c.reclaimed.Store(true)
				p.returnedLocked(c, now)
				p.dropLocked(c, CloseReclaimed, now)
				reclaimed = append(reclaimed, c)
			}
			notices = append(notices, notice{c, w})
		case f > 0 && !c.borrowWarned && float64(held) >= f*float64(limit):
			c.borrowWarned = true
			notices = append(notices, notice{c, w})
		}
	}
	if len(reclaimed) > 0 {
		p.wakeLocked()
	}
	p.mu.Unlock()
	p.reportLeaks(leaks) // before the reclaim closes any of them
	for _, c := range reclaimed {
		p.f.Close(c.value, CloseReclaimed)
	}
	for _, n := range notices {
		p.warn(n.c.value, n.w)
	}
}

// reportLeaks tells the Factory's Leak (or the logger) of the borrowings
// checkBorrowed marked leaked. One that Leak declines is unmarked, to be
// asked again. That is safe without knowing whether the borrowing is still
// the same: only the maintenance goroutine marks, and a new borrowing
// starts unmarked (list) anyway.
func (p *Pool[T]) reportLeaks(leaks []Borrowing[*Conn[T]]) {
	if len(leaks) == 0 {
		return
	}
	l, ok := p.f.(Leaker[T])
	for _, b := range leaks {
		if !ok {
			p.logger().Warn("sqlpool: connection held past LeakThreshold",
				slog.Duration("held", b.Held), slog.Duration("leak_threshold", p.cfg.LeakThreshold))
			continue
		}
		if !l.Leak(b.Value.value, b.Held) {
			p.mu.Lock()
			b.Value.leaked = false
			p.mu.Unlock()
		}
	}
}

// keepalive pings idle connections taken off the idle stack by
// maintenance (counted in use). One that fails is closed and replaced by a
// new dial; one that answers goes back where it was in the stack, its
// last use unchanged.
func (p *Pool[T]) keepalive(ctx context.Context, conns []*Conn[T]) {
	for _, c := range conns {
		abandoned, dial, err := p.check(ctx, c, keepSlot, noOutcome)
		if abandoned { // counted closed; closed when Validate returns
			if dial {
				if nc, err := p.create(ctx); err == nil {
					p.put(nc)
				}
			}
			continue
		}
		if err != nil && (err == errClosing || ctx.Err() != nil) { // the pool is closing, not the connection
			p.put(c)
			continue
		}
		if err != nil {
			if _, dial := p.closeConn(c, CloseValidation, keepSlot, noOutcome); dial {
				if nc, err := p.create(ctx); err == nil {
					p.put(nc)
				}
			}
			continue
		}
		c.pinged = time.Now()
		p.putBack(c, c.pinged, noOutcome, true)
	}
}

// insertIdleLocked puts c on the idle stack in the order of last use (the
// stack is in that order, the most recent on top), above those used at the
// same time, as if it had not left it: connections taken off together and
// put back bottom first keep their order.
func (p *Pool[T]) insertIdleLocked(c *Conn[T]) {
	i := sort.Search(len(p.idle), func(i int) bool { return p.idle[i].lastUsed.After(c.lastUsed) })
	p.idle = slices.Insert(p.idle, i, c)
}

// checked returns when c was last known to work: used or pinged.
func (c *Conn[T]) checked() time.Time {
	if c.pinged.After(c.lastUsed) {
		return c.pinged
	}
	return c.lastUsed
}
