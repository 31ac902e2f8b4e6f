package pgbouncer_test

import (
	"context"
	"database/sql"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/lib/pq" // registers "postgres"
	"go.uber.org/goleak"

	"github.com/sqlpool/sqlpool/internal/pgbouncer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestStartPoolsTransactionsOverItsServerConnections proves the pooler is
// in transaction mode: with one server connection, a session setting made
// by one client is seen by another client, whose transaction ran on the
// same server session.
func TestStartPoolsTransactionsOverItsServerConnections(t *testing.T) {
	s := pgbouncer.Start(t, pgbouncer.Options{PoolSize: 1})
	ctx := context.Background()
	a, b := open(t, s.DSN("")), open(t, s.DSN(""))
	if _, err := a.ExecContext(ctx, "SELECT set_config('app.pgbouncer_test', 'from a', false)"); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := b.QueryRowContext(ctx, "SELECT current_setting('app.pgbouncer_test', true)").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "from a" {
		t.Errorf("client b sees app.pgbouncer_test = %q, want %q: the server session is not shared, so this is not a one-connection transaction pooler", got, "from a")
	}
	var mode string
	rows, err := open(t, s.AdminDSN()).QueryContext(ctx, "SHOW CONFIG")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		if vals[0].String == "pool_mode" {
			mode = vals[1].String
		}
	}
	if mode != "transaction" {
		t.Errorf("SHOW CONFIG: pool_mode = %q, want transaction", mode)
	}
}

// TestCloseStopsTheProcessAndFreesThePort checks that nothing outlives the
// server: after Close, the process has been waited for, the port refuses
// connections and the directory is gone.
func TestCloseStopsTheProcessAndFreesThePort(t *testing.T) {
	s := pgbouncer.Start(t, pgbouncer.Options{Users: []string{"postgres"}})
	db := open(t, s.DSN("binary_parameters=yes"))
	var n int
	if err := db.QueryRow("SELECT $1::int + 1", 41).Scan(&n); err != nil || n != 42 {
		t.Fatalf("SELECT $1::int + 1 with 41 through the pooler = %d, %v; want 42", n, err)
	}
	db.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !s.Exited() {
		t.Error("the process has not been waited for after Close")
	}
	if c, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Close", s.Addr())
	}
	if _, err := os.Stat(s.LogPath()); !os.IsNotExist(err) {
		t.Errorf("the log file is still there after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("a second Close: %v, want nil", err)
	}
}

// TestDSNKeepsTheUpstreamDatabase checks the DSN's shape: the pooler's
// address, the upstream database, sslmode=disable and the extra
// parameters.
func TestDSNKeepsTheUpstreamDatabase(t *testing.T) {
	s := pgbouncer.Start(t, pgbouncer.Options{})
	dsn := s.DSN("binary_parameters=yes")
	for _, want := range []string{"@" + s.Addr() + "/", "sslmode=disable", "binary_parameters=yes"} {
		if !strings.Contains(dsn, want) {
			t.Errorf("DSN = %q, want it to contain %q", dsn, want)
		}
	}
}
