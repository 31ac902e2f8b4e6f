package drivertest

import (
	"context"
	"database/sql/driver"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Driver is a fake database/sql driver with controllable latency, faults and
// optional interfaces, and exact counters of what was asked of it. Each
// Driver value is its own in-memory database server; the package
// documentation describes the statements it understands.
//
// A Driver is safe for concurrent use. Its connections, like real ones,
// are not: they deliberately touch unguarded state on every call, so the
// race detector reports a caller that uses one connection from two
// goroutines at once.
type Driver struct {
	opts        Options
	lastConnID  atomic.Int64
	lastWriteID atomic.Int64
	ops         counters
	connects    atomic.Int64
	connectErrs atomic.Int64
	closes      atomic.Int64

	mu           sync.Mutex
	store        map[string]driver.Value // guarded by mu
	conns        []*Conn                 // every connection ever opened, by ID; guarded by mu
	faults       Faults                  // guarded by mu
	untilBadConn int                     // operations left until the BadConnAfter fault fires; guarded by mu
}

// Options configure a [Driver].
type Options struct {
	// Latency is added to every query, exec, prepare, begin, commit and
	// ping. An operation whose context ends first returns the context's
	// error.
	Latency time.Duration
	// ConnectLatency is added to every connect, which likewise gives up
	// when its context ends.
	ConnectLatency time.Duration
	// Disable lists the optional interfaces that the driver's values leave
	// out.
	Disable Interface
}

// Faults are failures to inject into a [Driver]; see [Driver.SetFaults].
type Faults struct {
	// ConnectErr, if not nil, is returned by every connect.
	ConnectErr error
	// PingErr, if not nil, is returned by every ping of a healthy
	// connection.
	PingErr error
	// BadConnAfter, when positive, makes the BadConnAfter-th query, exec,
	// prepare, begin or ping on a healthy connection, counted across the
	// driver from when the faults were set, return driver.ErrBadConn once
	// and break its connection as [Conn.Kill] does.
	BadConnAfter int
	// Hang makes every query and exec block until its context is done,
	// then return the context's error (or until its connection is killed,
	// then return driver.ErrBadConn).
	Hang bool
}

// Stats are a [Driver]'s counters. Every call counts, whether or not it
// succeeds; Connects and Closes count only connections that opened.
type Stats struct {
	Connects      int64 // connections opened
	ConnectErrors int64 // connects that failed
	Closes        int64 // connections closed
	Open          int64 // connections open now: Connects - Closes
	Prepares      int64
	StmtCloses    int64
	Queries       int64 // by connections and statements
	Execs         int64 // by connections and statements
	Pings         int64
	Resets        int64 // ResetSession calls
	Begins        int64
	Commits       int64
	Rollbacks     int64
}

// New returns a new Driver, a database server of its own with an empty
// store.
func New(opts Options) *Driver {
	return &Driver{opts: opts, store: make(map[string]driver.Value)}
}

// Connector returns a connector to d. The name is ignored.
func (d *Driver) Connector(name string) driver.Connector {
	return connector{d}
}

// Open opens a new connection to d. It implements [driver.Driver]; the name
// is ignored.
func (d *Driver) Open(name string) (driver.Conn, error) {
	return d.connect(context.Background())
}

// OpenConnector returns d.Connector(name). It implements
// [driver.DriverContext], even when Options.Disable includes DriverContext:
// that bit only affects the driver that d's connectors return from their
// Driver method.
func (d *Driver) OpenConnector(name string) (driver.Connector, error) {
	return d.Connector(name), nil
}

// SetFaults replaces d's faults. It is safe to call while d is in use; an
// operation already waiting is not affected.
func (d *Driver) SetFaults(f Faults) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.faults = f
	d.untilBadConn = max(f.BadConnAfter, 0)
}

// Stats returns a snapshot of d's counters.
func (d *Driver) Stats() Stats {
	connects, closes := d.connects.Load(), d.closes.Load()
	return Stats{
		Connects:      connects,
		ConnectErrors: d.connectErrs.Load(),
		Closes:        closes,
		Open:          connects - closes,
		Prepares:      d.ops[opPrepare].Load(),
		StmtCloses:    d.ops[opStmtClose].Load(),
		Queries:       d.ops[opQuery].Load(),
		Execs:         d.ops[opExec].Load(),
		Pings:         d.ops[opPing].Load(),
		Resets:        d.ops[opReset].Load(),
		Begins:        d.ops[opBegin].Load(),
		Commits:       d.ops[opCommit].Load(),
		Rollbacks:     d.ops[opRollback].Load(),
	}
}

// Conns returns every connection d ever opened, closed ones included, in
// the order they were opened.
func (d *Driver) Conns() []*Conn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.conns)
}

// KillAll breaks every open connection, as a database restart would; see
// [Conn.Kill].
func (d *Driver) KillAll() {
	for _, c := range d.Conns() {
		if !c.closed.Load() {
			c.Kill()
		}
	}
}

// connect opens a connection, after the connect latency.
func (d *Driver) connect(ctx context.Context) (driver.Conn, error) {
	if err := wait(ctx, d.opts.ConnectLatency, nil); err != nil {
		d.connectErrs.Add(1)
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.faults.ConnectErr; err != nil {
		d.connectErrs.Add(1)
		return nil, err
	}
	c := &conn{d: d, info: &Conn{id: d.lastConnID.Add(1), killed: make(chan struct{})}}
	d.conns = append(d.conns, c.info)
	d.connects.Add(1)
	return connVariants[d.opts.Disable.variant(connBits)](c), nil
}

// takeBadConn counts an operation towards the BadConnAfter fault and
// reports whether this one is to fail.
func (d *Driver) takeBadConn() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.untilBadConn == 0 {
		return false
	}
	d.untilBadConn--
	return d.untilBadConn == 0
}

// hanging reports whether queries and execs are to hang.
func (d *Driver) hanging() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.faults.Hang
}

// pingErr returns the error pings are to fail with.
func (d *Driver) pingErr() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.faults.PingErr
}

// get returns the value stored under key.
func (d *Driver) get(key string) (driver.Value, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.store[key]
	return v, ok
}

// snapshot returns a copy of the store.
func (d *Driver) snapshot() map[string]driver.Value {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.store)
}

// apply makes writes to the store, in order, and returns how many rows the
// last one affected.
func (d *Driver) apply(writes ...write) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var affected int64
	for _, w := range writes {
		affected = w.applyTo(d.store)
	}
	return affected
}

// connector is a [driver.Connector] for a [Driver].
type connector struct{ d *Driver }

func (c connector) Connect(ctx context.Context) (driver.Conn, error) { return c.d.connect(ctx) }

func (c connector) Driver() driver.Driver {
	if c.d.opts.Disable&DriverContext != 0 {
		return struct{ driver.Driver }{c.d}
	}
	return c.d
}

// wait blocks for d, or forever if d is negative, unless ctx is done
// first, when it returns ctx's error, or killed is closed first, when it
// returns driver.ErrBadConn. A zero d returns at once.
func wait(ctx context.Context, d time.Duration, killed <-chan struct{}) error {
	if d == 0 {
		return nil
	}
	var elapsed <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		elapsed = t.C
	}
	select {
	case <-elapsed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-killed:
		return driver.ErrBadConn
	}
}

var (
	errConnClosed = errors.New("drivertest: use of closed connection")
	errStmtClosed = errors.New("drivertest: use of closed statement")
)
