// Package pool is a generic connection pool that knows nothing of SQL.
//
// A Pool keeps connections made by a Factory: idle ones on a LIFO stack (so a
// surplus sinks to the bottom and times out), waiters in FIFO queues ordered
// by Priority, a released connection handed directly to the next waiter. It
// grows lazily up to MaxSize, throttles dials, validates idle connections
// before lending them, and one maintenance goroutine, owned by the pool and
// stopped by Close, expires idle and old connections and refills to MinSize.
//
// The wait queue (waitq.go) serves the highest effective priority first,
// then the longest waiting; a waiter's effective priority rises with its
// wait (Config.StarvationAfter), so none starves. Config.CriticalReserve
// keeps connections for PriorityCritical, Config.FairQueue makes arrival
// order exact, Config.FailFastBelow refuses at once a caller unlikely to be
// served before its deadline (estimate.go), Config.OnQueuePosition tells
// waiters their place, and Config.DeadlockThreshold reports a pool whose
// borrowers hold every connection while others wait (deadlock.go).
//
// Connections age (lifecycle.go): each has a lifetime drawn once at
// creation (Config.MaxLifetime, Config.LifetimeJitter), a use limit
// (Config.MaxUses), and, with adaptive aging (Config.ErrorThreshold), a
// lifetime that shortens while its, or the pool's, recent borrowings fail
// (Conn.ReportError). Maintenance pings idle connections
// (Config.KeepaliveInterval), reports or reclaims borrowings held past
// Config.MaxBorrowTime, and gives soft warnings at Config.WarnFraction of
// each limit to a Factory that is a Warner. Every closed connection carries
// a CloseReason.
package pool

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/sqlpool/sqlpool/internal/clock"
)

// Errors returned by Acquire. The root package re-exports them, so errors.Is
// matches either name.
var (
	ErrClosed         = errors.New("sqlpool: pool is closed")
	ErrAcquireTimeout = errors.New("sqlpool: acquire timed out")
	ErrQueueFull      = errors.New("sqlpool: wait queue is full (MaxWaitQueue callers already waiting): raise MaxSize if the server can take it, or MaxWaitQueue, or shed load")
	// ErrWouldTimeout: the acquisition was refused at once because it was
	// unlikely to be served before its deadline (see Config.FailFastBelow).
	// Its errors also match ErrAcquireTimeout, and context.DeadlineExceeded
	// when the caller's deadline was the binding one.
	ErrWouldTimeout = errors.New("sqlpool: acquire would time out")
)

// Factory makes, checks and closes the connections of a Pool. Its methods
// may be called concurrently, but never twice at once for one connection.
type Factory[T any] interface {
	// Create dials a new connection. ctx carries the acquiring caller's values
	// and is bounded by Config.ConnectTimeout.
	Create(ctx context.Context) (T, error)
	// Reset prepares an idle connection for a new borrower; it is called on
	// every reuse, with the borrower's context. An error discards the
	// connection and the pool tries another.
	Reset(ctx context.Context, c T) error
	// Validate checks that the connection still works (a ping). It is called
	// on acquire when the connection has been idle past
	// Config.ValidationBypass, after a sibling failed, by maintenance, and on
	// release when Config.ValidateOnRelease is set.
	Validate(ctx context.Context, c T) error
	// Close closes the connection, for the reason given. With
	// CloseReclaimed (Config.ReclaimBorrowed) it runs on the maintenance
	// goroutine while the borrower may still hold the connection, even be
	// using it: the Factory must order the close with the borrower's use.
	// So may ClosePoolClosed, on the goroutine of Pool.Close, when a
	// connection is still borrowed after Config.CloseTimeout.
	Close(c T, reason CloseReason) error
}

// CloseReason says why the pool closed a connection.
type CloseReason uint8

// Close reasons.
const (
	CloseIdle       CloseReason = iota // idle past IdleTimeout
	CloseLifetime                      // older than MaxLifetime
	CloseErrors                        // the borrower reported it broken
	CloseValidation                    // failed Validate or Reset
	CloseEvicted                       // discarded by its borrower, or by Resize and EvictIdle
	ClosePoolClosed                    // the pool closed
	CloseUsage                         // released after MaxUses acquisitions
	CloseReclaimed                     // borrowed past MaxBorrowTime, with ReclaimBorrowed
	numCloseReasons
)

var closeReasonNames = [numCloseReasons]string{"idle", "lifetime", "errors", "validation", "evicted", "pool_closed", "usage", "reclaimed"}

// String returns the reason's metric label value.
func (r CloseReason) String() string {
	if r < numCloseReasons {
		return closeReasonNames[r]
	}
	return fmt.Sprintf("CloseReason(%d)", r)
}

// Pool is a pool of connections of type T. It is safe for concurrent use.
type Pool[T any] struct {
	f       Factory[T]
	warner  Warner[T] // f, if it is one
	cfg     Config
	limiter *rate.Limiter // nil when ConnectRate is 0

	waiters sync.Pool // of *waiter[T]

	// ctx lives as long as the pool: maintenance and dials run under it, and
	// Close cancels it with stop, then waits for them on background.
	ctx        context.Context
	stop       context.CancelFunc
	background sync.WaitGroup
	trigger    chan struct{} // buffered 1: run maintenance now

	mu sync.Mutex
	// guarded by mu:
	closed       bool
	suspended    bool       // Suspend: nothing is lent until Resume
	idle         []*Conn[T] // LIFO: the top is the last element
	queue        waitQueue[T]
	dialers      dialerList[T] // callers waiting for their own dial
	drained      chan struct{} // made by Close waiting for borrowers (CloseTimeout), closed when none is left
	total        int           // connections open or being dialed
	inUse        int           // lent to borrowers (or being checked)
	dialing      int           // dials in progress
	suspectSince time.Time     // a connection failed: validate idle ones used before this
	lastConnErr  error
	fillFailing  bool // the last background dial failed; maintenance goroutine only
	stats        counters
	serves       serveRate   // how fast waiters are served, for FailFastBelow
	detector     detector    // DeadlockThreshold state
	borrowed     *Conn[T]    // with DeadlockThreshold or MaxBorrowTime: the borrowed connections, newest first
	jitter       float64     // the last lifetime jitter point, in [0,1)
	window       outcomes    // the pool's recent borrowings, for adaptive aging
	expiry       *time.Timer // ends waits at AcquireTimeout (see armExpiryLocked); nil until the first wait
	expiryAt     time.Time   // when expiry fires; zero when it is not armed

	acquires  atomic.Int64  // successful acquisitions
	waitTime  atomic.Int64  // nanoseconds waited in the queue, by every Acquire
	warnings  atomic.Int64  // warnings given
	poolScale atomic.Uint64 // float64 bits: the pool's adaptive lifetime scale, 1 when healthy
}

// counters are the cumulative statistics; guarded by Pool.mu.
type counters struct {
	waits, timeouts, queueFull, canceled int64
	created, connectErrors               int64
	closed                               [numCloseReasons]int64
	boosts, wouldTimeout, deadlocks      int64
	shortened, overdue, keepalives       int64
}

// Conn is one pooled connection. Its borrower owns it from Acquire until it
// calls Release, Destroy or Replace, exactly once, or until maintenance
// reclaims it (Config.ReclaimBorrowed), or Close takes it back
// (Config.CloseTimeout): those calls then do nothing.
type Conn[T any] struct {
	p        *Pool[T]
	value    T
	created  time.Time
	lifetime time.Duration // drawn at creation (LifetimeJitter); 0: none

	// The fields below are the owner's: the borrower's while the
	// connection is borrowed, maintenance's under Pool.mu while it is idle.
	//
	// lastUsed is the time of the acquisition while the connection is
	// borrowed, of its release while it is idle.
	lastUsed time.Time
	pinged   time.Time // last keepalive ping
	uses     int64     // acquisitions
	label    uint64
	window   outcomes // recent borrowings, for adaptive aging
	failed   bool     // the current borrowing failed (ReportError)
	warned   uint8    // soft warnings given: warnedLifetime, warnedUses

	// reclaimed is set, under Pool.mu, when maintenance takes the
	// connection back from its borrower (ReclaimBorrowed); read by the
	// borrower without the lock.
	reclaimed atomic.Bool

	// With the deadlock detector or MaxBorrowTime on, a borrowed
	// connection is on the pool's list of borrowers, with the stack of the
	// Acquire that took it (deadlock detector only).
	stack        []byte    // written by the borrower before it is listed, reused
	bnext, bprev *Conn[T]  // guarded by Pool.mu
	listed       bool      // guarded by Pool.mu
	borrowedAt   time.Time // guarded by Pool.mu: when it was listed
	borrowWarned bool      // guarded by Pool.mu: the soft MaxBorrowTime warning was given
	overdue      bool      // guarded by Pool.mu: MaxBorrowTime passed
}

// Value returns the underlying connection.
func (c *Conn[T]) Value() T { return c.value }

// Label returns the label its borrowers gave the connection (0: none).
func (c *Conn[T]) Label() uint64 { return c.label }

// SetLabel labels the connection, for AcquireLabeled. Only its borrower may
// call it.
func (c *Conn[T]) SetLabel(label uint64) { c.label = label }

// LentAt returns when the connection was lent to its borrower: the start
// passed to AcquireAt when it was at hand, or when it came after a wait.
// Only its borrower may call it.
func (c *Conn[T]) LentAt() time.Time { return c.lastUsed }

// CreatedAt returns when the connection was dialed.
func (c *Conn[T]) CreatedAt() time.Time { return c.created }

// Uses returns how many times the connection has been acquired.
func (c *Conn[T]) Uses() int64 { return c.uses }

// New returns a pool that makes connections with f. It dials nothing itself:
// its maintenance goroutine dials InitialSize connections in the background.
// Call Close to stop it.
func New[T any](f Factory[T], cfg Config) (*Pool[T], error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	p := &Pool[T]{
		f:       f,
		cfg:     cfg,
		trigger: make(chan struct{}, 1),
		jitter:  rand.Float64(),
	}
	p.warner, _ = f.(Warner[T])
	p.poolScale.Store(math.Float64bits(1))
	p.waiters.New = func() any { return &waiter[T]{ready: make(chan struct{}, 1)} }
	if cfg.ConnectRate > 0 {
		p.limiter = rate.NewLimiter(rate.Limit(cfg.ConnectRate), cfg.MaxConcurrentConnects)
	}
	p.ctx, p.stop = context.WithCancel(context.Background())
	p.background.Add(1)
	go p.maintain()
	return p, nil
}

// Config returns the pool's configuration with defaults applied.
func (p *Pool[T]) Config() Config {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg
}

// Acquire returns a connection: an idle one, a new one if the pool is below
// MaxSize, or the next one released, waiting at priority prio. It gives up
// when ctx ends (returning ctx.Err()) or after AcquireTimeout (an error
// matching ErrAcquireTimeout, and context.DeadlineExceeded too when ctx's
// deadline came first). It fails at once with ErrQueueFull when MaxWaitQueue
// callers already wait, and with ErrWouldTimeout when it is unlikely to be
// served in time (see Config.FailFastBelow).
func (p *Pool[T]) Acquire(ctx context.Context, prio Priority) (*Conn[T], error) {
	return p.AcquireLabeled(ctx, prio, 0)
}

// AcquireLabeled is Acquire preferring, among the idle connections, the most
// recently used one whose Label is label (0: no preference). A connection
// handed over by a releasing borrower goes to the longest waiter whatever its
// label.
func (p *Pool[T]) AcquireLabeled(ctx context.Context, prio Priority, label uint64) (*Conn[T], error) {
	return p.AcquireAt(ctx, clock.Now(), prio, label)
}

// AcquireAt is AcquireLabeled for a caller that has read the clock: start
// is when its acquisition began, and the pool measures the AcquireTimeout
// and the connection's ages from it, reading the clock again only if it
// has to wait. The wait is the connection's LentAt minus start. (Like
// rate.Limiter's AllowN, it spares a hot path a clock reading it already
// made.)
func (p *Pool[T]) AcquireAt(ctx context.Context, start time.Time, prio Priority, label uint64) (*Conn[T], error) {
	return p.AcquireSince(ctx, start, start, prio, label)
}

// AcquireSince is AcquireAt for an acquisition that began (at began) before
// it reached the pool (at now), having waited elsewhere first, such as for
// a partition's slot: the AcquireTimeout runs from began, so the caller has
// one deadline, while ages and the wait (LentAt) are measured from now.
func (p *Pool[T]) AcquireSince(ctx context.Context, began, now time.Time, prio Priority, label uint64) (*Conn[T], error) {
	c, err := p.acquire(ctx, now, began, prio, label)
	if c != nil && p.tracking() {
		p.list(c)
	}
	return c, err
}

func (p *Pool[T]) acquire(ctx context.Context, start, began time.Time, prio Priority, label uint64) (*Conn[T], error) {
	if err := ctx.Err(); err != nil {
		return nil, p.ctxError(err)
	}
	queued := false // whether the caller has queued before (admitted)
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		if p.cfg.FairQueue && p.queue.len > 0 {
			// Serve every earlier waiter that can be served: what is left
			// is what none of them may take.
			p.wakeLocked()
		}
		if !p.suspended && p.mayTakeLocked(prio) {
			if c, validate := p.popIdleLocked(start, label); c != nil {
				p.mu.Unlock()
				if c, err := p.checkout(ctx, c, validate, start, began); c != nil || err != nil {
					return c, err
				}
				continue
			}
			if p.canDialLocked() {
				p.reserveDialLocked()
				p.mu.Unlock()
				return p.dial(ctx, p.deadline(began))
			}
		}
		now := clock.Now()
		deadline := p.deadline(began)
		if !queued { // admission, once per Acquire
			if p.cfg.MaxWaitQueue > 0 && p.queue.len >= p.cfg.MaxWaitQueue {
				p.stats.queueFull++
				p.mu.Unlock()
				return nil, ErrQueueFull
			}
			if err := p.predictLocked(ctx, prio.index(), deadline, now); err != nil {
				p.mu.Unlock()
				return nil, err
			}
			p.stats.waits++
		}
		w := p.waiters.Get().(*waiter[T])
		w.prio = prio.index()
		w.deadline = deadline
		w.stack = nil
		if p.queue.len == 0 {
			p.serves.begin(now)
		}
		if p.cfg.FairQueue {
			// Served in the order the Acquire calls began: a caller that
			// queues again after a failed connection keeps its place.
			w.since = began
			p.queue.insert(w)
		} else {
			w.since = now
			p.queue.push(w)
		}
		queued = true
		p.armExpiryLocked(deadline, now)
		if p.cfg.OnQueuePosition != nil {
			if w.moved == nil {
				w.moved = make(chan struct{}, 1)
			}
			p.repositionLocked(now)
		}
		p.mu.Unlock()
		if p.cfg.DeadlockThreshold > 0 {
			p.publishStack(w)
		}

		conn, validate, dial, served, err := p.wait(ctx, w, now)
		switch {
		case err != nil:
			return nil, err
		case dial:
			return p.dial(ctx, deadline)
		case conn != nil:
			// A connection handed off by its last borrower needs a reset but
			// no validation; one from the idle stack may need both.
			if c, err := p.checkout(ctx, conn, validate, served, began); c != nil || err != nil {
				return c, err
			}
		}
	}
}

// mayTakeLocked reports whether an acquisition at priority prio may take a
// free connection (idle or not yet dialed) without eating into the
// CriticalReserve.
func (p *Pool[T]) mayTakeLocked(prio Priority) bool {
	return p.cfg.CriticalReserve == 0 || prio >= PriorityCritical || p.freeLocked() > p.cfg.CriticalReserve
}

// freeLocked returns the number of connections idle or not yet dialed.
func (p *Pool[T]) freeLocked() int { return len(p.idle) + p.cfg.MaxSize - p.total }

// popIdleLocked pops the most recently used idle connection labeled label,
// or else the most recently used, if any, and says whether it must be
// validated before use.
func (p *Pool[T]) popIdleLocked(now time.Time, label uint64) (c *Conn[T], validate bool) {
	n := len(p.idle)
	if n == 0 {
		return nil, false
	}
	i := n - 1
	if label != 0 {
		for j := n - 1; j >= 0; j-- {
			if p.idle[j].label == label {
				i = j
				break
			}
		}
	}
	c = p.idle[i]
	if i < n-1 {
		copy(p.idle[i:], p.idle[i+1:])
	}
	p.idle[n-1] = nil
	p.idle = p.idle[:n-1]
	p.inUse++
	validate = p.cfg.ValidationBypass < 0 || now.Sub(c.checked()) > p.cfg.ValidationBypass ||
		p.suspectLocked(c)
	return c, validate
}

// suspectLocked reports whether c was last used before a sibling failed.
func (p *Pool[T]) suspectLocked(c *Conn[T]) bool {
	return !p.suspectSince.IsZero() && !c.checked().After(p.suspectSince)
}

func (p *Pool[T]) canDialLocked() bool {
	return p.total < p.cfg.MaxSize && p.dialing < p.cfg.MaxConcurrentConnects
}

func (p *Pool[T]) reserveDialLocked() {
	p.total++
	p.dialing++
}

// checkout readies a connection popped for a borrower (counted in use). It
// returns the connection, or an error for the caller, or neither when the
// connection was bad and the caller should try again. With FairQueue, the
// caller keeps the bad connection's slot and dials its replacement. now is
// the time, start when the acquisition began.
func (p *Pool[T]) checkout(ctx context.Context, c *Conn[T], validate bool, now, start time.Time) (*Conn[T], error) {
	keep := keepNone
	if p.cfg.FairQueue {
		keep = keepSlot
	}
	reason := CloseLifetime
	if !p.expired(c, now) {
		var err error
		if validate {
			var abandoned, dial bool
			abandoned, dial, err = p.check(ctx, c, keep, noOutcome)
			switch {
			case err == errClosing:
				p.put(c) // closes it
				return nil, ErrClosed
			case abandoned && dial:
				return p.dial(ctx, p.deadline(start))
			case abandoned && ctx.Err() != nil:
				return nil, p.ctxError(ctx.Err())
			case abandoned:
				return nil, nil
			}
		}
		if err == nil {
			err = p.f.Reset(ctx, c.value)
		}
		if err == nil {
			p.lent(c, now)
			return c, nil
		}
		if ctx.Err() != nil {
			p.put(c) // the caller gave up; the connection may be fine
			return nil, p.ctxError(ctx.Err())
		}
		reason = CloseValidation
	}
	if _, dial := p.closeConn(c, reason, keep, noOutcome); dial {
		return p.dial(ctx, p.deadline(start))
	}
	return nil, nil
}

// deadline returns the AcquireTimeout deadline of an acquisition begun at
// start, or zero when there is none.
func (p *Pool[T]) deadline(start time.Time) time.Time {
	if p.cfg.AcquireTimeout <= 0 {
		return time.Time{}
	}
	return start.Add(p.cfg.AcquireTimeout)
}

// errClosing is check's error when the pool closed before it could start.
var errClosing = errors.New("sqlpool: pool closing")

// check validates c, counted in use, within ValidationTimeout and ctx even
// when Factory.Validate ignores its context (lib/pq's Ping does while the
// network stalls): Validate runs on a goroutine counted in background, and
// check gives up on it at the timeout or when ctx ends. It then reports
// abandoned: c is counted closed with CloseValidation, its slot freed (or
// kept as closeConn's keep says, keepNone when ctx ended; dial reports
// it), the borrowing's outcome o recorded, and the goroutine closes it
// when Validate returns (unless maintenance reclaimed it). It returns
// errClosing, doing nothing, when the pool is closed: the caller puts c
// back, which closes it.
func (p *Pool[T]) check(ctx context.Context, c *Conn[T], keep int, o outcome) (abandoned, dial bool, err error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false, false, errClosing
	}
	p.background.Add(1) // under mu, so never after Close began to wait
	p.mu.Unlock()
	v := &validation{done: make(chan struct{})}
	vctx, cancel := context.WithTimeout(ctx, p.cfg.ValidationTimeout)
	go func() {
		defer p.background.Done()
		defer cancel() // only once finished: check takes vctx's end for a timeout
		err := p.f.Validate(vctx, c.value)
		v.mu.Lock()
		if v.abandoned {
			closeIt := v.closeIt
			v.mu.Unlock()
			if closeIt {
				p.f.Close(c.value, CloseValidation)
			}
			return
		}
		v.finished, v.err = true, err
		close(v.done)
		v.mu.Unlock()
	}()
	select {
	case <-v.done:
		return false, false, v.err
	case <-vctx.Done():
	}
	v.mu.Lock()
	if v.finished {
		v.mu.Unlock()
		return false, false, v.err
	}
	if ctx.Err() != nil {
		keep = keepNone
	}
	v.abandoned = true
	v.closeIt, dial = p.retire(c, CloseValidation, keep, o)
	v.mu.Unlock()
	return true, dial, nil
}

// validation is a Factory.Validate running on its own goroutine, which
// check may abandon.
type validation struct {
	done chan struct{} // closed when it finished and was not abandoned

	mu        sync.Mutex
	finished  bool  // guarded by mu
	abandoned bool  // guarded by mu
	closeIt   bool  // guarded by mu: abandoned, and the goroutine closes the connection
	err       error // Validate's, set with finished
}

// wait blocks until w, queued at start, is served, expires (see expire) or
// gives up. It returns a handed-off connection (and whether it must be
// validated), or dial set when a dial slot was reserved for the caller, or an
// error. With OnQueuePosition set, it calls it, on this goroutine, each time
// w's position changes.
func (p *Pool[T]) wait(ctx context.Context, w *waiter[T], start time.Time) (conn *Conn[T], validate, dial bool, now time.Time, err error) {
	received := false // the ready signal
	var cause error   // why the wait ended early: ctx.Err() or errTimedOut
wait:
	for {
		select {
		case <-w.ready:
			received = true
			break wait
		case <-ctx.Done():
			cause = ctx.Err()
			break wait
		case <-w.moved: // nil unless OnQueuePosition is set
			p.mu.Lock()
			pos, queued := w.pos, w.queued
			p.mu.Unlock()
			if queued {
				p.cfg.OnQueuePosition(ctx, pos)
			}
		}
	}

	now = clock.Now()
	p.waitTime.Add(int64(now.Sub(start)))
	if received && !w.expired && w.err == nil {
		// Served: what the server set before the signal is ours to read,
		// without the lock.
		conn, validate, dial = w.conn, w.validate, w.dial
		p.recycle(w)
		return conn, validate, dial, now, nil
	}
	p.mu.Lock()
	if !received && w.queued {
		p.dequeueLocked(w, now)
		if p.cfg.OnQueuePosition != nil {
			p.repositionLocked(now)
		}
		err := p.giveUpErrorLocked(cause)
		p.mu.Unlock()
		p.recycle(w)
		return nil, false, false, now, err
	}
	if cause == nil && w.expired {
		cause = errTimedOut
	}
	if cause != nil {
		err = p.giveUpErrorLocked(cause)
	}
	p.mu.Unlock()

	if !received {
		// Served, or expired, in the same instant as giving up. Both send
		// on ready under mu, so the signal is there.
		<-w.ready
	}
	conn, validate, dial, closedErr := w.conn, w.validate, w.dial, w.err
	p.recycle(w)
	switch {
	case closedErr != nil:
		return nil, false, false, now, closedErr
	case err == nil:
		return conn, validate, dial, now, nil
	case conn != nil: // pass it on: nothing is lost
		p.put(conn)
	case dial:
		p.mu.Lock()
		p.total--
		p.dialing--
		p.wakeLocked()
		p.mu.Unlock()
	}
	return nil, false, false, now, err
}

// armExpiryLocked makes sure the expiry timer fires by deadline (zero: no
// AcquireTimeout). One timer serves every waiter: arming it per waiter cost
// more than the rest of a short wait. It fires at the earliest deadline
// known when it was armed; by then that waiter has usually been served, and
// expire arms it again for the earliest one left, so in steady state it
// fires about once per AcquireTimeout.
func (p *Pool[T]) armExpiryLocked(deadline, now time.Time) {
	if deadline.IsZero() || !p.expiryAt.IsZero() && !deadline.Before(p.expiryAt) {
		return
	}
	p.expiryAt = deadline
	if p.expiry == nil {
		p.expiry = time.AfterFunc(deadline.Sub(now), p.expire)
		return
	}
	p.expiry.Reset(deadline.Sub(now))
}

// expire ends the waits past their AcquireTimeout (their waiters find
// expired set), and arms the expiry timer for the earliest deadline left.
func (p *Pool[T]) expire() {
	now := clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expiryAt = time.Time{}
	if p.closed {
		return
	}
	var next time.Time
	expired := false
	for _, w := range p.queue.head {
		for w != nil {
			after := w.next
			switch {
			case w.deadline.IsZero():
			case !w.deadline.After(now):
				p.dequeueLocked(w, now)
				w.expired = true
				w.ready <- struct{}{}
				expired = true
			case next.IsZero() || w.deadline.Before(next):
				next = w.deadline
			}
			w = after
		}
	}
	if expired && p.cfg.OnQueuePosition != nil {
		p.repositionLocked(now)
	}
	p.armExpiryLocked(next, now)
}

// recycle clears w, out of the queue, and returns it to Pool.waiters.
func (p *Pool[T]) recycle(w *waiter[T]) {
	w.conn, w.validate, w.dial, w.err, w.expired = nil, false, false, nil, false
	w.pos, w.stack = 0, nil
	select {
	case <-w.moved: // a position change nobody will read
	default:
	}
	p.waiters.Put(w)
}

// errTimedOut marks a wait ended by AcquireTimeout.
var errTimedOut = errors.New("acquire timeout")

// giveUpErrorLocked counts an abandoned acquisition and returns its error.
func (p *Pool[T]) giveUpErrorLocked(cause error) error {
	if cause == context.Canceled {
		p.stats.canceled++
		return cause
	}
	p.stats.timeouts++
	e := p.timeoutErrorLocked()
	e.deadline = cause != errTimedOut
	return e
}

// timeoutErrorLocked describes the pool in a TimeoutError.
func (p *Pool[T]) timeoutErrorLocked() *TimeoutError {
	return &TimeoutError{
		Timeout: p.cfg.AcquireTimeout,
		Size:    p.total,
		MaxSize: p.cfg.MaxSize,
		InUse:   p.inUse,
		Idle:    len(p.idle),
		Waiting: p.queue.len,
		LastErr: p.lastConnErr,
	}
}

// ctxError is the error for an acquisition whose context ended.
func (p *Pool[T]) ctxError(err error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.giveUpErrorLocked(err)
}

// ConnectError is the error of an acquisition whose dial failed; Err is the
// Factory's error, unchanged.
type ConnectError struct{ Err error }

func (e *ConnectError) Error() string { return "sqlpool: connect: " + e.Err.Error() }

// Unwrap returns the Factory's error.
func (e *ConnectError) Unwrap() error { return e.Err }

// TimeoutError is the error of an acquisition that timed out, or that was
// refused at once because it would have (ErrWouldTimeout). It matches
// ErrAcquireTimeout with errors.Is, ErrWouldTimeout when it was refused, and
// context.DeadlineExceeded as well when the caller's deadline ended (or
// would have ended) the wait. It describes the pool at that moment.
type TimeoutError struct {
	Timeout                             time.Duration // the AcquireTimeout in force
	Size, MaxSize, InUse, Idle, Waiting int
	LastErr                             error // the last dial error, if any
	// Waited is how long the acquisition waited in all, when its caller
	// measured it (sqlpool's Connector does).
	Waited time.Duration

	// With ErrWouldTimeout: the waiters sure to be served first, the
	// estimated mean wait, and the time that was left.
	Ahead          int
	Expected, Left time.Duration

	deadline  bool // the caller's deadline, not AcquireTimeout
	predicted bool // refused at once: ErrWouldTimeout
}

func (e *TimeoutError) Error() string {
	bound := fmt.Sprintf("AcquireTimeout %v", e.Timeout)
	if e.deadline {
		bound = "the context deadline"
	}
	var s string
	if e.predicted {
		s = fmt.Sprintf("sqlpool: acquire would time out: %d waiters ahead, expected wait %v, %v left before %s",
			e.Ahead, e.Expected.Round(time.Millisecond), e.Left.Round(time.Millisecond), bound)
	} else if e.deadline {
		s = "sqlpool: acquire timed out at the context deadline"
	} else {
		s = "sqlpool: acquire timed out after " + bound
	}
	s += fmt.Sprintf(" (pool: %d/%d connections, %d in use, %d idle, %d waiting)",
		e.Size, e.MaxSize, e.InUse, e.Idle, e.Waiting)
	if e.Waited > 0 {
		s += fmt.Sprintf(", after waiting %v", e.Waited.Round(time.Millisecond))
	}
	if e.LastErr != nil {
		s += "; last connect error: " + e.LastErr.Error() + ": check that the server answers"
	} else if e.InUse >= e.MaxSize {
		s += ": every connection is borrowed; if the load is real raise MaxSize (within the server's max_connections) or AcquireTimeout, " +
			"otherwise look for connections held too long (LeakThreshold and the leak report, Stats().Leaks, /api/leaks)"
	}
	return s
}

// Unwrap returns ErrAcquireTimeout, ErrWouldTimeout when the acquisition was
// refused at once, and context.DeadlineExceeded when the caller's deadline
// ended (or would have ended) the wait.
func (e *TimeoutError) Unwrap() []error {
	errs := []error{ErrAcquireTimeout}
	if e.predicted {
		errs = append(errs, ErrWouldTimeout)
	}
	if e.deadline {
		errs = append(errs, context.DeadlineExceeded)
	}
	return errs
}

// dial creates a connection in a slot reserved by the caller (counted in total
// and dialing) and returns it in use. The dial runs on its own goroutine with
// the caller's values but the pool's cancellation: if the caller gives up
// first, the dial goes on and its connection goes to the next waiter or the
// idle stack, so impatient callers cannot starve the pool of connections.
//
// Meanwhile the caller is listed as a dialer: a connection released while
// no waiter in the queue takes it is handed to the longest-dialing caller
// (never a dial slot), which takes it and abandons its dial, whose
// connection then goes to the next waiter or the idle stack likewise.
func (p *Pool[T]) dial(ctx context.Context, deadline time.Time) (*Conn[T], error) {
	d := &pendingDial[T]{done: make(chan struct{})}
	p.background.Add(1)
	go func() {
		defer p.background.Done()
		c, err := p.create(valuesContext{Context: p.ctx, values: ctx})
		if !d.finish(c, err) && c != nil {
			p.put(c) // the caller gave up
		}
	}()
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	w := p.waiters.Get().(*waiter[T])
	defer p.recycle(w)
	for {
		var ready <-chan struct{} // nil when not listed
		p.mu.Lock()
		if !p.closed {
			p.dialers.push(w)
			ready = w.ready
		}
		p.mu.Unlock()
		var cause error
		received := false
		select {
		case <-d.done:
		case <-ready:
			received = true
		case <-ctx.Done():
			cause = ctx.Err()
		case <-timeout:
			cause = errTimedOut
		}
		p.mu.Lock()
		if w.queued {
			p.dialers.remove(w)
			ready = nil
		}
		p.mu.Unlock()
		if ready != nil && !received {
			<-ready // handed a connection as the wait ended: serving sends under mu
		}
		handed := w.conn
		w.conn = nil
		if handed != nil && cause != nil {
			p.put(handed) // pass it on: nothing is lost
			handed = nil
		}
		if handed != nil {
			c := p.takeHanded(ctx, handed)
			if c == nil {
				continue // it was bad: wait for the dial, or another
			}
			if !d.abandon() { // the dial finished too
				<-d.done
				if d.err == nil {
					p.put(d.c)
				}
			}
			return c, nil
		}
		if cause != nil && d.abandon() {
			return nil, p.ctxError(cause)
		}
		<-d.done
		if d.err != nil {
			return nil, d.err
		}
		p.lent(d.c, clock.Now())
		return d.c, nil
	}
}

// takeHanded readies for the caller of dial a connection handed off by its
// last borrower (counted in use): it returns it, or nil when it was bad
// (closed) or ctx ended (passed on).
func (p *Pool[T]) takeHanded(ctx context.Context, c *Conn[T]) *Conn[T] {
	now := clock.Now()
	if p.expired(c, now) {
		p.closeConn(c, CloseLifetime, keepNone, noOutcome)
		return nil
	}
	if err := p.f.Reset(ctx, c.value); err != nil {
		if ctx.Err() != nil {
			p.put(c) // the caller gave up; the connection may be fine
		} else {
			p.closeConn(c, CloseValidation, keepNone, noOutcome)
		}
		return nil
	}
	p.lent(c, now)
	return c
}

// dialerList is the FIFO list of callers waiting for their own dial, which
// a released connection may serve (see Pool.dial). It links waiters
// through the fields the wait queue uses: a waiter is never in both.
type dialerList[T any] struct {
	head, tail *waiter[T]
}

func (l *dialerList[T]) push(w *waiter[T]) {
	w.prev, w.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = w
	} else {
		l.head = w
	}
	l.tail = w
	w.queued = true
}

func (l *dialerList[T]) remove(w *waiter[T]) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		l.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		l.tail = w.prev
	}
	w.next, w.prev = nil, nil
	w.queued = false
}

// pendingDial is a dial that its caller may abandon.
type pendingDial[T any] struct {
	done chan struct{} // closed by finish when the caller still wants the result

	mu        sync.Mutex
	abandoned bool // guarded by mu
	finished  bool // guarded by mu
	c         *Conn[T]
	err       error
}

// finish hands the result to the caller and reports whether it was taken.
func (d *pendingDial[T]) finish(c *Conn[T], err error) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.abandoned {
		return false
	}
	d.finished, d.c, d.err = true, c, err
	close(d.done)
	return true
}

// abandon gives up on the dial unless it has finished; it reports whether it did.
func (d *pendingDial[T]) abandon() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.abandoned = !d.finished
	return d.abandoned
}

// valuesContext has the values of one context and the deadline and
// cancellation of another.
type valuesContext struct {
	context.Context
	values context.Context
}

func (c valuesContext) Value(key any) any { return c.values.Value(key) }

// create dials in a reserved slot, bounded by ConnectTimeout. On success the
// connection is in use; on failure the slot is freed for a waiter.
func (p *Pool[T]) create(ctx context.Context) (*Conn[T], error) {
	dctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
	var v T
	var err error
	if p.limiter != nil {
		err = p.limiter.Wait(dctx)
	}
	if err == nil {
		v, err = p.f.Create(dctx)
	}
	cancel()

	p.mu.Lock()
	p.dialing--
	if err != nil {
		p.total--
		p.stats.connectErrors++
		p.lastConnErr = err
		p.wakeLocked()
		p.mu.Unlock()
		return nil, &ConnectError{Err: err}
	}
	p.stats.created++
	if p.closed {
		p.total--
		p.stats.closed[ClosePoolClosed]++
		p.mu.Unlock()
		p.f.Close(v, ClosePoolClosed)
		return nil, ErrClosed
	}
	p.inUse++
	p.wakeLocked() // a dial slot is free again
	lifetime := p.drawLifetimeLocked()
	p.mu.Unlock()
	now := clock.Now()
	return &Conn[T]{p: p, value: v, created: now, lifetime: lifetime, lastUsed: now}, nil
}

// wakeLocked serves waiters while there is something for them: an idle
// connection, or room to dial.
func (p *Pool[T]) wakeLocked() {
	if p.queue.len == 0 || p.closed || p.suspended {
		return
	}
	now := clock.Now()
	for p.queue.len > 0 {
		var w *waiter[T]
		switch {
		case len(p.idle) > 0:
			if w = p.nextLocked(p.freeLocked(), now); w == nil {
				return
			}
			w.conn, w.validate = p.popIdleLocked(now, 0)
		case p.canDialLocked():
			if w = p.nextLocked(p.freeLocked(), now); w == nil {
				return
			}
			p.reserveDialLocked()
			w.dial = true
		default:
			return
		}
		w.ready <- struct{}{}
	}
}

// nextLocked removes and returns the waiter to serve with one of free
// connections (idle or not yet dialed, counting one being released): the
// first in service order, or the longest-waiting PriorityCritical caller
// when only the CriticalReserve is free. It returns nil when no waiter may
// take it.
func (p *Pool[T]) nextLocked(free int, now time.Time) *waiter[T] {
	w := p.queue.best(now, p.cfg.StarvationAfter)
	if w != nil && w.prio != critical && free <= p.cfg.CriticalReserve {
		w = p.queue.head[critical]
	}
	if w == nil {
		return nil
	}
	p.dequeueLocked(w, now)
	p.serves.served(now)
	if p.cfg.OnQueuePosition != nil {
		p.repositionLocked(now)
	}
	return w
}

// dequeueLocked removes w from the queue, counting its boosts.
func (p *Pool[T]) dequeueLocked(w *waiter[T], now time.Time) {
	p.queue.remove(w)
	p.stats.boosts += int64(level(w, now, p.cfg.StarvationAfter) - w.prio)
	if p.queue.len == 0 {
		p.serves.end()
	}
}

// repositionLocked updates the waiters' positions and signals those that
// changed (OnQueuePosition).
func (p *Pool[T]) repositionLocked(now time.Time) {
	p.queue.walk(now, p.cfg.StarvationAfter, func(w *waiter[T], pos int) bool {
		if w.pos != pos {
			w.pos = pos
			select {
			case w.moved <- struct{}{}:
			default: // a change not yet read: the waiter reads the latest
			}
		}
		return true
	})
}

// Release returns the connection to the pool: to the next waiter, or to the
// top of the idle stack. A connection past its lifetime, or released after
// its MaxUses-th acquisition, is closed instead. It reports whether the
// pool took the connection back: false when it had been reclaimed
// (Config.ReclaimBorrowed), and is closed; the borrower should then drop
// what it keeps of it.
func (c *Conn[T]) Release() bool { return c.ReleaseAt(clock.Now()) }

// ReleaseAt is Release for a borrower that has read the clock: now is when
// the borrowing ended.
func (c *Conn[T]) ReleaseAt(now time.Time) bool {
	p := c.p
	if c.reclaimed.Load() {
		return false
	}
	c.lastUsed = now
	o := p.settle(c, false)
	switch {
	case p.expired(c, now):
		closed, _ := p.closeConn(c, CloseLifetime, keepNone, o)
		return closed
	case p.cfg.MaxUses > 0 && c.uses >= p.cfg.MaxUses:
		closed, _ := p.closeConn(c, CloseUsage, keepNone, o)
		return closed
	}
	if p.cfg.ValidateOnRelease {
		abandoned, _, err := p.check(context.Background(), c, keepNone, o)
		if abandoned { // counted closed, unless reclaimed; closed when Validate returns
			return !c.reclaimed.Load()
		}
		if err != nil && err != errClosing { // errClosing: putBack closes it
			closed, _ := p.closeConn(c, CloseValidation, keepNone, o)
			return closed
		}
	}
	return p.putBack(c, now, o, false)
}

// Destroy closes the connection instead of returning it. CloseErrors and
// CloseValidation mark the pool's idle connections suspect: each is
// validated before it is lent again, and maintenance checks them now.
// CloseErrors counts the borrowing as failed for adaptive aging. Like
// Release, it reports whether the pool took the connection: false when it
// had been reclaimed (and closed by the pool).
func (c *Conn[T]) Destroy(reason CloseReason) bool {
	if c.reclaimed.Load() {
		return false
	}
	closed, _ := c.p.closeConn(c, reason, keepNone, c.p.settle(c, reason == CloseErrors))
	return closed
}

// put hands c, counted in use, to the next waiter or pushes it on the idle stack.
func (p *Pool[T]) put(c *Conn[T]) { p.putBack(c, clock.Now(), noOutcome, false) }

// putBack is put with the time read by the caller and the outcome of the
// borrowing that ends. With inPlace, c goes back where its last use puts
// it in the idle stack, not on top. It reports false, doing nothing, when
// c was reclaimed.
func (p *Pool[T]) putBack(c *Conn[T], now time.Time, o outcome, inPlace bool) bool {
	p.mu.Lock()
	if c.reclaimed.Load() { // reclaimed since the borrower's check
		p.mu.Unlock()
		return false
	}
	p.recordLocked(o)
	if p.closed {
		p.mu.Unlock()
		p.destroy(c, ClosePoolClosed)
		return true
	}
	if p.tracking() {
		p.returnedLocked(c, now)
	}
	if p.total > p.cfg.MaxSize { // Resize shrank the pool
		p.mu.Unlock()
		p.destroy(c, CloseEvicted)
		return true
	}
	if p.queue.len > 0 && !p.suspended {
		if w := p.nextLocked(p.freeLocked()+1, now); w != nil {
			w.conn = c // stays in use
			w.ready <- struct{}{}
			p.mu.Unlock()
			return true
		}
	}
	if w := p.dialers.head; w != nil && !p.suspended { // no waiter took it: a caller waiting for its dial
		p.dialers.remove(w)
		w.conn = c // stays in use
		w.ready <- struct{}{}
		p.mu.Unlock()
		return true
	}
	p.inUse--
	if inPlace {
		p.insertIdleLocked(c)
	} else {
		p.idle = append(p.idle, c)
	}
	p.mu.Unlock()
	return true
}

// destroy closes c, counted in use, and frees its slot for the next waiter.
func (p *Pool[T]) destroy(c *Conn[T], reason CloseReason) {
	p.closeConn(c, reason, keepNone, noOutcome)
}

// What closeConn does with the slot of the connection it closes.
const (
	keepNone       = iota // free it for the next waiter
	keepSlot              // keep it for the caller's replacement dial
	keepBackground        // keep it for a background dial, counted in Pool.background
)

// closeConn closes c, counted in use, recording the outcome of the
// borrowing that ends. With keepSlot or keepBackground, the caller keeps
// c's slot to dial a replacement when MaxConcurrentConnects and MaxSize
// allow, and closeConn reports whether it did; otherwise the slot goes to
// the next waiter. It does nothing, and reports closed false, when c was
// reclaimed.
func (p *Pool[T]) closeConn(c *Conn[T], reason CloseReason, keep int, o outcome) (closed, dial bool) {
	closed, dial = p.retire(c, reason, keep, o)
	if closed {
		p.f.Close(c.value, reason)
	}
	return closed, dial
}

// retire is closeConn without the Factory.Close, which is left to the
// caller when it reports closed.
func (p *Pool[T]) retire(c *Conn[T], reason CloseReason, keep int, o outcome) (closed, dial bool) {
	p.mu.Lock()
	if c.reclaimed.Load() {
		p.mu.Unlock()
		return false, false
	}
	now := clock.Now()
	p.recordLocked(o)
	if p.tracking() {
		p.returnedLocked(c, now)
	}
	p.inUse--
	if p.drained != nil && p.inUse == 0 { // Close waits for this
		close(p.drained)
		p.drained = nil
	}
	p.countCloseLocked(c, reason, now)
	if reason == CloseErrors || reason == CloseValidation {
		p.suspectSince = now
		select {
		case p.trigger <- struct{}{}:
		default:
		}
	}
	if keep != keepNone && !p.closed && p.dialing < p.cfg.MaxConcurrentConnects && p.total <= p.cfg.MaxSize {
		p.dialing++ // total unchanged: the slot passes to the dial
		dial = true
		if keep == keepBackground {
			p.background.Add(1) // under mu, so never after Close began to wait
		}
	} else {
		p.total--
		p.wakeLocked()
	}
	p.mu.Unlock()
	return true, dial
}

// Close closes the idle connections, fails every waiter and later Acquire with
// ErrClosed, and stops maintenance. Borrowed connections are closed when they
// are released; with Config.CloseTimeout, Close waits up to that long for
// them, then takes back and closes those still borrowed (ClosePoolClosed).
// Close is idempotent.
func (p *Pool[T]) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.background.Wait()
		return
	}
	p.closed = true
	if p.expiry != nil {
		p.expiry.Stop()
	}
	idle := p.idle
	p.idle = nil
	p.total -= len(idle)
	p.stats.closed[ClosePoolClosed] += int64(len(idle))
	for w := p.queue.oldest(); w != nil; w = p.queue.oldest() {
		p.queue.remove(w)
		w.err = ErrClosed
		w.ready <- struct{}{}
	}
	var drained chan struct{}
	if p.cfg.CloseTimeout > 0 && p.inUse > 0 {
		drained = make(chan struct{})
		p.drained = drained
	}
	p.mu.Unlock()
	p.stop()
	for _, c := range idle {
		p.f.Close(c.value, ClosePoolClosed)
	}
	if drained != nil {
		t := time.NewTimer(p.cfg.CloseTimeout)
		select {
		case <-drained:
		case <-t.C:
		}
		t.Stop()
		p.closeBorrowed()
	}
	p.background.Wait()
}

// closeBorrowed takes back the connections still borrowed when Close has
// waited CloseTimeout, and closes them (see ReclaimBorrowed).
func (p *Pool[T]) closeBorrowed() {
	var borrowed []*Conn[T]
	now := clock.Now()
	p.mu.Lock()
	p.drained = nil
	for c := p.borrowed; c != nil; c = p.borrowed {
		c.reclaimed.Store(true)
		p.returnedLocked(c, now)
		p.inUse--
		p.total--
		p.countCloseLocked(c, ClosePoolClosed, now)
		borrowed = append(borrowed, c)
	}
	p.mu.Unlock()
	for _, c := range borrowed {
		p.f.Close(c.value, ClosePoolClosed)
	}
}

// Stats is a snapshot of a pool.
type Stats struct {
	Suspended bool // Suspend is in force
	MaxSize   int  // the configured cap
	Size      int  // connections open or being dialed
	Idle      int  // idle connections
	InUse     int  // connections lent out (or being checked)
	Dialing   int  // dials in progress
	Waiting   int  // acquisitions waiting

	Acquires         int64         // successful acquisitions
	Waits            int64         // acquisitions that had to wait
	WaitTime         time.Duration // total time spent waiting
	Timeouts         int64         // acquisitions that timed out
	Canceled         int64         // acquisitions whose context was canceled
	QueueFull        int64         // acquisitions refused by MaxWaitQueue
	WouldTimeout     int64         // acquisitions refused at once by FailFastBelow
	Boosts           int64         // priority levels gained by starving waiters, counted as they leave the queue
	Deadlocks        int64         // exhaustion episodes reported by the deadlock detector
	Created          int64         // connections dialed
	ConnectErrors    int64         // failed dials
	LastConnectError error         // the last dial error, nil if none yet

	Closed map[CloseReason]int64 // connections closed, by reason

	Shortened  int64   // connections closed by a lifetime that adaptive aging had shortened (counted in Closed[CloseLifetime] too)
	ErrorRate  float64 // failed share of the pool's last ErrorWindow borrowings (adaptive aging on); -1 until the window is full
	Keepalives int64   // keepalive pings of idle connections
	Overdue    int64   // borrowings that passed MaxBorrowTime (the reclaimed ones are in Closed[CloseReclaimed] too)
	Warnings   int64   // warnings given: soft ones, and MaxBorrowTime passed
}

// Stats returns a consistent snapshot of the pool.
func (p *Pool[T]) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Stats{
		Suspended: p.suspended,
		MaxSize:   p.cfg.MaxSize, Size: p.total, Idle: len(p.idle), InUse: p.inUse,
		Dialing: p.dialing, Waiting: p.queue.len,
		Acquires: p.acquires.Load(), Waits: p.stats.waits, WaitTime: time.Duration(p.waitTime.Load()),
		Timeouts: p.stats.timeouts, Canceled: p.stats.canceled, QueueFull: p.stats.queueFull,
		WouldTimeout: p.stats.wouldTimeout, Boosts: p.stats.boosts, Deadlocks: p.stats.deadlocks,
		Created: p.stats.created, ConnectErrors: p.stats.connectErrors,
		LastConnectError: p.lastConnErr,
		Closed:           make(map[CloseReason]int64, numCloseReasons),
		Shortened:        p.stats.shortened, ErrorRate: p.window.rate(p.cfg.ErrorWindow),
		Keepalives: p.stats.keepalives, Overdue: p.stats.overdue, Warnings: p.warnings.Load(),
	}
	for r, n := range p.stats.closed {
		s.Closed[CloseReason(r)] = n
	}
	return s
}
