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
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/lib/pq"
	"github.com/mattn/go-sqlite3"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
	"github.com/sqlpool/sqlpool/internal/workload"
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
// drivers); client=sqlpool-pgx the same over pgx's database/sql driver,
// whose statement cache sqlpool leaves to pgx. Every pool holds at most 16 connections.
func BenchmarkWorkload(b *testing.B) {
	for _, db := range benchDBs(b.TempDir()) {
		b.Run("db="+db.name, func(b *testing.B) {
			dsn := db.prepare(b)
			for _, w := range benchWorkloads {
				for _, g := range []int{1, 8} {
					for _, c := range db.clients {
						b.Run(fmt.Sprintf("workload=%s/goroutines=%d/client=%s", w.name, g, c.name), func(b *testing.B) {
							s := c.open(b, dsn, db.q)
							rngs := benchRands(g)
							ctx := context.Background()
							runGoroutines(b, g, func(i int) error { return w.run(ctx, s, rngs[i]) }, settler(s))
						})
					}
				}
			}
		})
	}
}

// benchDB is a database of BenchmarkWorkload, with the clients that run the
// workloads on it.
type benchDB struct {
	name    string
	dsn     func(b *testing.B) string // skips b when the server does not answer
	driver  driver.Driver             // for the setup
	setup   []string                  // creates both tables; idempotent
	fill    string                    // fills sqlpool_bench; idempotent
	empty   string                    // empties sqlpool_bench_insert
	q       workload.Queries
	clients []benchClient
}

// benchDBs are the databases of the workload benchmarks; SQLite's file is
// in dir.
func benchDBs(dir string) []benchDB {
	return []benchDB{
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
			q: workload.Queries{
				Select: "SELECT v FROM sqlpool_bench WHERE id = $1",
				Insert: "INSERT INTO sqlpool_bench_insert (ref, v) VALUES ($1, $2)",
			},
			clients: []benchClient{
				{"args", func(b *testing.B, dsn string, q workload.Queries) workload.Session {
					return bareBench(b, &pq.Driver{}, dsn, q, false)
				}},
				{"prepared", func(b *testing.B, dsn string, q workload.Queries) workload.Session {
					return bareBench(b, &pq.Driver{}, dsn, q, true)
				}},
				{"pgx", func(b *testing.B, dsn string, q workload.Queries) workload.Session {
					return bareBench(b, stdlib.GetDefaultDriver(), dsn, q, false)
				}},
				{"pgxpool", pgxpoolBench},
				{"sqlpool", func(b *testing.B, dsn string, q workload.Queries) workload.Session {
					return sqlpoolBench(b, &pq.Driver{}, dsn, q)
				}},
				{"sqlpool-pgx", func(b *testing.B, dsn string, q workload.Queries) workload.Session {
					return sqlpoolBench(b, stdlib.GetDefaultDriver(), dsn, q)
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
			q: workload.Queries{
				Select: "SELECT v FROM sqlpool_bench WHERE id = ?",
				Insert: "INSERT INTO sqlpool_bench_insert (ref, v) VALUES (?, ?)",
			},
			clients: []benchClient{
				{"args", func(b *testing.B, dsn string, q workload.Queries) workload.Session {
					return bareBench(b, &mysql.MySQLDriver{}, dsn, q, false)
				}},
				{"interpolate", func(b *testing.B, dsn string, q workload.Queries) workload.Session {
					return bareBench(b, &mysql.MySQLDriver{}, withParam(dsn, "interpolateParams=true"), q, false)
				}},
				{"prepared", func(b *testing.B, dsn string, q workload.Queries) workload.Session {
					return bareBench(b, &mysql.MySQLDriver{}, dsn, q, true)
				}},
				{"sqlpool", func(b *testing.B, dsn string, q workload.Queries) workload.Session {
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
			q: workload.Queries{
				Select: "SELECT v FROM sqlpool_bench WHERE id = ?",
				Insert: "INSERT INTO sqlpool_bench_insert (ref, v) VALUES (?, ?)",
			},
			clients: []benchClient{
				{"args", func(b *testing.B, dsn string, q workload.Queries) workload.Session {
					return bareBench(b, &sqlite3.SQLiteDriver{}, dsn, q, false)
				}},
				{"prepared", func(b *testing.B, dsn string, q workload.Queries) workload.Session {
					return bareBench(b, &sqlite3.SQLiteDriver{}, dsn, q, true)
				}},
				{"sqlpool", func(b *testing.B, dsn string, q workload.Queries) workload.Session {
					return sqlpoolBench(b, &sqlite3.SQLiteDriver{}, dsn, q)
				}},
			},
		},
	}
}

// prepare creates and fills the tables of db if need be, empties
// sqlpool_bench_insert, and returns db's DSN.
func (db benchDB) prepare(b *testing.B) string {
	dsn := db.dsn(b)
	setup := openBare(b, db.driver, dsn)
	defer setup.Close()
	for _, q := range db.setup {
		if _, err := setup.Exec(q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	var v string
	switch err := setup.QueryRow(db.q.Select, benchRows).Scan(&v); {
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
	return dsn
}

// client returns db's client called name.
func (db benchDB) client(b *testing.B, name string) benchClient {
	for _, c := range db.clients {
		if c.name == name {
			return c
		}
	}
	b.Fatalf("%s has no client %q", db.name, name)
	return benchClient{}
}

// benchRands returns one random source per goroutine, the same ones in
// every run.
func benchRands(goroutines int) []*rand.Rand {
	rngs := make([]*rand.Rand, goroutines)
	for i := range rngs {
		rngs[i] = rand.New(rand.NewPCG(uint64(goroutines), uint64(i)))
	}
	return rngs
}

// benchWorkloads are the workloads of BenchmarkWorkload.
var benchWorkloads = []struct {
	name string
	run  func(ctx context.Context, s workload.Session, r *rand.Rand) error
}{
	{"select", func(ctx context.Context, s workload.Session, r *rand.Rand) error {
		return s.SelectRow(ctx, 1+r.IntN(benchRows))
	}},
	{"insert", func(ctx context.Context, s workload.Session, r *rand.Rand) error {
		return s.InsertRow(ctx, int64(1+r.IntN(benchRows)))
	}},
	{"tx", func(ctx context.Context, s workload.Session, r *rand.Rand) error {
		id1, id2 := 1+r.IntN(benchRows), 1+r.IntN(benchRows)
		return s.InTx(ctx, func(s workload.Statements) error {
			if err := s.SelectRow(ctx, id1); err != nil {
				return err
			}
			if err := s.InsertRow(ctx, int64(id1)); err != nil {
				return err
			}
			return s.SelectRow(ctx, id2)
		})
	}},
}

// benchClient opens a workload.Session on a database, closed when b ends.
type benchClient struct {
	name string
	open func(b *testing.B, dsn string, q workload.Queries) workload.Session
}

// pgxpoolBench returns a session on pgx's own pool, closed when b ends.
func pgxpoolBench(b *testing.B, dsn string, q workload.Queries) workload.Session {
	s, err := workload.Pgxpool(dsn, q, benchMaxSize)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// bareBench returns a session on database/sql's own pool over d, with the
// statements prepared once if prepare is set.
func bareBench(b *testing.B, d driver.Driver, dsn string, q workload.Queries, prepare bool) workload.Session {
	s, err := workload.SQL(openBare(b, d, dsn), q, prepare)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// openBare returns database/sql's own pool over d, closed when b ends.
func openBare(b *testing.B, d driver.Driver, dsn string) *sql.DB {
	db, err := workload.OpenBare(d, dsn)
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(benchMaxSize)
	db.SetMaxIdleConns(benchMaxSize)
	b.Cleanup(func() { db.Close() })
	return db
}

// sqlpoolBench returns a session on sqlpool over d, closed when b ends.
func sqlpoolBench(b *testing.B, d driver.Driver, dsn string, q workload.Queries) workload.Session {
	c, err := sqlpool.NewConnector(d, dsn, sqlpool.Config{MaxSize: benchMaxSize})
	if err != nil {
		b.Fatal(err)
	}
	db := sqlpool.OpenDB(c)
	b.Cleanup(func() { db.Close() })
	s, err := workload.SQL(db, q, false)
	if err != nil {
		b.Fatal(err)
	}
	return sqlpoolSession{s, b, c}
}

// settler returns the settle method of s if it has one, else nil: a
// session whose pool may still be opening the connections the warm-up asked
// for when the warm-up returns.
func settler(s workload.Session) func() {
	if s, ok := s.(interface{ settle() }); ok {
		return s.settle
	}
	return nil
}

// sqlpoolSession is a session on sqlpool. A caller that finds no idle
// connection dials, but takes a connection released meanwhile if one comes
// first, leaving its dial to finish for the pool; so the warm-up can end
// with dials still in progress, which the database/sql pools have made
// before it returns.
type sqlpoolSession struct {
	workload.Session
	b *testing.B
	c *sqlpool.Connector
}

// settle waits until the pool has no dial in progress.
func (s sqlpoolSession) settle() {
	deadline := time.Now().Add(10 * time.Second)
	for s.c.Stats().Dialing > 0 {
		if time.Now().After(deadline) {
			s.b.Fatalf("the pool is still dialing after 10s: %+v", s.c.Stats().Stats)
		}
		time.Sleep(time.Millisecond)
	}
}

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
