package sqlpool

import (
	"context"
	"database/sql/driver"
	"errors"
)

// stmt is a prepared statement of a handle. It names its SQL; each execution
// runs the physical statement prepared for that SQL on whichever connection
// the handle has bound, preparing it there when needed.
type stmt struct {
	h        *conn
	query    string
	numInput int
	// proto is the physical statement first prepared, asked for argument
	// checks before a connection is bound: drivers' checkers depend on the
	// statement's SQL, not on its connection's state. nil for a statement
	// that keeps only its text (Pooler).
	proto driver.Stmt
	// own is the physical statement of a COPY, which runs only where it was
	// prepared; nil for any other.
	own *ownedStmt
}

var (
	_ driver.Stmt              = (*stmt)(nil)
	_ driver.StmtExecContext   = (*stmt)(nil)
	_ driver.StmtQueryContext  = (*stmt)(nil)
	_ driver.NamedValueChecker = (*stmt)(nil)
)

// Close closes a COPY's own statement; any other physical statement belongs
// to a connection's cache, or closes when its borrowing ends.
func (s *stmt) Close() error {
	if s.own != nil && s.own.live(s.h) {
		return s.own.sc.closeOwn(s.own.si)
	}
	return nil
}

// NumInput returns the driver's count of placeholders, or -1 (unknown: the
// driver checks) for a statement that keeps only its text.
func (s *stmt) NumInput() int { return s.numInput }

// Exec runs the statement without a context.
func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), valueToNamedValue(args))
}

// Query runs the statement without a context.
func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), valueToNamedValue(args))
}

// ExecContext runs the physical statement of the bound connection, or the
// driver's one-off path for a statement that keeps only its text, and where
// an exec may not run on a kept statement (execOp.kept: SQLite).
func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if s.own == nil && (s.proto == nil || !execOp.kept(&s.h.c.traits)) {
		return s.h.ExecContext(ctx, s.query, args)
	}
	return runStmt(ctx, s, opExec, func(si driver.Stmt) (driver.Result, error) {
		return stmtExec(ctx, si, args)
	})
}

// QueryContext runs the physical statement of the bound connection, or the
// driver's one-off path for a statement that keeps only its text.
func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if s.own == nil && s.proto == nil {
		return s.h.QueryContext(ctx, s.query, args)
	}
	return runStmt(ctx, s, opQuery, func(si driver.Stmt) (driver.Rows, error) {
		r, err := stmtQuery(ctx, si, args)
		return s.h.guardRows(r, err)
	})
}

// runStmt runs fn with s's physical statement on the bound connection,
// within the hooks of operation op.
func runStmt[R any](ctx context.Context, s *stmt, op string, fn func(driver.Stmt) (R, error)) (R, error) {
	h := s.h
	pc, t0, err := h.start(ctx, op, s.query, op == opExec)
	if err != nil {
		var zero R
		return zero, err
	}
	var r R
	if s.own != nil {
		if !s.own.live(h) {
			err = errCopyMoved
		} else {
			r, err = fn(s.own.si)
		}
	} else {
		r, err = withStmt(ctx, h, pc, s.query, false, fn)
	}
	return r, h.end(ctx, op, s.query, t0, err)
}

// errCopyMoved is the error of a COPY statement run outside the borrowing
// it was prepared in.
var errCopyMoved = errors.New("sqlpool: a COPY statement runs only in the transaction (or *sql.Conn) it was prepared in: prepare it there, and close it before the transaction ends")

// stmtExec runs a driver statement as database/sql would
// (ctxDriverStmtExec): its StmtExecContext, or else its Exec, never
// driver.ErrSkip.
func stmtExec(ctx context.Context, si driver.Stmt, args []driver.NamedValue) (driver.Result, error) {
	if se, ok := si.(driver.StmtExecContext); ok {
		return se.ExecContext(ctx, args)
	}
	dargs, err := legacyArgs(ctx, args)
	if err != nil {
		return nil, err
	}
	return si.Exec(dargs) //lint:ignore SA1019 database/sql falls back to it
}

// stmtQuery runs a driver statement as database/sql would
// (ctxDriverStmtQuery).
func stmtQuery(ctx context.Context, si driver.Stmt, args []driver.NamedValue) (driver.Rows, error) {
	if sq, ok := si.(driver.StmtQueryContext); ok {
		return sq.QueryContext(ctx, args)
	}
	dargs, err := legacyArgs(ctx, args)
	if err != nil {
		return nil, err
	}
	return si.Query(dargs) //lint:ignore SA1019 database/sql falls back to it
}

// CheckNamedValue uses the driver statement's checker, else its connection's,
// exactly the lookup database/sql makes, which only one checker may answer.
func (s *stmt) CheckNamedValue(nv *driver.NamedValue) error {
	if c, ok := s.proto.(driver.NamedValueChecker); ok { // false for a nil proto
		return c.CheckNamedValue(nv)
	}
	return s.h.CheckNamedValue(nv)
}

// ccStmt is a stmt whose driver statement has a ColumnConverter.
type ccStmt struct{ *stmt }

// ColumnConverter returns the driver statement's converter.
func (s ccStmt) ColumnConverter(idx int) driver.ValueConverter {
	return s.proto.(driver.ColumnConverter).ColumnConverter(idx) //lint:ignore SA1019 passed through
}

func valueToNamedValue(args []driver.Value) []driver.NamedValue {
	nv := make([]driver.NamedValue, len(args))
	for i, v := range args {
		nv[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return nv
}
