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

// Close does nothing: physical statements close when their borrowing ends.
func (s *stmt) Close() error { return nil }

// NumInput returns the driver's count of placeholders.
func (s *stmt) NumInput() int { return s.numInput }

// physical returns the physical statement for the current borrowing.
func (s *stmt) physical(ctx context.Context) (driver.Stmt, error) {
	pc, err := s.h.bind(ctx)
	if err != nil {
		return nil, err
	}
	ps, err := pc.prepare(ctx, s.query)
	return ps, s.h.check(err)
}

// Exec runs the statement without a context.
func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), valueToNamedValue(args))
}

// Query runs the statement without a context.
func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), valueToNamedValue(args))
}

// ExecContext runs the statement as database/sql would (ctxDriverStmtExec):
// the driver's StmtExecContext, or else its Exec, never driver.ErrSkip.
func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	ps, err := s.physical(ctx)
	if err != nil {
		return nil, err
	}
	if se, ok := ps.(driver.StmtExecContext); ok {
		r, err := se.ExecContext(ctx, args)
		return r, s.h.check(err)
	}
	dargs, err := namedValueToValue(args)
	if err != nil {
		return nil, err
	}
	select {
	default:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	r, err := ps.Exec(dargs) //lint:ignore SA1019 database/sql falls back to it
	return r, s.h.check(err)
}

// QueryContext runs the statement as database/sql would (ctxDriverStmtQuery).
func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	ps, err := s.physical(ctx)
	if err != nil {
		return nil, err
	}
	if sq, ok := ps.(driver.StmtQueryContext); ok {
		r, err := sq.QueryContext(ctx, args)
		return r, s.h.check(err)
	}
	dargs, err := namedValueToValue(args)
	if err != nil {
		return nil, err
	}
	select {
	default:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	r, err := ps.Query(dargs) //lint:ignore SA1019 database/sql falls back to it
	return r, s.h.check(err)
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
