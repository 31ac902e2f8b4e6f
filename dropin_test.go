package sqlpool_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/mattn/go-sqlite3"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
)

// After DDL, pgx with sqlpool's statement cache: the stale statement is
// closed (pgx's stdlib would hand it out again) and prepared anew, and the
// query retried once, so no query fails.
func TestPgxCachedPlanInvalidatedWhenRowsAreRead(t *testing.T) {
	dsn := drivertest.PostgresDSN(t)
	admin := openPostgres(t, dsn)
	if _, err := admin.Exec("DROP TABLE IF EXISTS sqlpool_pgx_ddl; CREATE TABLE sqlpool_pgx_ddl (id int, a text); INSERT INTO sqlpool_pgx_ddl VALUES (1, 'x')"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec("DROP TABLE IF EXISTS sqlpool_pgx_ddl") })
	c, err := sqlpool.NewConnector(stdlib.GetDefaultDriver(), dsn, sqlpool.Config{MaxSize: 1, StatementCacheMode: sqlpool.CacheAll})
	if err != nil {
		t.Fatal(err)
	}
	db := sqlpool.OpenDB(c)
	defer db.Close()
	count := func() (int, error) {
		rows, err := db.Query("SELECT * FROM sqlpool_pgx_ddl WHERE id >= $1", 0)
		if err != nil {
			return 0, fmt.Errorf("query: %w", err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil {
			return n, fmt.Errorf("rows: %w", err)
		}
		return n, nil
	}
	if _, err := count(); err != nil { // cached now
		t.Fatal(err)
	}
	if _, err := admin.Exec("ALTER TABLE sqlpool_pgx_ddl ADD COLUMN b int"); err != nil {
		t.Fatal(err)
	}
	failures := 0
	for range 3 {
		if _, err := count(); err != nil {
			t.Logf("after DDL: %v", err)
			failures++
		}
	}
	if failures > 0 {
		t.Errorf("%d of 3 queries failed after DDL, want none: sqlpool prepares again and retries once", failures)
	}
}

// SQLite with the statement cache: rows the application forgets to close
// stop holding the database's lock once they are garbage, as with the bare
// driver (whose finalizer closes its one-off statement).
func TestSQLiteForgottenRowsReleaseTheLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "forgotten.db")
	c, err := sqlpool.NewConnector(&sqlite3.SQLiteDriver{}, path, sqlpool.Config{MaxSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	db := sqlpool.OpenDB(c)
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1), (2)"); err != nil {
		t.Fatal(err)
	}
	func() {
		rows, err := db.Query("SELECT v FROM t WHERE v > ?", 0) // a cached statement
		if err != nil {
			t.Fatal(err)
		}
		rows.Next() // one row of two read; never closed
	}()
	bare, err := sql.Open("sqlite3", path+"?_busy_timeout=10")
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	waitFor(t, "a write from another connection once the rows are garbage", func() bool {
		runtime.GC()
		_, err := bare.Exec("INSERT INTO t VALUES (3)")
		return err == nil
	})
}
