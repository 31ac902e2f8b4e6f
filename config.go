package sqlpool

import (
	"context"
	"database/sql/driver"
	"fmt"
	"log/slog"
	"time"

	"github.com/sqlpool/sqlpool/partition"
	"github.com/sqlpool/sqlpool/pool"
)

// CacheMode says how the per-connection statement cache is used.
type CacheMode uint8

// Statement cache modes.
const (
	// CacheDefault lets sqlpool choose per driver.
	CacheDefault CacheMode = iota
	// CacheOff prepares statements on the physical connection for each
	// borrowing and closes them when it ends.
	CacheOff
	// CacheExplicit caches statements prepared with DB.Prepare and friends.
	CacheExplicit
	// CacheAll also runs queries and execs with arguments through cached
	// prepared statements.
	CacheAll
)

// String returns the mode's name.
func (m CacheMode) String() string {
	switch m {
	case CacheDefault:
		return "default"
	case CacheOff:
		return "off"
	case CacheExplicit:
		return "explicit"
	case CacheAll:
		return "all"
	}
	return fmt.Sprintf("CacheMode(%d)", m)
}

// Config configures a Connector. The zero value is usable: each zero field
// takes the default its comment gives. NewConnector and Wrap copy it, so later
// changes to the caller's value have no effect.
type Config struct {
	// MinSize is the number of physical connections kept open, idle or not.
	// Default 0.
	MinSize int
	// MaxSize caps the physical connections open at once. Default 10, or
	// MinSize if larger.
	MaxSize int
	// InitialSize is the number of connections dialed in the background when
	// the Connector is made. Default MinSize.
	InitialSize int

	// AcquireTimeout bounds the wait for a connection, independently of the
	// caller's context: whichever ends first wins. Default 30s; negative:
	// only the caller's context bounds it.
	AcquireTimeout time.Duration
	// MaxWaitQueue caps the callers waiting for a connection; beyond it an
	// operation fails at once with ErrQueueFull. Default 0: no cap.
	MaxWaitQueue int

	// MaxLifetime closes a connection this long after it was dialed (give
	// or take LifetimeJitter), when it is next idle or released. Keep it
	// below the server's and any middlebox's limits. Default 30m; negative:
	// never.
	MaxLifetime time.Duration
	// LifetimeJitter spreads the connections' lifetimes over
	// MaxLifetime×(1±LifetimeJitter), drawn once per connection when it is
	// dialed, so that connections dialed together are not all closed and
	// dialed again in one maintenance tick: any n connections dialed in a
	// row expire more than 0.44/n of that range apart (see
	// pool.Config.LifetimeJitter). Default 0.1 (±10%); negative: none.
	LifetimeJitter float64
	// MaxUses closes a connection when it is released after its MaxUses-th
	// borrowing (Oracle UCP's maximum reuse count; reason "usage").
	// Default 0: no limit.
	MaxUses int64
	// IdleTimeout closes a connection idle this long while more than MinSize
	// (or PredictiveWarmup's target) are open. Default 10m; negative: never.
	IdleTimeout time.Duration

	// ErrorThreshold turns on adaptive aging: when more than this share of
	// a connection's last ErrorWindow borrowings failed, or of the pool's,
	// that connection's lifetime, or every connection's, shortens in
	// proportion, down to MinLifetime when all failed, and grows back as
	// borrowings succeed again. A borrowing failed when one of its
	// operations returned an error, except the caller's own cancellation
	// (its context done), driver.ErrSkip, and errors whose SQLSTATE (when
	// the driver reports one, as lib/pq and pgx do) is of class 22 (data),
	// 23 (integrity), 40 (transaction rollback) or 42 (syntax, access): the
	// statement's fault, not the connection's. See
	// pool.Config.ErrorThreshold. Default 0: off; 0.2 is a reasonable
	// value.
	ErrorThreshold float64
	// ErrorWindow is the number of recent borrowings adaptive aging judges,
	// per connection and for the pool. Default 20, at most 64.
	ErrorWindow int
	// MinLifetime is the shortest lifetime adaptive aging gives. Default
	// MaxLifetime/10.
	MinLifetime time.Duration

	// MaxBorrowTime reports a physical connection borrowed longer than this
	// (an open Rows, Tx or *sql.Conn), once per borrowing, to OnWarning and
	// Logger (Warn level), within a MaintenanceInterval. Default 0: off.
	MaxBorrowTime time.Duration
	// ReclaimBorrowed makes MaxBorrowTime a hard limit, like UCP's
	// abandoned-connection timeout: the physical connection is taken from
	// its borrower and closed (reason "reclaimed"), its slot (and its
	// partition's) freed for others at once; the borrower's next operation
	// fails with ErrReclaimed, and so does every later one of the same Tx
	// or *sql.Conn (database/sql then gives the handle back without
	// closing anything twice). A call to the driver in progress at that
	// moment is not interrupted: the connection is closed when it returns,
	// and its error, if any, is ErrReclaimed (closing a connection under a
	// running call races inside go-sql-driver/mysql and pgx; bound calls
	// with contexts or statement timeouts). Rows being read and a
	// connection reached with Raw are not protected: the close may happen
	// under them, and they see the driver's error. Default false; needs
	// MaxBorrowTime.
	ReclaimBorrowed bool
	// WarnFraction gives a soft warning, to OnWarning and Logger, when a
	// physical connection reaches this fraction of its lifetime (at Debug
	// level: every connection does), of MaxUses (Debug) or of
	// MaxBorrowTime (Warn). RecycleAdaptive uses it too. Default 0.9;
	// negative: no soft warnings (RecycleAdaptive then uses 0.9).
	WarnFraction float64
	// OnWarning, if set, receives each Warning: soft ones, and borrowings
	// past MaxBorrowTime. It runs on the goroutine that noticed (an
	// acquiring one, or the pool's maintenance goroutine); keep it short.
	// Default nil.
	OnWarning func(Warning)
	// KeepaliveInterval pings, from the maintenance goroutine, every idle
	// connection neither used nor pinged for this long, so that server
	// idle limits (MySQL's wait_timeout, PostgreSQL's idle_session_timeout,
	// PgBouncer's and proxies' idle timeouts) and middleboxes that drop
	// idle flows (often at 5 minutes; 350s on an AWS NLB, 4 minutes on an
	// Azure load balancer) neither close it nor leave a caller to find it
	// dead. A connection whose ping fails is closed (reason "validation")
	// and replaced at once, and its idle siblings are checked. A ping is
	// not a use: IdleTimeout still closes surplus connections. Default 2m,
	// HikariCP's default, below those limits, for one round trip per idle
	// connection every 2 minutes; negative: off.
	KeepaliveInterval time.Duration

	// PredictiveWarmup raises the minimum ahead of the hours of day that
	// were busy. The pool records, for each hour of day (in
	// WarmupLocation), the most physical connections borrowed at once in
	// its last occurrence, or half the value recorded before if that is
	// more (so an hour that stops being busy halves each quiet day), and
	// keeps that many open, up to MaxSize and never below MinSize, from
	// WarmupLead before the hour to its end, dialed like MinSize's
	// (ConnectRate, MaxConcurrentConnects); IdleTimeout closes them after
	// it. It warms the whole pool, with connections set up for no
	// partition yet (a partition's first borrowing of one sets its
	// session up). Stats.WarmupTarget reports the minimum in force.
	// Default false: off.
	PredictiveWarmup bool
	// WarmupLead is how long before a busy hour PredictiveWarmup opens its
	// connections. Default 10m (pool.DefaultWarmupLead); it must be less
	// than 24h.
	WarmupLead time.Duration
	// WarmupLocation is the time zone of PredictiveWarmup's hours of day.
	// Default time.Local.
	WarmupLocation *time.Location

	// Recycle is what happens to a connection's session when a borrowing
	// ends: RecycleFast (the default: the session is reused as the last
	// borrower left it), RecycleChecked (reset: DISCARD ALL on PostgreSQL),
	// RecycleReplace (a new connection) or RecycleAdaptive. See
	// RecycleStrategy. It applies to every partition.
	Recycle RecycleStrategy
	// ResetSQL is the statement RecycleChecked runs, after the driver's
	// ResetSession, to reset a session, instead of the driver's default
	// (DISCARD ALL on lib/pq and pgx; none elsewhere, where Checked
	// replaces the connection). If it contains DISCARD ALL or DEALLOCATE,
	// the connection's statement cache is dropped after it runs. Default "".
	ResetSQL string

	// BeforeConnect, if set, is called before each dial of a physical
	// connection, with the dial's context (bounded by ConnectTimeout,
	// carrying the values of the operation that needs the connection). A
	// non-nil error fails the dial with it. Use it to refresh what your
	// driver.Connector reads on each Connect, such as a short-lived IAM
	// token or rotated password: sqlpool calls the same Connector's Connect
	// right after, so the credential must reach the driver through it (a
	// Connector of your own that builds the DSN from the current
	// credential, go-sql-driver/mysql's Config.BeforeConnect, pgx's
	// stdlib.OptionBeforeConnect); a Connector that parsed a fixed DSN once
	// (pq.NewConnector) will not see it. Default nil.
	BeforeConnect func(ctx context.Context) error
	// AfterConnect, if set, is called with each new physical connection
	// before it is used (session setup that every session needs). A non-nil
	// error closes the connection and fails the dial with it. Default nil.
	AfterConnect func(ctx context.Context, conn driver.Conn) error
	// BeforeAcquire, if set, is called before a physical connection is
	// lent to an operation, with the operation's context. Returning false
	// vetoes it: the connection is closed (reason "evicted") and another is
	// tried, up to MaxSize times in a row, after which the operation
	// fails. Default nil.
	BeforeAcquire func(ctx context.Context, conn driver.Conn) bool
	// AfterRelease, if set, is called when a borrowing ends with the
	// connection fit to be reused, before it is recycled. Returning false
	// closes it (reason "evicted"). Default nil.
	AfterRelease func(conn driver.Conn) bool
	// BeforeClose, if set, is called right before each physical connection
	// is closed, whatever the reason, on the goroutine that closes it (for
	// a reclaimed one, the pool's maintenance goroutine, or the borrower's
	// when a call was in progress). Default nil.
	BeforeClose func(conn driver.Conn)

	// ConnectTimeout bounds one dial. Default 30s.
	ConnectTimeout time.Duration
	// ConnectRate caps new connections per second (a throttle against
	// connection storms). Default 0: no cap.
	ConnectRate float64
	// MaxConcurrentConnects caps dials in progress at once. Default MaxSize.
	MaxConcurrentConnects int
	// BreakAfter turns on the circuit breaker: after this many consecutive
	// connection failures (dials that fail, but not those cut short by a
	// cancellation or Close; physical connections discarded as broken,
	// driver.ErrBadConn or a failed health check or reset) the circuit
	// opens, when a failed dial brings the count there: bad connections
	// alone only bring it to the threshold, after which dials go one at a
	// time and the first that fails opens it, so a database restart
	// (stale connections, then a dial that works) does not. A dial that
	// succeeds resets the count. While the circuit is open, an operation
	// that needs a new physical connection fails at once with an error
	// matching ErrCircuitOpen (a *CircuitOpenError, never
	// driver.ErrBadConn, so database/sql does not retry it), as do those
	// already waiting; idle connections still serve; nothing dials but one
	// probe every BreakFor, whose success closes the circuit.
	// Stats().CircuitOpen, CircuitOpens and CircuitRefused, and the
	// sqlpool_circuit_* metrics, show it. Default 0: off.
	BreakAfter int
	// BreakFor is how long the circuit stays open before the probe dial,
	// and again after each probe that fails. Default 500ms when BreakAfter
	// is set.
	BreakFor time.Duration

	// ValidationTimeout bounds one health check (the driver's Ping).
	// Default 5s.
	ValidationTimeout time.Duration
	// ValidationBypass skips the health check of an idle connection used
	// less than this long ago, unless a sibling has failed since. Default
	// 500ms; negative: check on every acquisition.
	ValidationBypass time.Duration
	// ValidateOnRelease checks each connection as it is released. Default
	// false.
	ValidateOnRelease bool
	// MaintenanceInterval is the period of the background loop that closes
	// idle and old connections and refills to MinSize. Default 1s.
	MaintenanceInterval time.Duration
	// CloseTimeout makes Close wait up to this long for borrowed
	// connections to be released, then close them: the borrowers' next
	// operations fail (ErrReclaimed; calls already running finish first).
	// Default 0: Close does not wait, and borrowed connections are closed
	// as they are released.
	CloseTimeout time.Duration

	// StatementCacheSize is the number of prepared statements each physical
	// connection keeps, least recently used evicted first. Default 64;
	// negative: no cache (as CacheOff).
	StatementCacheSize int
	// StatementCacheMaxTotal caps the cached statements of all connections
	// together, under server limits such as MySQL's max_prepared_stmt_count.
	// Default 1024.
	StatementCacheMaxTotal int
	// StatementCacheMaxBytes caps the SQL text, in bytes, of the
	// statements each physical connection keeps prepared, cached or held
	// for the current borrowing (one long transaction included): past it,
	// a query with arguments runs the driver's one-off way instead of on a
	// kept statement. Default 1 MiB.
	StatementCacheMaxBytes int
	// StatementCacheMode says which statements use the cache. Default
	// CacheDefault: sqlpool chooses per driver (see the README).
	StatementCacheMode CacheMode

	// Pooler says what stands between sqlpool and the database server.
	// Default PoolerNone: each physical connection is one server session.
	// Set PoolerTransaction behind PgBouncer in transaction mode (or RDS
	// Proxy, pgcat, Supavisor): see Pooler.
	Pooler Pooler

	// Routing defines the partitions and how operations are routed to them
	// by the values of their context (WithTenant and friends). The default
	// routes by tenant, creating a partition without limits for each tenant
	// on first use. sqlpool sets its NewState and Load.
	Routing partition.RouterConfig

	// Hooks are called on connection events, for monitoring. Default none.
	Hooks Hooks
	// DisableMetrics turns off the per-partition wait and hold histograms
	// and counters behind Handler and Collector (Stats keeps its own
	// counters). Default false: on.
	DisableMetrics bool
	// ManagementToken is the bearer token that Handler's POST actions
	// require. Default "": the management API is read-only.
	ManagementToken string
	// LeakThreshold reports a borrowing (an open Rows, Tx or *sql.Conn)
	// held longer than this, once, to Hooks.OnLeak, Stats and the leak
	// counter. Default 0: off.
	LeakThreshold time.Duration
	// LeakStacks captures the stack of every acquisition, so that a leak
	// report says where the connection was taken. It costs an allocation
	// and a stack walk per borrowing. Default false.
	LeakStacks bool

	// FairQueue makes arrival order strict. Whether it is on or not, a
	// released connection goes straight to the first waiter (highest
	// priority, then longest waiting). With FairQueue, an operation also
	// serves every earlier waiter that could use an idle connection or a
	// dial slot before it takes one, and a waiter whose connection fails
	// its health check or reset dials the replacement itself (or waits
	// again at its original place) instead of queueing behind later
	// arrivals. Default false.
	FairQueue bool
	// CriticalReserve is the number of connections that only operations
	// tagged WithPriority(ctx, PriorityCritical) may take: others wait while
	// no more than CriticalReserve connections are free. Default 0; it must
	// be less than MaxSize.
	CriticalReserve int
	// StarvationAfter raises a waiting operation's priority one level for
	// every StarvationAfter it waits, up to PriorityCritical (the reserve
	// stays closed to it), so every waiter is eventually served; Stats.Boosts
	// counts the levels gained. Default AcquireTimeout/4 (7.5s with the
	// default AcquireTimeout); negative: no boosts.
	StarvationAfter time.Duration
	// FailFastBelow refuses at once, with ErrWouldTimeout, an operation that
	// would have to wait and whose estimated chance of being served before
	// its deadline (the context's, or AcquireTimeout) is below this
	// probability. The estimate needs a backlog of at least 16 serves; see
	// pool.Config.FailFastBelow for the model. Default 0.05; negative:
	// never refuse early.
	FailFastBelow float64
	// OnQueuePosition, if set, is told a waiting operation's position in the
	// wait queue (1 is next) when it starts waiting and whenever it
	// changes, on the waiting goroutine, with the operation's context.
	// Default nil.
	OnQueuePosition func(ctx context.Context, position int)
	// DeadlockThreshold turns on exhaustion and deadlock detection: when
	// operations wait and no connection has been released for this long,
	// the pool reports it once per episode, naming the borrowers with their
	// acquisition stacks and the waiters (to OnDeadlock, to Logger as a
	// warning, and in Stats.Deadlocks). The classic case is a query on the
	// *sql.DB instead of the *sql.Tx inside a transaction, with every
	// connection held by such transactions. Stacks are captured on every
	// acquisition while it is on. Default 0: off.
	DeadlockThreshold time.Duration
	// OnDeadlock, if set, receives each deadlock report, on the pool's
	// maintenance goroutine. Default nil.
	OnDeadlock func(DeadlockReport)
	// Logger receives the pool's warnings (deadlock reports, borrowings
	// past MaxBorrowTime, connections near their limits) and background
	// dials that fail, such as those keeping MinSize. Default nil: nothing
	// is logged; use slog.Default() to log with the program's logger.
	Logger *slog.Logger
}

// Pooler says what stands between sqlpool and the database server.
type Pooler uint8

// Poolers.
const (
	// PoolerNone: each physical connection is one server session.
	PoolerNone Pooler = iota
	// PoolerTransaction: a pooler in transaction mode (PgBouncer's
	// pool_mode = transaction, RDS Proxy, pgcat, Supavisor) may hand the
	// connection's server session to another client after every
	// transaction, so sqlpool keeps no session state:
	//
	//   - no prepared statement outlives an operation: the statement cache
	//     is off, a *sql.Stmt keeps only its SQL text (each execution runs
	//     the driver's one-off path; a COPY is prepared within its
	//     transaction and closed before it ends), and the driver must send
	//     a query with arguments in one round trip: NewConnector adds
	//     binary_parameters=yes to a lib/pq DSN and
	//     default_query_exec_mode=exec to a pgx one when they are absent;
	//     a connector that cannot be checked or fixed is refused;
	//   - a partition's SetupSQL (which must be transaction-local:
	//     set_config(name, $1, true) or SET LOCAL) and StatementTimeout run
	//     inside every transaction; an autocommit statement of such a
	//     partition is wrapped in one (BEGIN, setup, statement, COMMIT when
	//     its rows are closed);
	//   - what needs a session is refused by NewConnector with an error
	//     that says what to use instead: a session-level SetupSQL, a
	//     ResetSQL, RecycleChecked or RecycleAdaptive (the pooler resets
	//     server sessions itself: server_reset_query), and a statement
	//     cache mode other than off.
	PoolerTransaction
)

// String returns the pooler's name.
func (p Pooler) String() string {
	switch p {
	case PoolerNone:
		return "none"
	case PoolerTransaction:
		return "transaction"
	}
	return fmt.Sprintf("Pooler(%d)", p)
}

// checkPooler refuses what cannot work behind c.Pooler.
func (c Config) checkPooler() error {
	switch c.Pooler {
	case PoolerNone:
		return nil
	case PoolerTransaction:
	default:
		return fmt.Errorf("sqlpool: invalid Config: Pooler is %v: use PoolerNone or PoolerTransaction", c.Pooler)
	}
	const why = "behind a transaction pooler (Pooler: PoolerTransaction) the server session changes after every transaction"
	switch {
	case c.StatementCacheMode == CacheExplicit || c.StatementCacheMode == CacheAll:
		return fmt.Errorf("sqlpool: invalid Config: StatementCacheMode %v keeps prepared statements, but %s: leave it CacheDefault or CacheOff", c.StatementCacheMode, why)
	case c.Recycle == RecycleChecked || c.Recycle == RecycleAdaptive:
		return fmt.Errorf("sqlpool: invalid Config: Recycle %v resets the session, but %s and the pooler resets server sessions itself (server_reset_query): use RecycleFast or RecycleReplace", c.Recycle, why)
	case c.ResetSQL != "":
		return fmt.Errorf("sqlpool: invalid Config: ResetSQL resets a session, but %s: drop it, and make partition setup transaction-local", why)
	}
	return nil
}

// poolConfig validates c and returns the pool's part of it.
func (c Config) poolConfig() (pool.Config, error) {
	if err := c.checkPooler(); err != nil {
		return pool.Config{}, err
	}
	if c.StatementCacheMaxBytes < 0 {
		return pool.Config{}, fmt.Errorf("sqlpool: invalid Config: StatementCacheMaxBytes is %d, must not be negative", c.StatementCacheMaxBytes)
	}
	if c.StatementCacheMaxTotal < 0 {
		return pool.Config{}, fmt.Errorf("sqlpool: invalid Config: StatementCacheMaxTotal is %d, must not be negative", c.StatementCacheMaxTotal)
	}
	if c.LeakThreshold < 0 {
		return pool.Config{}, fmt.Errorf("sqlpool: invalid Config: LeakThreshold is %v, must not be negative", c.LeakThreshold)
	}
	if c.StatementCacheMode > CacheAll {
		return pool.Config{}, fmt.Errorf("sqlpool: invalid Config: StatementCacheMode is %v", c.StatementCacheMode)
	}
	if c.Recycle > RecycleAdaptive {
		return pool.Config{}, fmt.Errorf("sqlpool: invalid Config: Recycle is %v", c.Recycle)
	}
	pc := pool.Config{
		MinSize:               c.MinSize,
		MaxSize:               c.MaxSize,
		InitialSize:           c.InitialSize,
		AcquireTimeout:        c.AcquireTimeout,
		MaxWaitQueue:          c.MaxWaitQueue,
		MaxLifetime:           c.MaxLifetime,
		LifetimeJitter:        c.LifetimeJitter,
		MaxUses:               c.MaxUses,
		IdleTimeout:           c.IdleTimeout,
		ErrorThreshold:        c.ErrorThreshold,
		ErrorWindow:           c.ErrorWindow,
		MinLifetime:           c.MinLifetime,
		MaxBorrowTime:         c.MaxBorrowTime,
		LeakThreshold:         c.LeakThreshold,
		ReclaimBorrowed:       c.ReclaimBorrowed,
		WarnFraction:          c.WarnFraction,
		KeepaliveInterval:     c.KeepaliveInterval,
		PredictiveWarmup:      c.PredictiveWarmup,
		WarmupLead:            c.WarmupLead,
		WarmupLocation:        c.WarmupLocation,
		ConnectTimeout:        c.ConnectTimeout,
		ConnectRate:           c.ConnectRate,
		MaxConcurrentConnects: c.MaxConcurrentConnects,
		BreakAfter:            c.BreakAfter,
		BreakFor:              c.BreakFor,
		ValidationTimeout:     c.ValidationTimeout,
		ValidationBypass:      c.ValidationBypass,
		ValidateOnRelease:     c.ValidateOnRelease,
		MaintenanceInterval:   c.MaintenanceInterval,
		CloseTimeout:          c.CloseTimeout,
		FairQueue:             c.FairQueue,
		CriticalReserve:       c.CriticalReserve,
		StarvationAfter:       c.StarvationAfter,
		FailFastBelow:         c.FailFastBelow,
		OnQueuePosition:       c.OnQueuePosition,
		DeadlockThreshold:     c.DeadlockThreshold,
		OnDeadlock:            c.OnDeadlock,
		Logger:                c.Logger,
	}
	if err := pc.Validate(); err != nil {
		return pc, fmt.Errorf("sqlpool: invalid Config: %w", err)
	}
	return pc, nil
}
