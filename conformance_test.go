package sqlpool_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/lib/pq"
	"github.com/mattn/go-sqlite3"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
)

func openWrapped(t *testing.T, c *sqlpool.Connector, err error) *sql.DB {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	db := sqlpool.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformanceFakeDriver(t *testing.T) {
	bare, _ := bareDB(t, drivertest.Options{})
	wrapped, _, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{})
	drivertest.Run(t, bare, wrapped, drivertest.FakeDialect)
}

// TestConformanceFakeDriverWithoutOptionalInterfaces checks that sqlpool
// behaves like the bare driver when the driver lacks every optional interface.
func TestConformanceFakeDriverWithoutOptionalInterfaces(t *testing.T) {
	opts := drivertest.Options{Disable: drivertest.All}
	bare, _ := bareDB(t, opts)
	wrapped, _, _ := fakeDB(t, opts, sqlpool.Config{})
	d := drivertest.FakeDialect
	d.MultiResult = "" // needs RowsNextResultSet
	d.TxIsolation = []sql.IsolationLevel{sql.LevelDefault}
	d.ReadOnlyTx = false
	d.Sleep = "" // legacy methods have no context to cancel
	drivertest.Run(t, bare, wrapped, d)
}

func TestConformanceFakeDriverBadConnRetry(t *testing.T) {
	d := drivertest.New(drivertest.Options{})
	c, err := sqlpool.Wrap(d.Connector("x"), sqlpool.Config{})
	drivertest.RunBadConnRetry(t, openWrapped(t, c, err), d)
}

func TestConformanceSQLite(t *testing.T) {
	dir := t.TempDir()
	bare, err := sql.Open("sqlite3", filepath.Join(dir, "bare.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bare.Close() })
	c, err := sqlpool.NewConnector(&sqlite3.SQLiteDriver{}, filepath.Join(dir, "wrapped.db"), sqlpool.Config{})
	drivertest.Run(t, bare, openWrapped(t, c, err), drivertest.SQLiteDialect)
}

func TestConformancePostgres(t *testing.T) {
	dsn := drivertest.PostgresDSN(t)
	bare, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bare.Close() })
	c, err := sqlpool.NewConnector(&pq.Driver{}, dsn, sqlpool.Config{})
	drivertest.Run(t, bare, openWrapped(t, c, err), drivertest.PostgresDialect)
}

func TestConformanceMySQL(t *testing.T) {
	dsn := drivertest.MySQLDSN(t)
	bare, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bare.Close() })
	c, err := sqlpool.NewConnector(&mysql.MySQLDriver{}, dsn, sqlpool.Config{})
	drivertest.Run(t, bare, openWrapped(t, c, err), drivertest.MySQLDialect)
}
