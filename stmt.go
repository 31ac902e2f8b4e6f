package sqlpool

import (
	"context"
	"database/sql/driver"
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
	// statement's SQL, not on its connection's state.
	proto driver.Stmt
}

var (
	_ driver.Stmt              = (*stmt)(nil)
	_ driver.StmtExecContext   = (*stmt)(nil)
	_ driver.StmtQueryContext  = (*stmt)(nil)
	_ driver.NamedValueChecker = (*stmt)(nil)
)

// Close does nothing: the physical statements belong to the connections'
// caches, or close when their borrowing ends.
func (s *stmt) Close() error { return nil }

// NumInput returns the driver's count of placeholders.
func (s *stmt) NumInput() int { return s.numInput }

// Exec runs the statement without a context.
func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), valueToNamedValue(args))
}

// Query runs the statement without a context.
func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), valueToNamedValue(args))
}

// ExecContext runs the physical statement of the bound connection.
func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return runStmt(ctx, s.h, opExec, s.query, func(si driver.Stmt) (driver.Result, error) {
		return stmtExec(ctx, si, args)
	})
}

// QueryContext runs the physical statement of the bound connection.
func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return runStmt(ctx, s.h, opQuery, s.query, func(si driver.Stmt) (driver.Rows, error) {
		return stmtQuery(ctx, si, args)
	})
}

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
	if c, ok := s.proto.(driver.NamedValueChecker); ok {
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
