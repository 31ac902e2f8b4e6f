package drivertest

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Conn is a [Driver]'s record of one of its connections, for tests to
// inspect. It is safe for concurrent use.
type Conn struct {
	id       int64
	ops      counters
	closed   atomic.Bool
	broken   atomic.Bool
	killOnce sync.Once
	killed   chan struct{} // closed by Kill
}

// ConnStats are one connection's counters. Every call counts, whether or
// not it succeeds.
type ConnStats struct {
	Prepares   int64
	StmtCloses int64
	Queries    int64 // by the connection and its statements
	Execs      int64 // by the connection and its statements
	Pings      int64
	Resets     int64 // ResetSession calls
	Begins     int64
	Commits    int64
	Rollbacks  int64
	Closed     bool // whether the connection was closed
	Broken     bool // whether the connection was killed
}

// ID returns the connection's ID: 1 for the driver's first connection, 2
// for the next, and so on. The CONNID statement returns it too.
func (c *Conn) ID() int64 { return c.id }

// Stats returns a snapshot of the connection's counters.
func (c *Conn) Stats() ConnStats {
	return ConnStats{
		Prepares:   c.ops[opPrepare].Load(),
		StmtCloses: c.ops[opStmtClose].Load(),
		Queries:    c.ops[opQuery].Load(),
		Execs:      c.ops[opExec].Load(),
		Pings:      c.ops[opPing].Load(),
		Resets:     c.ops[opReset].Load(),
		Begins:     c.ops[opBegin].Load(),
		Commits:    c.ops[opCommit].Load(),
		Rollbacks:  c.ops[opRollback].Load(),
		Closed:     c.closed.Load(),
		Broken:     c.broken.Load(),
	}
}

// Kill breaks the connection, as a lost network connection or a database
// restart would: any operation waiting on it, and every later one, returns
// driver.ErrBadConn, as do Ping, ResetSession, Commit and Rollback, and
// IsValid reports false. Closing still works.
func (c *Conn) Kill() {
	c.broken.Store(true)
	c.killOnce.Do(func() { close(c.killed) })
}

// An op is a kind of operation that the counters count.
type op int

const (
	opQuery op = iota
	opExec
	opPrepare
	opStmtClose
	opPing
	opReset
	opBegin
	opCommit
	opRollback
	numOps
)

// counters count operations by kind.
type counters [numOps]atomic.Int64

// conn is the driver connection. The connection variants in
// variants_gen.go wrap it to leave out optional interfaces.
//
// database/sql never uses a connection from two goroutines at once. The
// fields other than d and info are deliberately unguarded, and touched by
// every call, so that the race detector reports a caller that does.
type conn struct {
	d    *Driver
	info *Conn

	calls  int64        // written by every call
	tenant driver.Value // session state: nil or a string
	tx     *tx          // the open transaction, if any
}

// start begins an operation of kind k: it counts it, fails it if the
// connection is closed or broken or a fault says so, and waits out the
// latency and any hang.
func (c *conn) start(ctx context.Context, k op) error {
	c.calls++
	c.d.ops[k].Add(1)
	c.info.ops[k].Add(1)
	switch {
	case c.info.closed.Load():
		return errConnClosed
	case c.info.broken.Load():
		return driver.ErrBadConn
	}
	switch k {
	case opQuery, opExec, opPrepare, opBegin, opPing:
		if c.d.takeBadConn() {
			c.info.Kill()
			return driver.ErrBadConn
		}
	}
	switch k {
	case opQuery, opExec, opPrepare, opBegin, opCommit, opPing:
		if err := wait(ctx, c.d.opts.Latency, c.info.killed); err != nil {
			return err
		}
	}
	if (k == opQuery || k == opExec) && c.d.hanging() {
		return wait(ctx, -1, c.info.killed)
	}
	return nil
}

func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if err := c.start(ctx, opPrepare); err != nil {
		return nil, err
	}
	cmd, err := parse(query)
	if err != nil {
		return nil, err
	}
	return stmtVariants[c.d.opts.Disable.variant(stmtBits)](&stmt{c: c, cmd: cmd}), nil
}

func (c *conn) Close() error {
	c.calls++
	if !c.info.closed.CompareAndSwap(false, true) {
		return errors.New("drivertest: connection closed twice")
	}
	c.tx = nil
	c.d.closes.Add(1)
	return nil
}

func (c *conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if err := c.start(ctx, opBegin); err != nil {
		return nil, err
	}
	if c.tx != nil {
		return nil, errors.New("drivertest: transaction already open")
	}
	switch level := sql.IsolationLevel(opts.Isolation); level {
	case sql.LevelDefault, sql.LevelReadCommitted, sql.LevelRepeatableRead, sql.LevelSerializable:
	default:
		return nil, fmt.Errorf("drivertest: unsupported isolation level %v", level)
	}
	c.tx = &tx{c: c, readOnly: opts.ReadOnly}
	return c.tx, nil
}

func (c *conn) Exec(query string, args []driver.Value) (driver.Result, error) {
	return c.ExecContext(context.Background(), query, named(args))
}

func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if err := c.start(ctx, opExec); err != nil {
		return nil, err
	}
	cmd, err := parse(query)
	if err != nil {
		return nil, err
	}
	return c.exec(ctx, cmd, args)
}

func (c *conn) Query(query string, args []driver.Value) (driver.Rows, error) {
	return c.QueryContext(context.Background(), query, named(args))
}

func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if err := c.start(ctx, opQuery); err != nil {
		return nil, err
	}
	cmd, err := parse(query)
	if err != nil {
		return nil, err
	}
	return c.query(ctx, cmd, args)
}

func (c *conn) Ping(ctx context.Context) error {
	if err := c.start(ctx, opPing); err != nil {
		return err
	}
	return c.d.pingErr()
}

// ResetSession only checks the connection: like lib/pq's, it leaves the
// session state alone.
func (c *conn) ResetSession(ctx context.Context) error {
	return c.start(ctx, opReset)
}

func (c *conn) IsValid() bool {
	c.calls++
	return !c.info.broken.Load() && !c.info.closed.Load()
}

func (c *conn) CheckNamedValue(nv *driver.NamedValue) error {
	return checkNamedValue(nv)
}

// Point is a type that the driver's NamedValueChecker, unlike database/sql's
// default conversion, accepts as an argument: it converts it to the string
// "(X,Y)". Tests pass one to tell whether the checker ran.
type Point struct{ X, Y int }

// String returns "(X,Y)".
func (p Point) String() string { return fmt.Sprintf("(%d,%d)", p.X, p.Y) }

// checkNamedValue implements [driver.NamedValueChecker] for conns and
// statements: it accepts the driver.Value types and Point, and leaves
// other types to the default conversion.
func checkNamedValue(nv *driver.NamedValue) error {
	switch v := nv.Value.(type) {
	case nil, int64, float64, bool, []byte, string, time.Time:
		return nil
	case Point:
		nv.Value = v.String()
		return nil
	}
	return driver.ErrSkip
}

// named returns args as positional named values.
func named(args []driver.Value) []driver.NamedValue {
	nvs := make([]driver.NamedValue, len(args))
	for i, v := range args {
		nvs[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return nvs
}

// tx is a transaction. Its writes wait on it until Commit.
type tx struct {
	c        *conn
	readOnly bool
	writes   []write
}

func (t *tx) Commit() error {
	if err := t.finish(opCommit); err != nil {
		return err
	}
	t.c.d.apply(t.writes...)
	return nil
}

func (t *tx) Rollback() error {
	return t.finish(opRollback)
}

// finish starts a commit or rollback and detaches t from its connection.
func (t *tx) finish(k op) error {
	err := t.c.start(context.Background(), k)
	if t.c.tx != t {
		return errors.New("drivertest: transaction already ended")
	}
	t.c.tx = nil
	return err
}

// write is one change to the store: a value to store under key or, if del,
// the key's removal.
type write struct {
	key string
	val driver.Value
	del bool
}

// applyTo makes the change to store and returns how many rows it affected.
func (w write) applyTo(store map[string]driver.Value) int64 {
	if w.del {
		if _, ok := store[w.key]; !ok {
			return 0
		}
		delete(store, w.key)
		return 1
	}
	store[w.key] = w.val
	return 1
}
