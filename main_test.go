package sqlpool_test

import (
	"context"
	"database/sql"
	"testing"

	"go.uber.org/goleak"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
)

func TestMain(m *testing.M) {
	// database/sql's connectionOpener goroutine lives until DB.Close; lib/pq
	// and mysql keep none. Every DB in these tests is closed by Cleanup.
	goleak.VerifyTestMain(m)
}

// fakeDB returns a DB pooled by sqlpool over a fake driver, closed at the end
// of the test.
func fakeDB(t *testing.T, opts drivertest.Options, cfg sqlpool.Config) (*sql.DB, *sqlpool.Connector, *drivertest.Driver) {
	t.Helper()
	d := drivertest.New(opts)
	c, err := sqlpool.Wrap(d.Connector("test"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sqlpool.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db, c, d
}

// bareDB returns database/sql's own pool over a fake driver.
func bareDB(t *testing.T, opts drivertest.Options) (*sql.DB, *drivertest.Driver) {
	t.Helper()
	d := drivertest.New(opts)
	db := sql.OpenDB(d.Connector("bare"))
	t.Cleanup(func() { db.Close() })
	return db, d
}

func queryInt(t *testing.T, ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := q.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
