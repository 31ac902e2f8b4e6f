package pool

import "time"

// The pool counts connections in slots. A slot is free, dialing (counted in
// Pool.dialing), idle (on Pool.idle) or in use (counted in Pool.inUse: lent
// to a borrower, handed to a waiter, or being checked by the pool), and
// Pool.total counts the slots that are not free. Whenever mu is released:
//
//	total == dialing + len(idle) + inUse
//	stats.created - Σ stats.closed == len(idle) + inUse
//
// A connection leaves the counts, counted closed, when the pool decides to
// close it, though its Factory.Close may come later (an abandoned check's
// goroutine closes it when Validate returns). dialing never exceeds
// MaxConcurrentConnects; total may exceed MaxSize only after Resize shrank
// it, and then no slot is reserved until it is below again.
//
// The counters change only in the helpers below, one per transition; a
// caller that takes connections off the idle stack itself passes each to
// lendLocked or dropIdleLocked before it releases mu.
//
// A borrowing of a Group counts in Group.inUse from the moment its
// acquisition was served (takeGroupLocked) until its connection leaves the
// in-use count (endUseLocked) or is handed to the next waiter (putBack):
// c.group says which group, and is cleared when it is counted out, so it is
// counted out once whichever of Release, Destroy, the reclaim or Close
// comes first.

// freeLocked returns the number of connections idle or not yet dialed.
func (p *Pool[T]) freeLocked() int { return len(p.idle) + p.cfg.MaxSize - p.total }

// canDialLocked reports whether a free slot may be reserved for a dial
// (the circuit breaker permitting).
func (p *Pool[T]) canDialLocked() bool {
	return p.total < p.cfg.MaxSize && p.dialing < p.cfg.MaxConcurrentConnects && p.breakerAllowsDialLocked()
}

// dialWantedLocked reports whether a caller with no idle connection at hand
// should dial (queued: the caller is one of the waiters): whether the pool
// may dial, and the dials in progress for callers already served elsewhere
// (orphans, whose connections go to the waiters in turn) do not cover the
// waiters. Without it a burst of fast borrowers fills the pool to MaxSize:
// each finds nothing idle, dials, is handed a connection released
// meanwhile, and leaves its dial to add one more connection.
func (p *Pool[T]) dialWantedLocked(queued bool) bool {
	waiting := p.queue.len - p.queue.blocked
	if !queued {
		waiting++
	}
	return p.orphans < waiting && p.canDialLocked()
}

// reserveDialLocked reserves a slot for a dial: free → dialing.
func (p *Pool[T]) reserveDialLocked() {
	p.total++
	p.dialing++
}

// cancelDialLocked frees a slot reserved for a dial that was not made:
// dialing → free.
func (p *Pool[T]) cancelDialLocked() {
	p.total--
	p.dialing--
}

// dialDoneLocked ends a dial in a reserved slot, with its error: dialing →
// in use, the connection counted created; or dialing → free when the dial
// failed (counted a connect error) or when the pool closed meanwhile (the
// connection counted created and closed, ClosePoolClosed: the caller closes
// it).
func (p *Pool[T]) dialDoneLocked(err error) {
	p.dialing--
	switch {
	case err != nil:
		p.total--
		p.stats.connectErrors++
		p.lastConnErr = err
		if ce, ok := err.(*ConnectError); ok {
			p.lastConnErr = ce.Err // the Factory's own
		}
	case p.closed:
		p.total--
		p.stats.created++
		p.stats.closed[ClosePoolClosed]++
	default:
		p.stats.created++
		p.inUse++
		p.noteBorrowersLocked()
	}
}

// lendLocked counts in use a connection the caller took off the idle stack:
// idle → in use.
func (p *Pool[T]) lendLocked() {
	p.inUse++
	p.noteBorrowersLocked()
}

// returnLocked puts c, in use, on the idle stack: in use → idle. With
// inPlace, c goes where its last use puts it (insertIdleLocked), not on top.
func (p *Pool[T]) returnLocked(c *Conn[T], inPlace bool) {
	p.endUseLocked(c)
	if inPlace {
		p.insertIdleLocked(c)
	} else {
		p.idle = append(p.idle, c)
	}
}

// dropLocked counts c, in use, closed for reason and frees its slot: in use
// → free.
func (p *Pool[T]) dropLocked(c *Conn[T], reason CloseReason, now time.Time) {
	p.endUseLocked(c)
	p.total--
	p.countCloseLocked(c, reason, now)
}

// redialLocked counts c, in use, closed for reason and passes its slot to a
// dial of its replacement: in use → dialing.
func (p *Pool[T]) redialLocked(c *Conn[T], reason CloseReason, now time.Time) {
	p.endUseLocked(c)
	p.dialing++
	p.countCloseLocked(c, reason, now)
}

// dropIdleLocked counts c, which the caller took off the idle stack, closed
// for reason and frees its slot: idle → free.
func (p *Pool[T]) dropIdleLocked(c *Conn[T], reason CloseReason, now time.Time) {
	p.total--
	p.countCloseLocked(c, reason, now)
}

// countCloseLocked counts c's closing for reason, and whether a lifetime that
// adaptive aging had shortened ended it.
func (p *Pool[T]) countCloseLocked(c *Conn[T], reason CloseReason, now time.Time) {
	p.delistLocked(c)
	p.stats.closed[reason]++
	if reason == CloseLifetime && now.Sub(c.created) < c.lifetime {
		p.stats.shortened++
	}
}

// endUseLocked takes c out of the in-use count, and out of its group's
// (ungroupLocked), and lets Close go on when it waits for the last borrower
// (CloseTimeout). A caller that frees a slot wakes waiters afterwards,
// which serves those of c's group too.
func (p *Pool[T]) endUseLocked(c *Conn[T]) {
	p.ungroupLocked(c)
	p.inUse--
	if p.drained != nil && p.inUse == 0 {
		close(p.drained)
		p.drained = nil
	}
}

// ungroupLocked counts the borrowing of c out of its group, if it was
// counted in one and still is, and reports whether waiters that the
// group's cap held back may now be served.
func (p *Pool[T]) ungroupLocked(c *Conn[T]) (unblocked bool) {
	g := c.group
	if g == nil {
		return false
	}
	c.group = nil
	return p.leaveGroupLocked(g)
}
