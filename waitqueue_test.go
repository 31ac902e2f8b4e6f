package sqlpool_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
)

// syncBuffer is a bytes.Buffer safe for a logger on another goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestASelfDeadlockIsReportedWithinTheThreshold reproduces the classic pool
// self-deadlock: with one connection, a goroutine holding a transaction runs
// a query on the *sql.DB instead of the *sql.Tx, and waits for itself.
func TestASelfDeadlockIsReportedWithinTheThreshold(t *testing.T) {
	const threshold = 100 * time.Millisecond
	reports := make(chan sqlpool.DeadlockReport, 1)
	var logged syncBuffer
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{
		MaxSize:             1,
		DeadlockThreshold:   threshold,
		MaintenanceInterval: 10 * time.Millisecond,
		Logger:              slog.New(slog.NewTextHandler(&logged, nil)),
		OnDeadlock:          func(r sqlpool.DeadlockReport) { reports <- r },
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waiting := make(chan time.Time, 1)
	done := make(chan error, 1)
	go func() {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			done <- err
			return
		}
		defer tx.Rollback()
		waiting <- time.Now()
		var n int
		done <- db.QueryRowContext(ctx, "SELECT 1").Scan(&n) // db, not tx: waits for itself
	}()
	start := <-waiting
	var r sqlpool.DeadlockReport
	select {
	case r = <-reports:
	case err := <-done:
		t.Fatalf("the query returned (%v) instead of waiting", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no deadlock report after 10s")
	}
	elapsed := time.Since(start)
	t.Logf("reported after %v (threshold %v, checked every %v)", elapsed, threshold, threshold/4)
	// Detected at the first check past the threshold: within threshold/4 of
	// it, plus scheduling slack on a loaded machine.
	if elapsed < threshold || elapsed > threshold+threshold/4+200*time.Millisecond {
		t.Errorf("reported %v after the query started waiting, want about %v", elapsed, threshold)
	}

	self := r.SelfDeadlocked()
	if len(self) != 1 || len(r.Borrowers) != 1 || len(r.Waiters) != 1 {
		t.Fatalf("report: self-deadlocked %v, %d borrowers, %d waiters; want one of each\n%s", self, len(r.Borrowers), len(r.Waiters), r)
	}
	if b := r.Borrowers[0]; !strings.Contains(b.Stack, "BeginTx") || b.Held < threshold || b.Goroutine != self[0] {
		t.Errorf("borrower %+v: want the stack of BeginTx, held past the threshold, by goroutine %d", b, self[0])
	}
	if w := r.Waiters[0]; !strings.Contains(w.Stack, "QueryRowContext") || w.Goroutine != self[0] {
		t.Errorf("waiter %+v: want the stack of QueryRowContext, by goroutine %d", w, self[0])
	}
	if !strings.Contains(r.String(), "self-deadlock: goroutines") {
		t.Errorf("report text does not name the self-deadlock:\n%s", r)
	}
	if log := logged.String(); !strings.Contains(log, "level=WARN") || !strings.Contains(log, "possible deadlock") ||
		!strings.Contains(log, fmt.Sprintf("self_deadlocked_goroutines=[%d]", self[0])) {
		t.Errorf("log record: %s", log)
	}
	if n := c.Stats().Deadlocks; n != 1 {
		t.Errorf("Stats().Deadlocks = %d, want 1", n)
	}
	if q := c.Queue(); len(q) != 1 || q[0].Position != 1 {
		t.Errorf("Queue() = %+v, want the one waiter", q)
	}

	cancel() // the way out: the caller's context
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("query err = %v, want context.Canceled", err)
	}
	waitFor(t, "the connection to come back", func() bool { return c.Stats().InUse == 0 })
}

func TestCriticalReserveIsTakenOnlyWithPriorityCritical(t *testing.T) {
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 2, CriticalReserve: 1})
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil) // holds the one connection outside the reserve
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()

	hctx, cancel := context.WithTimeout(sqlpool.WithPriority(ctx, sqlpool.PriorityHigh), 50*time.Millisecond)
	defer cancel()
	var n int64
	if err := db.QueryRowContext(hctx, "SELECT 1").Scan(&n); !errors.Is(err, sqlpool.ErrAcquireTimeout) {
		t.Fatalf("high priority query with only the reserve free: err = %v, want ErrAcquireTimeout", err)
	}
	if got := queryInt(t, sqlpool.WithPriority(ctx, sqlpool.PriorityCritical), db, "SELECT 7"); got != 7 {
		t.Fatalf("critical query = %d", got)
	}
	if s := c.Stats(); s.Created != 2 || s.Timeouts != 1 {
		t.Errorf("created %d, timeouts %d; want 2 and 1", s.Created, s.Timeouts)
	}
}

func TestInvalidQueueConfigIsRefusedNamingTheField(t *testing.T) {
	d := drivertest.New(drivertest.Options{})
	_, err := sqlpool.Wrap(d.Connector("x"), sqlpool.Config{MaxSize: 2, CriticalReserve: 2})
	if err == nil || !strings.Contains(err.Error(), "CriticalReserve") {
		t.Errorf("err = %v, want one naming CriticalReserve", err)
	}
}

// TestFairnessFigure measures how evenly waiters are served: 64 goroutines
// share 4 connections for SQLPOOL_FAIRNESS (a duration, such as 5s), each
// running queries that hold a connection for 1ms, with database/sql's own
// pool (SetMaxOpenConns(4)) and with sqlpool (MaxSize 4), in one run. It is
// opt-in, for the closing figure:
//
//	SQLPOOL_FAIRNESS=5s go test -run TestFairnessFigure -v .
//
// A query's wait is its duration less the 1ms the driver holds it.
func TestFairnessFigure(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("SQLPOOL_FAIRNESS"))
	if err != nil {
		t.Skip("set SQLPOOL_FAIRNESS to a duration (5s) to measure the fairness figure")
	}
	const goroutines, conns, latency = 64, 4, time.Millisecond
	opts := drivertest.Options{Latency: latency}
	for _, tc := range []struct {
		name string
		open func(t *testing.T) *sql.DB
	}{
		{"database/sql", func(t *testing.T) *sql.DB {
			db, _ := bareDB(t, opts)
			db.SetMaxOpenConns(conns)
			db.SetMaxIdleConns(conns)
			return db
		}},
		{"sqlpool", func(t *testing.T) *sql.DB {
			db, _, _ := fakeDB(t, opts, sqlpool.Config{MaxSize: conns})
			return db
		}},
		{"sqlpool FairQueue", func(t *testing.T) *sql.DB {
			db, _, _ := fakeDB(t, opts, sqlpool.Config{MaxSize: conns, FairQueue: true})
			return db
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := tc.open(t)
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			waits := make([][]time.Duration, goroutines)
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var n int64
					for ctx.Err() == nil {
						start := time.Now()
						// Background: the window's end must not cut a query short.
						if err := db.QueryRowContext(context.Background(), "SELECT 1").Scan(&n); err != nil {
							t.Error(err)
							return
						}
						waits[g] = append(waits[g], max(0, time.Since(start)-latency))
					}
				}()
			}
			wg.Wait()
			var all []time.Duration
			minOps, maxOps := len(waits[0]), len(waits[0])
			for _, w := range waits {
				all = append(all, w...)
				minOps, maxOps = min(minOps, len(w)), max(maxOps, len(w))
			}
			slices.Sort(all)
			median, p99, worst := all[len(all)/2], all[len(all)*99/100], all[len(all)-1]
			t.Logf("%-18s %6d queries  wait median %-9v p99 %-9v max %-9v max/median %5.1f  queries per goroutine min %d max %d",
				tc.name, len(all), median.Round(time.Microsecond), p99.Round(time.Microsecond), worst.Round(time.Microsecond),
				float64(worst)/float64(median), minOps, maxOps)
		})
	}
}
