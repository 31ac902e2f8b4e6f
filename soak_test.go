package sqlpool_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/internal/faultproxy"
)

// TestSoak runs a mixed load (autocommit writes, transactions, reads) of
// 16 goroutines on a pool of 8 through a fault proxy, for several minutes,
// against PostgreSQL and MariaDB, killing a random server connection every
// 2 s and resetting every connection every 15 s. It ends with the checks of
// the fault tests (no write lost or doubled, recovery after the last fault)
// and leak checks: the pool idle, no server connection left after Close, no
// goroutine left, the heap back near where it started.
//
// It is off by default: SQLPOOL_SOAK=1 turns it on, for 3 minutes per
// server, SQLPOOL_SOAK_DURATION (a Go duration) changes that:
//
//	SQLPOOL_SOAK=1 SQLPOOL_SOAK_DURATION=10m go test -race -run TestSoak -timeout 30m -v .
func TestSoak(t *testing.T) {
	if os.Getenv("SQLPOOL_SOAK") != "1" {
		t.Skip("soak test: set SQLPOOL_SOAK=1 to run it (SQLPOOL_SOAK_DURATION sets its length, default 3m per server)")
	}
	run := soakDuration(t, 0, 3*time.Minute)
	eachServer(t, func(t *testing.T, s *relServer) { soak(t, s, run) })
}

func soak(t *testing.T, s *relServer, run time.Duration) {
	const (
		size       = 8
		goroutines = 16
		opTimeout  = 2 * time.Second
	)
	goroutinesBefore := runtime.NumGoroutine()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	p, err := faultproxy.New(s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	db, c := s.pool(t, p.Addr(), sqlpool.Config{MaxSize: size, MinSize: 2, MaxLifetime: time.Minute, IdleTimeout: 20 * time.Second})
	l := newLoad(db, s, opTimeout)
	l.pace = 2 * time.Millisecond
	l.start(goroutines)
	defer l.halt()
	l.waitSuccesses(t, time.Time{}, 100)

	kills, resets := 0, 0
	var lastFault time.Time
	killEvery, resetEvery := time.NewTicker(2*time.Second), time.NewTicker(15*time.Second)
	defer killEvery.Stop()
	defer resetEvery.Stop()
	end := time.After(run)
	progress := time.NewTicker(30 * time.Second)
	defer progress.Stop()
soak:
	for {
		select {
		case <-killEvery.C:
			if ids := s.backends(t); len(ids) > 0 {
				s.kill(t, ids[rand.IntN(len(ids))])
				kills++
				lastFault = time.Now()
			}
		case <-resetEvery.C:
			p.Reset() // a reset, not a drop: see TestLostResponseIsNotRetried
			resets++
			lastFault = time.Now()
		case <-progress.C:
			st := c.Stats()
			ok, _ := l.since(time.Time{})
			t.Logf("%s: %d ops ok so far, %d kills, %d resets; pool %d open, %d in use, %d waiting, %d dialed",
				s.kind, ok, kills, resets, st.Size, st.InUse, st.Waiting, st.Created)
		case <-end:
			break soak
		}
	}
	recovery := l.waitRecovered(t, lastFault, time.Second, 3*goroutines, 2*time.Second)
	ops := l.halt()
	failed := failures(ops)
	a := audit(t, s, ops)
	a.check(t, s, ops)
	summary := fmt.Sprintf("%s soak, %v: %d ops, %d failed, %d kills, %d resets; recovery after the last fault %v; writes: %d succeeded, %d failed (%d ambiguous), "+
		"lost %d, doubled %d\n%s", s.kind, run, len(ops), len(failed), kills, resets, recovery.Round(time.Millisecond), a.succeeded, a.failed, a.ambiguous,
		len(a.lost), len(a.doubled), errorSummary(ops))
	if recovery > 2*time.Second {
		t.Errorf("recovery after the last fault took %v, want at most 2s", recovery)
	}
	l.mu.Lock()
	l.ops = nil // the record is not the pool's memory
	l.mu.Unlock()

	waitFor(t, "the pool to be idle", func() bool { st := c.Stats(); return st.InUse == 0 && st.Waiting == 0 })
	st := c.Stats()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	p.Close()
	s.waitNoBackends(t)
	waitFor(t, "every goroutine to end", func() bool { return runtime.NumGoroutine() <= goroutinesBefore })
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%s\npool: %d dialed, closed %v; after Close: no server connection, goroutines back to %d, heap %+d bytes",
		summary, st.Created, st.Closed, goroutinesBefore, growth)
	if growth > 16<<20 {
		t.Errorf("the heap grew by %d bytes over the soak, want less than 16 MiB once the pool is closed", growth)
	}
}
