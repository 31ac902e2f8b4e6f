package sqlpool

import (
	"runtime"
	"sync/atomic"
	"time"
)

// borrowInfo is what the leak detector reads about a physical connection's
// current borrowing. The borrower writes it, the detector reads it: atomics.
type borrowInfo struct {
	since     atomic.Int64           // UnixNano of the bind; 0 while idle
	partition atomic.Pointer[string] // the borrowing's partition name
	lastQuery atomic.Bool            // the last operation was a query
	inTx      atomic.Bool
	stack     atomic.Pointer[string] // where it was bound, with Config.LeakStacks
	reported  atomic.Bool            // OnLeak has been called for this borrowing
}

// trackBorrow records the start of a borrowing for the leak detector.
func (c *Connector) trackBorrow(pc *physConn, partition *string) {
	b := &pc.borrow
	b.partition.Store(partition)
	b.lastQuery.Store(false)
	b.inTx.Store(false)
	b.reported.Store(false)
	if c.cfg.LeakStacks {
		buf := make([]byte, 4096)
		s := string(buf[:runtime.Stack(buf, false)])
		b.stack.Store(&s)
	}
	b.since.Store(time.Now().UnixNano())
}

// leakKind guesses what holds a borrowing.
func (b *borrowInfo) kind() string {
	switch {
	case b.inTx.Load():
		return "tx"
	case b.lastQuery.Load():
		return "rows"
	default:
		return "conn"
	}
}

// leaks returns the borrowings held past LeakThreshold at now. With report
// set, it returns only those not reported before, and marks them reported.
func (c *Connector) leaks(now time.Time, report bool) []Leak {
	if c.cfg.LeakThreshold <= 0 {
		return nil
	}
	var out []Leak
	c.connMu.Lock()
	defer c.connMu.Unlock()
	for pc := range c.live {
		b := &pc.borrow
		since := b.since.Load()
		if since == 0 {
			continue
		}
		held := now.Sub(time.Unix(0, since))
		if held < c.cfg.LeakThreshold || report && !b.reported.CompareAndSwap(false, true) {
			continue
		}
		l := Leak{ConnID: pc.id, Held: held, Kind: b.kind()}
		if p := b.partition.Load(); p != nil {
			l.Partition = *p
		}
		if s := b.stack.Load(); s != nil {
			l.Stack = *s
		}
		out = append(out, l)
	}
	return out
}

// maintain is the Connector's one goroutine, stopped by Close: every
// MaintenanceInterval it keeps partitions' MinSize connections warm and, with
// a LeakThreshold, reports each borrowing held past it once, to the OnLeak
// hook and the leak counter.
func (c *Connector) maintain(interval time.Duration) {
	defer c.bg.Done()
	if c.cfg.LeakThreshold > 0 {
		interval = min(interval, max(c.cfg.LeakThreshold/4, 10*time.Millisecond))
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case now := <-t.C:
			for _, l := range c.leaks(now, true) {
				c.leaksDetected.Add(1)
				c.rec.RecordLeak(l.Partition)
				if f := c.cfg.Hooks.OnLeak; f != nil {
					f(l)
				}
			}
			c.warm(c.ctx)
		}
	}
}
