// Package pool is a generic connection pool that knows nothing of SQL.
//
// A Pool keeps connections made by a Factory: idle ones on a LIFO stack (so a
// surplus sinks to the bottom and times out), waiters in FIFO queues ordered
// by Priority, a released connection handed directly to the next waiter. It
// grows lazily up to MaxSize, throttles dials, validates idle connections
// before lending them, and one maintenance goroutine, owned by the pool and
// stopped by Close, expires idle and old connections and refills to MinSize,
// or, with Config.PredictiveWarmup, to what the same hour of day needed
// (warmup.go), ahead of it.
//
// The wait queue (waitq.go) serves the highest effective priority first,
// then the longest waiting; a waiter's effective priority rises with its
// wait (Config.StarvationAfter), so none starves. Config.CriticalReserve
// keeps connections for PriorityCritical, Config.FairQueue makes arrival
// order exact, Config.FailFastBelow refuses at once a caller unlikely to be
// served before its deadline (estimate.go), Config.OnQueuePosition tells
// waiters their place, and Config.DeadlockThreshold reports a pool whose
// borrowers hold every connection while others wait (deadlock.go). A Group
// (group.go) caps the connections one group of borrowers holds at once
// inside the same queue: its callers at the cap keep their place and are
// passed over until the group has room. Config.BreakAfter opens a circuit
// breaker after consecutive connection failures: until a probe dial
// succeeds, the acquisitions that would dial are refused at once
// (circuit.go). A borrower that borrows again and again may park its
// connection between borrowings and retake it without the pool's lock,
// until the pool needs it back (Conn.Park, park.go).
//
// Connections age (lifecycle.go): each has a lifetime drawn once at
// creation (Config.MaxLifetime, Config.LifetimeJitter), a use limit
// (Config.MaxUses), and, with adaptive aging (Config.ErrorThreshold), a
// lifetime that shortens while its, or the pool's, recent borrowings fail
// (Conn.ReportError). Maintenance pings idle connections
// (Config.KeepaliveInterval), reports borrowings held past
// Config.LeakThreshold to a Factory that is a Leaker and, in the same walk,
// reports or reclaims those held past Config.MaxBorrowTime, and gives soft
// warnings at Config.WarnFraction of
// each limit to a Factory that is a Warner. Every closed connection carries
// a CloseReason.
package pool

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/sqlpool/sqlpool/internal/clock"
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
	circuitC   chan struct{} // buffered 1: the circuit breaker's probe time changed (circuit.go)

	mu sync.Mutex
	// guarded by mu:
	closed    bool
	suspended bool       // Suspend: nothing is lent until Resume
	idle      []*Conn[T] // LIFO: the top is the last element
	queue     waitQueue[T]
	dialers   dialerList[T] // callers waiting for their own dial
	drained   chan struct{} // made by Close waiting for borrowers (CloseTimeout), closed when none is left

	// The connection counts, guarded by mu too and changed only by the
	// helpers in slots.go, which state how they add up:
	total   int // connections open or being dialed
	inUse   int // lent to borrowers (or being checked)
	dialing int // dials in progress
	// orphans counts the dials in progress whose callers were served by a
	// released connection or gave up: each one's connection will serve a
	// waiter, so callers wait for it rather than dial more (see
	// dialWantedLocked).
	orphans int

	suspectSince time.Time // a connection failed: validate idle ones used before this
	lastConnErr  error
	fillFailing  bool // the last background dial failed; maintenance goroutine only
	stats        counters
	serves       serveRate   // how fast waiters are served, for FailFastBelow
	detector     detector    // DeadlockThreshold state
	borrowed     *Conn[T]    // while tracking(): the borrowed connections, newest first
	jitter       float64     // the last lifetime jitter point, in [0,1)
	window       outcomes    // the pool's recent borrowings, for adaptive aging
	breaker      breaker     // the circuit breaker (BreakAfter)
	expiry       *time.Timer // ends waits at AcquireTimeout (see armExpiryLocked); nil until the first wait
	expiryAt     time.Time   // when expiry fires; zero when it is not armed
	warm         warmup      // predictive warm-up: usage by hour of day (warmup.go)
	affine       []*Conn[T]  // the connections that have been parked (park.go), each at its slot-1

	parks     bool        // the configuration lets borrowers park connections (Config.parks)
	anyParked atomic.Bool // a connection may be parked (park.go)
	noPark    atomic.Bool // closing, suspended or shrinking: parkers release

	acquires  atomic.Int64  // successful acquisitions
	waitTime  atomic.Int64  // nanoseconds waited in the queue, by every Acquire
	warnings  atomic.Int64  // warnings given
	poolScale atomic.Uint64 // float64 bits: the pool's adaptive lifetime scale, 1 when healthy
	// circuitOpen mirrors breaker.open (written under mu) for CircuitOpen.
	circuitOpen atomic.Bool
}

// Conn is one pooled connection. Its borrower owns it from Acquire until it
// calls Release, Destroy, Replace or Park, exactly once (after Park, again
// from a successful Retake), or until maintenance
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
	// group is the Group the borrowing counts against, nil if none or
	// once counted out (ungroupLocked). Set by the borrower before its
	// Acquire returns (under Pool.mu when the connection is listed),
	// cleared under Pool.mu.
	group *Group

	// reclaimed is set, under Pool.mu, when maintenance takes the
	// connection back from its borrower (ReclaimBorrowed); read by the
	// borrower without the lock.
	reclaimed atomic.Bool

	// While the pool tracks borrowings (see tracking), a borrowed
	// connection is on the pool's list of borrowers, with the stack of the
	// Acquire that took it (deadlock detector only).
	stack        []byte    // written by the borrower before it is listed, reused
	bnext, bprev *Conn[T]  // guarded by Pool.mu
	listed       bool      // guarded by Pool.mu
	borrowedAt   time.Time // guarded by Pool.mu: when it was listed
	borrowWarned bool      // guarded by Pool.mu: the soft MaxBorrowTime warning was given
	overdue      bool      // guarded by Pool.mu: MaxBorrowTime passed
	leaked       bool      // guarded by Pool.mu: reported held past LeakThreshold

	// Parking (park.go): park is the generation and parkedBit; retakes
	// counts the acquisitions by Retake, added to Pool.acquires when the
	// connection closes; slot is 1 + its index in Pool.affine, 0 when it
	// is not listed there (guarded by Pool.mu: delisting another
	// connection moves it); enlisted says it was listed, for its owners
	// (set once, under Pool.mu, by the owner).
	park     atomic.Uint64
	retakes  atomic.Int64
	slot     int
	enlisted bool
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
		f:        f,
		cfg:      cfg,
		trigger:  make(chan struct{}, 1),
		circuitC: make(chan struct{}, 1),
		jitter:   rand.Float64(),
	}
	p.warner, _ = f.(Warner[T])
	p.parks = cfg.parks()
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
	stolen := p.unparkAllLocked()
	if p.expiry != nil {
		p.expiry.Stop()
	}
	idle := p.idle
	p.idle = nil
	now := clock.Now()
	for _, c := range idle {
		p.dropIdleLocked(c, ClosePoolClosed, now)
	}
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
	p.unsteal(stolen) // closes them
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
		p.dropLocked(c, ClosePoolClosed, now)
		borrowed = append(borrowed, c)
	}
	p.mu.Unlock()
	for _, c := range borrowed {
		p.f.Close(c.value, ClosePoolClosed)
	}
}
