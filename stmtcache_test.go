package sqlpool_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/lib/pq"
	"github.com/mattn/go-sqlite3"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
)

func TestConformanceFakeDriverInEveryCacheMode(t *testing.T) {
	for _, mode := range []sqlpool.CacheMode{sqlpool.CacheOff, sqlpool.CacheExplicit, sqlpool.CacheAll} {
		t.Run(mode.String(), func(t *testing.T) {
			bare, _ := bareDB(t, drivertest.Options{})
			wrapped, _, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{StatementCacheMode: mode, StatementCacheSize: 2})
			drivertest.Run(t, bare, wrapped, drivertest.FakeDialect)
		})
	}
}

func TestExplicitStatementIsPreparedOncePerConnection(t *testing.T) {
	db, c, d := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 1})
	stmt, err := db.Prepare("SELECT ?")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		var got int64
		if err := stmt.QueryRow(i).Scan(&got); err != nil || got != int64(i) {
			t.Fatalf("SELECT %d = %d, %v", i, got, err)
		}
	}
	stmt.Close() // database/sql closes its statement: the cached one stays
	if s := d.Stats(); s.Prepares != 1 || s.StmtCloses != 0 {
		t.Errorf("prepares %d, closes %d; want 1 and 0", s.Prepares, s.StmtCloses)
	}
	cs := c.Stats().StatementCache
	if cs.Hits != 100 || cs.Misses != 1 || cs.Cached != 1 {
		t.Errorf("cache stats %+v; want 100 hits (one per execution after the Prepare), 1 miss, 1 cached", cs)
	}
	db.Close() // a connection's statements die with it
	if s := d.Stats(); s.StmtCloses != 1 {
		t.Errorf("statement closes after Close = %d, want 1", s.StmtCloses)
	}
}

func TestCacheAllRunsQueriesWithArgumentsThroughTheCache(t *testing.T) {
	db, c, d := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 1, StatementCacheMode: sqlpool.CacheAll})
	for i := range 50 {
		if n := queryInt(t, context.Background(), db, "SELECT ?", i); n != int64(i) {
			t.Fatalf("got %d, want %d", n, i)
		}
	}
	queryInt(t, context.Background(), db, "COUNT") // no arguments: the driver's own path
	if s := d.Stats(); s.Prepares != 1 {
		t.Errorf("prepares %d, want 1", s.Prepares)
	}
	if cs := c.Stats().StatementCache; cs.Hits != 49 || cs.Misses != 1 {
		t.Errorf("cache stats %+v, want 49 hits and 1 miss", cs)
	}
}

func TestCacheAllLeavesMultipleStatementsAndWrongArgumentCountsToTheDriver(t *testing.T) {
	db, _, d := fakeDB(t, drivertest.Options{}, sqlpool.Config{StatementCacheMode: sqlpool.CacheAll})
	db.Exec("SET a ?; SET b ?", 1, 2) // the fake rejects it; what matters is that nothing was prepared
	if n := d.Stats().Prepares; n != 0 {
		t.Errorf("a multi-statement string was prepared %d times, want 0", n)
	}
	_, bareErr := func() (sql.Result, error) {
		bare, _ := bareDB(t, drivertest.Options{})
		return bare.Exec("SELECT ?", 1, 2)
	}()
	_, err := db.Exec("SELECT ?", 1, 2)
	if (err == nil) != (bareErr == nil) {
		t.Errorf("too many arguments: sqlpool %v, bare driver %v", err, bareErr)
	}
}

func TestCacheExplicitLeavesOneOffQueriesToTheDriver(t *testing.T) {
	db, _, d := fakeDB(t, drivertest.Options{}, sqlpool.Config{StatementCacheMode: sqlpool.CacheExplicit})
	queryInt(t, context.Background(), db, "SELECT ?", 1)
	if n := d.Stats().Prepares; n != 0 {
		t.Errorf("prepares %d, want 0", n)
	}
}

func TestCacheOffPreparesForEachBorrowing(t *testing.T) {
	db, _, d := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 1, StatementCacheMode: sqlpool.CacheOff})
	stmt, err := db.Prepare("SELECT ?")
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	for i := range 10 {
		stmt.Exec(i)
	}
	if s := d.Stats(); s.Prepares != 11 || s.StmtCloses != 11 {
		t.Errorf("prepares %d, closes %d; want 11 and 11 (one per borrowing, none kept)", s.Prepares, s.StmtCloses)
	}
}

func TestCacheOfTwoRotatingFiveStatements(t *testing.T) {
	db, c, d := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 1, StatementCacheMode: sqlpool.CacheAll, StatementCacheSize: 2})
	for round := range 2 {
		for i := range 5 {
			q := "SELECT ?" + fmt.Sprintf(" %d", i) // five distinct statements
			if _, err := db.Exec(q, round); err != nil {
				t.Fatal(err)
			}
		}
	}
	s := d.Stats()
	cs := c.Stats().StatementCache
	if s.Prepares != 10 || s.StmtCloses != 8 || cs.Evictions != 8 || cs.Cached != 2 {
		t.Errorf("prepares %d, closes %d, evictions %d, cached %d; want 10, 8, 8, 2", s.Prepares, s.StmtCloses, cs.Evictions, cs.Cached)
	}
}

func TestEvictionNeverClosesAStatementWithOpenRows(t *testing.T) {
	db, _, d := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 1, StatementCacheMode: sqlpool.CacheAll, StatementCacheSize: 1})
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.QueryContext(ctx, "SELECT ? ?", 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	// The cache is full with the statement of the open rows: another
	// statement must not evict it.
	queryInt(t, ctx, conn, "SELECT ?", 3)
	if n := d.Stats().StmtCloses; n != 0 {
		t.Fatalf("%d statements closed while a Rows was open", n)
	}
	var a, b int64
	if !rows.Next() || rows.Scan(&a, &b) != nil || a != 1 || b != 2 {
		t.Fatalf("rows after another statement: %d %d, %v", a, b, rows.Err())
	}
	rows.Close()
	conn.Close()
	// No room in the cache: the second statement ran the driver's one-off
	// way, and nothing was kept for it.
	if s := d.Stats(); s.StmtCloses != 0 || s.Prepares != 1 {
		t.Errorf("after the borrowing: %d statements prepared, %d closed; want 1, 0", s.Prepares, s.StmtCloses)
	}
}

func TestStatementCacheTotalCapSpansConnections(t *testing.T) {
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 3, StatementCacheMode: sqlpool.CacheAll, StatementCacheMaxTotal: 2})
	ctx := context.Background()
	var conns []*sql.Conn
	for i := range 3 {
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
		queryInt(t, ctx, conn, "SELECT ?", i)
	}
	for _, conn := range conns {
		conn.Close()
	}
	if cs := c.Stats().StatementCache; cs.Cached != 2 {
		t.Errorf("cached %d statements, want the total cap 2", cs.Cached)
	}
	if n := len(c.Stats().Connections); n != 3 {
		t.Errorf("%d connections in Stats, want 3", n)
	}
}

func TestDefaultCacheModePerDriver(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func() (*sqlpool.Connector, error)
		want sqlpool.CacheMode
	}{
		{"lib/pq", func() (*sqlpool.Connector, error) {
			return sqlpool.NewConnector(&pq.Driver{}, "postgres://u@127.0.0.1/x", sqlpool.Config{})
		}, sqlpool.CacheAll},
		{"mysql", func() (*sqlpool.Connector, error) {
			return sqlpool.NewConnector(&mysql.MySQLDriver{}, "u@tcp(127.0.0.1:3306)/x", sqlpool.Config{})
		}, sqlpool.CacheAll},
		{"sqlite3", func() (*sqlpool.Connector, error) {
			return sqlpool.NewConnector(&sqlite3.SQLiteDriver{}, "x.db", sqlpool.Config{})
		}, sqlpool.CacheAll},
		{"unknown driver", func() (*sqlpool.Connector, error) {
			return sqlpool.Wrap(drivertest.New(drivertest.Options{}).Connector("x"), sqlpool.Config{})
		}, sqlpool.CacheExplicit},
	} {
		c, err := tc.open()
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Stats().StatementCacheMode; got != tc.want {
			t.Errorf("%s: mode %v, want %v", tc.name, got, tc.want)
		}
		c.Close()
	}
}

// TestCachedPlanInvalidatedByDDL runs a cached SELECT * before and after an
// ALTER TABLE adding a column, on each real database.
func TestCachedPlanInvalidatedByDDL(t *testing.T) {
	for _, tc := range []struct {
		name, placeholder string
		open              func(t *testing.T) (*sqlpool.Connector, error)
	}{
		{"postgres", "$1", func(t *testing.T) (*sqlpool.Connector, error) {
			return sqlpool.NewConnector(&pq.Driver{}, drivertest.PostgresDSN(t), sqlpool.Config{MaxSize: 1})
		}},
		{"mysql", "?", func(t *testing.T) (*sqlpool.Connector, error) {
			return sqlpool.NewConnector(&mysql.MySQLDriver{}, drivertest.MySQLDSN(t), sqlpool.Config{MaxSize: 1})
		}},
		{"sqlite", "?", func(t *testing.T) (*sqlpool.Connector, error) {
			return sqlpool.NewConnector(&sqlite3.SQLiteDriver{}, t.TempDir()+"/ddl.db", sqlpool.Config{MaxSize: 1})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.open(t)
			if err != nil {
				t.Fatal(err)
			}
			db := sqlpool.OpenDB(c)
			defer db.Close()
			table := fmt.Sprintf("sqlpool_ddl_%d", time.Now().UnixNano()%1e9)
			db.Exec("DROP TABLE IF EXISTS " + table)
			defer db.Exec("DROP TABLE IF EXISTS " + table)
			mustExec(t, db, "CREATE TABLE "+table+" (id integer PRIMARY KEY, a integer)")
			mustExec(t, db, "INSERT INTO "+table+" (id, a) VALUES (1, 10)")
			q := "SELECT * FROM " + table + " WHERE id = " + tc.placeholder
			if n := columns(t, db, q); n != 2 {
				t.Fatalf("%d columns, want 2", n)
			}
			mustExec(t, db, "ALTER TABLE "+table+" ADD COLUMN b integer")
			if n := columns(t, db, q); n != 3 {
				t.Fatalf("after ALTER TABLE: %d columns, want 3", n)
			}
			if tc.name == "postgres" {
				if n := c.Stats().StatementCache.Invalidations; n != 1 {
					t.Errorf("invalidations %d, want 1", n)
				}
				// Inside a transaction the error is returned, not retried.
				tx, err := db.Begin()
				if err != nil {
					t.Fatal(err)
				}
				rows, err := tx.Query(q, 1)
				if err == nil {
					rows.Close()
				}
				tx.Rollback()
				mustExec(t, db, "ALTER TABLE "+table+" ADD COLUMN c integer")
				tx, _ = db.Begin()
				if _, err := tx.Query(q, 1); err == nil {
					t.Error("a statement invalidated inside a transaction did not fail")
				}
				tx.Rollback()
				if n := columns(t, db, q); n != 4 {
					t.Errorf("after the transaction: %d columns, want 4", n)
				}
			}
		})
	}
}

func mustExec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func columns(t *testing.T, db *sql.DB, q string) int {
	t.Helper()
	rows, err := db.Query(q, 1)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	for rows.Next() {
	}
	return len(cols)
}
