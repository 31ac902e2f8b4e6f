package sqlpool_test

import (
	"bytes"
	"context"
	"database/sql/driver"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
)

// events records hook calls.
type events struct {
	mu  sync.Mutex
	log []string // guarded by mu
}

func (e *events) add(s string) {
	e.mu.Lock()
	e.log = append(e.log, s)
	e.mu.Unlock()
}

func (e *events) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	l := e.log
	e.log = nil
	return l
}

func recordingHooks(ev *events) sqlpool.Hooks {
	return sqlpool.Hooks{
		OnConnect: func(e sqlpool.ConnectEvent) { ev.add("connect") },
		OnAcquire: func(e sqlpool.AcquireEvent) {
			if e.Err != nil {
				ev.add("acquire error")
				return
			}
			ev.add("acquire " + e.Partition)
		},
		OnRelease:    func(e sqlpool.ReleaseEvent) { ev.add("release " + e.Partition) },
		OnQueryStart: func(e sqlpool.QueryEvent) { ev.add("start " + e.Op + " " + e.Query) },
		OnQueryEnd: func(e sqlpool.QueryEvent) {
			s := "end " + e.Op
			if e.Err != nil {
				s += " error"
			}
			ev.add(s)
		},
		OnClose: func(e sqlpool.CloseEvent) { ev.add("close " + e.Reason) },
	}
}

func TestHooksSeeEveryEvent(t *testing.T) {
	ev := &events{}
	db, _, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{Hooks: recordingHooks(ev), StatementCacheMode: sqlpool.CacheExplicit})
	ctx := sqlpool.WithTenant(context.Background(), "acme")
	queryInt(t, ctx, db, "SELECT 1")
	want := []string{"connect", "acquire acme", "start query SELECT 1", "end query", "release acme"}
	if got := ev.take(); !slices.Equal(got, want) {
		t.Errorf("first query: hooks saw\n%q\nwant\n%q", got, want)
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tx.ExecContext(ctx, "FAIL on purpose")
	tx.Commit()
	want = []string{"acquire acme", "start begin ", "end begin", "start exec FAIL on purpose", "end exec error",
		"start commit ", "end commit", "release acme"}
	if got := ev.take(); !slices.Equal(got, want) {
		t.Errorf("transaction: hooks saw\n%q\nwant\n%q", got, want)
	}
}

func TestHooksSeeAcquireFailures(t *testing.T) {
	ev := &events{}
	db, _, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{Hooks: recordingHooks(ev), MaxSize: 1, AcquireTimeout: 20 * time.Millisecond})
	held, _ := db.Conn(context.Background())
	defer held.Close()
	queryInt(t, context.Background(), held, "SELECT 1")
	ev.take()
	if _, err := db.Exec("SELECT 1"); !errors.Is(err, sqlpool.ErrAcquireTimeout) {
		t.Fatalf("err = %v, want ErrAcquireTimeout", err)
	}
	if got := ev.take(); !slices.Equal(got, []string{"acquire error"}) {
		t.Errorf("hooks saw %q, want an acquire error", got)
	}
}

func TestQueryEndSeesErrSkipWhenTheDriverDeclines(t *testing.T) {
	var ends []error
	db, _, _ := fakeDB(t, drivertest.Options{Disable: drivertest.ExecerContext}, sqlpool.Config{
		Hooks: sqlpool.Hooks{OnQueryEnd: func(e sqlpool.QueryEvent) { ends = append(ends, e.Err) }},
	})
	if _, err := db.Exec("SET k ?", 1); err != nil {
		t.Fatal(err)
	}
	// exec declined (ErrSkip), then database/sql's prepare and the statement's exec.
	if len(ends) != 3 || ends[0] != driver.ErrSkip || ends[1] != nil || ends[2] != nil {
		t.Errorf("OnQueryEnd errors = %v, want [ErrSkip <nil> <nil>]", ends)
	}
}

func TestSlogHooksLog(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	db, _, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{Hooks: sqlpool.SlogHooks(l)})
	queryInt(t, sqlpool.WithTenant(context.Background(), "acme"), db, "SELECT 1")
	for _, want := range []string{"sqlpool: connected", "sqlpool: acquired", "partition=acme", "sqlpool: query", "sqlpool: released"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestOnCloseSaysWhy(t *testing.T) {
	var reasons []string
	var mu sync.Mutex
	d := drivertest.New(drivertest.Options{})
	c, err := sqlpool.Wrap(d.Connector("x"), sqlpool.Config{Hooks: sqlpool.Hooks{OnClose: func(e sqlpool.CloseEvent) {
		mu.Lock()
		reasons = append(reasons, e.Reason)
		mu.Unlock()
	}}})
	if err != nil {
		t.Fatal(err)
	}
	db := sqlpool.OpenDB(c)
	queryInt(t, context.Background(), db, "SELECT 1")
	d.SetFaults(drivertest.Faults{BadConnAfter: 1})
	queryInt(t, context.Background(), db, "SELECT 1") // retried by database/sql on another connection
	db.Close()
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(reasons, "errors") || !slices.Contains(reasons, "pool_closed") {
		t.Errorf("OnClose reasons %q, want errors and pool_closed", reasons)
	}
}
