package drivertest_test

import (
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/lib/pq"
	_ "github.com/mattn/go-sqlite3"
	"github.com/sqlpool/sqlpool/drivertest"
)

// openSQL opens a database, closed when t is done.
func openSQL(t *testing.T, driverName, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestRunFake(t *testing.T) {
	t.Run("two drivers", func(t *testing.T) {
		drivertest.Run(t,
			open(t, drivertest.New(drivertest.Options{})),
			open(t, drivertest.New(drivertest.Options{})),
			drivertest.FakeDialect)
	})
	t.Run("one driver", func(t *testing.T) {
		d := drivertest.New(drivertest.Options{})
		drivertest.Run(t, open(t, d), open(t, d), drivertest.FakeDialect)
	})
	// database/sql's fallbacks for the interfaces left out must behave the
	// same.
	t.Run("fewer interfaces", func(t *testing.T) {
		drivertest.Run(t,
			open(t, drivertest.New(drivertest.Options{})),
			open(t, drivertest.New(drivertest.Options{Disable: drivertest.Pinger | drivertest.ExecerContext |
				drivertest.QueryerContext | drivertest.ConnPrepareContext | drivertest.SessionResetter |
				drivertest.Validator | drivertest.ColumnConverter | drivertest.DriverContext})),
			drivertest.FakeDialect)
	})
}

func TestRunSQLite(t *testing.T) {
	dir := t.TempDir()
	drivertest.Run(t,
		openSQL(t, "sqlite3", "file:"+filepath.Join(dir, "bare.db")+"?_busy_timeout=5000"),
		openSQL(t, "sqlite3", "file:"+filepath.Join(dir, "wrapped.db")+"?_busy_timeout=5000"),
		drivertest.SQLiteDialect)
}

func TestRunPostgres(t *testing.T) {
	dsn := drivertest.PostgresDSN(t)
	drivertest.Run(t, openSQL(t, "postgres", dsn), openSQL(t, "postgres", dsn), drivertest.PostgresDialect)
}

func TestRunMySQL(t *testing.T) {
	dsn := drivertest.MySQLDSN(t)
	drivertest.Run(t, openSQL(t, "mysql", dsn), openSQL(t, "mysql", dsn), drivertest.MySQLDialect)
}

// TestRunReportsDifferences runs Run on two fake databases that differ, in
// a child process, since a Run that finds differences fails its test.
func TestRunReportsDifferences(t *testing.T) {
	if os.Getenv("DRIVERTEST_CHILD") == "1" {
		drivertest.Run(t,
			open(t, drivertest.New(drivertest.Options{})),
			open(t, drivertest.New(drivertest.Options{Disable: drivertest.RowsNextResultSet | drivertest.RowsColumnTypeDatabaseTypeName})),
			drivertest.FakeDialect)
		return
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestRunReportsDifferences$", "-test.v")
	cmd.Env = append(os.Environ(), "DRIVERTEST_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("Run passed on databases that differ:\n%s", out)
	}
	for _, want := range []string{
		"--- PASS: TestRunReportsDifferences/query_returns_the_inserted_rows ",
		"--- FAIL: TestRunReportsDifferences/column_types_agree ",
		"--- PASS: TestRunReportsDifferences/column_types_agree/wrapped ",
		"--- FAIL: TestRunReportsDifferences/NextResultSet_returns_every_result_set/wrapped ",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("Run's output lacks %q:\n%s", want, out)
		}
	}
}
