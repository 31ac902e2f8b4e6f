package sqlpool_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/lib/pq"
	"github.com/mattn/go-sqlite3"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
)

// benchRows is the size of the point-select table, sqlpool_bench.
const benchRows = 100_000

// BenchmarkWorkload runs three workloads on each database that answers,
// with each way of running them, so that ratios can be read from one run:
//
//	go test -run '^$' -bench Workload -count 6 . | tee workload.txt
//	benchstat -col /client workload.txt
//
// The workloads: workload=select reads one row by primary key from
// sqlpool_bench (100k rows, created and filled once, kept between runs);
// workload=insert inserts one row into sqlpool_bench_insert (emptied at the
// start of each run); workload=tx is a transaction of three statements: a
// point select, an insert, and another point select.
//
// The clients: client=args is the bare driver through database/sql with the
// query text and arguments each time; client=prepared the bare driver with
// *sql.Stmt prepared once (and tx.StmtContext inside transactions);
// client=interpolate go-sql-driver/mysql with interpolateParams=true;
// client=pgx pgx's database/sql driver (with its own statement cache);
// client=pgxpool pgx's own pool, without database/sql; client=sqlpool the
// same code as args through sqlpool.OpenDB (CacheAll, the default for these
// drivers). Every pool holds at most 16 connections.
func BenchmarkWorkload(b *testing.B) {
	dir := b.TempDir() // SQLite's database file
	for _, db := range []struct {
		name    string
		dsn     func(b *testing.B) string // skips b when the server does not answer
		driver  driver.Driver             // for the setup
		setup   []string                  // creates both tables; idempotent
		fill    string                    // fills sqlpool_bench; idempotent
		empty   string                    // empties sqlpool_bench_insert
		q       benchQueries
		clients []benchClient
	}{
		{
			name:   "postgres",
			driver: &pq.Driver{},
			dsn:    func(b *testing.B) string { return drivertest.PostgresDSN(b) },
			setup: []string{
				"CREATE TABLE IF NOT EXISTS sqlpool_bench (id integer PRIMARY KEY, v text)",
				"CREATE TABLE IF NOT EXISTS sqlpool_bench_insert (id bigserial PRIMARY KEY, ref integer NOT NULL, v text NOT NULL)",
			},
			fill:  "INSERT INTO sqlpool_bench SELECT g, 'value-' || g FROM generate_series(1, 100000) g ON CONFLICT DO NOTHING",
			empty: "TRUNCATE sqlpool_bench_insert",
			q: benchQueries{
				sel: "SELECT v FROM sqlpool_bench WHERE id = $1",
				ins: "INSERT INTO sqlpool_bench_insert (ref, v) VALUES ($1, $2)",
			},
			clients: []benchClient{
				{"args", func(b *testing.B, dsn string, q benchQueries) benchSession {
					return bareBench(b, &pq.Driver{}, dsn, q, false)
				}},
				{"prepared", func(b *testing.B, dsn string, q benchQueries) benchSession {
					return bareBench(b, &pq.Driver{}, dsn, q, true)
				}},
				{"pgx", func(b *testing.B, dsn string, q benchQueries) benchSession {
					return bareBench(b, stdlib.GetDefaultDriver(), dsn, q, false)
				}},
				{"pgxpool", pgxpoolBench},
				{"sqlpool", func(b *testing.B, dsn string, q benchQueries) benchSession {
					return sqlpoolBench(b, &pq.Driver{}, dsn, q)
				}},
			},
		},
		{
			name:   "mysql",
			driver: &mysql.MySQLDriver{},
			dsn:    func(b *testing.B) string { return drivertest.MySQLDSN(b) },
			setup: []string{
				"CREATE TABLE IF NOT EXISTS sqlpool_bench (id integer PRIMARY KEY, v varchar(32))",
				"CREATE TABLE IF NOT EXISTS sqlpool_bench_insert (id bigint AUTO_INCREMENT PRIMARY KEY, ref integer NOT NULL, v varchar(32) NOT NULL)",
			},
			fill:  "INSERT IGNORE INTO sqlpool_bench SELECT n, CONCAT('value-', n) FROM (" + digitsQuery() + ") g",
			empty: "TRUNCATE TABLE sqlpool_bench_insert",
			q: benchQueries{
				sel: "SELECT v FROM sqlpool_bench WHERE id = ?",
				ins: "INSERT INTO sqlpool_bench_insert (ref, v) VALUES (?, ?)",
			},
			clients: []benchClient{
				{"args", func(b *testing.B, dsn string, q benchQueries) benchSession {
					return bareBench(b, &mysql.MySQLDriver{}, dsn, q, false)
				}},
				{"interpolate", func(b *testing.B, dsn string, q benchQueries) benchSession {
					return bareBench(b, &mysql.MySQLDriver{}, withParam(dsn, "interpolateParams=true"), q, false)
				}},
				{"prepared", func(b *testing.B, dsn string, q benchQueries) benchSession {
					return bareBench(b, &mysql.MySQLDriver{}, dsn, q, true)
				}},
				{"sqlpool", func(b *testing.B, dsn string, q benchQueries) benchSession {
					return sqlpoolBench(b, &mysql.MySQLDriver{}, dsn, q)
				}},
			},
		},
		{
			name:   "sqlite",
			driver: &sqlite3.SQLiteDriver{},
			dsn:    func(*testing.B) string { return sqliteBenchDSN(dir) },
			setup: []string{
				"CREATE TABLE IF NOT EXISTS sqlpool_bench (id integer PRIMARY KEY, v text)",
				"CREATE TABLE IF NOT EXISTS sqlpool_bench_insert (id integer PRIMARY KEY, ref integer NOT NULL, v text NOT NULL)",
			},
			fill: "INSERT OR IGNORE INTO sqlpool_bench WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 100000) " +
				"SELECT n, 'value-' || n FROM g",
			empty: "DELETE FROM sqlpool_bench_insert",
			q: benchQueries{
				sel: "SELECT v FROM sqlpool_bench WHERE id = ?",
				ins: "INSERT INTO sqlpool_bench_insert (ref, v) VALUES (?, ?)",
			},
			clients: []benchClient{
				{"args", func(b *testing.B, dsn string, q benchQueries) benchSession {
					return bareBench(b, &sqlite3.SQLiteDriver{}, dsn, q, false)
				}},
				{"prepared", func(b *testing.B, dsn string, q benchQueries) benchSession {
					return bareBench(b, &sqlite3.SQLiteDriver{}, dsn, q, true)
				}},
				{"sqlpool", func(b *testing.B, dsn string, q benchQueries) benchSession {
					return sqlpoolBench(b, &sqlite3.SQLiteDriver{}, dsn, q)
				}},
			},
		},
	} {
		b.Run("db="+db.name, func(b *testing.B) {
			dsn := db.dsn(b)
			setup := openBare(b, db.driver, dsn)
			for _, q := range db.setup {
				if _, err := setup.Exec(q); err != nil {
					b.Fatalf("%s: %v", q, err)
				}
			}
			var v string
			switch err := setup.QueryRow(db.q.sel, benchRows).Scan(&v); {
			case errors.Is(err, sql.ErrNoRows):
				if _, err := setup.Exec(db.fill); err != nil {
					b.Fatalf("filling sqlpool_bench: %v", err)
				}
			case err != nil:
				b.Fatal(err)
			}
			if _, err := setup.Exec(db.empty); err != nil {
				b.Fatalf("%s: %v", db.empty, err)
			}
			setup.Close()

			for _, w := range benchWorkloads {
				for _, g := range []int{1, 8} {
					for _, c := range db.clients {
						b.Run(fmt.Sprintf("workload=%s/goroutines=%d/client=%s", w.name, g, c.name), func(b *testing.B) {
							s := c.open(b, dsn, db.q)
							rngs := make([]*rand.Rand, g)
							for i := range rngs {
								rngs[i] = rand.New(rand.NewPCG(uint64(g), uint64(i)))
							}
							ctx := context.Background()
							runGoroutines(b, g, func(i int) error { return w.run(ctx, s, rngs[i]) })
						})
					}
				}
			}
		})
	}
}

// benchQueries are a database's statements of the workloads.
type benchQueries struct {
	sel string // one argument, the id; one column
	ins string // two arguments: a reference (an id) and a text
}

// benchStatements runs the statements of the workloads somewhere: on a pool
// or inside a transaction.
type benchStatements interface {
	selectRow(ctx context.Context, id int) error
	insertRow(ctx context.Context, ref int) error
}

// benchSession is one client's way of running the workloads.
type benchSession interface {
	benchStatements
	// inTx runs fn in a transaction, which it commits if fn succeeds.
	inTx(ctx context.Context, fn func(benchStatements) error) error
}

// benchWorkloads are the workloads of BenchmarkWorkload.
var benchWorkloads = []struct {
	name string
	run  func(ctx context.Context, s benchSession, r *rand.Rand) error
}{
	{"select", func(ctx context.Context, s benchSession, r *rand.Rand) error {
		return s.selectRow(ctx, 1+r.IntN(benchRows))
	}},
	{"insert", func(ctx context.Context, s benchSession, r *rand.Rand) error {
		return s.insertRow(ctx, 1+r.IntN(benchRows))
	}},
	{"tx", func(ctx context.Context, s benchSession, r *rand.Rand) error {
		id1, id2 := 1+r.IntN(benchRows), 1+r.IntN(benchRows)
		return s.inTx(ctx, func(s benchStatements) error {
			if err := s.selectRow(ctx, id1); err != nil {
				return err
			}
			if err := s.insertRow(ctx, id1); err != nil {
				return err
			}
			return s.selectRow(ctx, id2)
		})
	}},
}

// benchClient opens a benchSession on a database, closed when b ends.
type benchClient struct {
	name string
	open func(b *testing.B, dsn string, q benchQueries) benchSession
}

// sqlQueryer is what *sql.DB and *sql.Tx have in common.
type sqlQueryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// sqlStatements runs the statements through database/sql, with the query
// text each time, or with statements prepared once when sel and ins are set.
type sqlStatements struct {
	on       sqlQueryer
	q        benchQueries
	sel, ins *sql.Stmt
}

func (s sqlStatements) selectRow(ctx context.Context, id int) error {
	var v string
	if s.sel != nil {
		return s.sel.QueryRowContext(ctx, id).Scan(&v)
	}
	return s.on.QueryRowContext(ctx, s.q.sel, id).Scan(&v)
}

func (s sqlStatements) insertRow(ctx context.Context, ref int) error {
	var err error
	if s.ins != nil {
		_, err = s.ins.ExecContext(ctx, ref, "inserted")
	} else {
		_, err = s.on.ExecContext(ctx, s.q.ins, ref, "inserted")
	}
	return err
}

// sqlSession is a benchSession on a *sql.DB.
type sqlSession struct {
	sqlStatements
	db *sql.DB
}

func (s sqlSession) inTx(ctx context.Context, fn func(benchStatements) error) error {
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

// pgxStatements runs the statements with pgx's own API, on a pgxpool.Pool
// or in a pgx.Tx.
type pgxStatements struct {
	on interface {
		QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
		Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	}
	q benchQueries
}

func (s pgxStatements) selectRow(ctx context.Context, id int) error {
	var v string
	return s.on.QueryRow(ctx, s.q.sel, id).Scan(&v)
}

func (s pgxStatements) insertRow(ctx context.Context, ref int) error {
	_, err := s.on.Exec(ctx, s.q.ins, ref, "inserted")
	return err
}

// pgxpoolSession is a benchSession on a pgxpool.Pool.
type pgxpoolSession struct {
	pgxStatements
	p *pgxpool.Pool
}

func (s pgxpoolSession) inTx(ctx context.Context, fn func(benchStatements) error) error {
	return pgx.BeginFunc(ctx, s.p, func(tx pgx.Tx) error { return fn(pgxStatements{tx, s.q}) })
}

func pgxpoolBench(b *testing.B, dsn string, q benchQueries) benchSession {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = benchMaxSize
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	return pgxpoolSession{pgxStatements{p, q}, p}
}

// bareBench returns a session on database/sql's own pool over d, with the
// statements prepared once if prepare is set.
func bareBench(b *testing.B, d driver.Driver, dsn string, q benchQueries, prepare bool) benchSession {
	db := openBare(b, d, dsn)
	s := sqlSession{sqlStatements{on: db, q: q}, db}
	if prepare {
		var err error
		if s.sel, err = db.Prepare(q.sel); err != nil {
			b.Fatal(err)
		}
		if s.ins, err = db.Prepare(q.ins); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// openBare returns database/sql's own pool over d, closed when b ends.
func openBare(b *testing.B, d driver.Driver, dsn string) *sql.DB {
	var c driver.Connector
	if dc, ok := d.(driver.DriverContext); ok {
		var err error
		if c, err = dc.OpenConnector(dsn); err != nil {
			b.Fatal(err)
		}
	} else {
		c = dsnConnector{dsn, d}
	}
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(benchMaxSize)
	db.SetMaxIdleConns(benchMaxSize)
	b.Cleanup(func() { db.Close() })
	return db
}

// sqlpoolBench returns a session on sqlpool over d, closed when b ends.
func sqlpoolBench(b *testing.B, d driver.Driver, dsn string, q benchQueries) benchSession {
	c, err := sqlpool.NewConnector(d, dsn, sqlpool.Config{MaxSize: benchMaxSize})
	if err != nil {
		b.Fatal(err)
	}
	db := sqlpool.OpenDB(c)
	b.Cleanup(func() { db.Close() })
	return sqlSession{sqlStatements{on: db, q: q}, db}
}

// dsnConnector opens connections of a driver without a Connector of its own.
type dsnConnector struct {
	dsn string
	d   driver.Driver
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.d.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.d }

// sqliteBenchDSN is a database file in dir, in WAL mode (readers beside the
// writer), with writers waiting for the lock, and BEGIN taking it at once, so
// that a transaction never fails upgrading a read lock.
func sqliteBenchDSN(dir string) string {
	return "file:" + filepath.Join(dir, "bench.db") + "?_journal_mode=WAL&_busy_timeout=5000&_txlock=immediate&_synchronous=NORMAL"
}

func withParam(dsn, param string) string {
	if strings.Contains(dsn, "?") {
		return dsn + "&" + param
	}
	return dsn + "?" + param
}

// digitsQuery numbers 1 to 100000 with a cross join of digits, since
// MariaDB caps recursive CTEs at 1000 iterations by default.
func digitsQuery() string {
	digits := "(SELECT 0 i UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 " +
		"UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)"
	return "SELECT a.i + 10*b.i + 100*c.i + 1000*d.i + 10000*e.i + 1 AS n FROM " +
		digits + " a, " + digits + " b, " + digits + " c, " + digits + " d, " + digits + " e"
}
