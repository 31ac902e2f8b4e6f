package pool

import (
	"fmt"
	"time"
)

// This file holds predictive warm-up (Config.PredictiveWarmup): the pool's
// usage by hour of day, and the minimum it derives from it.

// DefaultWarmupLead is Config.WarmupLead's default.
const DefaultWarmupLead = 10 * time.Minute

// warmup is the state of predictive warm-up, guarded by Pool.mu.
//
// Borrowers are counted as Pool.inUse less held: connections in use that
// no borrower holds (those maintenance checks, those its fills dial), so
// that the pool's own work, warm-up's dials and keepalive pings of the
// connections it opened among them, never counts as demand (which would
// make warm-up feed itself). held is subtracted only once the pool's work
// is done, so borrowers are at worst undercounted meanwhile.
//
// The acquisition path only raises peak. Each maintenance pass credits
// peak to the hour of day it runs in (so the attribution may be late by a
// MaintenanceInterval) and starts it again from the borrowers of the
// moment. When the hour changes, the hour ended goes into profile: its
// peak, or half its previous value if that is more.
type warmup struct {
	held     int     // connections in use that no borrower holds
	peak     int     // the most borrowers at once since the last maintenance pass
	seen     bool    // hour is set: a pass has run
	hour     int     // the hour of day of the last pass
	hourPeak int     // the most borrowers at once in hour so far
	profile  [24]int // by hour of day: the most borrowers at once, decayed
	target   int     // the minimum in force; 0 when off
}

// normalizeWarmup validates the fields of predictive warm-up and applies
// their defaults.
func (c *Config) normalizeWarmup() error {
	switch {
	case c.WarmupLead < 0:
		return fmt.Errorf("WarmupLead is %v, must not be negative: it is how long before a busy hour PredictiveWarmup opens connections", c.WarmupLead)
	case c.WarmupLead >= 24*time.Hour:
		return fmt.Errorf("WarmupLead is %v, must be less than 24h: it is how long before a busy hour of day PredictiveWarmup opens connections", c.WarmupLead)
	case c.WarmupLead == 0:
		c.WarmupLead = DefaultWarmupLead
	}
	if c.WarmupLocation == nil {
		c.WarmupLocation = time.Local
	}
	return nil
}

// noteBorrowersLocked raises the peak of borrowers to the current count,
// after Pool.inUse grew. It is on the acquisition path: a subtraction and
// a comparison.
func (p *Pool[T]) noteBorrowersLocked() {
	if n := p.inUse - p.warm.held; n > p.warm.peak {
		p.warm.peak = n
	}
}

// floorLocked returns the number of connections maintenance keeps open:
// MinSize, or the warm-up target if more.
func (p *Pool[T]) floorLocked() int { return max(p.cfg.MinSize, p.warm.target) }

// warmupLocked runs at the start of each maintenance pass, at now: it
// credits the borrowers' peak to the hour and sets the warm-up target.
func (p *Pool[T]) warmupLocked(now time.Time) {
	if !p.cfg.PredictiveWarmup {
		return
	}
	w := &p.warm
	loc := p.cfg.WarmupLocation
	local := now.In(loc)
	h := local.Hour()
	switch {
	case !w.seen:
		w.seen, w.hour, w.hourPeak = true, h, w.peak
	case h != w.hour:
		w.profile[w.hour] = max(w.hourPeak, w.profile[w.hour]/2)
		w.hour, w.hourPeak = h, w.peak
	default:
		w.hourPeak = max(w.hourPeak, w.peak)
	}
	w.peak = max(p.inUse-w.held, 0)

	// The current hour, as last seen, and every hour that starts within
	// the lead (WarmupLead < 24h: at most 24 of them).
	t := w.profile[h]
	end := now.Add(p.cfg.WarmupLead)
	start := time.Date(local.Year(), local.Month(), local.Day(), h, 0, 0, 0, loc)
	for s := start.Add(time.Hour); !s.After(end); s = s.Add(time.Hour) {
		t = max(t, w.profile[s.In(loc).Hour()])
	}
	w.target = min(max(t, p.cfg.MinSize), p.cfg.MaxSize)
}

// Profile returns, for each hour of day in Config.WarmupLocation, the most
// connections the pool's borrowers held at once in its last occurrence, or
// half the value before it if that is more (see Config.PredictiveWarmup).
// The current hour's value is the one from its last occurrence, not
// today's. All zero when PredictiveWarmup is off.
func (p *Pool[T]) Profile() [24]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.warm.profile
}
