package pool

import (
	"context"
	"time"
)

// Parking lets a borrower that will borrow again soon keep its connection
// between borrowings. The root package's logical handle does: database/sql
// hands the same handle out again and again, and a handle that retakes its
// parked connection with one compare-and-swap spares both ends of the
// borrowing the pool's lock, whose cache line would otherwise move between
// the cores at every query.
//
// A parked connection is idle for Stats, but stays counted in use, and in
// its Group, until its borrower retakes it (Retake) or gives it up
// (Unpark), or the pool takes it back (steal), releasing it as its
// borrower would have. The pool takes back parked connections whenever it
// needs them: for an acquisition that finds nothing idle, for a waiter,
// for each maintenance pass (so that idle timeouts and keepalives apply),
// and for Suspend, Resize, EvictIdle, a failed sibling and Close.
//
// Conn.park holds a generation count above parkedBit. Park stores the next
// generation with parkedBit set and returns that word as the token;
// Retake, Unpark and steal clear parkedBit with a compare-and-swap, so
// exactly one of them wins, and the token of an earlier parking never
// matches again.
//
// Park stores the word, then reads the queue's waiting count and noPark; a
// waiter counts itself in waiting, and Close, Suspend and Resize set
// noPark, before they look for parked connections (sequentially
// consistent atomics). So either the parker sees them and releases, or
// they see the parked connection and steal it: no waiter waits for a
// connection parked after it queued. anyParked spares a pool none of
// whose connections is parked the walk over affine: a parker sets it
// (when it is not set already), steal clears it before it walks.
//
// A pool parks only when no release has to do more than put the
// connection back: not while it tracks borrowings, with adaptive aging
// (ErrorThreshold), ValidateOnRelease or a CriticalReserve, nor with
// PredictiveWarmup, which learns from the connections in use (see parks).

const parkedBit = 1

// parks reports whether connections of a pool with this configuration may
// be parked.
func (c *Config) parks() bool {
	return c.DeadlockThreshold <= 0 && c.MaxBorrowTime <= 0 && c.LeakThreshold <= 0 && c.CloseTimeout <= 0 &&
		c.ErrorThreshold <= 0 && !c.ValidateOnRelease && c.CriticalReserve == 0 && !c.PredictiveWarmup
}

// Park ends the borrowing, keeping the connection for its borrower's next
// one: it returns a token for Retake, or 0 when it released the connection
// instead (as ReleaseAt), because the pool does not park (see the file
// comment), needs the connection now, or would close it on release (past
// its lifetime or MaxUses). now is when the borrowing ended.
func (c *Conn[T]) Park(now time.Time) uint64 {
	p := c.p
	if !p.parks || p.mustUnpark() || p.expired(c, now) || p.cfg.MaxUses > 0 && c.uses >= p.cfg.MaxUses {
		c.ReleaseAt(now)
		return 0
	}
	c.lastUsed = now
	c.failed = false
	if !c.enlisted && !p.enlist(c) {
		c.ReleaseAt(now)
		return 0
	}
	tok := c.park.Load()&^parkedBit + 2 | parkedBit
	c.park.Store(tok)
	if !p.anyParked.Load() {
		p.anyParked.Store(true)
	}
	if p.mustUnpark() && c.park.CompareAndSwap(tok, tok&^parkedBit) {
		p.put(c)
		return 0
	}
	return tok // if the pool took it meanwhile, Retake fails
}

// Retake lends the connection parked with tok to its borrower again, as
// an Acquire would (Factory.Reset with ctx, counted an acquisition). It
// reports false when the pool took the connection back meanwhile, or when
// it cannot lend it as it is (past its lifetime, idle past
// ValidationBypass, Reset failed): the connection is then released or
// closed, and the borrower acquires as usual. now is when the borrowing
// begins.
func (c *Conn[T]) Retake(ctx context.Context, tok uint64, now time.Time) bool {
	if tok == 0 || !c.park.CompareAndSwap(tok, tok&^parkedBit) {
		return false
	}
	p := c.p
	switch {
	case p.expired(c, now):
		p.closeConn(c, CloseLifetime, keepNone, noOutcome)
		return false
	case p.cfg.ValidationBypass < 0 || now.Sub(c.lastUsed) > p.cfg.ValidationBypass:
		p.put(c) // the next Acquire validates it
		return false
	}
	if err := p.f.Reset(ctx, c.value); err != nil {
		if ctx.Err() != nil {
			p.put(c)
		} else {
			p.closeConn(c, CloseValidation, keepNone, noOutcome)
		}
		return false
	}
	p.use(c, now)
	c.retakes.Add(1)
	return true
}

// Unpark gives the connection parked with tok back to the pool for good,
// unless the pool took it back already.
func (c *Conn[T]) Unpark(tok uint64) {
	if tok != 0 && c.park.CompareAndSwap(tok, tok&^parkedBit) {
		c.p.put(c)
	}
}

// mustUnpark reports whether a parker must release its connection: a
// caller waits, or the pool is closing, suspended or shrinking.
func (p *Pool[T]) mustUnpark() bool {
	return p.queue.waiting.Load() > 0 || p.dialers.waiting.Load() > 0 || p.noPark.Load()
}

// unparkAllLocked tells parkers to release while the pool is closed,
// suspended or above MaxSize, and takes back every parked connection: the
// caller puts them back (unsteal) once it has released mu.
func (p *Pool[T]) unparkAllLocked() []*Conn[T] {
	p.noPark.Store(p.closed || p.suspended || p.total > p.cfg.MaxSize)
	return p.stealLocked(-1)
}

// enlist lists c among the connections that may be parked, once in its
// life; it reports false when the pool no longer parks.
func (p *Pool[T]) enlist(c *Conn[T]) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.affine = append(p.affine, c)
	c.slot = len(p.affine)
	c.enlisted = true
	return true
}

// delistLocked takes c, which is closing, off the list of connections that
// may be parked, and adds its retakes to the pool's acquisitions.
func (p *Pool[T]) delistLocked(c *Conn[T]) {
	if c.slot == 0 {
		return
	}
	last := p.affine[len(p.affine)-1]
	p.affine[c.slot-1], last.slot = last, c.slot
	p.affine[len(p.affine)-1] = nil
	p.affine = p.affine[:len(p.affine)-1]
	c.slot = 0
	p.acquires.Add(c.retakes.Swap(0))
}

// stealLocked takes back from their borrowers up to n parked connections
// (n < 0: all), still counted in use: the caller puts them back (unsteal)
// once it has released mu.
func (p *Pool[T]) stealLocked(n int) []*Conn[T] {
	if !p.anyParked.Load() {
		return nil
	}
	p.anyParked.Store(false) // before the walk: a connection parked after it sets it again
	var stolen []*Conn[T]
	for _, c := range p.affine {
		if n >= 0 && len(stolen) == n {
			p.anyParked.Store(true) // others may be parked
			break
		}
		if s := c.park.Load(); s&parkedBit != 0 && c.park.CompareAndSwap(s, s&^parkedBit) {
			stolen = append(stolen, c)
		}
	}
	return stolen
}

// unsteal puts back connections taken from their borrowers by stealLocked,
// as their borrowers would have released them: to waiters, or on the idle
// stack in the order of their last use.
func (p *Pool[T]) unsteal(stolen []*Conn[T]) {
	for _, c := range stolen {
		p.putBack(c, c.lastUsed, noOutcome, true)
	}
}

// unstealLocked is unsteal for a caller that holds mu: it releases mu
// meanwhile, when there is anything to put back.
func (p *Pool[T]) unstealLocked(stolen []*Conn[T]) {
	if stolen != nil {
		p.mu.Unlock()
		p.unsteal(stolen)
		p.mu.Lock()
	}
}

// parkedLocked counts the parked connections, for Stats.
func (p *Pool[T]) parkedLocked() int {
	n := 0
	for _, c := range p.affine {
		if c.park.Load()&parkedBit != 0 {
			n++
		}
	}
	return n
}

// retakesLocked sums the acquisitions by Retake of the listed connections.
func (p *Pool[T]) retakesLocked() int64 {
	var n int64
	for _, c := range p.affine {
		n += c.retakes.Load()
	}
	return n
}
