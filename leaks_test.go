package sqlpool_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
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
