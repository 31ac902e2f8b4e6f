// Package workload runs the statements of sqlpool's benchmark workloads
// (a point select and a single-row insert, alone or in a transaction) with
// different clients: database/sql over any pool, and pgx's own pool. Both
// BenchmarkWorkload and the sqlpool bench command use it.
package workload

import (
	"context"
	"database/sql"
	"database/sql/driver"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Queries are a database's statements of the workloads.
type Queries struct {
	Select string // one argument, the id; one column
	Insert string // two arguments: an id (or a reference to one) and a text
}

// Statements runs the statements of the workloads somewhere: on a pool or
// inside a transaction.
type Statements interface {
	// SelectRow runs Queries.Select with id and scans its one column.
	SelectRow(ctx context.Context, id int) error
	// InsertRow runs Queries.Insert with id and a fixed text.
	InsertRow(ctx context.Context, id int64) error
}

// Session is one client's way of running the workloads.
type Session interface {
	Statements
	// InTx runs fn in a transaction, which it commits if fn succeeds.
	InTx(ctx context.Context, fn func(Statements) error) error
	// Close releases the session's statements and closes its pool.
	Close() error
}

// queryer is what *sql.DB and *sql.Tx have in common.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// sqlStatements runs the statements through database/sql, with the query
// text each time, or with statements prepared once when sel and ins are set.
type sqlStatements struct {
	on       queryer
	q        Queries
	sel, ins *sql.Stmt
}

func (s sqlStatements) SelectRow(ctx context.Context, id int) error {
	var v string
	if s.sel != nil {
		return s.sel.QueryRowContext(ctx, id).Scan(&v)
	}
	return s.on.QueryRowContext(ctx, s.q.Select, id).Scan(&v)
}

func (s sqlStatements) InsertRow(ctx context.Context, id int64) error {
	var err error
	if s.ins != nil {
		_, err = s.ins.ExecContext(ctx, id, "inserted")
	} else {
		_, err = s.on.ExecContext(ctx, s.q.Insert, id, "inserted")
	}
	return err
}

// sqlSession is a Session on a *sql.DB.
type sqlSession struct {
	sqlStatements
	db *sql.DB
}

func (s sqlSession) InTx(ctx context.Context, fn func(Statements) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	in := sqlStatements{on: tx, q: s.q}
	if s.sel != nil {
		// The hand-prepared way: database/sql reuses the statement where
		// the transaction's connection has already prepared it.
		in.sel, in.ins = tx.StmtContext(ctx, s.sel), tx.StmtContext(ctx, s.ins)
	}
	if err := fn(in); err != nil {
		return err
	}
	return tx.Commit()
}

func (s sqlSession) Close() error {
	if s.sel != nil {
		s.sel.Close()
		s.ins.Close()
	}
	return s.db.Close()
}

// SQL returns a Session on db, which runs the statements with the query
// text each time, or prepares them once if prepare is set. If preparing
// fails, SQL leaves db open. The Session's Close closes db.
func SQL(db *sql.DB, q Queries, prepare bool) (Session, error) {
	s := sqlSession{sqlStatements{on: db, q: q}, db}
	if prepare {
		var err error
		if s.sel, err = db.Prepare(q.Select); err != nil {
			return nil, err
		}
		if s.ins, err = db.Prepare(q.Insert); err != nil {
			s.sel.Close()
			return nil, err
		}
	}
	return s, nil
}

// OpenBare returns database/sql's own pool over d, with its default limits.
func OpenBare(d driver.Driver, dsn string) (*sql.DB, error) {
	if dc, ok := d.(driver.DriverContext); ok {
		c, err := dc.OpenConnector(dsn)
		if err != nil {
			return nil, err
		}
		return sql.OpenDB(c), nil
	}
	return sql.OpenDB(dsnConnector{dsn, d}), nil
}

// dsnConnector opens connections of a driver without a Connector of its own.
type dsnConnector struct {
	dsn string
	d   driver.Driver
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.d.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.d }

// pgxStatements runs the statements with pgx's own API, on a pgxpool.Pool
// or in a pgx.Tx.
type pgxStatements struct {
	on interface {
		QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
		Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	}
	q Queries
}

func (s pgxStatements) SelectRow(ctx context.Context, id int) error {
	var v string
	return s.on.QueryRow(ctx, s.q.Select, id).Scan(&v)
}

func (s pgxStatements) InsertRow(ctx context.Context, id int64) error {
	_, err := s.on.Exec(ctx, s.q.Insert, id, "inserted")
	return err
}

// pgxpoolSession is a Session on a pgxpool.Pool.
type pgxpoolSession struct {
	pgxStatements
	p *pgxpool.Pool
}

func (s pgxpoolSession) InTx(ctx context.Context, fn func(Statements) error) error {
	return pgx.BeginFunc(ctx, s.p, func(tx pgx.Tx) error { return fn(pgxStatements{tx, s.q}) })
}

func (s pgxpoolSession) Close() error {
	s.p.Close()
	return nil
}

// Pgxpool returns a Session on a new pgxpool.Pool over the PostgreSQL
// database at dsn, with at most maxConns connections.
func Pgxpool(dsn string, q Queries, maxConns int) (Session, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = int32(min(maxConns, 1<<31-1))
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	return pgxpoolSession{pgxStatements{p, q}, p}, nil
}
