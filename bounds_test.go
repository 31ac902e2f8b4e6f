package sqlpool_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/mattn/go-sqlite3"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
	"github.com/sqlpool/sqlpool/partition"
)

// A throttled tenant must hold no connection while it waits for its
// QueryRate: with one connection, another tenant is served meanwhile.
func TestQueryRateWaitsBeforeBorrowing(t *testing.T) {
	routing := partition.RouterConfig{Partitions: []partition.Config{{Name: "noisy", QueryRate: 0.001}}}
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 1, AcquireTimeout: -1, Routing: routing}) // only the context bounds the wait
	noisy := sqlpool.WithTenant(context.Background(), "noisy")
	queryInt(t, noisy, db, "SELECT 1") // the burst
	ctx, cancel := context.WithCancel(noisy)
	done := make(chan error)
	go func() {
		_, err := db.ExecContext(ctx, "SELECT 1")
		done <- err
	}()
	waitFor(t, "the noisy tenant waiting for its QueryRate", func() bool { return c.Stats().Partitions["noisy"].Throttled == 1 })
	if s := c.Stats(); s.Partitions["noisy"].InUse != 0 {
		t.Errorf("the throttled tenant holds %d connections while it waits", s.Partitions["noisy"].InUse)
	}
	// The only connection is free for a quiet tenant meanwhile.
	quiet, qcancel := context.WithTimeout(sqlpool.WithTenant(context.Background(), "quiet"), 5*time.Second)
	defer qcancel()
	queryInt(t, quiet, db, "SELECT 2")
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("throttled exec: %v, want its QueryRate wait to end with the context", err)
	}
}

// A QueryRate wait that cannot end before the deadline fails at once as a
// timeout (ErrAcquireTimeout; context.DeadlineExceeded too when the
// caller's deadline is the nearer), and counts in the timeouts.
func TestQueryRatePastTheDeadlineIsATimeout(t *testing.T) {
	routing := partition.RouterConfig{Partitions: []partition.Config{{Name: "noisy", QueryRate: 0.001}}}
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{AcquireTimeout: time.Hour, Routing: routing})
	noisy := sqlpool.WithTenant(context.Background(), "noisy")
	queryInt(t, noisy, db, "SELECT 1") // the burst
	ctx, cancel := context.WithTimeout(noisy, time.Minute)
	defer cancel()
	start := time.Now()
	_, err := db.ExecContext(ctx, "SELECT 1")
	if !errors.Is(err, sqlpool.ErrAcquireTimeout) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "QueryRate") {
		t.Errorf("err = %v, want a QueryRate timeout at the caller's deadline", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("refused after %v, want at once", d)
	}
	if s := c.Stats(); s.Partitions["noisy"].Timeouts != 1 || s.Timeouts != 1 {
		t.Errorf("timeouts: partition %d, pool %d; want 1 and 1", s.Partitions["noisy"].Timeouts, s.Timeouts)
	}
}

// One long transaction of distinct statements (SQL texts from input) keeps
// no more prepared statements than the cache's bounds, in count and bytes.
func TestStatementsBoundedInOneLongTransaction(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  sqlpool.Config
		want int64 // statements kept at most
	}{
		{"count", sqlpool.Config{MaxSize: 1, StatementCacheMode: sqlpool.CacheAll, StatementCacheSize: 8}, 8},
		{"bytes", sqlpool.Config{MaxSize: 1, StatementCacheMode: sqlpool.CacheAll, StatementCacheMaxBytes: 100}, int64(100 / len("SELECT ? 100"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, c, d := fakeDB(t, drivertest.Options{}, tc.cfg)
			tx, err := db.Begin()
			if err != nil {
				t.Fatal(err)
			}
			for i := range 500 {
				if _, err := tx.Exec(fmt.Sprintf("SELECT ? %d", 100+i), i); err != nil {
					t.Fatal(err)
				}
				s := d.Stats()
				if open := s.Prepares - s.StmtCloses; open > tc.want {
					t.Fatalf("after %d distinct statements in one transaction, %d are prepared, want at most %d", i+1, open, tc.want)
				}
			}
			tx.Rollback()
			if s := c.Stats().StatementCache; s.Cached > tc.want {
				t.Errorf("%d statements cached, want at most %d", s.Cached, tc.want)
			}
		})
	}
}

// A panicking OnAcquire or BeforeAcquire hook gives back the connection and
// the partition slot it was handed: the pool serves the next caller.
func TestPanickingHooksRelease(t *testing.T) {
	routing := partition.RouterConfig{Template: partition.Config{MaxSize: 1}}
	for _, which := range []string{"OnAcquire", "BeforeAcquire"} {
		t.Run(which, func(t *testing.T) {
			var mu sync.Mutex
			panicking := true
			boom := func() {
				mu.Lock()
				defer mu.Unlock()
				if panicking {
					panicking = false
					panic("hook")
				}
			}
			cfg := sqlpool.Config{MaxSize: 1, AcquireTimeout: 5 * time.Second, Routing: routing}
			if which == "OnAcquire" {
				cfg.Hooks.OnAcquire = func(sqlpool.AcquireEvent) { boom() }
			} else {
				cfg.BeforeAcquire = func(context.Context, driver.Conn) bool { boom(); return true }
			}
			db, c, _ := fakeDB(t, drivertest.Options{}, cfg)
			ctx := sqlpool.WithTenant(context.Background(), "t")
			func() {
				defer func() {
					if recover() == nil {
						t.Fatal("the hook's panic did not reach the caller")
					}
				}()
				db.ExecContext(ctx, "SELECT 1")
			}()
			if s := c.Stats(); s.InUse != 0 || s.Partitions["t"].InUse != 0 {
				t.Fatalf("after the panic: %d connections in use, partition %d; want 0", s.InUse, s.Partitions["t"].InUse)
			}
			queryInt(t, ctx, db, "SELECT 1")
		})
	}
}

// A statement whose argument count is wrong fires OnQueryStart and
// OnQueryEnd once each.
func TestQueryHooksPairedOnWrongArgumentCount(t *testing.T) {
	var mu sync.Mutex
	var events []string
	note := func(e sqlpool.QueryEvent, what string) {
		mu.Lock()
		defer mu.Unlock()
		if e.Ctx == nil {
			t.Errorf("%s event without the operation's context", what)
		}
		events = append(events, what+" "+e.Op)
	}
	cfg := sqlpool.Config{StatementCacheMode: sqlpool.CacheAll, Hooks: sqlpool.Hooks{
		OnQueryStart: func(e sqlpool.QueryEvent) { note(e, "start") },
		OnQueryEnd:   func(e sqlpool.QueryEvent) { note(e, "end") },
	}}
	db, _, _ := fakeDB(t, drivertest.Options{}, cfg)
	db.Exec("SELECT ? ?", 1) // one argument short: the driver's error
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(events, ", "); got != "start exec, end exec" {
		t.Errorf("hook events: %s; want start exec, end exec", got)
	}
}

// SQLite with the statement cache (the default CacheAll): an Exec of a
// statement that returns rows is committed, and the database is not left
// locked.
func TestSQLiteExecReturningIsCommitted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "returning.db")
	c, err := sqlpool.NewConnector(&sqlite3.SQLiteDriver{}, path+"?_busy_timeout=100", sqlpool.Config{MaxSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	db := sqlpool.OpenDB(c)
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := db.Exec("INSERT INTO t (v) VALUES (?) RETURNING id", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
		stmt, err := db.Prepare("INSERT INTO t (v) VALUES (?) RETURNING id")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stmt.Exec("p" + fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
		stmt.Close()
	}
	// Another process (a bare connection) sees every row, and can write.
	bare, err := sql.Open("sqlite3", path+"?_busy_timeout=100")
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	var n int
	if err := bare.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 6 {
		t.Errorf("another connection sees %d rows (%v), want 6: the writes were not committed", n, err)
	}
	if _, err := bare.Exec("INSERT INTO t (v) VALUES ('bare')"); err != nil {
		t.Errorf("another connection cannot write: %v", err)
	}
}

// lib/pq's COPY, prepared in each of three transactions on one connection,
// loads every row: a COPY statement is never cached or reused.
func TestPostgresCopyInEachTransaction(t *testing.T) {
	dsn := drivertest.PostgresDSN(t)
	admin := openPostgres(t, dsn)
	if _, err := admin.Exec("DROP TABLE IF EXISTS sqlpool_copy; CREATE TABLE sqlpool_copy (v integer)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec("DROP TABLE IF EXISTS sqlpool_copy") })
	c, err := sqlpool.NewConnector(&pq.Driver{}, dsn, sqlpool.Config{MaxSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	db := sqlpool.OpenDB(c)
	defer db.Close()
	for round := range 3 {
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		//lint:ignore SA1019 lib/pq's COPY statement is what the test exercises
		stmt, err := tx.Prepare(pq.CopyIn("sqlpool_copy", "v"))
		if err != nil {
			t.Fatalf("round %d: prepare: %v", round, err)
		}
		if _, err := stmt.Exec(round); err != nil {
			t.Fatalf("round %d: row: %v", round, err)
		}
		if _, err := stmt.Exec(); err != nil {
			t.Fatalf("round %d: flush: %v", round, err)
		}
		if err := stmt.Close(); err != nil {
			t.Fatalf("round %d: close: %v", round, err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatalf("round %d: commit: %v", round, err)
		}
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM sqlpool_copy").Scan(&n); err != nil || n != 3 {
		t.Errorf("%d rows copied (%v), want 3", n, err)
	}
}

// A hostile tenant id is refused before routing: no partition, no dial
// (TestMetricsAnswerAfterHostileTenants: /metrics still answers).
func TestBadTenantNamesAreRefusedBeforeAnyDial(t *testing.T) {
	db, c, d := fakeDB(t, drivertest.Options{}, sqlpool.Config{})
	queryInt(t, context.Background(), db, "SELECT 1")
	dials := d.Stats().Connects
	for _, name := range []string{"nul\x00byte", "bad\xffutf8", strings.Repeat("x", 10_000)} {
		_, err := db.ExecContext(sqlpool.WithTenant(context.Background(), name), "SELECT 1")
		if !errors.Is(err, sqlpool.ErrInvalidPartitionName) {
			t.Errorf("tenant %.20q: %v, want ErrInvalidPartitionName", name, err)
		}
	}
	if n := d.Stats().Connects; n != dials {
		t.Errorf("%d dials for refused tenants, want none", n-dials)
	}
	if n := len(c.Stats().Partitions); n != 1 {
		t.Errorf("%d partitions after refused tenants, want only the default", n)
	}
}

// BenchmarkConnectionMemory reports the memory a physical connection holds
// with a full statement cache (the default 64 statements), through the
// fake driver: B/conn, the Connector's share and the fake driver's.
func BenchmarkConnectionMemory(b *testing.B) {
	const conns = 64
	for b.Loop() {
		b.StopTimer()
		d := drivertest.New(drivertest.Options{})
		c, err := sqlpool.Wrap(d.Connector(""), sqlpool.Config{MaxSize: conns, StatementCacheMode: sqlpool.CacheAll})
		if err != nil {
			b.Fatal(err)
		}
		db := sqlpool.OpenDB(c)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		b.StartTimer()
		held := make([]*sql.Conn, conns)
		for i := range held {
			held[i], _ = db.Conn(context.Background())
			for s := range 64 {
				held[i].ExecContext(context.Background(), fmt.Sprintf("SELECT ? %d", s), s)
			}
		}
		for _, h := range held {
			h.Close()
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/conns, "B/conn")
		db.Close()
		b.StartTimer()
	}
}

// dialFails is a connector whose dials fail with err.
type dialFails struct{ err error }

func (d dialFails) Connect(context.Context) (driver.Conn, error) { return nil, d.err }
func (d dialFails) Driver() driver.Driver                        { return nil }

// A failed dial returns the driver's own error, identical under ==, as the
// bare driver does.
func TestDialErrorIsTheDriversOwn(t *testing.T) {
	errDial := errors.New("driver: cannot dial")
	c, err := sqlpool.Wrap(dialFails{errDial}, sqlpool.Config{})
	if err != nil {
		t.Fatal(err)
	}
	db := sqlpool.OpenDB(c)
	defer db.Close()
	if err := db.Ping(); err != errDial {
		t.Errorf("Ping: %v, want the driver's error itself", err)
	}
}

// Inside a transaction the partition's QueryRate is waited for as at an
// acquisition: a wait past the deadline fails at once, as a timeout.
func TestQueryRateInsideATransactionIsBoundedByTheDeadline(t *testing.T) {
	routing := partition.RouterConfig{Partitions: []partition.Config{{Name: "noisy", QueryRate: 0.001, QueryBurst: 2}}}
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{AcquireTimeout: time.Hour, Routing: routing})
	ctx, cancel := context.WithTimeout(sqlpool.WithTenant(context.Background(), "noisy"), time.Minute)
	defer cancel()
	tx, err := db.BeginTx(ctx, nil) // the burst's first token
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	queryInt(t, ctx, tx, "SELECT 1") // its second
	start := time.Now()
	_, err = tx.ExecContext(ctx, "SELECT 1")
	if !errors.Is(err, sqlpool.ErrAcquireTimeout) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "QueryRate") {
		t.Errorf("err = %v, want a QueryRate timeout at the caller's deadline", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("refused after %v, want at once", d)
	}
	if n := c.Stats().Partitions["noisy"].Timeouts; n != 1 {
		t.Errorf("partition timeouts %d, want 1", n)
	}
}
