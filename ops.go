package sqlpool

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"
)

// This file holds the operations of a logical handle (conn.go): each
// binds a physical connection (start), runs on it, and ends between one
// OnQueryStart and one OnQueryEnd (end).

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

// start begins an operation: it binds a physical connection (see bind for
// write) and calls the OnQueryStart hook. The returned time is set only when
// OnQueryEnd needs it.
func (h *conn) start(ctx context.Context, op, query string, write bool) (*physConn, time.Time, error) {
	pc, err := h.bind(ctx, write)
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
	failed := err != nil && h.classify(err, canceled)
	if hs := h.c.host; hs != nil {
		hs.observe(failed)
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
	pc, t0, err := h.start(ctx, opPing, "", false)
	if err != nil {
		return err
	}
	if pc.pinger != nil {
		err = pc.pinger.Ping(ctx)
	}
	return h.end(ctx, opPing, "", t0, err)
}

// ExecContext runs query: see run.
func (h *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return run(ctx, h, &execOp, query, args)
}

// QueryContext runs query: see run. The rows are the driver's own, except
// in a transaction sqlpool opened (Pooler), which they end when closed, and
// on SQLite's kept statements (gcRows).
func (h *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return run(ctx, h, &queryOp, query, args)
}

// An opKind is what differs between an exec and a query; run is the path
// they share.
type opKind[R any] struct {
	name string
	// direct runs the query as database/sql would (ctxDriverExec,
	// ctxDriverQuery); driver.ErrSkip makes database/sql prepare it.
	direct func(pc *physConn, ctx context.Context, query string, args []driver.NamedValue) (R, error)
	// onStmt runs a kept prepared statement.
	onStmt func(h *conn, ctx context.Context, si driver.Stmt, args []driver.NamedValue) (R, error)
	// inTx ends the transaction sqlpool opened for the operation (Pooler),
	// now or when the result is done with.
	inTx func(h *conn, t driver.Tx, r R, err error) (R, error)
	// undo releases a result that is not returned.
	undo func(R)
	// kept reports whether the operation may run on a kept statement.
	kept func(t *traits) bool
}

var (
	execOp = opKind[driver.Result]{
		name:   opExec,
		direct: (*physConn).exec,
		onStmt: func(_ *conn, ctx context.Context, si driver.Stmt, args []driver.NamedValue) (driver.Result, error) {
			return stmtExec(ctx, si, args)
		},
		inTx: func(h *conn, t driver.Tx, r driver.Result, err error) (driver.Result, error) {
			return r, h.endWrapped(t, err)
		},
		undo: func(driver.Result) {},
		kept: func(t *traits) bool { return !t.stmtHoldsLock }, // SQLite's Exec leaves its statement active
	}
	queryOp = opKind[driver.Rows]{
		name:   opQuery,
		direct: (*physConn).query,
		onStmt: func(h *conn, ctx context.Context, si driver.Stmt, args []driver.NamedValue) (driver.Rows, error) {
			r, err := stmtQuery(ctx, si, args)
			return h.guardRows(r, err)
		},
		inTx: func(h *conn, t driver.Tx, r driver.Rows, err error) (driver.Rows, error) {
			if err != nil {
				return nil, h.endWrapped(t, err)
			}
			return &txRows{passRows: passRows{r}, h: h, tx: t}, nil // closing the rows commits
		},
		undo: func(r driver.Rows) { r.Close() },
		kept: func(*traits) bool { return true },
	}
)

// errPoolerDriver: a transaction pooler needs one-off queries the driver
// runs itself.
var errPoolerDriver = errors.New("sqlpool: Pooler needs a driver with ExecerContext and QueryerContext")

// run runs an exec or a query between one OnQueryStart and one OnQueryEnd,
// on the bound connection: in a transaction of its own set up for the
// partition (Pooler), or on a kept statement (CacheAll), or else as
// database/sql would.
func run[R any](ctx context.Context, h *conn, k *opKind[R], query string, args []driver.NamedValue) (R, error) {
	pc, t0, err := h.start(ctx, k.name, query, k.name == opExec)
	if err != nil {
		var zero R
		return zero, err
	}
	r, err := runOn(ctx, h, k, pc, query, args)
	return r, h.end(ctx, k.name, query, t0, err)
}

func runOn[R any](ctx context.Context, h *conn, k *opKind[R], pc *physConn, query string, args []driver.NamedValue) (R, error) {
	var zero R
	if h.wrapTx() {
		t, err := h.beginWrapped(ctx, pc)
		if err != nil {
			return zero, err
		}
		r, err := k.direct(pc, ctx, query, args)
		if err == driver.ErrSkip {
			err = errPoolerDriver
		}
		return k.inTx(h, t, r, err)
	}
	if h.implicit(query, args) && k.kept(&h.c.traits) {
		r, err := withStmt(ctx, h, pc, query, true, func(si driver.Stmt) (R, error) {
			if n := si.NumInput(); n >= 0 && n != len(args) {
				return zero, errFallBack
			}
			return k.onStmt(h, ctx, si, args)
		})
		if err != errFallBack {
			return r, err
		}
	}
	r, err := k.direct(pc, ctx, query, args)
	if err == nil && h.c.traits.family == familyPostgres {
		if err = h.c.afterSessionStmt(ctx, pc, query); err != nil {
			k.undo(r)
			return zero, err
		}
	}
	return r, err
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
	pc, t0, err := h.start(ctx, opPrepare, query, false)
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
	pc, t0, err := h.start(ctx, opBegin, "", !opts.ReadOnly)
	if err != nil {
		return nil, err
	}
	t, err := pc.begin(ctx, opts)
	if err == nil && len(h.part.txSetup) > 0 {
		if err = pc.runSetup(ctx, h.part, h.part.txSetup); err != nil {
			t.Rollback()
		}
	}
	if err = h.end(ctx, opBegin, "", t0, err); err != nil {
		return nil, err
	}
	h.setTx(true)
	return &tx{h: h, tx: t}, nil
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

func (t *tx) Commit() error { return t.end(opCommit, t.tx.Commit) }

func (t *tx) Rollback() error { return t.end(opRollback, t.tx.Rollback) }

// end ends the transaction with f, the driver's Commit or Rollback, between
// the hooks of op.
func (t *tx) end(op string, f func() error) error {
	h := t.h
	if !h.enterOp() {
		h.setTx(false)
		return ErrReclaimed
	}
	pc := h.pc.Value()
	pc.cache.closeOwned() // a COPY ends before its transaction
	t0 := h.queryStart(context.Background(), pc, op, "")
	err := f()
	h.setTx(false)
	return h.endTx(op, t0, err)
}
