package sqlpool

import (
	"runtime"
	"sync/atomic"
	"time"
)

// This file holds the leak report. The pool tracks borrowings held too long
// (Config.LeakThreshold, with MaxBorrowTime, in one walk of its borrowers
// on its maintenance goroutine) and tells the factory's Leak of each; what
// a handle keeps of its borrowing for the report is here.

// borrowInfo is what a leak report reads about a physical connection's
// current borrowing by a handle. The borrower writes it, the pool's
// maintenance goroutine reads it: atomics. It is kept only with a
// LeakThreshold.
type borrowInfo struct {
	since     atomic.Int64           // UnixNano of the bind; 0 while no handle holds it
	partition atomic.Pointer[string] // the borrowing's partition name
	lastQuery atomic.Bool            // the last operation was a query
	inTx      atomic.Bool
	stack     atomic.Pointer[string] // where it was bound, with Config.LeakStacks
}

// trackBorrow records the start of a handle's borrowing for the leak report.
func (c *Connector) trackBorrow(pc *physConn, partition *string) {
	b := &pc.borrow
	b.partition.Store(partition)
	b.lastQuery.Store(false)
	b.inTx.Store(false)
	if c.cfg.LeakStacks {
		buf := make([]byte, 4096)
		s := string(buf[:runtime.Stack(buf, false)])
		b.stack.Store(&s)
	}
	b.since.Store(time.Now().UnixNano())
}

// kind guesses what holds a borrowing.
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

// leak describes pc's borrowing, held for held; false when no handle holds
// pc: a borrowing of sqlpool's own (the partitions' warm-up, the first
// Connect's probe), or one whose handle has not finished binding yet.
func (pc *physConn) leak(held time.Duration) (Leak, bool) {
	b := &pc.borrow
	if b.since.Load() == 0 {
		return Leak{}, false
	}
	l := Leak{ConnID: pc.id, Held: held, Kind: b.kind()}
	if p := b.partition.Load(); p != nil {
		l.Partition = *p
	}
	if s := b.stack.Load(); s != nil {
		l.Stack = *s
	}
	return l, true
}

// Leak reports a handle's borrowing held past LeakThreshold, once (the
// pool's Leaker): to the leak counter, the recorder and the OnLeak hook. It
// declines the pool's own borrowings, which are asked about again later.
func (f factory) Leak(pc *physConn, held time.Duration) bool {
	c := f.c
	l, ok := pc.leak(held)
	if !ok {
		return false
	}
	c.leaksDetected.Add(1)
	c.rec.RecordLeak(l.Partition)
	if f := c.cfg.Hooks.OnLeak; f != nil {
		f(l)
	}
	return true
}

// leaks returns the handles' borrowings held past LeakThreshold now,
// longest held first.
func (c *Connector) leaks() []Leak {
	if c.cfg.LeakThreshold <= 0 {
		return nil
	}
	var out []Leak
	for _, b := range c.pool.Borrowings(time.Now(), c.cfg.LeakThreshold) {
		if l, ok := b.Value.leak(b.Held); ok {
			out = append(out, l)
		}
	}
	return out
}
