package sqlpool_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
	"github.com/sqlpool/sqlpool/partition"
)

func TestLeakDetectorTellsTxRowsAndConnApart(t *testing.T) {
	leaks := make(chan sqlpool.Leak, 8)
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{
		LeakThreshold: 30 * time.Millisecond,
		LeakStacks:    true,
		Hooks:         sqlpool.Hooks{OnLeak: func(l sqlpool.Leak) { leaks <- l }},
	})
	ctx := sqlpool.WithTenant(context.Background(), "acme")
	next := func() sqlpool.Leak {
		t.Helper()
		select {
		case l := <-leaks:
			return l
		case <-time.After(5 * time.Second):
			t.Fatal("no leak reported")
			return sqlpool.Leak{}
		}
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := next()
	if l.Kind != "tx" || l.Partition != "acme" || l.Held < 30*time.Millisecond ||
		!strings.Contains(l.Stack, "TestLeakDetectorTellsTxRowsAndConnApart") {
		t.Errorf("leak = %+v; want a tx of acme held 30ms+, with this test in its stack", l)
	}

	rows, err := db.QueryContext(ctx, "ROWS 3")
	if err != nil {
		t.Fatal(err)
	}
	if l := next(); l.Kind != "rows" {
		t.Errorf("open Rows reported as %q", l.Kind)
	}

	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "SETTENANT x"); err != nil {
		t.Fatal(err)
	}
	if l := next(); l.Kind != "conn" {
		t.Errorf("held sql.Conn reported as %q", l.Kind)
	}

	s := c.Stats()
	if s.LeaksDetected != 3 || len(s.Leaks) != 3 {
		t.Errorf("stats: %d detected, %d current; want 3 and 3", s.LeaksDetected, len(s.Leaks))
	}
	tx.Rollback()
	rows.Close()
	conn.Close()
	if s := c.Stats(); len(s.Leaks) != 0 || s.LeaksDetected != 3 {
		t.Errorf("after release: %d current, %d detected; want 0 and 3", len(s.Leaks), s.LeaksDetected)
	}
}

func TestNoLeakReportsWithoutAThreshold(t *testing.T) {
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{})
	tx, _ := db.Begin()
	defer tx.Rollback()
	if s := c.Stats(); s.LeaksDetected != 0 || s.Leaks != nil {
		t.Errorf("leaks reported with LeakThreshold 0: %+v", s.Leaks)
	}
}

// TestAWaitingWarmUpDelaysNoLeakReport checks that the partitions' warm-up,
// which may wait long for a connection, does not hold up the check of
// borrowings held too long.
func TestAWaitingWarmUpDelaysNoLeakReport(t *testing.T) {
	routing := partition.RouterConfig{
		Template:   partition.Config{SetupSQL: "SETTENANT ?", ResetSQL: "SETTENANT none"},
		Partitions: []partition.Config{{Name: "vip", MinSize: 1, SetupSQL: "SETTENANT ?", ResetSQL: "SETTENANT none"}},
	}
	leaks := make(chan sqlpool.Leak, 8)
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{
		MaxSize: 1, Routing: routing, MaintenanceInterval: 10 * time.Millisecond,
		ValidationTimeout: time.Minute, AcquireTimeout: time.Minute,
		LeakThreshold: 30 * time.Millisecond,
		Hooks:         sqlpool.Hooks{OnLeak: func(l sqlpool.Leak) { leaks <- l }},
	})
	// The only connection, held by acme: vip's warm-up waits for it.
	tx, err := db.BeginTx(sqlpool.WithTenant(context.Background(), "acme"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	waitFor(t, "the warm-up to wait", func() bool { return c.Stats().Waiting == 1 })
	select {
	case l := <-leaks:
		if l.Partition != "acme" || l.Kind != "tx" {
			t.Errorf("leak %+v, want acme's tx", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no leak reported while the warm-up waits")
	}
}

// TestAConnectorRunsOneMaintenanceGoroutine counts the goroutines a
// Connector starts: the pool's maintenance, which also checks for leaks,
// and the dashboard's history sampler unless metrics are off.
func TestAConnectorRunsOneMaintenanceGoroutine(t *testing.T) {
	for _, tc := range []struct {
		metrics bool
		want    int
	}{{false, 1}, {true, 2}} {
		// Those of earlier tests' Connectors end just after their Close.
		waitFor(t, "no sqlpool goroutine", func() bool { return sqlpoolGoroutines() == 0 })
		c, err := sqlpool.Wrap(drivertest.New(drivertest.Options{}).Connector("x"), sqlpool.Config{
			LeakThreshold: time.Minute, MaxBorrowTime: time.Hour, DeadlockThreshold: time.Minute,
			DisableMetrics: !tc.metrics,
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := sqlpoolGoroutines(); n != tc.want {
			t.Errorf("metrics %v: %d goroutines, want %d", tc.metrics, n, tc.want)
		}
		c.Close()
		waitFor(t, "the goroutines to end after Close", func() bool { return sqlpoolGoroutines() == 0 })
	}
}

// sqlpoolGoroutines counts the goroutines started by sqlpool and its pool.
func sqlpoolGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "created by github.com/sqlpool/sqlpool.") ||
			strings.Contains(g, "created by github.com/sqlpool/sqlpool/pool.") {
			n++
		}
	}
	return n
}
