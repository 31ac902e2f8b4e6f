package sqlpool_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
	"github.com/sqlpool/sqlpool/partition"
	"github.com/sqlpool/sqlpool/pool"
)

// labeled is a Routing whose partitions label sessions with the fake
// driver's per-connection tenant.
var labeled = partition.RouterConfig{Template: partition.Config{SetupSQL: "SETTENANT ?", ResetSQL: "SETTENANT none"}}

func tenantOfSession(t *testing.T, ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) string {
	t.Helper()
	var s sql.NullString
	if err := q.QueryRowContext(ctx, "TENANT").Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s.String
}

// TestSessionsServeOnlyTheirPartition runs more tenants than connections and
// checks that every query sees its own tenant's session, also with
// database/sql's own cap set.
func TestSessionsServeOnlyTheirPartition(t *testing.T) {
	for _, maxOpen := range []int{0, 3} {
		t.Run(fmt.Sprintf("SetMaxOpenConns=%d", maxOpen), func(t *testing.T) {
			db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 4, Routing: labeled})
			db.SetMaxOpenConns(maxOpen)
			var violations atomic.Int64
			var wg sync.WaitGroup
			for g := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := rand.New(rand.NewPCG(uint64(g), 1))
					for range 200 {
						tenant := fmt.Sprintf("t%d", r.IntN(10))
						if got := tenantOfSession(t, sqlpool.WithTenant(context.Background(), tenant), db); got != tenant {
							violations.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			if n := violations.Load(); n != 0 {
				t.Errorf("%d queries ran on another tenant's session", n)
			}
			var labeled, relabels, fresh int64
			for _, p := range c.Stats().Partitions {
				labeled, relabels, fresh = labeled+p.Labeled, relabels+p.Relabels, fresh+p.Fresh
			}
			if labeled == 0 || relabels == 0 || fresh == 0 {
				t.Errorf("labeled hits %d, relabels %d, fresh labels %d: want each counted", labeled, relabels, fresh)
			}
		})
	}
}

func TestUntaggedQueriesGetAResetSession(t *testing.T) {
	db, _, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 1, Routing: labeled})
	tenantOfSession(t, sqlpool.WithTenant(context.Background(), "acme"), db)
	if got := tenantOfSession(t, context.Background(), db); got != "none" {
		t.Errorf("an untagged query saw session %q, want it reset", got)
	}
}

func TestSetupWithoutResetReplacesTheConnection(t *testing.T) {
	routing := partition.RouterConfig{Template: partition.Config{SetupSQL: "SETTENANT ?"}}
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 1, Routing: routing})
	for _, tenant := range []string{"a", "b", "a"} {
		if got := tenantOfSession(t, sqlpool.WithTenant(context.Background(), tenant), db); got != tenant {
			t.Errorf("tenant %s ran on session %q", tenant, got)
		}
	}
	if got := tenantOfSession(t, context.Background(), db); got != "" {
		t.Errorf("an untagged query saw session %q, want a fresh one", got)
	}
	if n := c.Stats().Closed[pool.CloseEvicted]; n != 3 {
		t.Errorf("%d connections replaced, want 3", n)
	}
}

func TestFailedSetupClosesTheConnection(t *testing.T) {
	routing := partition.RouterConfig{Partitions: []partition.Config{{Name: "bad", SetupSQL: "FAIL setup of ?"}}}
	db, c, d := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 1, Routing: routing})
	_, err := db.ExecContext(sqlpool.WithTenant(context.Background(), "bad"), "SELECT 1")
	if err == nil || !strings.Contains(err.Error(), `partition "bad" setup`) {
		t.Fatalf("err = %v, want the setup failure", err)
	}
	if s := c.Stats(); s.Size != 0 || d.Stats().Open != 0 {
		t.Errorf("size %d, open %d after a failed setup: the connection must be closed", s.Size, d.Stats().Open)
	}
	queryInt(t, sqlpool.WithTenant(context.Background(), "good"), db, "SELECT 1")
}

func TestPartitionAtItsMaxWaitsEvenWhenThePoolHasRoom(t *testing.T) {
	routing := partition.RouterConfig{Partitions: []partition.Config{{Name: "acme", MaxSize: 1, MaxWaitQueue: 1}}}
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 4, Routing: routing})
	acme := sqlpool.WithTenant(context.Background(), "acme")
	held, _ := db.Conn(acme)
	defer held.Close()
	queryInt(t, acme, held, "SELECT 1")

	short, cancel := context.WithTimeout(acme, 30*time.Millisecond)
	defer cancel()
	if _, err := db.ExecContext(short, "SELECT 1"); !errors.Is(err, sqlpool.ErrAcquireTimeout) || !strings.Contains(err.Error(), "acme") {
		t.Errorf("err = %v, want a timeout naming the partition", err)
	}
	queryInt(t, sqlpool.WithTenant(context.Background(), "other"), db, "SELECT 1") // the pool has room

	ctx, stop := context.WithCancel(acme)
	waiting := make(chan struct{})
	go func() {
		defer close(waiting)
		db.ExecContext(ctx, "SELECT 1")
	}()
	waitFor(t, "a waiter in acme", func() bool { return c.Stats().Partitions["acme"].Waiting == 1 })
	if _, err := db.ExecContext(acme, "SELECT 1"); !errors.Is(err, sqlpool.ErrQueueFull) {
		t.Errorf("err = %v, want ErrQueueFull from the partition's MaxWaitQueue", err)
	}
	stop()
	<-waiting
}

func TestUnknownKeyPolicyFail(t *testing.T) {
	db, _, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{Routing: partition.RouterConfig{Unknown: partition.Fail}})
	_, err := db.ExecContext(sqlpool.WithTenant(context.Background(), "nobody"), "SELECT 1")
	if !errors.Is(err, partition.ErrUnknownPartition) || !strings.Contains(err.Error(), "nobody") {
		t.Errorf("err = %v, want ErrUnknownPartition naming the tenant", err)
	}
	queryInt(t, context.Background(), db, "SELECT 1") // the default partition still works
}

func TestPartitionQueryRate(t *testing.T) {
	routing := partition.RouterConfig{Partitions: []partition.Config{{Name: "slow", QueryRate: 0.001}}}
	db, _, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{Routing: routing})
	slow := sqlpool.WithTenant(context.Background(), "slow")
	queryInt(t, slow, db, "SELECT 1") // the burst
	ctx, cancel := context.WithTimeout(slow, 20*time.Millisecond)
	defer cancel()
	if _, err := db.ExecContext(ctx, "SELECT 1"); err == nil || !strings.Contains(err.Error(), "QueryRate") {
		t.Errorf("err = %v, want the partition's QueryRate to refuse", err)
	}
}

func TestPartitionsAtRunTime(t *testing.T) {
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{Routing: partition.RouterConfig{Unknown: partition.RouteToDefault}})
	if _, err := c.Partitions().Add(partition.Config{Name: "vip", MaxSize: 2}); err != nil {
		t.Fatal(err)
	}
	queryInt(t, sqlpool.WithTenant(context.Background(), "vip"), db, "SELECT 1")
	queryInt(t, sqlpool.WithTenant(context.Background(), "walk-in"), db, "SELECT 1")
	s := c.Stats()
	if s.Partitions["vip"].Acquires != 1 || s.Partitions[sqlpool.DefaultPartition].Acquires != 1 {
		t.Errorf("partitions %+v: want vip 1 and the default 1", s.Partitions)
	}
}

func TestStatementTimeoutNeedsAKnownDialect(t *testing.T) {
	routing := partition.RouterConfig{Template: partition.Config{StatementTimeout: time.Second}}
	_, err := sqlpool.Wrap(drivertest.New(drivertest.Options{}).Connector("x"), sqlpool.Config{Routing: routing})
	if err == nil || !strings.Contains(err.Error(), "StatementTimeout") {
		t.Errorf("err = %v, want a refusal naming StatementTimeout", err)
	}
}

// BenchmarkAcquireAcrossPartitions shows that an operation's cost does not
// grow with the number of partitions:
//
//	go test -run '^$' -bench AcquireAcrossPartitions -count 6 . | benchstat -col /partitions -
func BenchmarkAcquireAcrossPartitions(b *testing.B) {
	for _, n := range []int{1, 100, 10_000} {
		b.Run(fmt.Sprintf("partitions=%d", n), func(b *testing.B) {
			c, err := sqlpool.Wrap(drivertest.New(drivertest.Options{}).Connector("x"), sqlpool.Config{MaxSize: 8,
				Routing: partition.RouterConfig{MaxPartitions: -1}}) // 10,000 tenants and the default partition
			if err != nil {
				b.Fatal(err)
			}
			db := sqlpool.OpenDB(c)
			defer db.Close()
			ctxs := make([]context.Context, n)
			for i := range ctxs {
				ctxs[i] = sqlpool.WithTenant(context.Background(), fmt.Sprintf("tenant-%d", i))
				if _, err := db.ExecContext(ctxs[i], "SELECT 1"); err != nil { // create the partition
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				r := rand.New(rand.NewPCG(rand.Uint64(), 0))
				for pb.Next() {
					if _, err := db.ExecContext(ctxs[r.IntN(n)], "SELECT 1"); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func TestPartitionMinSizeKeepsConnectionsWarm(t *testing.T) {
	routing := partition.RouterConfig{
		Template:   partition.Config{SetupSQL: "SETTENANT ?", ResetSQL: "SETTENANT none"},
		Partitions: []partition.Config{{Name: "vip", MinSize: 2, SetupSQL: "SETTENANT ?", ResetSQL: "SETTENANT none"}},
	}
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 4, Routing: routing, MaintenanceInterval: 10 * time.Millisecond})
	waitFor(t, "two warm vip connections", func() bool { return c.Stats().Partitions["vip"].Fresh == 2 })
	// Both are idle, set up for vip: two vip queries at once find them labeled.
	vip := sqlpool.WithTenant(context.Background(), "vip")
	c1, _ := db.Conn(vip)
	c2, _ := db.Conn(vip)
	defer c1.Close()
	defer c2.Close()
	if a, b := tenantOfSession(t, vip, c1), tenantOfSession(t, vip, c2); a != "vip" || b != "vip" {
		t.Errorf("sessions %q %q, want vip", a, b)
	}
	if s := c.Stats().Partitions["vip"]; s.Labeled != 2 || s.Fresh != 2 {
		t.Errorf("vip: %d labeled hits, %d fresh; want 2 and 2 (the warm ones were used)", s.Labeled, s.Fresh)
	}
}

// TestAWaitForAPartitionSlotCountsAsWait checks that the time a caller waits
// for its partition's slot is part of the wait reported by OnAcquire, even
// when the pool then lends an idle connection at once.
func TestAWaitForAPartitionSlotCountsAsWait(t *testing.T) {
	routing := partition.RouterConfig{Partitions: []partition.Config{{Name: "acme", MaxSize: 1}}}
	waits := make(chan time.Duration, 8)
	cfg := sqlpool.Config{MaxSize: 4, Routing: routing, Hooks: sqlpool.Hooks{
		OnAcquire: func(e sqlpool.AcquireEvent) { waits <- e.Wait },
	}}
	db, c, _ := fakeDB(t, drivertest.Options{}, cfg)
	ctx := context.Background()
	// Two connections, so that one is idle while acme's only slot is held.
	a, _ := db.Conn(ctx)
	b, _ := db.Conn(ctx)
	queryInt(t, ctx, a, "SELECT 1")
	queryInt(t, ctx, b, "SELECT 1")
	a.Close()
	b.Close()
	acme := sqlpool.WithTenant(ctx, "acme")
	held, _ := db.Conn(acme)
	queryInt(t, acme, held, "SELECT 1")
	for range 3 {
		<-waits
	}

	done := make(chan error)
	go func() {
		_, err := db.ExecContext(acme, "SELECT 1")
		done <- err
	}()
	waitFor(t, "a waiter in acme", func() bool { return c.Stats().Partitions["acme"].Waiting == 1 })
	seen := time.Now()
	least := time.Since(seen) // the waiter waits at least from seen to the release
	held.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if w := <-waits; w < least || w == 0 {
		t.Errorf("OnAcquire reported a wait of %v, want at least the %v it waited for the partition", w, least)
	}
}
