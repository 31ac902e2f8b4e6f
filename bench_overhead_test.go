package sqlpool_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"runtime"
	"testing"

	"github.com/sqlpool/sqlpool"
)

// leanDriver is a driver as lean as database/sql's own test driver: a
// query costs a few hundred nanoseconds, with no parsing, so that a
// benchmark over it shows the pool's cost, not the driver's.
type leanDriver struct{}

func (leanDriver) Open(string) (driver.Conn, error)             { return &leanConn{}, nil }
func (leanDriver) Connect(context.Context) (driver.Conn, error) { return &leanConn{}, nil }
func (d leanDriver) Driver() driver.Driver                      { return d }

type leanConn struct{ rows leanRows }

func (*leanConn) Prepare(string) (driver.Stmt, error) { return nil, driver.ErrSkip }
func (*leanConn) Close() error                        { return nil }
func (*leanConn) Begin() (driver.Tx, error)           { return nil, driver.ErrSkip }
func (*leanConn) Ping(context.Context) error          { return nil }
func (*leanConn) ResetSession(context.Context) error  { return nil }
func (*leanConn) IsValid() bool                       { return true }
func (c *leanConn) QueryContext(context.Context, string, []driver.NamedValue) (driver.Rows, error) {
	c.rows = leanRows{}
	return &c.rows, nil
}
func (*leanConn) ExecContext(context.Context, string, []driver.NamedValue) (driver.Result, error) {
	return driver.RowsAffected(1), nil
}

type leanRows struct{ done bool }

func (*leanRows) Columns() []string { return []string{"n"} }
func (*leanRows) Close() error      { return nil }
func (r *leanRows) Next(dest []driver.Value) error {
	if r.done {
		return io.EOF
	}
	r.done = true
	dest[0] = int64(1)
	return nil
}

// BenchmarkOverhead compares sqlpool (with its default metrics, and
// without) with database/sql's own pool over leanDriver: QueryRowContext
// and Scan of one integer, with 2 and 64 goroutines on 8 connections. Read
// with benchstat -col /pool.
func BenchmarkOverhead(b *testing.B) {
	const conns = 8
	for _, g := range []int{2, 64} {
		for _, pool := range []string{"database-sql", "sqlpool", "sqlpool-nometrics"} {
			b.Run(fmt.Sprintf("goroutines=%d/pool=%s", g, pool), func(b *testing.B) {
				var db *sql.DB
				if pool != "database-sql" {
					c, err := sqlpool.Wrap(leanDriver{}, sqlpool.Config{MaxSize: conns, DisableMetrics: pool == "sqlpool-nometrics"})
					if err != nil {
						b.Fatal(err)
					}
					db = sqlpool.OpenDB(c)
				} else {
					db = sql.OpenDB(leanDriver{})
					db.SetMaxOpenConns(conns)
					db.SetMaxIdleConns(conns)
				}
				defer db.Close()
				ctx := context.Background()
				b.SetParallelism((g + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					var n int64
					for pb.Next() {
						if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&n); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}
