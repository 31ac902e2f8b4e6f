package pool_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sqlpool/sqlpool/pool"
)

// warnFactory is a factory that records the pool's warnings.
type warnFactory struct {
	*factory
	mu    sync.Mutex
	warns []pool.Warning // guarded by mu
	conns []*fakeConn    // guarded by mu: the connection of each warning
}

func (f *warnFactory) Warn(c *fakeConn, w pool.Warning) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.warns = append(f.warns, w)
	f.conns = append(f.conns, c)
}

func (f *warnFactory) warnings() []pool.Warning {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]pool.Warning(nil), f.warns...)
}

// tick advances the fake clock by d and lets maintenance run.
func tick(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

func TestLifetimeJitterSpreadsExpiriesOverMaintenanceTicks(t *testing.T) {
	const n = 10
	for _, tc := range []struct {
		name    string
		jitter  float64
		maxTick int64 // most connections closed by lifetime in one tick
	}{
		{"jitter", 0, 1}, // the default: ±10%
		{"no jitter", -1, n},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &factory{}
				p := newPool(t, f, pool.Config{MaxSize: n, InitialSize: n, MaxLifetime: 10 * time.Minute,
					LifetimeJitter: tc.jitter, IdleTimeout: -1})
				synctest.Wait() // the n connections are dialed together
				if s := p.Stats(); s.Idle != n {
					t.Fatalf("idle %d, want %d", s.Idle, n)
				}
				tick(9*time.Minute - 500*time.Millisecond) // between ticks from now on
				var closed, most int64
				for range 121 { // 9m to just past 11m (the longest lifetime), one maintenance tick at a time
					tick(time.Second)
					now := p.Stats().Closed[pool.CloseLifetime]
					most = max(most, now-closed)
					closed = now
				}
				if closed != n {
					t.Fatalf("%d closed by lifetime by 11m, want %d; %+v", closed, n, p.Stats())
				}
				if most != tc.maxTick {
					t.Errorf("at most %d connections closed in one maintenance tick, want %d", most, tc.maxTick)
				}
			})
		})
	}
}

func TestLifetimeJitterIsDrawnOncePerConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, &factory{}, pool.Config{MaxSize: 1, MaxLifetime: time.Hour})
		c := mustAcquire(t, p)
		l := c.Lifetime()
		if l < 54*time.Minute || l > 66*time.Minute || l == time.Hour {
			t.Errorf("lifetime %v, want within ±10%% of 1h, jittered", l)
		}
		for range 5 {
			c.Release()
			tick(time.Minute)
			c = mustAcquire(t, p)
			if c.Lifetime() != l {
				t.Fatalf("lifetime changed from %v to %v: it must be drawn once", l, c.Lifetime())
			}
		}
		c.Release()
	})
}

func TestMaxUsesClosesAConnectionAfterItsNthBorrowing(t *testing.T) {
	f := &factory{}
	p := newPool(t, f, pool.Config{MaxSize: 1, MaxUses: 3})
	var first *fakeConn
	for i := int64(1); i <= 3; i++ {
		c := mustAcquire(t, p)
		if first == nil {
			first = c.Value()
		}
		if c.Value() != first || c.Uses() != i {
			t.Fatalf("borrowing %d: conn %d with %d uses, want conn %d with %d", i, c.Value().id, c.Uses(), first.id, i)
		}
		c.Release()
	}
	if !first.closed.Load() {
		t.Fatal("connection still open after its MaxUses-th release")
	}
	if s := p.Stats(); s.Closed[pool.CloseUsage] != 1 || s.Size != 0 {
		t.Errorf("closed by usage %d, size %d; want 1 and 0", s.Closed[pool.CloseUsage], s.Size)
	}
	if c := mustAcquire(t, p); c.Value() == first || c.Uses() != 1 {
		t.Errorf("next borrowing: conn %d with %d uses, want a new one with 1", c.Value().id, c.Uses())
	} else {
		c.Release()
	}
}

// borrow acquires a connection and releases it with the outcome given.
func borrow(t *testing.T, p *pool.Pool[*fakeConn], fail bool) {
	t.Helper()
	c := mustAcquire(t, p)
	if fail {
		c.ReportError()
	}
	c.Release()
}

func TestAdaptiveAgingShortensALifetimeAndItGrowsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A window of 8: a connection is judged after 2 borrowings, the
		// pool after 8.
		p := newPool(t, &factory{}, pool.Config{MaxSize: 2, MaxLifetime: 100 * time.Minute, LifetimeJitter: -1,
			IdleTimeout: -1, ErrorThreshold: 0.2, ErrorWindow: 8, MinLifetime: 10 * time.Minute})
		lifetime := func() time.Duration {
			c := mustAcquire(t, p)
			defer c.Release()
			return c.Lifetime()
		}
		if l := lifetime(); l != 100*time.Minute {
			t.Fatalf("lifetime %v before any failure, want 100m", l)
		}
		for range 5 {
			borrow(t, p, false)
		}
		borrow(t, p, true)
		borrow(t, p, true)
		// 2 of 8 borrowings failed (the lifetime checks count): 25% > 20%:
		// 10m + 90m × (1-0.25)/(1-0.2).
		if l, want := lifetime(), 10*time.Minute+time.Duration(90*float64(time.Minute)*0.75/0.8); (l - want).Abs() > time.Microsecond {
			t.Errorf("lifetime %v after 25%% failures, want %v", l, want)
		}
		for range 8 {
			borrow(t, p, true)
		}
		if l := lifetime(); l != 10*time.Minute {
			t.Errorf("lifetime %v after 100%% failures, want MinLifetime 10m", l)
		}
		// It recovers as successes push the failures out of the window.
		for range 8 {
			borrow(t, p, false)
		}
		if l := lifetime(); l != 100*time.Minute {
			t.Errorf("lifetime %v after 8 successes, want 100m again", l)
		}
		if r := p.Stats().ErrorRate; r != 0 {
			t.Errorf("pool error rate %v, want 0", r)
		}

		// Shortened, an idle connection past its shortened lifetime is
		// closed by maintenance.
		for range 8 {
			borrow(t, p, true)
		}
		tick(11 * time.Minute)
		if s := p.Stats(); s.Size != 0 || s.Closed[pool.CloseLifetime] != 1 || s.Shortened != 1 {
			t.Errorf("size %d, closed by lifetime %d, shortened %d; want 0, 1, 1", s.Size, s.Closed[pool.CloseLifetime], s.Shortened)
		}
	})
}

func TestAdaptiveAgingShortensOnlyTheFailingConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The pool's rate stays at 50%, under the threshold; the failing
		// connection's is 100%.
		p := newPool(t, &factory{}, pool.Config{MaxSize: 2, MaxLifetime: 100 * time.Minute, LifetimeJitter: -1,
			ErrorThreshold: 0.6, ErrorWindow: 8, MinLifetime: 10 * time.Minute})
		bad, good := mustAcquire(t, p), mustAcquire(t, p)
		for range 4 {
			bad.ReportError()
			bad.Release()
			good.Release()
			bad, good = mustAcquire(t, p), mustAcquire(t, p)
			if bad.Value().id > good.Value().id { // LIFO: keep track of which is which
				bad, good = good, bad
			}
		}
		if bad.Value().id != 1 {
			t.Fatalf("lost track of the failing connection")
		}
		if l := bad.Lifetime(); l != 10*time.Minute {
			t.Errorf("failing connection's lifetime %v, want 10m", l)
		}
		if l := good.Lifetime(); l != 100*time.Minute {
			t.Errorf("healthy connection's lifetime %v, want 100m", l)
		}
		if r := p.Stats().ErrorRate; r != 0.5 {
			t.Errorf("pool error rate %v, want 0.5", r)
		}
		bad.Release()
		good.Release()
	})
}

func TestAdaptiveAgingShortensEveryLifetimeWhenThePoolFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Eight connections with 2 failed borrowings each: not enough to
		// judge one (the window is 16, a connection needs 4), enough for
		// the pool.
		p := newPool(t, &factory{}, pool.Config{MaxSize: 8, MaxLifetime: 100 * time.Minute, LifetimeJitter: -1,
			ErrorThreshold: 0.2, ErrorWindow: 16, MinLifetime: 10 * time.Minute})
		for range 2 {
			var cs []*pool.Conn[*fakeConn]
			for range 8 {
				cs = append(cs, mustAcquire(t, p))
			}
			for _, c := range cs {
				c.ReportError()
				c.Release()
			}
		}
		var cs []*pool.Conn[*fakeConn]
		for range 8 {
			c := mustAcquire(t, p)
			cs = append(cs, c)
			if l := c.Lifetime(); l != 10*time.Minute {
				t.Errorf("conn %d: lifetime %v with the pool failing, want 10m", c.Value().id, l)
			}
		}
		for _, c := range cs {
			c.Release()
		}
	})
}

func TestKeepaliveReplacesADeadIdleConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &factory{}
		p := newPool(t, f, pool.Config{MaxSize: 2, IdleTimeout: -1, KeepaliveInterval: time.Minute})
		a, b := mustAcquire(t, p), mustAcquire(t, p)
		a.Release()
		b.Release()
		a.Value().broken.Store(true) // the server closed it while idle
		tick(59 * time.Second)
		if n := f.validates.Load(); n != 0 {
			t.Fatalf("%d pings before KeepaliveInterval, want 0", n)
		}
		tick(2 * time.Second)
		s := p.Stats()
		if !a.Value().closed.Load() || s.Closed[pool.CloseValidation] != 1 {
			t.Fatalf("dead idle connection closed %v, closed by validation %d; want true and 1", a.Value().closed.Load(), s.Closed[pool.CloseValidation])
		}
		if s.Created != 3 || s.Idle != 2 || s.Keepalives != 2 {
			t.Errorf("created %d, idle %d, keepalives %d; want 3 (a replacement), 2, 2", s.Created, s.Idle, s.Keepalives)
		}
		// No borrower sees the dead one, nor waits for a ping.
		validates := f.validates.Load()
		c1, c2 := mustAcquire(t, p), mustAcquire(t, p)
		if c1.Value().broken.Load() || c2.Value().broken.Load() {
			t.Error("a borrower got the dead connection")
		}
		if f.validates.Load() != validates {
			t.Error("acquisitions right after keepalive validated again")
		}
		c1.Release()
		c2.Release()
	})
}

func TestKeepaliveIsNotAUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &factory{}
		p := newPool(t, f, pool.Config{MaxSize: 2, IdleTimeout: 5 * time.Minute, KeepaliveInterval: time.Minute,
			MaxLifetime: -1})
		a, b := mustAcquire(t, p), mustAcquire(t, p)
		b.Release()
		a.Release() // on top: the next borrower's
		tick(4*time.Minute + 30*time.Second)
		if n := f.validates.Load(); n != 8 {
			t.Errorf("%d pings in 4.5 minutes of 2 idle connections, want 8", n)
		}
		if c := mustAcquire(t, p); c.Value() != a.Value() {
			t.Error("keepalive changed the order of the idle stack")
		} else {
			c.Release()
		}
		tick(31 * time.Second) // b idle for 5m: pings did not make it used
		if s := p.Stats(); s.Closed[pool.CloseIdle] != 1 || !b.Value().closed.Load() {
			t.Errorf("closed idle %d, want 1: a pinged connection still idles out", s.Closed[pool.CloseIdle])
		}
	})
}

func TestABorrowingPastMaxBorrowTimeIsReportedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &warnFactory{factory: &factory{}}
		p, err := pool.New[*fakeConn](f, pool.Config{MaxSize: 1, MaxBorrowTime: time.Minute, WarnFraction: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		c := mustAcquire(t, p)
		tick(59 * time.Second)
		if w := f.warnings(); len(w) != 0 {
			t.Fatalf("warnings before MaxBorrowTime: %+v", w)
		}
		tick(5 * time.Second)
		w := f.warnings()
		if len(w) != 1 || w[0].Limit != pool.LimitBorrowTime || !w[0].Exceeded || w[0].Reclaimed || w[0].Held < time.Minute {
			t.Fatalf("warnings %+v, want one: borrow time exceeded, not reclaimed", w)
		}
		tick(time.Minute)
		if n := len(f.warnings()); n != 1 {
			t.Errorf("%d warnings, want the borrowing reported once", n)
		}
		if c.Reclaimed() || c.Value().closed.Load() {
			t.Error("connection reclaimed without ReclaimBorrowed")
		}
		if !c.Release() {
			t.Error("Release reported the connection not taken")
		}
		if s := p.Stats(); s.Overdue != 1 || s.Idle != 1 {
			t.Errorf("overdue %d, idle %d; want 1 and 1", s.Overdue, s.Idle)
		}
	})
}

func TestReclaimTakesBackAConnectionBorrowedTooLong(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &warnFactory{factory: &factory{}}
		p, err := pool.New[*fakeConn](f, pool.Config{MaxSize: 1, MaxBorrowTime: time.Minute, ReclaimBorrowed: true,
			AcquireTimeout: 2 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		c := mustAcquire(t, p)
		// A waiter queues for the only connection.
		got := make(chan *pool.Conn[*fakeConn])
		go func() {
			c, err := p.Acquire(context.Background(), pool.PriorityNormal)
			if err != nil {
				t.Error(err)
			}
			got <- c
		}()
		tick(61 * time.Second)
		if !c.Reclaimed() || !c.Value().closed.Load() {
			t.Fatalf("reclaimed %v, closed %v; want both", c.Reclaimed(), c.Value().closed.Load())
		}
		next := <-got // served by the freed slot
		if next.Value() == c.Value() {
			t.Fatal("the waiter got the reclaimed connection")
		}
		// The borrower's late release changes nothing, and closes nothing
		// twice (the factory panics on a double close).
		if c.Release() || c.Destroy(pool.CloseErrors) || c.Replace(pool.CloseEvicted) {
			t.Error("Release, Destroy or Replace of a reclaimed connection reported it taken")
		}
		s := p.Stats()
		if s.Closed[pool.CloseReclaimed] != 1 || s.Size != 1 || s.InUse != 1 || s.Overdue != 1 {
			t.Errorf("reclaimed %d, size %d, in use %d, overdue %d; want 1, 1, 1, 1",
				s.Closed[pool.CloseReclaimed], s.Size, s.InUse, s.Overdue)
		}
		var reclaimed int
		for _, w := range f.warnings() {
			if w.Limit == pool.LimitBorrowTime && w.Reclaimed {
				reclaimed++
			}
		}
		if reclaimed != 1 {
			t.Errorf("%d reclaim warnings, want 1: %+v", reclaimed, f.warnings())
		}
		next.Release()
	})
}

func TestSoftWarningsAtWarnFractionOfEachLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &warnFactory{factory: &factory{}}
		p, err := pool.New[*fakeConn](f, pool.Config{MaxSize: 1, MaxLifetime: 100 * time.Minute, LifetimeJitter: -1,
			IdleTimeout: -1, MaxUses: 10, MaxBorrowTime: 10 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		count := func(l pool.Limit) (n int) {
			for _, w := range f.warnings() {
				if w.Limit == l {
					n++
				}
			}
			return n
		}
		// Uses: the 9th borrowing reaches 90% of MaxUses.
		for i := 1; i <= 9; i++ {
			c := mustAcquire(t, p)
			if n, want := count(pool.LimitUses), min(max(i-8, 0), 1); n != want {
				t.Fatalf("borrowing %d: %d use warnings, want %d", i, n, want)
			}
			c.Release()
		}
		// Borrow time: 90% of 10m.
		c := mustAcquire(t, p) // the 10th, no second use warning
		tick(8*time.Minute + 30*time.Second)
		if n := count(pool.LimitBorrowTime); n != 0 {
			t.Fatalf("%d borrow-time warnings at 85%%, want 0", n)
		}
		tick(time.Minute)
		if n := count(pool.LimitBorrowTime); n != 1 {
			t.Fatalf("%d borrow-time warnings at 95%%, want 1", n)
		}
		w := f.warnings()[len(f.warnings())-1]
		if w.Exceeded || w.Reclaimed || w.MaxBorrowTime != 10*time.Minute {
			t.Errorf("soft borrow-time warning %+v", w)
		}
		tick(time.Minute)
		if n := count(pool.LimitBorrowTime); n != 2 || !f.warnings()[len(f.warnings())-1].Exceeded {
			t.Errorf("%d borrow-time warnings past the limit, want the soft one and the exceeded one", n)
		}
		c.Release() // the 10th use: closed
		if n := count(pool.LimitUses); n != 1 {
			t.Errorf("%d use warnings, want 1", n)
		}

		// Lifetime: a connection idle at 90% of its lifetime, seen by
		// maintenance.
		mustAcquire(t, p).Release()
		tick(89 * time.Minute)
		if n := count(pool.LimitLifetime); n != 0 {
			t.Fatalf("%d lifetime warnings at 89%%, want 0", n)
		}
		tick(2 * time.Minute)
		if n := count(pool.LimitLifetime); n != 1 {
			t.Fatalf("%d lifetime warnings at 91%%, want 1", n)
		}
		tick(5 * time.Minute)
		if n := count(pool.LimitLifetime); n != 1 {
			t.Errorf("%d lifetime warnings, want 1: once per connection", n)
		}
		if s := p.Stats(); s.Warnings != int64(len(f.warnings())) {
			t.Errorf("Stats.Warnings %d, want %d", s.Warnings, len(f.warnings()))
		}
	})
}

func TestReplaceDialsTheReplacementInTheBackground(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &factory{}
		p := newPool(t, f, pool.Config{MaxSize: 1})
		c := mustAcquire(t, p)
		if !c.Replace(pool.CloseEvicted) {
			t.Fatal("Replace reported the connection not taken")
		}
		synctest.Wait()
		s := p.Stats()
		if !c.Value().closed.Load() || s.Closed[pool.CloseEvicted] != 1 || s.Created != 2 || s.Idle != 1 {
			t.Errorf("closed %v, evicted %d, created %d, idle %d; want true, 1, 2, 1",
				c.Value().closed.Load(), s.Closed[pool.CloseEvicted], s.Created, s.Idle)
		}
		if n := mustAcquire(t, p); n.Value() == c.Value() || n.Uses() != 1 {
			t.Error("the next borrower did not get the fresh replacement")
		} else {
			n.Release()
		}
	})
}

func TestLifecycleKeepsTheHotPathFreeOfAllocations(t *testing.T) {
	p := newPool(t, &factory{}, pool.Config{MaxSize: 1, MaxUses: 1 << 40, ErrorThreshold: 0.2,
		MaxBorrowTime: time.Hour, ReclaimBorrowed: true})
	mustAcquire(t, p).Release()
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		c, err := p.Acquire(ctx, pool.PriorityNormal)
		if err != nil {
			t.Fatal(err)
		}
		c.ReportError()
		c.Release()
	})
	if allocs != 0 {
		t.Errorf("acquire+release with every lifecycle policy on allocates %v times, want 0", allocs)
	}
}

func TestInvalidLifecycleConfigNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		cfg  pool.Config
		name string
	}{
		{pool.Config{LifetimeJitter: 1}, "LifetimeJitter"},
		{pool.Config{MaxUses: -1}, "MaxUses"},
		{pool.Config{ErrorThreshold: 1.5}, "ErrorThreshold"},
		{pool.Config{ErrorThreshold: -0.1}, "ErrorThreshold"},
		{pool.Config{ErrorWindow: 65}, "ErrorWindow"},
		{pool.Config{MinLifetime: -1}, "MinLifetime"},
		{pool.Config{MaxBorrowTime: -1}, "MaxBorrowTime"},
		{pool.Config{ReclaimBorrowed: true}, "ReclaimBorrowed"},
		{pool.Config{WarnFraction: 1}, "WarnFraction"},
		{pool.Config{ErrorThreshold: 0.2, MaxLifetime: -1}, "ErrorThreshold"},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%+v: err = %v, want one naming %s", tc.cfg, err, tc.name)
		}
	}
}
