package sqlpool_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/lib/pq"
	"github.com/mattn/go-sqlite3"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
)

const benchRows = 100_000

// BenchmarkPointSelect selects one row by primary key from a 100k-row table,
// through database/sql, with each way of running the query, on each database
// that answers, so that ratios can be read from one run:
//
//	go test -run '^$' -bench PointSelect -count 6 . | tee bench.txt
//	benchstat -col /client bench.txt
//
// client=args is the bare driver with the query text and arguments each time,
// client=prepared the bare driver with a *sql.Stmt prepared once,
// client=sqlpool the same code as args through sqlpool (CacheAll, the
// default for these drivers). Every pool is capped at 8 connections.
func BenchmarkPointSelect(b *testing.B) {
	dir := b.TempDir()
	for _, db := range []struct {
		name, create, fill, query string
		clients                   []benchClient
	}{
		{
			name:   "postgres",
			create: "CREATE TABLE IF NOT EXISTS sqlpool_bench (id integer PRIMARY KEY, v text)",
			fill:   "INSERT INTO sqlpool_bench SELECT g, 'value-' || g FROM generate_series(1, 100000) g ON CONFLICT DO NOTHING",
			query:  "SELECT v FROM sqlpool_bench WHERE id = $1",
			clients: []benchClient{
				{"args", func(b *testing.B) *sql.DB { return bareBenchDB(b, &pq.Driver{}, drivertest.PostgresDSN(b)) }, false},
				{"prepared", func(b *testing.B) *sql.DB { return bareBenchDB(b, &pq.Driver{}, drivertest.PostgresDSN(b)) }, true},
				{"pgx", func(b *testing.B) *sql.DB {
					return bareBenchDB(b, stdlib.GetDefaultDriver(), drivertest.PostgresDSN(b))
				}, false},
				{"sqlpool", func(b *testing.B) *sql.DB { return sqlpoolBenchDB(b, &pq.Driver{}, drivertest.PostgresDSN(b)) }, false},
			},
		},
		{
			name:   "mysql",
			create: "CREATE TABLE IF NOT EXISTS sqlpool_bench (id integer PRIMARY KEY, v varchar(32))",
			fill:   "INSERT IGNORE INTO sqlpool_bench SELECT n, CONCAT('value-', n) FROM (" + digitsQuery() + ") g",
			query:  "SELECT v FROM sqlpool_bench WHERE id = ?",
			clients: []benchClient{
				{"args", func(b *testing.B) *sql.DB { return bareBenchDB(b, &mysql.MySQLDriver{}, drivertest.MySQLDSN(b)) }, false},
				{"prepared", func(b *testing.B) *sql.DB { return bareBenchDB(b, &mysql.MySQLDriver{}, drivertest.MySQLDSN(b)) }, true},
				{"interpolate", func(b *testing.B) *sql.DB {
					return bareBenchDB(b, &mysql.MySQLDriver{}, withParam(drivertest.MySQLDSN(b), "interpolateParams=true"))
				}, false},
				{"sqlpool", func(b *testing.B) *sql.DB { return sqlpoolBenchDB(b, &mysql.MySQLDriver{}, drivertest.MySQLDSN(b)) }, false},
			},
		},
		{
			name:   "sqlite",
			create: "CREATE TABLE IF NOT EXISTS sqlpool_bench (id integer PRIMARY KEY, v text)",
			fill: "INSERT OR IGNORE INTO sqlpool_bench WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 100000) " +
				"SELECT n, 'value-' || n FROM g",
			query: "SELECT v FROM sqlpool_bench WHERE id = ?",
			clients: []benchClient{
				{"args", func(b *testing.B) *sql.DB { return bareBenchDB(b, &sqlite3.SQLiteDriver{}, sqliteBenchDSN(dir)) }, false},
				{"prepared", func(b *testing.B) *sql.DB { return bareBenchDB(b, &sqlite3.SQLiteDriver{}, sqliteBenchDSN(dir)) }, true},
				{"sqlpool", func(b *testing.B) *sql.DB { return sqlpoolBenchDB(b, &sqlite3.SQLiteDriver{}, sqliteBenchDSN(dir)) }, false},
			},
		},
	} {
		b.Run("db="+db.name, func(b *testing.B) {
			setup := db.clients[0].open(b)
			for _, q := range []string{db.create, db.fill} {
				if _, err := setup.Exec(q); err != nil {
					b.Fatalf("%s: %v", q, err)
				}
			}
			for _, g := range []int{1, 8} {
				for _, c := range db.clients {
					b.Run(fmt.Sprintf("client=%s/goroutines=%d", c.name, g), func(b *testing.B) {
						runPointSelect(b, c.open(b), db.query, c.prepare, g)
					})
				}
			}
		})
	}
}

type benchClient struct {
	name    string
	open    func(b *testing.B) *sql.DB
	prepare bool // use a *sql.Stmt prepared once
}

func runPointSelect(b *testing.B, db *sql.DB, query string, prepare bool, goroutines int) {
	ctx := context.Background()
	run := func(id int) error {
		var v string
		return db.QueryRowContext(ctx, query, id).Scan(&v)
	}
	if prepare {
		stmt, err := db.Prepare(query)
		if err != nil {
			b.Fatal(err)
		}
		defer stmt.Close()
		run = func(id int) error {
			var v string
			return stmt.QueryRowContext(ctx, id).Scan(&v)
		}
	}
	if err := run(1); err != nil { // warm up one connection
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(goroutines), uint64(next.Load())))
			for next.Add(1) <= int64(b.N) {
				if err := run(1 + r.IntN(benchRows)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func bareBenchDB(b *testing.B, d driver.Driver, dsn string) *sql.DB {
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
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	b.Cleanup(func() { db.Close() })
	return db
}

func sqlpoolBenchDB(b *testing.B, d driver.Driver, dsn string) *sql.DB {
	c, err := sqlpool.NewConnector(d, dsn, sqlpool.Config{MaxSize: 8})
	if err != nil {
		b.Fatal(err)
	}
	db := sqlpool.OpenDB(c)
	b.Cleanup(func() { db.Close() })
	return db
}

type dsnConnector struct {
	dsn string
	d   driver.Driver
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.d.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.d }

func sqliteBenchDSN(dir string) string {
	return "file:" + filepath.Join(dir, "bench.db") + "?_journal_mode=WAL&_busy_timeout=5000"
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
