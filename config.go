package sqlpool

import (
	"fmt"
	"time"

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

	// Hooks are called on connection events, for monitoring. Default none.
	Hooks Hooks
	// LeakThreshold reports a borrowing (an open Rows, Tx or *sql.Conn)
	// held longer than this, once, to Hooks.OnLeak, Stats and the leak
	// counter. Default 0: off.
	LeakThreshold time.Duration
	// LeakStacks captures the stack of every acquisition, so that a leak
	// report says where the connection was taken. It costs an allocation
	// and a stack walk per borrowing. Default false.
	LeakStacks bool
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
	}
	if err := pc.Validate(); err != nil {
		return pc, fmt.Errorf("sqlpool: invalid Config: %w", err)
	}
	return pc, nil
}
