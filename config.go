package sqlpool

import (
	"context"
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

	// MaxLifetime closes a connection this long after it was dialed, when it
	// is next idle. Keep it below the server's and any middlebox's limits.
	// Default 30m; negative: never.
	MaxLifetime time.Duration
	// IdleTimeout closes a connection idle this long while more than MinSize
	// are open. Default 10m; negative: never.
	IdleTimeout time.Duration

	// ConnectTimeout bounds one dial. Default 30s.
	ConnectTimeout time.Duration
	// ConnectRate caps new connections per second (a throttle against
	// connection storms). Default 0: no cap.
	ConnectRate float64
	// MaxConcurrentConnects caps dials in progress at once. Default MaxSize.
	MaxConcurrentConnects int

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

	// StatementCacheSize is the number of prepared statements each physical
	// connection keeps, least recently used evicted first. Default 64;
	// negative: no cache (as CacheOff).
	StatementCacheSize int
	// StatementCacheMaxTotal caps the cached statements of all connections
	// together, under server limits such as MySQL's max_prepared_stmt_count.
	// Default 1024.
	StatementCacheMaxTotal int
	// StatementCacheMode says which statements use the cache. Default
	// CacheDefault: sqlpool chooses per driver (see the README).
	StatementCacheMode CacheMode

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
	// Logger receives the pool's warnings. Default nil: slog.Default().
	Logger *slog.Logger
}

// poolConfig validates c and returns the pool's part of it.
func (c Config) poolConfig() (pool.Config, error) {
	if c.StatementCacheMaxTotal < 0 {
		return pool.Config{}, fmt.Errorf("sqlpool: invalid Config: StatementCacheMaxTotal is %d, must not be negative", c.StatementCacheMaxTotal)
	}
	if c.LeakThreshold < 0 {
		return pool.Config{}, fmt.Errorf("sqlpool: invalid Config: LeakThreshold is %v, must not be negative", c.LeakThreshold)
	}
	if c.StatementCacheMode > CacheAll {
		return pool.Config{}, fmt.Errorf("sqlpool: invalid Config: StatementCacheMode is %v", c.StatementCacheMode)
	}
	pc := pool.Config{
		MinSize:               c.MinSize,
		MaxSize:               c.MaxSize,
		InitialSize:           c.InitialSize,
		AcquireTimeout:        c.AcquireTimeout,
		MaxWaitQueue:          c.MaxWaitQueue,
		MaxLifetime:           c.MaxLifetime,
		IdleTimeout:           c.IdleTimeout,
		ConnectTimeout:        c.ConnectTimeout,
		ConnectRate:           c.ConnectRate,
		MaxConcurrentConnects: c.MaxConcurrentConnects,
		ValidationTimeout:     c.ValidationTimeout,
		ValidationBypass:      c.ValidationBypass,
		ValidateOnRelease:     c.ValidateOnRelease,
		MaintenanceInterval:   c.MaintenanceInterval,
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
