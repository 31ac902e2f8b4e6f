package sqlpool

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sqlpool/sqlpool/internal/clock"
	"github.com/sqlpool/sqlpool/pool"
)

// physConn is a physical connection of the wrapped driver, with its optional
// interfaces looked up once.
type physConn struct {
	driver.Conn
	pinger        driver.Pinger
	execer        driver.ExecerContext
	legacyExecer  driver.Execer //lint:ignore SA1019 database/sql falls back to it
	queryer       driver.QueryerContext
	legacyQueryer driver.Queryer //lint:ignore SA1019 database/sql falls back to it
	preparer      driver.ConnPrepareContext
	beginner      driver.ConnBeginTx
	checker       driver.NamedValueChecker
	resetter      driver.SessionResetter
	validator     driver.Validator

	id         int64                     // for Stats
	sharedPrep bool                      // the driver hands out one statement per SQL text until it is closed (pgx)
	label      atomic.Pointer[partState] // the partition its session is set up for
	part       atomic.Pointer[partState] // the partition slot the borrowing holds; nil once given back (releasePart)
	// state counts the driver calls in progress and holds the reclaim's
	// bits, with ReclaimBorrowed (see enterOp).
	state       atomic.Int32
	beforeClose func(driver.Conn) // Config.BeforeClose
	borrow      borrowInfo        // for the leak detector
	cache       stmtCache         // owned by the borrower
	total       *atomic.Int64     // statements cached by the whole pool
	maxTotal    int64             // cap on *total
}

func newPhysConn(c driver.Conn, id int64) *physConn {
	pc := &physConn{Conn: c, id: id}
	pc.pinger, _ = c.(driver.Pinger)
	pc.execer, _ = c.(driver.ExecerContext)
	//lint:ignore SA1019 database/sql falls back to it
	pc.legacyExecer, _ = c.(driver.Execer)
	pc.queryer, _ = c.(driver.QueryerContext)
	//lint:ignore SA1019 database/sql falls back to it
	pc.legacyQueryer, _ = c.(driver.Queryer)
	pc.preparer, _ = c.(driver.ConnPrepareContext)
	pc.beginner, _ = c.(driver.ConnBeginTx)
	pc.checker, _ = c.(driver.NamedValueChecker)
	pc.resetter, _ = c.(driver.SessionResetter)
	pc.validator, _ = c.(driver.Validator)
	return pc
}

// conn is the logical handle database/sql holds. It borrows a physical
// connection from the pool on the first operation of each borrowing, with
// that operation's context, and gives it back when database/sql takes the
// handle back (IsValid) or closes it. database/sql serialises all calls on a
// handle, so its fields need no lock.
type conn struct {
	c       *Connector
	pc      *pool.Conn[*physConn] // bound physical connection; nil between borrowings
	part    *partState            // the partition of the borrowing
	tags    *tags                 // the routing tags of the borrowing (of its first operation)
	want    *tags                 // tags of the context database/sql gave the handle with (Connect, ResetSession); nil: none
	tx      bool                  // a transaction is open on pc
	boundAt time.Time             // when pc was bound
	bad     bool                  // pc returned driver.ErrBadConn
	failed  bool                  // an operation of the borrowing failed (classify)
	// canceled: an operation of the borrowing failed because its caller's
	// context ended.
	canceled bool
}

var (
	_ driver.Conn               = (*conn)(nil)
	_ driver.Pinger             = (*conn)(nil)
	_ driver.ExecerContext      = (*conn)(nil)
	_ driver.QueryerContext     = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.NamedValueChecker  = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
	_ driver.Validator          = (*conn)(nil)
)

// bind returns the bound physical connection, borrowing one routed by ctx when
// there is none. An acquisition error is never driver.ErrBadConn.
func (h *conn) bind(ctx context.Context) (*physConn, error) {
	if h.pc != nil {
		return h.pc.Value(), h.pinned(ctx)
	}
	t := tagsFrom(ctx)
	if h.want != nil && t != h.want {
		if t != defaultTags { // database/sql's context and the operation's disagree
			if err := h.c.sameRoute(h.want, t); err != nil {
				return nil, err
			}
		}
		t = h.want // db.Conn(ctx) binds to ctx's partition
	}
	// One clock reading per acquisition: the pool measures from it, and
	// says when it lent the connection.
	t0 := clock.Now()
	pc, ps, err := h.c.acquire(ctx, t0, t)
	var end time.Time // of the acquisition
	if err == nil {
		end = pc.LentAt()
		h.boundAt = end
	} else {
		end = clock.Now()
	}
	wait := end.Sub(t0)
	if err != nil {
		noteWait(err, wait)
	}
	if h.c.metrics {
		if ps != nil {
			ps.rec.RecordAcquireAt(end, wait, result(err))
		} else {
			h.c.rec.RecordAcquire("", wait, result(err))
		}
	}
	if err == nil {
		h.pc, h.part, h.tags = pc, ps, t
		ps.acquires.Add(1)
		ps.inUse.Add(1)
		pc.Value().part.Store(ps)
		if h.c.cfg.LeakThreshold > 0 {
			h.c.trackBorrow(pc.Value(), &ps.name)
		}
	}
	if f := h.c.cfg.Hooks.OnAcquire; f != nil {
		e := AcquireEvent{Ctx: ctx, Wait: wait, Err: err}
		if ps != nil {
			e.Partition = ps.name
		}
		if pc != nil {
			e.ConnID = pc.Value().id
		}
		h.onAcquire(f, e)
	}
	if err != nil {
		return nil, err
	}
	return pc.Value(), nil
}

// noteWait records in a timeout error the whole wait of its acquisition:
// QueryRate, partition slot and pool.
func noteWait(err error, wait time.Duration) {
	var te *TimeoutError
	var pt *partitionTimeout
	switch {
	case errors.As(err, &te):
		te.Waited = wait
	case errors.As(err, &pt):
		pt.waited = wait
	}
}

// onAcquire calls the OnAcquire hook; if it panics, the borrowing it was
// told of ends before the panic goes on.
func (h *conn) onAcquire(f func(AcquireEvent), e AcquireEvent) {
	ok := false
	defer func() {
		if !ok {
			h.release()
		}
	}()
	f(e)
	ok = true
}

// pinned checks an operation on the handle's bound connection (inside a
// transaction or an *sql.Conn): a context routed to another partition is
// refused with ErrPartitionMismatch, and the partition's QueryRate is
// waited for.
func (h *conn) pinned(ctx context.Context) error {
	if t := tagsFrom(ctx); t != defaultTags && t != h.tags {
		ps, err := h.c.route(t)
		if err != nil {
			return err
		}
		if ps != h.part {
			return mismatch(h.part, ps)
		}
		h.tags = t // same partition: quick next time
	}
	if l := h.part.limiter; l != nil {
		if err := l.Wait(ctx); err != nil {
			return fmt.Errorf("sqlpool: partition %q QueryRate: %w", h.part.name, err)
		}
	}
	return nil
}

// sameRoute returns ErrPartitionMismatch unless a and b route to the same
// partition.
func (c *Connector) sameRoute(a, b *tags) error {
	pa, err := c.route(a)
	if err != nil {
		return err
	}
	pb, err := c.route(b)
	if err != nil {
		return err
	}
	if pa != pb {
		return mismatch(pa, pb)
	}
	return nil
}

func mismatch(bound, asked *partState) error {
	return fmt.Errorf("%w: the connection serves partition %q, the context routes to %q: "+
		"run each tenant's work in its own transaction or *sql.Conn, made with that tenant's context", ErrPartitionMismatch, bound.name, asked.name)
}

// check notes a driver.ErrBadConn from the physical connection and returns
// err unchanged (database/sql compares some errors by identity).
func (h *conn) check(err error) error {
	if err != nil && errors.Is(err, driver.ErrBadConn) {
		h.bad = true
	}
	return err
}

// release ends the borrowing: the physical connection goes back to the pool
// (recycled by Config.Recycle), or is closed when it is broken or left
// inside a transaction. A connection reclaimed by the pool (MaxBorrowTime)
// is already closed: release only drops what the handle kept of it.
func (h *conn) release() {
	h.want = nil
	pc := h.pc
	if pc == nil {
		return
	}
	h.pc, h.tags = nil, nil
	c := h.c
	v := pc.Value()
	now := clock.Now() // the one clock reading of the release
	hold := now.Sub(h.boundAt)
	if c.metrics {
		h.part.rec.RecordRelease(hold)
	}
	if f := c.cfg.Hooks.OnRelease; f != nil {
		f(ReleaseEvent{Partition: h.part.name, ConnID: v.id, Hold: hold})
	}
	v.releasePart()
	if c.cfg.LeakThreshold > 0 {
		v.borrow.since.Store(0)
	}
	bad, inTx, failed, canceled := h.bad, h.tx, h.failed, h.canceled
	h.bad, h.tx, h.failed, h.canceled = false, false, false, false
	if c.reclaim && !v.enterCall() { // reclaimed: the pool has closed it
		v.forgetStmts()
		return
	}
	v.cache.endBorrowing()
	if failed {
		pc.ReportError()
	}
	var taken bool
	switch {
	case bad || (v.validator != nil && !v.validator.IsValid()):
		reason := pool.CloseErrors
		if canceled { // the caller's cancellation broke it (mysql closes on cancel)
			reason = pool.CloseEvicted
		}
		taken = pc.Destroy(reason)
	case inTx:
		taken = pc.Destroy(pool.CloseEvicted)
	case c.cfg.AfterRelease != nil && !c.cfg.AfterRelease(v.Conn):
		taken = pc.Destroy(pool.CloseEvicted)
	default:
		taken = c.recycle(pc, failed, now)
	}
	if !taken { // reclaimed meanwhile
		v.forgetStmts()
	}
	if c.reclaim {
		v.exitCall()
	}
}

// IsValid is called by database/sql each time it takes the handle back: the
// borrowing ends and the physical connection returns to the pool. The handle
// stays valid until the Connector closes.
func (h *conn) IsValid() bool {
	h.release()
	return !h.c.closed.Load()
}

// ResetSession is called by database/sql before it reuses the handle, with
// the context of the caller it reuses it for. It acquires nothing: the next
// operation does, routed by its own context, or by this one when the
// operation's carries no routing tags (db.Conn(ctx), then a statement
// without tags, binds to ctx's partition).
func (h *conn) ResetSession(ctx context.Context) error {
	if h.c.closed.Load() {
		return driver.ErrBadConn
	}
	h.setWant(ctx)
	return nil
}

// setWant notes the routing tags of the context database/sql gave the
// handle with.
func (h *conn) setWant(ctx context.Context) {
	if t := tagsFrom(ctx); t != defaultTags {
		h.want = t
	}
}

// Close ends any borrowing. database/sql calls it when it discards the handle.
func (h *conn) Close() error {
	h.release()
	return nil
}

// Raw returns the physical connection bound to the handle, or nil between
// borrowings. See the package function Raw.
func (h *conn) Raw() driver.Conn {
	if h.pc == nil {
		return nil
	}
	return h.pc.Value().Conn
}

// Raw returns the wrapped driver's connection under driverConn, the value
// (*sql.Conn).Raw passes to its function, borrowing one routed by ctx if the
// handle has none yet. The connection stays bound until the *sql.Conn is
// closed. Use it for driver-specific calls, such as pgx's CopyFrom:
//
//	err := conn.Raw(func(dc any) error {
//		raw, err := sqlpool.Raw(ctx, dc)
//		if err != nil {
//			return err
//		}
//		pgxConn := raw.(*stdlib.Conn).Conn()
//		...
//	})
func Raw(ctx context.Context, driverConn any) (driver.Conn, error) {
	h, ok := driverConn.(*conn)
	if !ok {
		return nil, errors.New("sqlpool: Raw: not a sqlpool connection")
	}
	pc, err := h.bind(ctx)
	if err != nil {
		return nil, err
	}
	return pc.Conn, nil
}

// Operation names, for hooks.
const (
	opQuery    = "query"
	opExec     = "exec"
	opPrepare  = "prepare"
	opBegin    = "begin"
	opCommit   = "commit"
	opRollback = "rollback"
	opPing     = "ping"
)

// start begins an operation: it binds a physical connection and calls the
// OnQueryStart hook. The returned time is set only when OnQueryEnd needs it.
func (h *conn) start(ctx context.Context, op, query string) (*physConn, time.Time, error) {
	pc, err := h.bind(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	if h.c.cfg.LeakThreshold > 0 {
		pc.borrow.lastQuery.Store(op == opQuery)
	}
	if !h.enterOp() {
		return nil, time.Time{}, ErrReclaimed
	}
	pc.cache.hit = false
	return pc, h.queryStart(ctx, pc, op, query), nil
}

func (h *conn) queryStart(ctx context.Context, pc *physConn, op, query string) time.Time {
	hk := &h.c.cfg.Hooks
	if hk.OnQueryStart != nil {
		hk.OnQueryStart(QueryEvent{Ctx: ctx, Partition: h.part.name, ConnID: pc.id, Op: op, Query: query})
	}
	if hk.OnQueryEnd != nil {
		return time.Now()
	}
	return time.Time{}
}

// end finishes an operation run with ctx: it calls the OnQueryEnd hook and
// notes a driver.ErrBadConn. It returns err unchanged (database/sql compares
// some errors by identity), except for lib/pq's ambiguous ErrBadConn
// (ErrConnLost).
func (h *conn) end(ctx context.Context, op, query string, t0 time.Time, err error) error {
	return h.finish(ctx, op, query, t0, err, err != nil && ctx.Err() != nil)
}

// endTx is end for a Commit or Rollback, which take no context: a context
// error is the caller's cancellation.
func (h *conn) endTx(op string, t0 time.Time, err error) error {
	return h.finish(context.Background(), op, "", t0, err, errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

// finish is end and endTx; canceled says err is the caller's cancellation.
func (h *conn) finish(ctx context.Context, op, query string, t0 time.Time, err error, canceled bool) error {
	err = h.exitOp(err)
	if err != nil {
		h.classify(err, canceled)
	}
	if f := h.c.cfg.Hooks.OnQueryEnd; f != nil && h.pc != nil {
		pc := h.pc.Value()
		f(QueryEvent{Ctx: ctx, Partition: h.part.name, ConnID: pc.id, Op: op, Query: query, Duration: time.Since(t0), Err: err, Cached: pc.cache.hit})
	}
	err = h.check(err)
	if h.bad && h.c.traits.badConnAmbiguous && (op == opExec || op == opQuery || op == opCommit) {
		// The driver says ErrBadConn even after the statement went out:
		// database/sql must not run it again.
		return fmt.Errorf("%w: %v", ErrConnLost, err)
	}
	return err
}

// Ping checks the physical connection; with a driver that has no Pinger it
// only borrows one, as database/sql does.
func (h *conn) Ping(ctx context.Context) error {
	pc, t0, err := h.start(ctx, opPing, "")
	if err != nil {
		return err
	}
	if pc.pinger != nil {
		err = pc.pinger.Ping(ctx)
	}
	return h.end(ctx, opPing, "", t0, err)
}

// ExecContext runs query, between one OnQueryStart and one OnQueryEnd: see
// exec.
func (h *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	pc, t0, err := h.start(ctx, opExec, query)
	if err != nil {
		return nil, err
	}
	r, err := h.exec(ctx, pc, query, args)
	return r, h.end(ctx, opExec, query, t0, err)
}

// exec runs query on pc: in a transaction of its own set up for the
// partition (Pooler), or through the statement cache (CacheAll), or else as
// database/sql would (ctxDriverExec); driver.ErrSkip makes database/sql
// prepare it.
func (h *conn) exec(ctx context.Context, pc *physConn, query string, args []driver.NamedValue) (driver.Result, error) {
	if h.wrapTx() {
		return h.execInTx(ctx, pc, query, args)
	}
	if h.implicit(query, args) && !h.c.traits.stmtHoldsLock {
		r, err := withStmt(ctx, h, pc, query, true, func(si driver.Stmt) (driver.Result, error) {
			if n := si.NumInput(); n >= 0 && n != len(args) {
				return nil, errFallBack
			}
			return stmtExec(ctx, si, args)
		})
		if err != errFallBack {
			return r, err
		}
	}
	r, err := pc.exec(ctx, query, args)
	if err == nil && h.c.traits.family == familyPostgres {
		err = h.c.afterSessionStmt(ctx, pc, query)
	}
	return r, err
}

func (pc *physConn) exec(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if pc.execer != nil {
		return pc.execer.ExecContext(ctx, query, args)
	}
	if pc.legacyExecer == nil {
		return nil, driver.ErrSkip
	}
	dargs, err := legacyArgs(ctx, args)
	if err != nil {
		return nil, err
	}
	return pc.legacyExecer.Exec(query, dargs)
}

// afterSessionStmt keeps sqlpool's view of a PostgreSQL session true after
// a statement the borrower ran itself: DISCARD ALL and DEALLOCATE drop the
// session's prepared statements (forget the cache), DISCARD ALL and RESET
// undo the partition's setup (run it again at the next borrowing).
func (c *Connector) afterSessionStmt(ctx context.Context, pc *physConn, query string) error {
	stmts, label := sessionWipe(query)
	if label {
		pc.label.Store(nil)
	}
	if stmts {
		return c.dropStmts(ctx, pc)
	}
	return nil
}

// QueryContext runs query, between one OnQueryStart and one OnQueryEnd: see
// query. The rows are the driver's own, except in a transaction sqlpool
// opened (Pooler), which they end when closed.
func (h *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	pc, t0, err := h.start(ctx, opQuery, query)
	if err != nil {
		return nil, err
	}
	r, err := h.query(ctx, pc, query, args)
	return r, h.end(ctx, opQuery, query, t0, err)
}

// query is exec for queries.
func (h *conn) query(ctx context.Context, pc *physConn, query string, args []driver.NamedValue) (driver.Rows, error) {
	if h.wrapTx() {
		return h.queryInTx(ctx, pc, query, args)
	}
	if h.implicit(query, args) {
		r, err := withStmt(ctx, h, pc, query, true, func(si driver.Stmt) (driver.Rows, error) {
			if n := si.NumInput(); n >= 0 && n != len(args) {
				return nil, errFallBack
			}
			r, err := stmtQuery(ctx, si, args)
			return h.guardRows(r, err)
		})
		if err != errFallBack {
			return r, err
		}
	}
	r, err := pc.query(ctx, query, args)
	if err == nil && h.c.traits.family == familyPostgres {
		if err = h.c.afterSessionStmt(ctx, pc, query); err != nil {
			r.Close()
			return nil, err
		}
	}
	return r, err
}

func (pc *physConn) query(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if pc.queryer != nil {
		return pc.queryer.QueryContext(ctx, query, args)
	}
	if pc.legacyQueryer == nil {
		return nil, driver.ErrSkip
	}
	dargs, err := legacyArgs(ctx, args)
	if err != nil {
		return nil, err
	}
	return pc.legacyQueryer.Query(query, dargs)
}

// implicit reports whether a query or exec on the connection runs through the
// statement cache: in CacheAll mode, with arguments, and one statement only
// (a driver's prepare may silently drop what follows the first, as SQLite's
// does). A statement whose placeholders do not match the arguments, or that
// the cache has no room for, takes the driver's own path (errFallBack), so
// errors are the driver's.
func (h *conn) implicit(query string, args []driver.NamedValue) bool {
	return h.c.mode == CacheAll && len(args) > 0 && !strings.Contains(strings.TrimRight(query, "; \t\r\n"), ";")
}

// errFallBack makes an implicit statement take the driver's own path.
var errFallBack = errors.New("sqlpool: statement not run: take the driver's path")

// Prepare prepares query without a context.
func (h *conn) Prepare(query string) (driver.Stmt, error) {
	return h.PrepareContext(context.Background(), query)
}

// PrepareContext prepares query on the physical connection (or finds it in
// its cache), so that errors surface here as with the bare driver, and
// returns a statement that runs on whichever physical connection the handle
// has bound when it executes. A COPY gets a statement of its own, closed by
// its Close or before its transaction ends. Behind a transaction pooler
// (Pooler) any other statement keeps only its SQL text: nothing is sent
// until it runs, on the driver's one-off path.
func (h *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	copying := isCopy(query)
	if h.c.textStmts && !copying {
		return &stmt{h: h, query: query, numInput: -1}, nil
	}
	pc, t0, err := h.start(ctx, opPrepare, query)
	if err != nil {
		return nil, err
	}
	var ps driver.Stmt
	if copying {
		ps, err = pc.prepareDriver(ctx, query)
	} else {
		ps, err = pc.stmt(ctx, query, false)
	}
	if err = h.end(ctx, opPrepare, query, t0, err); err != nil {
		return nil, err
	}
	s := &stmt{h: h, query: query, numInput: ps.NumInput(), proto: ps}
	if copying {
		s.own = pc.cache.own(ps)
	}
	//lint:ignore SA1019 passed through
	if _, ok := ps.(driver.ColumnConverter); ok {
		return ccStmt{s}, nil
	}
	return s, nil
}

// Begin starts a transaction without a context.
func (h *conn) Begin() (driver.Tx, error) {
	return h.BeginTx(context.Background(), driver.TxOptions{})
}

// BeginTx starts a transaction on the physical connection, which stays bound
// until it ends. Behind a transaction pooler (Pooler), the partition's setup
// runs first thing in it.
func (h *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	pc, t0, err := h.start(ctx, opBegin, "")
	if err != nil {
		return nil, err
	}
	t, err := pc.begin(ctx, opts)
	if err == nil && len(h.part.txSetup) > 0 {
		if err = pc.txSetup(ctx, h.part); err != nil {
			t.Rollback()
		}
	}
	if err = h.end(ctx, opBegin, "", t0, err); err != nil {
		return nil, err
	}
	h.setTx(true)
	return &tx{h: h, tx: t}, nil
}

// begin starts a transaction as database/sql would (ctxDriverBegin).
func (pc *physConn) begin(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if pc.beginner != nil {
		return pc.beginner.BeginTx(ctx, opts)
	}
	if opts.Isolation != driver.IsolationLevel(0) {
		return nil, errors.New("sql: driver does not support non-default isolation level")
	}
	if opts.ReadOnly {
		return nil, errors.New("sql: driver does not support read-only transactions")
	}
	t, err := pc.Begin()
	if err == nil && ctx.Done() != nil {
		select {
		default:
		case <-ctx.Done():
			t.Rollback()
			return nil, ctx.Err()
		}
	}
	return t, err
}

// CheckNamedValue is the driver's NamedValueChecker, or driver.ErrSkip (the
// same outcome as none) when it has none. Between borrowings it asks a
// connection made earlier: drivers' checkers depend on the driver, not on the
// connection's state.
func (h *conn) CheckNamedValue(nv *driver.NamedValue) error {
	var checker driver.NamedValueChecker
	if h.pc != nil {
		checker = h.pc.Value().checker
	} else if p := h.c.checker.Load(); p != nil {
		checker = *p
	}
	if checker == nil {
		return driver.ErrSkip
	}
	return checker.CheckNamedValue(nv)
}

// legacyArgs prepares a call to a driver method without a context, as
// database/sql does: arguments converted, and no call once ctx is done.
func legacyArgs(ctx context.Context, args []driver.NamedValue) ([]driver.Value, error) {
	dargs, err := namedValueToValue(args)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return dargs, nil
}

// namedValueToValue is database/sql's conversion for drivers without context
// methods.
func namedValueToValue(named []driver.NamedValue) ([]driver.Value, error) {
	args := make([]driver.Value, len(named))
	for n, param := range named {
		if len(param.Name) > 0 {
			return nil, errors.New("sql: driver does not support the use of Named Parameters")
		}
		args[n] = param.Value
	}
	return args, nil
}

// setTx records whether a transaction is open on the bound connection.
func (h *conn) setTx(open bool) {
	h.tx = open
	if h.c.cfg.LeakThreshold > 0 {
		h.pc.Value().borrow.inTx.Store(open)
	}
}

// tx ends the handle's transaction state with the driver's transaction.
type tx struct {
	h  *conn
	tx driver.Tx
}

func (t *tx) Commit() error {
	if !t.h.enterOp() {
		t.h.setTx(false)
		return ErrReclaimed
	}
	t.h.pc.Value().cache.closeOwned() // a COPY ends before its transaction
	t0 := t.h.queryStart(context.Background(), t.h.pc.Value(), opCommit, "")
	err := t.tx.Commit()
	t.h.setTx(false)
	return t.h.endTx(opCommit, t0, err)
}

func (t *tx) Rollback() error {
	if !t.h.enterOp() {
		t.h.setTx(false)
		return ErrReclaimed
	}
	t.h.pc.Value().cache.closeOwned()
	t0 := t.h.queryStart(context.Background(), t.h.pc.Value(), opRollback, "")
	err := t.tx.Rollback()
	t.h.setTx(false)
	return t.h.endTx(opRollback, t0, err)
}
