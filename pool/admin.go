package pool

import (
	"fmt"

	"github.com/sqlpool/sqlpool/internal/clock"
)

// Resize sets MaxSize at run time. Shrinking closes idle connections above
// the new size at once, least recently used first; the pool then dials no
// more until borrowed ones have brought it below the new size. Growing
// serves waiters at once.
func (p *Pool[T]) Resize(maxSize int) error {
	p.mu.Lock()
	switch {
	case maxSize < 1:
		p.mu.Unlock()
		return fmt.Errorf("MaxSize %d: must be at least 1", maxSize)
	case maxSize < p.cfg.MinSize:
		p.mu.Unlock()
		return fmt.Errorf("MaxSize %d: less than MinSize (%d)", maxSize, p.cfg.MinSize)
	case maxSize <= p.cfg.CriticalReserve:
		p.mu.Unlock()
		return fmt.Errorf("MaxSize %d: not above CriticalReserve (%d)", maxSize, p.cfg.CriticalReserve)
	}
	p.cfg.MaxSize = maxSize
	p.unstealLocked(p.unparkAllLocked()) // parked connections are idle: the surplus may be among them
	var surplus []*Conn[T]
	now := clock.Now()
	for p.total > maxSize && len(p.idle) > 0 {
		c := p.idle[0]
		p.idle = p.idle[1:]
		p.dropIdleLocked(c, CloseEvicted, now)
		surplus = append(surplus, c)
	}
	p.wakeLocked()
	p.mu.Unlock()
	for _, c := range surplus {
		p.f.Close(c.value, CloseEvicted)
	}
	return nil
}

// EvictIdle closes the idle connections for which match reports true (every
// idle connection when match is nil) and returns how many it closed.
// Maintenance then refills to MinSize.
func (p *Pool[T]) EvictIdle(match func(T) bool) int {
	p.mu.Lock()
	p.unstealLocked(p.stealLocked(-1)) // parked connections are idle too
	var evicted []*Conn[T]
	keep := p.idle[:0]
	for _, c := range p.idle {
		if match == nil || match(c.value) {
			evicted = append(evicted, c)
		} else {
			keep = append(keep, c)
		}
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	now := clock.Now()
	for _, c := range evicted {
		p.dropIdleLocked(c, CloseEvicted, now)
	}
	p.wakeLocked()
	p.mu.Unlock()
	for _, c := range evicted {
		p.f.Close(c.value, CloseEvicted)
	}
	if len(evicted) > 0 {
		select {
		case p.trigger <- struct{}{}:
		default:
		}
	}
	return len(evicted)
}

// Suspend stops the pool lending connections: acquisitions wait (within
// their timeouts) and released connections stay idle, until Resume.
// Borrowed connections are not disturbed.
func (p *Pool[T]) Suspend() {
	p.mu.Lock()
	p.suspended = true
	stolen := p.unparkAllLocked()
	p.mu.Unlock()
	p.unsteal(stolen) // they stay idle
}

// Resume lends connections again, serving the waiters at once.
func (p *Pool[T]) Resume() {
	p.mu.Lock()
	p.suspended = false
	stolen := p.unparkAllLocked()
	p.wakeLocked()
	p.mu.Unlock()
	p.unsteal(stolen)
}
