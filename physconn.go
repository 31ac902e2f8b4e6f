package sqlpool

import (
	"context"
	"database/sql/driver"
	"errors"
	"sync/atomic"
)

// This file holds the physical connection: the wrapped driver's
// connection with its optional interfaces, and the calls database/sql would
// make on it.

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
