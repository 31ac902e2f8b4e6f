package pool

import (
	"context"
	"math"
	"time"
)

// minServeSamples is the number of serves of one backlog that FailFastBelow
// needs before it trusts its estimate.
const minServeSamples = 16

// serveRate estimates the interval between serves of waiters while the pool
// is backlogged (the queue has not emptied since the backlog began; waiters
// held back by their Group's cap do not count, as they do not wait for the
// pool). It is guarded by Pool.mu.
//
// Each serve of a waiter (a hand-off, an idle connection or a dial slot)
// records the time since the previous serve, or since the backlog began for
// the first one (a partial interval, so the estimate errs short, towards
// admitting callers). The queue emptying ends the backlog and discards the
// estimate: a new backlog starts from nothing, so a burst is never judged by
// the rate of an earlier one.
type serveRate struct {
	mark     time.Time // the last serve, or when the backlog began
	interval float64   // exponentially weighted mean interval (weight 1/8), in ns
	n        int       // serves recorded in this backlog
}

// begin starts a backlog: a waiter joins an empty queue.
func (r *serveRate) begin(now time.Time) { *r = serveRate{mark: now} }

// served records a serve.
func (r *serveRate) served(now time.Time) {
	if r.mark.IsZero() {
		return
	}
	d := float64(now.Sub(r.mark))
	if r.n == 0 {
		r.interval = d
	} else {
		r.interval += (d - r.interval) / 8
	}
	r.n++
	r.mark = now
}

// end ends the backlog: the queue is empty.
func (r *serveRate) end() { *r = serveRate{} }

// predictLocked returns an ErrWouldTimeout error when an acquisition at
// queue index prio, about to wait, has less than Config.FailFastBelow chance
// of being served before its deadline, or nil.
//
// The model: the waiters of priority prio or higher (k-1 of them) are sure
// to be served first, so the caller needs k serves. Serves are taken to
// arrive as a Poisson process at the rate measured by serveRate, and the
// chance of k of them before the deadline is P(N >= k) for N Poisson with
// mean (time left)/(mean interval). Releases from a few connections held for
// similar times are more regular than Poisson, which makes the estimate err
// towards admitting; higher-priority arrivals and boosted waiters that will
// overtake the caller are left out, which does too. Very bursty holders
// (most connections released together, then none for long) break the model
// and may be refused while they could have been served.
func (p *Pool[T]) predictLocked(ctx context.Context, prio int, deadline, now time.Time) error {
	if p.cfg.FailFastBelow <= 0 || p.serves.n < minServeSamples || p.serves.interval <= 0 {
		return nil
	}
	end, caller := deadline, false
	if d, ok := ctx.Deadline(); ok && (end.IsZero() || d.Before(end)) {
		end, caller = d, true
	}
	if end.IsZero() {
		return nil
	}
	left := end.Sub(now)
	// Waiters held back by their group's cap are not ahead: hand-offs pass
	// them over (taking them all off errs towards admitting).
	ahead := max(p.queue.atOrAbove(prio)-p.queue.blocked, 0)
	if poissonAtLeast(float64(left)/p.serves.interval, ahead+1) >= p.cfg.FailFastBelow {
		return nil
	}
	p.stats.wouldTimeout++
	e := p.timeoutErrorLocked()
	e.Ahead = ahead
	e.Expected = time.Duration(float64(ahead+1) * p.serves.interval)
	e.Left = left
	e.deadline, e.predicted = caller, true
	return e
}

// poissonAtLeast returns P(N >= k) for N Poisson-distributed with mean mu,
// or 1 when mu >= k (the probability is then over about one half: never a
// reason to refuse, and the sum below would start from an underflow).
func poissonAtLeast(mu float64, k int) float64 {
	switch {
	case k <= 0 || mu >= float64(k):
		return 1
	case mu <= 0:
		return 0
	}
	// The terms of the tail, from k on, decrease (mu < k): sum them until
	// they no longer count.
	lg, _ := math.Lgamma(float64(k + 1))
	term := math.Exp(-mu + float64(k)*math.Log(mu) - lg)
	sum := 0.0
	for i := k; term > 0 && term > sum*1e-12; i++ {
		sum += term
		term *= mu / float64(i+1)
	}
	return sum
}
