package pool

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"
)

// Defaults applied by Config.normalize to zero-valued fields.
const (
	DefaultMaxSize             = 10
	DefaultAcquireTimeout      = 30 * time.Second
	DefaultConnectTimeout      = 30 * time.Second
	DefaultMaxLifetime         = 30 * time.Minute
	DefaultIdleTimeout         = 10 * time.Minute
	DefaultValidationTimeout   = 5 * time.Second
	DefaultValidationBypass    = 500 * time.Millisecond
	DefaultMaintenanceInterval = time.Second
	DefaultFailFastBelow       = 0.05
	DefaultLifetimeJitter      = 0.1
	DefaultWarnFraction        = 0.9
	DefaultKeepaliveInterval   = 2 * time.Minute
	DefaultErrorWindow         = 20
	DefaultBreakFor            = 500 * time.Millisecond
	maxErrorWindow             = 64 // the bits of an outcomes window
)

// Config sizes and times a Pool. Its zero value is usable: every zero field
// takes the default its comment gives. A negative duration means "never" where
// the field says so.
type Config struct {
	// MinSize is the number of connections maintenance keeps open, idle or
	// not. Default 0.
	MinSize int
	// MaxSize caps the connections open at once, idle, in use and being
	// dialed. Default DefaultMaxSize (10).
	MaxSize int
	// InitialSize is the number of connections the pool dials, in the
	// background, right after New. Default MinSize.
	InitialSize int

	// AcquireTimeout bounds one Acquire, independently of the caller's
	// context (whichever ends first wins). Default 30s; negative: only the
	// caller's context bounds the wait.
	AcquireTimeout time.Duration
	// MaxWaitQueue caps the number of callers waiting for a connection;
	// beyond it Acquire fails at once with ErrQueueFull. Default 0: no cap.
	MaxWaitQueue int

	// MaxLifetime closes a connection this long after it was created (give
	// or take LifetimeJitter), when it is next idle or released. Default
	// 30m; negative: never.
	MaxLifetime time.Duration
	// LifetimeJitter spreads the lifetimes of the connections over
	// MaxLifetime×(1±LifetimeJitter), so that connections dialed together
	// are not all closed, and dialed again, in one maintenance tick. Each
	// connection's lifetime is drawn once, when it is created (drawing it
	// again at every check would converge on MaxLifetime): the pool starts
	// at a random point and steps by the golden ratio through the range, so
	// that any n connections created in a row lie more than 0.44/n of the
	// range apart, which independent random draws would not promise.
	// Default 0.1 (±10%); negative: no jitter. It must be less than 1.
	LifetimeJitter float64
	// MaxUses closes a connection when it is released after its MaxUses-th
	// acquisition (Oracle UCP's maximum reuse count), with the reason
	// CloseUsage. Default 0: no limit.
	MaxUses int64
	// IdleTimeout closes a connection idle for this long, while the pool is
	// above MinSize (or PredictiveWarmup's target). Default 10m; negative:
	// never.
	IdleTimeout time.Duration

	// ErrorThreshold turns on adaptive aging: when the share of failed
	// borrowings (see Conn.ReportError) among a connection's last
	// ErrorWindow borrowings, or among the pool's last ErrorWindow
	// borrowings, exceeds ErrorThreshold, the lifetime of that connection,
	// or of every connection, shortens linearly with the excess: from its
	// jittered MaxLifetime at the threshold down to MinLifetime when every
	// borrowing failed. A connection is judged once ErrorWindow/4 of its
	// borrowings are recorded, the pool once ErrorWindow are. As successful
	// borrowings push the failures out of the window, the lifetime grows
	// back. A connection that outlives its shortened lifetime is closed
	// with the reason CloseLifetime and counted in Stats.Shortened. Needs
	// MaxLifetime. Default 0: off; it must be less than 1 (0.2 is a
	// reasonable value).
	ErrorThreshold float64
	// ErrorWindow is the number of recent borrowings adaptive aging looks
	// at, for each connection and for the pool. Default 20; at most 64.
	ErrorWindow int
	// MinLifetime is the shortest lifetime adaptive aging gives a
	// connection. Default MaxLifetime/10.
	MinLifetime time.Duration

	// MaxBorrowTime reports a connection borrowed for longer, once per
	// borrowing (to the Factory's Warn, if it has one, else to Logger), on
	// the maintenance pass after the limit passes. Default 0: off.
	MaxBorrowTime time.Duration
	// ReclaimBorrowed makes MaxBorrowTime a hard limit, like UCP's
	// abandoned-connection timeout: the connection is taken back from its
	// borrower and closed (Factory.Close with CloseReclaimed, on the
	// maintenance goroutine, while the borrower may still use it: see
	// Factory.Close), its slot is freed for waiters, and the borrower's
	// later Release, Destroy or Replace does nothing and reports false
	// (Conn.Reclaimed reports it too). Default false; it needs
	// MaxBorrowTime.
	ReclaimBorrowed bool
	// LeakThreshold reports a borrowing held longer than this, once, to
	// the Factory's Leak if it is a Leaker (else to Logger, at Warn level):
	// the maintenance goroutine checks the borrowings every LeakThreshold/4
	// (at least 10ms apart), besides each maintenance pass, the same walk
	// that checks MaxBorrowTime. Borrowings lists those held past it at any
	// time. It makes the pool list borrowed connections, which costs every
	// Acquire a lock. Default 0: off.
	LeakThreshold time.Duration
	// WarnFraction gives a soft warning (to the Factory's Warn, if it has
	// one, else to Logger) when a connection reaches this fraction of a
	// limit: its lifetime (seen by maintenance while idle, and on each
	// acquisition), MaxUses (on acquisition) or MaxBorrowTime (by
	// maintenance). Each is given once per connection (per borrowing for
	// MaxBorrowTime). Default 0.9; negative: no soft warnings. It must be
	// less than 1.
	WarnFraction float64
	// KeepaliveInterval makes maintenance validate (ping) every idle
	// connection not used nor pinged for this long, so that server idle
	// limits (MySQL's wait_timeout, PostgreSQL's idle_session_timeout,
	// PgBouncer's and proxies' idle timeouts) and stateful middleboxes that
	// drop idle flows (often at 5 minutes, or 350s on an AWS NLB) neither
	// close it nor leave a borrower to find it dead. A connection that
	// fails is closed (CloseValidation) and a replacement dialed at once;
	// its siblings become suspect and are validated too. A ping does not
	// count as a use: IdleTimeout still closes surplus connections.
	// Default 2m (HikariCP's keepaliveTime default): it costs one round trip
	// per idle connection every 2 minutes, and stays below the limits
	// above; negative: off.
	KeepaliveInterval time.Duration

	// PredictiveWarmup raises the pool's minimum ahead of the hours of
	// day that were busy. The pool records, for each hour of day (in
	// WarmupLocation), the most connections its borrowers held at once in
	// its last occurrence, or half the value recorded before if that is
	// more (so an hour that stops being busy halves each quiet day).
	// Maintenance keeps that many connections open, up to MaxSize and
	// never below MinSize, from WarmupLead before the hour starts to its
	// end, dialed the way MinSize's are (ConnectRate,
	// MaxConcurrentConnects), and IdleTimeout closes them after it as
	// usual. The pool's own use of connections (keepalive pings,
	// validation by maintenance, its dials) does not count. A peak counts
	// for the hour of the maintenance pass after it, up to a
	// MaintenanceInterval late. Stats.WarmupTarget reports the minimum in
	// force, Profile the hours. Default false: off.
	PredictiveWarmup bool
	// WarmupLead is how long before a busy hour starts PredictiveWarmup
	// opens its connections. Default DefaultWarmupLead (10m); it must be
	// less than 24h.
	WarmupLead time.Duration
	// WarmupLocation is the time zone of PredictiveWarmup's hours of day.
	// Default time.Local.
	WarmupLocation *time.Location

	// ConnectTimeout bounds one dial (Factory.Create). Default 30s.
	ConnectTimeout time.Duration
	// ConnectRate limits new connections per second, a throttle against
	// connection storms; bursts of up to MaxConcurrentConnects are allowed.
	// Default 0: no limit.
	ConnectRate float64
	// MaxConcurrentConnects caps the dials in progress at once; callers over
	// the cap wait for a connection like any other waiter. Default 0: MaxSize.
	MaxConcurrentConnects int

	// BreakAfter turns on the circuit breaker (circuit.go): after this many
	// consecutive connection failures the circuit opens. Failures are
	// dials that fail (Factory.Create errors, but not a context.Canceled
	// one nor a dial cut short by Close) and connections discarded as bad
	// (Destroy or Replace with CloseErrors, or CloseValidation: a failed
	// Validate or Reset), counted since the last dial that succeeded. A
	// failed dial opens the circuit when it brings the count to BreakAfter;
	// bad connections alone only bring the count there, after which dials
	// go one at a time and the first that fails opens the circuit (so a
	// database restart, which leaves every idle connection bad but
	// accepts the next dial, does not open it). While the circuit is open,
	// an Acquire that would dial fails at once with a *CircuitOpenError
	// (ErrCircuitOpen), as do the waiters already queued that would have
	// dialed; idle connections still serve, and nothing dials (no refill
	// to MinSize, no replacement) but one probe every BreakFor, on a
	// goroutine of the pool's. A dial that succeeds, the probe's or one
	// already in progress, closes the circuit; a probe that fails opens it
	// for another BreakFor. Default 0: off.
	BreakAfter int
	// BreakFor is how long the circuit stays open before the probe dial,
	// and again after each probe that fails. Default DefaultBreakFor
	// (500ms) when BreakAfter is set.
	BreakFor time.Duration

	// ValidationTimeout bounds one Factory.Validate. Default 5s.
	ValidationTimeout time.Duration
	// ValidationBypass skips validation of an idle connection on acquire when
	// it was last used less than this long ago, and no sibling has failed
	// since. Default 500ms; negative: validate on every acquire.
	ValidationBypass time.Duration
	// ValidateOnRelease validates a connection when it is released, before it
	// becomes idle. Default false.
	ValidateOnRelease bool

	// CloseTimeout makes Pool.Close wait up to this long for the borrowed
	// connections to be released (each is closed as it is), then take back
	// those still borrowed and close them, with the reason ClosePoolClosed,
	// the way ReclaimBorrowed does (see Factory.Close): the borrower's
	// later Release, Destroy or Replace does nothing and reports false.
	// Close returns once every connection has been closed or handed to the
	// Factory to close. It makes the pool list borrowed connections, which
	// costs a little on every Acquire and Release. Default 0: Close does
	// not wait, and borrowed connections are closed when they are released.
	CloseTimeout time.Duration

	// MaintenanceInterval is the period of the maintenance loop (idle and
	// lifetime expiry, refill to MinSize). Default 1s.
	MaintenanceInterval time.Duration

	// FairQueue makes arrival order strict. Whether it is on or not, a
	// released connection (or a freed dial slot) goes straight to the
	// waiter first in service order (highest effective priority, then
	// longest waiting), never to the idle stack while someone waits for
	// it. Without FairQueue, a caller whose connection fails its checks
	// (expired, failed validation or Reset) loses its claim: the freed slot
	// goes to the next waiter and the caller queues again behind later
	// arrivals. With FairQueue, waiters of one effective priority are
	// served in the order their Acquire calls began, exactly: an Acquire
	// first serves every earlier waiter that could use an idle connection
	// or a dial slot before it takes one (no barging), and a caller whose
	// connection fails its checks keeps its claim, dialing the replacement
	// itself (or, at MaxConcurrentConnects, waiting again at its original
	// place). Default false.
	FairQueue bool

	// CriticalReserve is the number of connections, idle or not yet dialed,
	// that only PriorityCritical acquisitions may take: the others wait
	// while no more than CriticalReserve connections are free. A priority
	// raised by starvation boosts does not open the reserve. Default 0; it
	// must be less than MaxSize.
	CriticalReserve int

	// StarvationAfter raises a waiter's effective priority one level for
	// every StarvationAfter it has waited, up to PriorityCritical, so that
	// every waiter is eventually served however steady the load above it:
	// a PriorityLow waiter is served like a critical one, in arrival order,
	// after 3×StarvationAfter. Boosts are computed from the waiters' ages
	// each time one is served (no timer or goroutine per waiter) and
	// counted in Stats.Boosts. Default AcquireTimeout/4 (so a low waiter
	// reaches the top before it would time out), DefaultAcquireTimeout/4
	// when AcquireTimeout is negative; negative: no boosts.
	StarvationAfter time.Duration

	// FailFastBelow makes an Acquire that would have to wait fail at once
	// with ErrWouldTimeout when the estimated chance of being served
	// before its deadline (the caller's, or AcquireTimeout) is below this
	// probability. The estimate is made only while the pool is
	// continuously backlogged: from the mean interval between serves of
	// waiters (an exponentially weighted average over the current backlog,
	// used once it holds at least 16 serves; the queue emptying starts a
	// new one), the number of waiters sure to be served first (those of
	// the caller's priority or higher), and a Poisson model of releases.
	// Default 0.05; negative: never fail early.
	FailFastBelow float64

	// OnQueuePosition, if set, is told a waiting Acquire's position in the
	// queue (1 is next to be served): when it starts waiting, then whenever
	// the position changes (arrivals of higher priority, departures,
	// boosts; changes by boost are noticed when the queue changes and on
	// each maintenance pass). It runs on the waiting goroutine, with the
	// Acquire's context, and holds up nothing but that wait; positions
	// that change faster than it runs are coalesced. Every queue change
	// then costs time in proportion to the number of waiters. Default nil.
	OnQueuePosition func(ctx context.Context, position int)

	// DeadlockThreshold turns on exhaustion and deadlock detection: when
	// waiters exist, no dial is in progress and no connection has been
	// released or closed for this long (so every connection the waiters may
	// use is borrowed), the pool reports it once per episode, an episode
	// ending with the next release: OnDeadlock is called, a warning is
	// logged to Logger and Stats.Deadlocks counts it. The report names the
	// borrowers with their acquisition stacks (captured by every Acquire
	// while the detector is on) and how long each has held its connection,
	// and the waiters with theirs. The check runs in the maintenance
	// goroutine every DeadlockThreshold/4. Default 0: off.
	DeadlockThreshold time.Duration
	// OnDeadlock, if set, receives each deadlock report, on the maintenance
	// goroutine (maintenance waits for it to return). Default nil.
	OnDeadlock func(DeadlockReport)
	// Logger receives the pool's warnings: deadlock reports, background
	// dials that fail (the first of a run of failures, at Warn, and the
	// recovery, at Info), and the Warnings of connections when the Factory
	// is not a Warner. Default nil: nothing is logged.
	Logger *slog.Logger
}

// Validate returns an error naming the first invalid field of c, or nil.
func (c Config) Validate() error {
	_, err := c.normalize()
	return err
}

// normalize returns c with defaults applied, or an error naming the first
// invalid field.
func (c Config) normalize() (Config, error) {
	for _, f := range []struct {
		name string
		v    int
	}{{"MinSize", c.MinSize}, {"MaxSize", c.MaxSize}, {"InitialSize", c.InitialSize},
		{"MaxWaitQueue", c.MaxWaitQueue}, {"MaxConcurrentConnects", c.MaxConcurrentConnects},
		{"CriticalReserve", c.CriticalReserve}, {"ErrorWindow", c.ErrorWindow}, {"BreakAfter", c.BreakAfter}} {
		if f.v < 0 {
			return c, fmt.Errorf("%s is %d, must not be negative", f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"ConnectTimeout", c.ConnectTimeout}, {"ValidationTimeout", c.ValidationTimeout},
		{"MaintenanceInterval", c.MaintenanceInterval}, {"DeadlockThreshold", c.DeadlockThreshold},
		{"MinLifetime", c.MinLifetime}, {"MaxBorrowTime", c.MaxBorrowTime}, {"LeakThreshold", c.LeakThreshold},
		{"CloseTimeout", c.CloseTimeout}, {"BreakFor", c.BreakFor}} {
		if f.v < 0 {
			return c, fmt.Errorf("%s is %v, must not be negative", f.name, f.v)
		}
	}
	if c.MaxUses < 0 {
		return c, fmt.Errorf("MaxUses is %d, must not be negative", c.MaxUses)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"LifetimeJitter", c.LifetimeJitter}, {"WarnFraction", c.WarnFraction}, {"ErrorThreshold", c.ErrorThreshold},
		{"ConnectRate", c.ConnectRate}, {"FailFastBelow", c.FailFastBelow}} {
		// NaN passes every comparison below, and an infinity means nothing
		// any of these fields can use.
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return c, fmt.Errorf("%s is %v, must be a finite number", f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"LifetimeJitter", c.LifetimeJitter}, {"WarnFraction", c.WarnFraction}, {"ErrorThreshold", c.ErrorThreshold}} {
		if f.v >= 1 {
			return c, fmt.Errorf("%s is %v, must be less than 1", f.name, f.v)
		}
	}
	if c.ErrorThreshold < 0 {
		return c, fmt.Errorf("ErrorThreshold is %v, must not be negative", c.ErrorThreshold)
	}
	if c.ErrorWindow > maxErrorWindow {
		return c, fmt.Errorf("ErrorWindow is %d, must be at most %d", c.ErrorWindow, maxErrorWindow)
	}
	if c.ReclaimBorrowed && c.MaxBorrowTime == 0 {
		return c, fmt.Errorf("ReclaimBorrowed is set without a MaxBorrowTime")
	}
	if c.ConnectRate < 0 {
		return c, fmt.Errorf("ConnectRate is %v, must not be negative", c.ConnectRate)
	}
	if c.MaxSize == 0 {
		c.MaxSize = max(DefaultMaxSize, c.MinSize)
	}
	if c.MinSize > c.MaxSize {
		return c, fmt.Errorf("MinSize (%d) is greater than MaxSize (%d)", c.MinSize, c.MaxSize)
	}
	if c.CriticalReserve >= c.MaxSize {
		return c, fmt.Errorf("CriticalReserve (%d) must be less than MaxSize (%d)", c.CriticalReserve, c.MaxSize)
	}
	if c.FailFastBelow >= 1 {
		return c, fmt.Errorf("FailFastBelow is %v, must be less than 1", c.FailFastBelow)
	}
	if c.InitialSize == 0 {
		c.InitialSize = c.MinSize
	}
	if c.InitialSize > c.MaxSize {
		return c, fmt.Errorf("InitialSize (%d) is greater than MaxSize (%d)", c.InitialSize, c.MaxSize)
	}
	if c.MaxConcurrentConnects == 0 || c.MaxConcurrentConnects > c.MaxSize {
		c.MaxConcurrentConnects = c.MaxSize
	}
	setDefault := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	setDefault(&c.AcquireTimeout, DefaultAcquireTimeout)
	setDefault(&c.MaxLifetime, DefaultMaxLifetime)
	setDefault(&c.IdleTimeout, DefaultIdleTimeout)
	setDefault(&c.ConnectTimeout, DefaultConnectTimeout)
	setDefault(&c.ValidationTimeout, DefaultValidationTimeout)
	setDefault(&c.ValidationBypass, DefaultValidationBypass)
	setDefault(&c.MaintenanceInterval, DefaultMaintenanceInterval)
	if c.StarvationAfter == 0 {
		if c.AcquireTimeout > 0 {
			c.StarvationAfter = c.AcquireTimeout / 4
		} else {
			c.StarvationAfter = DefaultAcquireTimeout / 4
		}
	}
	if c.FailFastBelow == 0 {
		c.FailFastBelow = DefaultFailFastBelow
	}
	if c.LifetimeJitter == 0 {
		c.LifetimeJitter = DefaultLifetimeJitter
	}
	if c.WarnFraction == 0 {
		c.WarnFraction = DefaultWarnFraction
	}
	setDefault(&c.KeepaliveInterval, DefaultKeepaliveInterval)
	if c.ErrorWindow == 0 {
		c.ErrorWindow = DefaultErrorWindow
	}
	if c.BreakAfter > 0 {
		setDefault(&c.BreakFor, DefaultBreakFor)
	}
	if c.MinLifetime == 0 && c.MaxLifetime > 0 {
		c.MinLifetime = c.MaxLifetime / 10
	}
	if err := c.normalizeWarmup(); err != nil {
		return c, err
	}
	if c.ErrorThreshold > 0 && c.MaxLifetime < 0 {
		return c, fmt.Errorf("ErrorThreshold is set but MaxLifetime is negative: adaptive aging shortens MaxLifetime")
	}
	return c, nil
}
