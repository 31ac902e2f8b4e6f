package sqlpool_test

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/lib/pq"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
	"github.com/sqlpool/sqlpool/partition"
	"github.com/sqlpool/sqlpool/pool"
)

// quiet discards the warnings the tests provoke.
var quiet = slog.New(slog.DiscardHandler)

// advance moves the fake clock on by d and lets the pool's maintenance run.
func advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// tenantAndConn returns the fake session's tenant and the connection's ID,
// in one borrowing.
func tenantAndConn(t *testing.T, db *sql.DB) (string, int64) {
	t.Helper()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var tenant sql.NullString
	if err := conn.QueryRowContext(ctx, "TENANT").Scan(&tenant); err != nil {
		t.Fatal(err)
	}
	return tenant.String, queryInt(t, ctx, conn, "CONNID")
}

func TestRecycleStrategiesOnRelease(t *testing.T) {
	for _, tc := range []struct {
		name       string
		recycle    sqlpool.RecycleStrategy
		resetSQL   string
		wantTenant string // what the next borrower sees
		sameConn   bool
	}{
		{"fast keeps the session", sqlpool.RecycleFast, "", "secret", true},
		{"checked resets it", sqlpool.RecycleChecked, "SETTENANT none", "none", true},
		{"checked without a reset replaces", sqlpool.RecycleChecked, "", "", false},
		{"replace", sqlpool.RecycleReplace, "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				db, c, d := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 1, Recycle: tc.recycle, ResetSQL: tc.resetSQL})
				ctx := context.Background()
				first := queryInt(t, ctx, db, "CONNID")
				if _, err := db.ExecContext(ctx, "SETTENANT secret"); err != nil {
					t.Fatal(err)
				}
				synctest.Wait() // a replacement is dialed in the background
				if !tc.sameConn {
					if n := d.Stats().Connects; n < 2 {
						t.Errorf("%d connects before the next borrowing, want the replacement dialed already", n)
					}
				}
				tenant, id := tenantAndConn(t, db)
				if tenant != tc.wantTenant || (id == first) != tc.sameConn {
					t.Errorf("next borrower: tenant %q on conn %d (first %d); want %q, same connection %v",
						tenant, id, first, tc.wantTenant, tc.sameConn)
				}
				if !tc.sameConn && c.Stats().Closed[pool.CloseEvicted] == 0 {
					t.Error("replaced connections not counted as evicted")
				}
			})
		})
	}
}

func TestRecycleCheckedClosesAConnectionWhoseResetFails(t *testing.T) {
	db, c, d := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 1, Recycle: sqlpool.RecycleChecked, ResetSQL: "FAIL reset"})
	ctx := context.Background()
	first := queryInt(t, ctx, db, "CONNID")
	if second := queryInt(t, ctx, db, "CONNID"); second == first {
		t.Error("a connection whose reset failed was reused")
	}
	if n := c.Stats().Closed[pool.CloseValidation]; n < 1 || d.Stats().Closes < 1 {
		t.Errorf("closed by validation %d, want the connection closed", n)
	}
}

func TestRecycleAdaptiveChoosesByAgeUsesAndLastError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 1, Recycle: sqlpool.RecycleAdaptive,
			ResetSQL: "SETTENANT none", MaxLifetime: 100 * time.Minute, LifetimeJitter: -1, IdleTimeout: -1, MaxUses: 20})
		ctx := context.Background()
		if _, err := db.ExecContext(ctx, "SETTENANT secret"); err != nil {
			t.Fatal(err)
		}
		first := queryInt(t, ctx, db, "CONNID")
		if tenant, id := tenantAndConn(t, db); tenant != "secret" || id != first {
			t.Fatalf("after a clean borrowing: tenant %q on conn %d, want the session kept (fast)", tenant, id)
		}
		if _, err := db.ExecContext(ctx, "FAIL oops"); err == nil {
			t.Fatal("FAIL did not fail")
		}
		if tenant, id := tenantAndConn(t, db); tenant != "none" || id != first {
			t.Fatalf("after a failed borrowing: tenant %q on conn %d, want the session reset on the same connection (checked)", tenant, id)
		}
		advance(91 * time.Minute) // past 90% of its lifetime
		queryInt(t, ctx, db, "CONNID")
		synctest.Wait()
		if id := queryInt(t, ctx, db, "CONNID"); id == first {
			t.Fatal("a connection near the end of its lifetime was recycled, want replaced")
		}
		if n := c.Stats().Closed[pool.CloseLifetime]; n != 1 {
			t.Errorf("closed by lifetime %d, want 1", n)
		}
		second := queryInt(t, ctx, db, "CONNID")
		for range 20 {
			queryInt(t, ctx, db, "CONNID")
			synctest.Wait()
		}
		if id := queryInt(t, ctx, db, "CONNID"); id == second {
			t.Fatal("a connection near MaxUses was not replaced")
		}
		if n := c.Stats().Closed[pool.CloseUsage]; n != 1 {
			t.Errorf("closed by usage %d, want 1", n)
		}
	})
}

func TestMaxUsesCountsBorrowingsThroughDatabaseSQL(t *testing.T) {
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 1, MaxUses: 3})
	ctx := context.Background()
	first := queryInt(t, ctx, db, "CONNID")
	for range 2 {
		if id := queryInt(t, ctx, db, "CONNID"); id != first {
			t.Fatalf("conn %d before MaxUses, want %d", id, first)
		}
	}
	if id := queryInt(t, ctx, db, "CONNID"); id == first {
		t.Fatal("connection reused past MaxUses")
	}
	if n := c.Stats().Closed[pool.CloseUsage]; n != 1 {
		t.Errorf("closed by usage %d, want 1", n)
	}
}

// eventLog records hook events, safe for concurrent use.
type eventLog struct {
	mu   sync.Mutex
	list []string
}

func (e *eventLog) add(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, fmt.Sprintf(format, args...))
}

func (e *eventLog) count(prefix string) (n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.list {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

func TestAReclaimedConnectionFailsItsBorrowersNextOperation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev eventLog
		db, c, d := fakeDB(t, drivertest.Options{}, sqlpool.Config{
			MaxSize: 2, MaxBorrowTime: time.Minute, ReclaimBorrowed: true, Logger: quiet, AcquireTimeout: time.Hour,
			// A partition of one connection: a reclaim that did not free its
			// slot, or freed it twice, shows.
			Routing:     partition.RouterConfig{Template: partition.Config{MaxSize: 1}},
			OnWarning:   func(w sqlpool.Warning) { ev.add("warn %v exceeded=%v reclaimed=%v", w.Limit, w.Exceeded, w.Reclaimed) },
			BeforeClose: func(driver.Conn) { ev.add("before close") },
			Hooks:       sqlpool.Hooks{OnClose: func(e sqlpool.CloseEvent) { ev.add("close %s", e.Reason) }},
		})
		ctx := sqlpool.WithTenant(context.Background(), "acme")
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, "SET k v"); err != nil {
			t.Fatal(err)
		}
		advance(61 * time.Second) // forgotten
		if s := c.Stats(); s.Closed[pool.CloseReclaimed] != 1 || s.Partitions["acme"].InUse != 0 || d.Stats().Closes != 1 {
			t.Fatalf("reclaimed %d, partition in use %d, driver closes %d; want 1, 0, 1",
				s.Closed[pool.CloseReclaimed], s.Partitions["acme"].InUse, d.Stats().Closes)
		}
		// The slot is free: another operation of the partition runs.
		if n := queryInt(t, ctx, db, "SELECT 7"); n != 7 {
			t.Fatal("SELECT 7")
		}
		for range 2 {
			if _, err := tx.ExecContext(ctx, "SET k w"); !errors.Is(err, sqlpool.ErrReclaimed) || errors.Is(err, driver.ErrBadConn) {
				t.Fatalf("operation on a reclaimed connection: err = %v, want ErrReclaimed (not ErrBadConn)", err)
			}
		}
		if err := tx.Rollback(); !errors.Is(err, sqlpool.ErrReclaimed) {
			t.Errorf("Rollback: err = %v, want ErrReclaimed", err)
		}
		// database/sql gave the handle back: nothing closed twice, the
		// partition's one slot is still usable, the write was not applied.
		if n := queryInt(t, ctx, db, "COUNT"); n != 0 {
			t.Errorf("COUNT = %d, want 0: the transaction was never committed", n)
		}
		if s := d.Stats(); s.Closes != 1 {
			t.Errorf("driver closes %d, want 1", s.Closes)
		}
		if n := ev.count("close reclaimed"); n != 1 || ev.count("before close") != 1 {
			t.Errorf("%d OnClose(reclaimed) and %d BeforeClose, want 1 each: %v", n, ev.count("before close"), ev.list)
		}
		if n := ev.count("warn borrow_time exceeded=true reclaimed=true"); n != 1 {
			t.Errorf("%d reclaim warnings, want 1: %v", n, ev.list)
		}
	})
}

func TestAReclaimedSQLConnKeepsFailing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db, _, d := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 1, MaxBorrowTime: time.Minute, ReclaimBorrowed: true, Logger: quiet})
		ctx := context.Background()
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		queryInt(t, ctx, conn, "SELECT 1")
		advance(61 * time.Second)
		for range 2 {
			if err := conn.QueryRowContext(ctx, "SELECT 1").Scan(new(int)); !errors.Is(err, sqlpool.ErrReclaimed) {
				t.Fatalf("err = %v, want ErrReclaimed", err)
			}
		}
		if err := conn.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		queryInt(t, ctx, db, "SELECT 1")
		if s := d.Stats(); s.Closes != 1 || s.Connects != 2 {
			t.Errorf("closes %d, connects %d; want 1 and 2", s.Closes, s.Connects)
		}
	})
}

func TestReclaimLeavesTheCloseOfACallInProgressToItsEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db, c, d := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 1, MaxBorrowTime: time.Minute, ReclaimBorrowed: true, Logger: quiet,
			AcquireTimeout: time.Hour})
		ctx := context.Background()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error)
		go func() {
			sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			_, err := tx.ExecContext(sctx, "SLEEP") // a call that outlives MaxBorrowTime
			done <- err
		}()
		advance(61 * time.Second)
		if s := c.Stats(); s.Closed[pool.CloseReclaimed] != 1 || s.Size != 0 {
			t.Fatalf("reclaimed %d, size %d; want 1 and 0: the slot is freed at once", s.Closed[pool.CloseReclaimed], s.Size)
		}
		if n := d.Stats().Closes; n != 0 {
			t.Fatalf("%d closes while the call runs, want 0: the close waits for it", n)
		}
		queryInt(t, ctx, db, "SELECT 1") // on a new connection
		err = <-done
		if !errors.Is(err, sqlpool.ErrReclaimed) {
			t.Errorf("the interrupted call's err = %v, want ErrReclaimed", err)
		}
		if n := d.Stats().Closes; n != 1 {
			t.Errorf("%d closes after the call, want 1", n)
		}
		tx.Rollback()
		if n := d.Stats().Closes; n != 1 {
			t.Errorf("%d closes after Rollback, want 1", n)
		}
	})
}

func TestLifecycleHooks(t *testing.T) {
	t.Run("BeforeConnect runs before each dial, and can fail it", func(t *testing.T) {
		type key struct{}
		var dials eventLog
		db, _, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 1, BeforeConnect: func(ctx context.Context) error {
			if _, ok := ctx.Deadline(); !ok {
				t.Error("BeforeConnect's context has no deadline (ConnectTimeout)")
			}
			dials.add("dial %v", ctx.Value(key{}))
			return nil
		}})
		ctx := context.WithValue(context.Background(), key{}, "caller")
		queryInt(t, ctx, db, "SELECT 1")
		queryInt(t, ctx, db, "SELECT 1")
		if n := dials.count("dial caller"); n != 1 {
			t.Errorf("BeforeConnect called %d times with the caller's values, want once per dial: %v", n, dials.list)
		}
		db2, c2, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{BeforeConnect: func(context.Context) error {
			return errors.New("token expired")
		}})
		if err := db2.Ping(); err == nil || !strings.Contains(err.Error(), "token expired") || errors.Is(err, driver.ErrBadConn) {
			t.Errorf("Ping with a failing BeforeConnect: err = %v, want the hook's error, not ErrBadConn", err)
		}
		if s := c2.Stats(); s.ConnectErrors == 0 || s.Created != 0 {
			t.Errorf("connect errors %d, created %d; want the dial failed", s.ConnectErrors, s.Created)
		}
	})
	t.Run("AfterConnect sets up each session, or fails the dial", func(t *testing.T) {
		db, _, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{AfterConnect: func(ctx context.Context, dc driver.Conn) error {
			_, err := dc.(driver.ExecerContext).ExecContext(ctx, "SETTENANT init", nil)
			return err
		}})
		if tenant, _ := tenantAndConn(t, db); tenant != "init" {
			t.Errorf("tenant %q, want init", tenant)
		}
		db2, _, d := fakeDB(t, drivertest.Options{}, sqlpool.Config{AfterConnect: func(context.Context, driver.Conn) error {
			return errors.New("setup failed")
		}})
		if err := db2.Ping(); err == nil || !strings.Contains(err.Error(), "setup failed") {
			t.Errorf("err = %v, want AfterConnect's", err)
		}
		if s := d.Stats(); s.Connects == 0 || s.Closes != s.Connects {
			t.Errorf("connects %d, closes %d: a connection whose setup failed must be closed", s.Connects, s.Closes)
		}
	})
	t.Run("BeforeAcquire vetoes a connection", func(t *testing.T) {
		var vetoes atomic.Int32
		vetoes.Store(2)
		db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 2, BeforeAcquire: func(context.Context, driver.Conn) bool {
			return vetoes.Add(-1) < 0
		}})
		if n := queryInt(t, context.Background(), db, "SELECT 5"); n != 5 {
			t.Fatal("SELECT 5")
		}
		if n := c.Stats().Closed[pool.CloseEvicted]; n != 2 {
			t.Errorf("evicted %d, want the 2 vetoed connections", n)
		}
		db2, _, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 2, BeforeAcquire: func(context.Context, driver.Conn) bool { return false }})
		if err := db2.Ping(); err == nil || !strings.Contains(err.Error(), "vetoed") {
			t.Errorf("err = %v, want one saying the connections were vetoed", err)
		}
	})
	t.Run("AfterRelease closes a connection", func(t *testing.T) {
		var closed atomic.Int32
		db, c, d := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 1,
			AfterRelease: func(driver.Conn) bool { return false },
			BeforeClose:  func(driver.Conn) { closed.Add(1) }})
		first := queryInt(t, context.Background(), db, "CONNID")
		if second := queryInt(t, context.Background(), db, "CONNID"); second == first {
			t.Error("a connection AfterRelease refused was reused")
		}
		if n := c.Stats().Closed[pool.CloseEvicted]; n < 1 || int64(closed.Load()) != d.Stats().Closes {
			t.Errorf("evicted %d, BeforeClose %d, driver closes %d", n, closed.Load(), d.Stats().Closes)
		}
	})
}

func TestWarningsReachOnWarningAndTheLogger(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	var got []sqlpool.Warning
	db, _, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 1, MaxUses: 10,
		Logger:    slog.New(slog.NewTextHandler(&syncWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnWarning: func(w sqlpool.Warning) { mu.Lock(); got = append(got, w); mu.Unlock() }})
	ctx := sqlpool.WithTenant(context.Background(), "acme")
	for range 9 {
		queryInt(t, ctx, db, "SELECT 1")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].Limit != sqlpool.LimitUses || got[0].Uses != 9 || got[0].ConnID != 1 || got[0].Partition != "acme" {
		t.Fatalf("warnings %+v, want one: conn 1 of acme at 9 of 10 uses", got)
	}
	if s := buf.String(); !strings.Contains(s, "near its uses limit") || !strings.Contains(s, "conn=1") {
		t.Errorf("log %q lacks the warning", s)
	}
}

type syncWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func TestTheCallersCancellationIsNotAFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 1, ErrorThreshold: 0.2, ErrorWindow: 4})
		for range 4 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if _, err := db.ExecContext(ctx, "SLEEP"); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("SLEEP: err = %v", err)
			}
			cancel()
		}
		if r := c.Stats().ErrorRate; r != 0 {
			t.Errorf("error rate %v after 4 canceled operations, want 0", r)
		}
		for range 4 {
			if _, err := db.ExecContext(context.Background(), "FAIL server"); err == nil {
				t.Fatal("FAIL did not fail")
			}
		}
		if r := c.Stats().ErrorRate; r != 1 {
			t.Errorf("error rate %v after 4 failed operations, want 1", r)
		}
	})
}

func TestKeepaliveReplacesADeadIdleConnectionBeforeACallerSeesIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db, c, d := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 2, IdleTimeout: -1})
		ctx := context.Background()
		queryInt(t, ctx, db, "SELECT 1")
		d.KillAll() // the server dropped it while idle
		advance(2*time.Minute + time.Second)
		s := c.Stats()
		if s.Closed[pool.CloseValidation] != 1 || s.Created != 2 || s.Idle != 1 || s.Keepalives < 1 {
			t.Fatalf("closed by validation %d, created %d, idle %d, keepalives %d; want 1, 2, 1, ≥1",
				s.Closed[pool.CloseValidation], s.Created, s.Idle, s.Keepalives)
		}
		pings := d.Stats().Pings
		if n := queryInt(t, ctx, db, "CONNID"); n != 2 {
			t.Errorf("conn %d, want the replacement", n)
		}
		if d.Stats().Pings != pings {
			t.Error("the caller's borrowing pinged: keepalive did not spare it the check")
		}
	})
}

// A borrower's session state: a variable, a temporary table and a lock.
type sessionProbe struct {
	leave func(*testing.T, *sql.Conn) // makes state
	id    func(*testing.T, *sql.Conn) int64
	seen  func(*testing.T, *sql.Conn) (variable, table, lock bool)
}

// postgresProbe uses a fresh advisory lock key, so that sessions of other
// tests do not hold it.
func postgresProbe() sessionProbe {
	lockKey := rand.Int64()
	return sessionProbe{
		leave: func(t *testing.T, c *sql.Conn) {
			ctx := context.Background()
			for _, q := range []string{
				"SET application_name = 'leaked'",
				"CREATE TEMP TABLE leaked (x int)",
				fmt.Sprintf("SELECT pg_try_advisory_lock(%d)", lockKey),
			} {
				if _, err := c.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
		},
		id: func(t *testing.T, c *sql.Conn) int64 {
			return queryInt(t, context.Background(), c, "SELECT pg_backend_pid()")
		},
		seen: func(t *testing.T, c *sql.Conn) (variable, table, lock bool) {
			err := c.QueryRowContext(context.Background(), `SELECT current_setting('application_name') = 'leaked',
				to_regclass('pg_temp.leaked') IS NOT NULL,
				EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())`).Scan(&variable, &table, &lock)
			if err != nil {
				t.Fatal(err)
			}
			return variable, table, lock
		},
	}
}

// mysqlProbe uses a fresh lock name, so that sessions of other tests do not
// hold it.
func mysqlProbe() sessionProbe {
	lockName := fmt.Sprintf("sqlpool_leak_%d", rand.Int64())
	return sessionProbe{
		leave: func(t *testing.T, c *sql.Conn) {
			ctx := context.Background()
			for _, q := range []string{
				"SET @leaked = 1",
				"CREATE TEMPORARY TABLE leaked (x int)",
				"SELECT GET_LOCK('" + lockName + "', 0)",
			} {
				if _, err := c.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
		},
		id: func(t *testing.T, c *sql.Conn) int64 {
			return queryInt(t, context.Background(), c, "SELECT CONNECTION_ID()")
		},
		seen: func(t *testing.T, c *sql.Conn) (variable, table, lock bool) {
			ctx := context.Background()
			// The lock is this session's only if IS_USED_LOCK names it: a
			// closed session's locks are freed by the server asynchronously.
			err := c.QueryRowContext(ctx, "SELECT @leaked IS NOT NULL, COALESCE(IS_USED_LOCK('"+lockName+"') = CONNECTION_ID(), 0)").Scan(&variable, &lock)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.ExecContext(ctx, "SELECT x FROM leaked")
			return variable, err == nil, lock
		},
	}
}

// testSessionIsolation makes state in one borrowing of the only physical
// connection and looks for it in the next.
func testSessionIsolation(t *testing.T, open func(*testing.T, sqlpool.Config) *sql.DB, newProbe func() sessionProbe, checkedReplaces bool) {
	for _, tc := range []struct {
		name    string
		recycle sqlpool.RecycleStrategy
	}{{"fast", sqlpool.RecycleFast}, {"checked", sqlpool.RecycleChecked}} {
		t.Run(tc.name, func(t *testing.T) {
			probe := newProbe()
			db := open(t, sqlpool.Config{MaxSize: 1, Recycle: tc.recycle})
			ctx := context.Background()
			conn, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			first := probe.id(t, conn)
			probe.leave(t, conn)
			conn.Close()
			conn, err = db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			same := probe.id(t, conn) == first
			variable, table, lock := probe.seen(t, conn)
			if tc.recycle == sqlpool.RecycleFast {
				// With MaxSize 1 the next borrower gets the same session,
				// left as the last one left it: Fast reuses it as it is.
				if !same || !variable || !table || !lock {
					t.Errorf("fast: same session %v, variable %v, temp table %v, lock %v; want all the previous borrower's state visible",
						same, variable, table, lock)
				}
				return
			}
			if variable || table || lock {
				t.Errorf("checked: the next borrower sees the variable %v, the temp table %v, the lock %v; want none", variable, table, lock)
			}
			if same == checkedReplaces {
				t.Errorf("checked: same session %v, want %v", same, !checkedReplaces)
			}
		})
	}
}

func TestRecycleCheckedIsolatesSessionsOnPostgreSQL(t *testing.T) {
	dsn := drivertest.PostgresDSN(t)
	for _, d := range []struct {
		name string
		drv  driver.Driver
	}{{"lib/pq", &pq.Driver{}}, {"pgx", stdlib.GetDefaultDriver()}} {
		t.Run(d.name, func(t *testing.T) {
			open := func(t *testing.T, cfg sqlpool.Config) *sql.DB {
				c, err := sqlpool.NewConnector(d.drv, dsn, cfg)
				if err != nil {
					t.Fatal(err)
				}
				db := sqlpool.OpenDB(c)
				t.Cleanup(func() { db.Close() })
				return db
			}
			testSessionIsolation(t, open, postgresProbe, false)
		})
	}
}

func TestRecycleCheckedDropsTheStatementsDiscardAllDeallocated(t *testing.T) {
	dsn := drivertest.PostgresDSN(t)
	for _, d := range []struct {
		name string
		drv  driver.Driver
	}{{"lib/pq", &pq.Driver{}}, {"pgx", stdlib.GetDefaultDriver()}} {
		t.Run(d.name, func(t *testing.T) {
			// lib/pq under CacheAll (its default) keeps named statements in
			// sqlpool's cache; pgx keeps them in its own.
			c, err := sqlpool.NewConnector(d.drv, dsn, sqlpool.Config{MaxSize: 1, Recycle: sqlpool.RecycleChecked})
			if err != nil {
				t.Fatal(err)
			}
			db := sqlpool.OpenDB(c)
			defer db.Close()
			for i := range 5 {
				var n int
				if err := db.QueryRow("SELECT $1::int + 1", i).Scan(&n); err != nil || n != i+1 {
					t.Fatalf("borrowing %d: %d, %v (a statement deallocated by DISCARD ALL was reused?)", i, n, err)
				}
			}
			if s := c.Stats(); s.Created != 1 {
				t.Errorf("created %d connections, want 1: Checked resets, it does not replace", s.Created)
			}
		})
	}
}

func TestRecycleCheckedIsolatesSessionsOnMySQL(t *testing.T) {
	dsn := drivertest.MySQLDSN(t)
	open := func(t *testing.T, cfg sqlpool.Config) *sql.DB {
		c, err := sqlpool.NewConnector(&mysql.MySQLDriver{}, dsn, cfg)
		if err != nil {
			t.Fatal(err)
		}
		db := sqlpool.OpenDB(c)
		t.Cleanup(func() { db.Close() })
		return db
	}
	// go-sql-driver/mysql cannot reset a session: Checked replaces the
	// connection.
	testSessionIsolation(t, open, mysqlProbe, true)
}

func TestReclaimOnPostgreSQLWaitsForTheRunningQuery(t *testing.T) {
	dsn := drivertest.PostgresDSN(t)
	c, err := sqlpool.NewConnector(&pq.Driver{}, dsn, sqlpool.Config{MaxSize: 1, MaxBorrowTime: 200 * time.Millisecond,
		ReclaimBorrowed: true, Logger: quiet, MaintenanceInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	db := sqlpool.OpenDB(c)
	defer db.Close()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	// While the query runs past MaxBorrowTime, its slot is reclaimed: with
	// MaxSize 1, another borrower gets a connection meanwhile.
	done := make(chan error, 1)
	go func() {
		_, err := tx.ExecContext(ctx, "SELECT pg_sleep(1)")
		done <- err
	}()
	if n := queryInt(t, ctx, db, "SELECT 1"); n != 1 {
		t.Fatal("SELECT 1")
	}
	select {
	case err := <-done:
		t.Fatalf("the query ended (%v) before the other borrower was served", err)
	default:
	}
	if err := <-done; err != nil {
		t.Errorf("the running query: %v, want it to complete", err)
	}
	if _, err := tx.ExecContext(ctx, "SELECT 1"); !errors.Is(err, sqlpool.ErrReclaimed) {
		t.Errorf("next operation: err = %v, want ErrReclaimed", err)
	}
	if n := c.Stats().Closed[pool.CloseReclaimed]; n != 1 {
		t.Errorf("reclaimed %d, want 1", n)
	}
}

func TestLifecyclePoliciesKeepTheHotPathFreeOfAllocations(t *testing.T) {
	d := drivertest.New(drivertest.Options{})
	c, err := sqlpool.Wrap(d.Connector("x"), sqlpool.Config{MaxUses: 1 << 40, ErrorThreshold: 0.2,
		MaxBorrowTime: time.Hour, ReclaimBorrowed: true,
		BeforeAcquire: func(context.Context, driver.Conn) bool { return true },
		AfterRelease:  func(driver.Conn) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := sqlpool.WithTenant(context.Background(), "acme")
	h, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// What database/sql does for a db.PingContext: an operation on the
	// handle (bind, call), then IsValid (release).
	ping, release := h.(driver.Pinger), h.(driver.Validator)
	allocs := testing.AllocsPerRun(1000, func() {
		if err := ping.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		release.IsValid()
	})
	if allocs != 0 {
		t.Errorf("a borrowing with every lifecycle policy and hook on allocates %v times, want 0", allocs)
	}
}
