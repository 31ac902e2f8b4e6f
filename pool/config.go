package pool

import (
	"fmt"
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

	// MaxLifetime closes a connection this long after it was created, when it
	// is next idle. Default 30m; negative: never.
	MaxLifetime time.Duration
	// IdleTimeout closes a connection idle for this long, while the pool is
	// above MinSize. Default 10m; negative: never.
	IdleTimeout time.Duration

	// ConnectTimeout bounds one dial (Factory.Create). Default 30s.
	ConnectTimeout time.Duration
	// ConnectRate limits new connections per second, a throttle against
	// connection storms; bursts of up to MaxConcurrentConnects are allowed.
	// Default 0: no limit.
	ConnectRate float64
	// MaxConcurrentConnects caps the dials in progress at once; callers over
	// the cap wait for a connection like any other waiter. Default 0: MaxSize.
	MaxConcurrentConnects int

	// ValidationTimeout bounds one Factory.Validate. Default 5s.
	ValidationTimeout time.Duration
	// ValidationBypass skips validation of an idle connection on acquire when
	// it was last used less than this long ago, and no sibling has failed
	// since. Default 500ms; negative: validate on every acquire.
	ValidationBypass time.Duration
	// ValidateOnRelease validates a connection when it is released, before it
	// becomes idle. Default false.
	ValidateOnRelease bool

	// MaintenanceInterval is the period of the maintenance loop (idle and
	// lifetime expiry, refill to MinSize). Default 1s.
	MaintenanceInterval time.Duration
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
		{"MaxWaitQueue", c.MaxWaitQueue}, {"MaxConcurrentConnects", c.MaxConcurrentConnects}} {
		if f.v < 0 {
			return c, fmt.Errorf("%s is %d, must not be negative", f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"ConnectTimeout", c.ConnectTimeout}, {"ValidationTimeout", c.ValidationTimeout},
		{"MaintenanceInterval", c.MaintenanceInterval}} {
		if f.v < 0 {
			return c, fmt.Errorf("%s is %v, must not be negative", f.name, f.v)
		}
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
	return c, nil
}
