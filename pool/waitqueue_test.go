package pool_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sqlpool/sqlpool/pool"
)

// acquirer starts goroutines that acquire from p and report on served,
// release at once unless told otherwise.
type acquirer struct {
	t      *testing.T
	p      *pool.Pool[*fakeConn]
	wg     sync.WaitGroup
	mu     sync.Mutex
	served []string // guarded by mu
}

// start queues an acquisition named name and, inside a synctest bubble,
// returns once it waits, so that arrival order is the order of the calls.
func (a *acquirer) start(ctx context.Context, name string, prio pool.Priority) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		c, err := a.p.Acquire(ctx, prio)
		if err != nil {
			a.t.Errorf("%s: %v", name, err)
			return
		}
		a.mu.Lock()
		a.served = append(a.served, name)
		a.mu.Unlock()
		c.Release()
	}()
	synctest.Wait()
}

func (a *acquirer) order() string {
	a.wg.Wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	return strings.Join(a.served, " ")
}

func TestThousandsOfWaitersAreServedByPriorityThenArrival(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, &factory{}, pool.Config{MaxSize: 1, StarvationAfter: -1})
		held := mustAcquire(t, p)
		a := &acquirer{t: t, p: p}
		const n = 2000
		prios := make(map[string]pool.Priority, n)
		var want []string
		for i := range n {
			prio := pool.Priority(rand.IntN(4) - 1)
			name := fmt.Sprint(i)
			prios[name] = prio
			want = append(want, name)
			a.start(context.Background(), name, prio)
		}
		if s := p.Stats(); s.Waiting != n {
			t.Fatalf("%d waiting, want %d", s.Waiting, n)
		}
		// Highest priority first, arrival order among equals.
		slices.SortStableFunc(want, func(x, y string) int { return int(prios[y]) - int(prios[x]) })
		held.Release()
		if got := a.order(); got != strings.Join(want, " ") {
			t.Errorf("service order differs from priority-then-arrival order")
		}
		if s := p.Stats(); s.Created != 1 || s.Idle != 1 || s.Boosts != 0 {
			t.Errorf("created %d idle %d boosts %d, want 1, 1, 0", s.Created, s.Idle, s.Boosts)
		}
	})
}

// TestPrioritiesHoldUnderLoad runs a mixed-priority load on a small pool,
// with arrivals racing releases, and checks that higher priorities wait less.
func TestPrioritiesHoldUnderLoad(t *testing.T) {
	f := &factory{}
	p := newPool(t, f, pool.Config{MaxSize: 2, StarvationAfter: -1})
	var waited [4]atomic.Int64 // ns, by priority index
	var count [4]atomic.Int64
	var wg sync.WaitGroup
	for g := range 200 {
		prio := pool.Priority(g%4 - 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				start := time.Now()
				c, err := p.Acquire(context.Background(), prio)
				if err != nil {
					t.Error(err)
					return
				}
				waited[prio+1].Add(int64(time.Since(start)))
				count[prio+1].Add(1)
				for range 20 {
					runtime.Gosched() // hold it a moment
				}
				c.Release()
			}
		}()
	}
	wg.Wait()
	mean := func(i int) time.Duration { return time.Duration(waited[i].Load() / count[i].Load()) }
	t.Logf("mean wait: low %v, normal %v, high %v, critical %v", mean(0), mean(1), mean(2), mean(3))
	if mean(3) >= mean(0) {
		t.Errorf("critical waited %v on average, low %v: want critical less", mean(3), mean(0))
	}
	s := p.Stats()
	if s.InUse != 0 || s.Waiting != 0 || s.Idle != s.Size || s.Acquires != 200*20 {
		t.Errorf("after the load: %+v; want everything idle and %d acquires", s, 200*20)
	}
}

func TestStarvationBoostReachesALowWaiterUnderConstantHighLoad(t *testing.T) {
	for _, tc := range []struct {
		name   string
		after  time.Duration
		served bool
	}{
		{"boost every second", time.Second, true},
		{"no boost", -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newPool(t, &factory{}, pool.Config{MaxSize: 1, StarvationAfter: tc.after, AcquireTimeout: -1})
				ctx, stop := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				for range 3 { // always two high waiters while one holds
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							c, err := p.Acquire(ctx, pool.PriorityHigh)
							if err != nil {
								return
							}
							time.Sleep(100 * time.Millisecond)
							c.Release()
						}
					}()
				}
				synctest.Wait()
				start := time.Now()
				lctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				c, err := p.Acquire(lctx, pool.PriorityLow)
				waited := time.Since(start)
				if !tc.served {
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("without boosts: err = %v after %v, want the deadline: starved", err, waited)
					}
				} else {
					if err != nil {
						t.Fatalf("low waiter: %v after %v", err, waited)
					}
					// Normal after 1s, high after 2s: then it is the oldest
					// high waiter and takes the next release.
					if waited < 2*time.Second || waited > 2100*time.Millisecond {
						t.Errorf("low waiter served after %v, want between 2s and 2.1s", waited)
					}
					if b := p.Stats().Boosts; b < 2 {
						t.Errorf("boosts = %d, want at least the low waiter's 2", b)
					}
					c.Release()
				}
				stop()
				wg.Wait()
			})
		})
	}
}

func TestCriticalReserveIsForCriticalAcquisitionsOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, &factory{}, pool.Config{MaxSize: 3, CriticalReserve: 1})
		a, b := mustAcquire(t, p), mustAcquire(t, p)

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if _, err := p.Acquire(ctx, pool.PriorityHigh); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("high acquisition with only the reserve free: err = %v, want a timeout", err)
		}
		cancel()
		k, err := p.Acquire(context.Background(), pool.PriorityCritical)
		if err != nil {
			t.Fatalf("critical acquisition: %v", err)
		}

		// Everything is borrowed: a normal waiter, then a critical one.
		var served []string
		var mu sync.Mutex
		var wg sync.WaitGroup
		got := make(map[string]*pool.Conn[*fakeConn])
		for _, w := range []struct {
			name string
			prio pool.Priority
		}{{"normal", pool.PriorityNormal}, {"critical", pool.PriorityCritical}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := p.Acquire(context.Background(), w.prio)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				served = append(served, w.name)
				got[w.name] = c
				mu.Unlock()
			}()
			synctest.Wait()
		}
		k.Release() // the reserve: to the critical waiter, though it came second
		synctest.Wait()
		mu.Lock()
		first := fmt.Sprint(served)
		mu.Unlock()
		if first != "[critical]" {
			t.Fatalf("after a release into the reserve, served %v, want [critical]", first)
		}
		mu.Lock()
		kc := got["critical"]
		mu.Unlock()
		kc.Release() // back into the reserve: the normal waiter may not have it
		synctest.Wait()
		if s := p.Stats(); s.Idle != 1 || s.Waiting != 1 {
			t.Fatalf("idle %d waiting %d, want the reserve idle and the normal waiter waiting", s.Idle, s.Waiting)
		}
		a.Release() // outside the reserve
		wg.Wait()
		if fmt.Sprint(served) != "[critical normal]" {
			t.Fatalf("served %v, want [critical normal]", served)
		}
		got["normal"].Release()
		b.Release()
	})
}

func TestFairQueueKeepsTheClaimOfAWaiterWhoseConnectionFails(t *testing.T) {
	for _, tc := range []struct {
		fair bool
		want string
	}{
		// The bad connection's slot goes to w2; w1 queues again, behind w3.
		{false, "w2 w3 w1"},
		// w1 dials the replacement itself.
		{true, "w1 w2 w3"},
	} {
		t.Run(fmt.Sprintf("FairQueue=%v", tc.fair), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &factory{}
				p := newPool(t, f, pool.Config{MaxSize: 1, FairQueue: tc.fair})
				held := mustAcquire(t, p)
				a := &acquirer{t: t, p: p}
				for _, name := range []string{"w1", "w2", "w3"} {
					a.start(context.Background(), name, pool.PriorityNormal)
				}
				held.Value().broken.Store(true) // w1's Reset will fail
				held.Release()
				if got := a.order(); got != tc.want {
					t.Errorf("served %s, want %s", got, tc.want)
				}
				synctest.Wait() // maintenance's check of the suspect idle connection
				if s := p.Stats(); s.Created != 2 || s.Closed[pool.CloseValidation] != 1 || s.Idle != 1 {
					t.Errorf("created %d, closed by validation %d, idle %d; want 2, 1, 1",
						s.Created, s.Closed[pool.CloseValidation], s.Idle)
				}
			})
		})
	}
}

// TestFairQueueServesInArrivalOrderThoughConnectionsFail has every other
// borrower break its connection, so that many waiters fail their first
// connection's check, while newcomers keep arriving: with FairQueue, the
// waiters are served in exact arrival order, all before any newcomer.
func TestFairQueueServesInArrivalOrderThoughConnectionsFail(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, &factory{}, pool.Config{MaxSize: 1, FairQueue: true, StarvationAfter: -1})
		held := mustAcquire(t, p)
		var mu sync.Mutex
		var served []string // guarded by mu
		var wg sync.WaitGroup
		acquire := func(name string) {
			defer wg.Done()
			c, err := p.Acquire(context.Background(), pool.PriorityNormal)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			served = append(served, name)
			mu.Unlock()
			if rand.IntN(2) == 0 {
				c.Value().broken.Store(true) // the next borrower's Reset fails
			}
			c.Release()
		}
		var want []string
		for i := range 100 {
			name := fmt.Sprint(i)
			want = append(want, name)
			wg.Add(1)
			go acquire(name)
			synctest.Wait()
		}
		held.Value().broken.Store(true)
		held.Release()
		for i := range 20 {
			wg.Add(1)
			go acquire(fmt.Sprint("newcomer-", i))
		}
		wg.Wait()
		if got := strings.Join(served[:100], " "); got != strings.Join(want, " ") {
			t.Errorf("served %s\nwant    %s", got, strings.Join(want, " "))
		}
		if n := p.Stats().Closed[pool.CloseValidation]; n < 20 {
			t.Errorf("only %d connections failed their checks; the test is too weak", n)
		}
	})
}

// TestCancellationStormWithEveryFeatureOnLeavesEveryConnectionIdle races
// hand-offs, failing connections, boosts, the reserve and position
// notifications against cancellations.
func TestCancellationStormWithEveryFeatureOnLeavesEveryConnectionIdle(t *testing.T) {
	f := &factory{}
	var positions atomic.Int64
	p := newPool(t, f, pool.Config{
		MaxSize: 4, FairQueue: true, CriticalReserve: 1, StarvationAfter: time.Millisecond,
		DeadlockThreshold: time.Hour, MaintenanceInterval: time.Millisecond, Logger: discardLogger(),
		OnQueuePosition: func(context.Context, int) { positions.Add(1) },
	})
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				ctx, cancel := context.WithCancel(context.Background())
				if (g+i)%3 == 0 {
					go cancel()
				}
				c, err := p.Acquire(ctx, pool.Priority(i%4-1))
				if err == nil {
					if i%17 == 0 {
						c.Value().broken.Store(true) // the next borrower's Reset fails
					}
					c.Release()
				} else if err != context.Canceled {
					t.Error(err)
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	// A validation abandoned by a cancelled caller finishes in the
	// background (it counts its connection in use until then): wait for it.
	waitFor(t, "every connection idle after the storm", func() bool {
		s := p.Stats()
		return s.InUse == 0 && s.Waiting == 0 && s.Idle == s.Size && s.Dialing == 0
	})
	s := p.Stats()
	if s.Size > 4 {
		t.Errorf("after the storm: %+v; want at most 4 connections", s)
	}
	if open := f.open(); open != s.Size {
		t.Errorf("%d connections open, pool counts %d: a connection leaked", open, s.Size)
	}
	if len(p.Queue()) != 0 {
		t.Errorf("queue not empty: %v", p.Queue())
	}
	t.Logf("%d position notifications, %d boosts", positions.Load(), s.Boosts)
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

type ctxName struct{}

func TestQueuePositionsAreToldToEachWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		latest := map[string]int{} // guarded by mu
		p := newPool(t, &factory{}, pool.Config{MaxSize: 1, StarvationAfter: -1,
			OnQueuePosition: func(ctx context.Context, pos int) {
				mu.Lock()
				latest[ctx.Value(ctxName{}).(string)] = pos
				mu.Unlock()
			}})
		held := mustAcquire(t, p)
		check := func(want string) {
			t.Helper()
			synctest.Wait()
			mu.Lock()
			got := fmt.Sprint(latest)
			mu.Unlock()
			if got != want {
				t.Errorf("positions %s, want %s", got, want)
			}
		}
		named := func(name string) context.Context {
			return context.WithValue(context.Background(), ctxName{}, name)
		}
		a := &acquirer{t: t, p: p}
		for _, n := range []string{"a", "b"} {
			a.start(named(n), n, pool.PriorityNormal)
		}
		cctx, cancel := context.WithCancel(named("c"))
		var cerr error
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, cerr = p.Acquire(cctx, pool.PriorityNormal)
		}()
		check("map[a:1 b:2 c:3]")
		a.start(named("d"), "d", pool.PriorityHigh)
		check("map[a:2 b:3 c:4 d:1]")

		q := p.Queue()
		var desc []string
		for _, w := range q {
			desc = append(desc, fmt.Sprintf("%d:%v", w.Position, w.Priority))
		}
		if got := strings.Join(desc, " "); got != "1:high 2:normal 3:normal 4:normal" {
			t.Errorf("Queue() = %s", got)
		}

		cancel() // c leaves: nobody ahead of it moves
		<-done
		if !errors.Is(cerr, context.Canceled) {
			t.Errorf("c: err = %v", cerr)
		}
		check("map[a:2 b:3 c:4 d:1]")
		held.Release() // d, then a, then b are served in turn
		a.order()
	})
}

func TestDeadlockDetectorReportsOncePerEpisode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logged bytes.Buffer
		reports := make(chan pool.DeadlockReport, 4)
		p := newPool(t, &factory{}, pool.Config{MaxSize: 2, DeadlockThreshold: time.Second,
			Logger:     slog.New(slog.NewTextHandler(&logged, nil)),
			OnDeadlock: func(r pool.DeadlockReport) { reports <- r }})
		a, b := mustAcquire(t, p), mustAcquire(t, p)
		time.Sleep(10 * time.Second) // held long: not a stall without waiters
		synctest.Wait()
		if len(reports) != 0 {
			t.Fatal("reported with nobody waiting")
		}

		start := time.Now()
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		var got *pool.Conn[*fakeConn]
		go func() {
			defer wg.Done()
			c, err := p.Acquire(ctx, pool.PriorityLow)
			if err != nil {
				t.Error(err)
				return
			}
			got = c
		}()
		time.Sleep(900 * time.Millisecond)
		synctest.Wait()
		if len(reports) != 0 {
			t.Fatal("reported before DeadlockThreshold")
		}
		r := <-reports
		if d := time.Since(start); d < time.Second || d > 1250*time.Millisecond {
			t.Errorf("reported %v after the waiter queued, want within [1s, 1.25s]", d)
		}
		if len(r.Borrowers) != 2 || len(r.Waiters) != 1 {
			t.Fatalf("report names %d borrowers and %d waiters, want 2 and 1", len(r.Borrowers), len(r.Waiters))
		}
		for _, br := range r.Borrowers {
			if !strings.Contains(br.Stack, "TestDeadlockDetectorReportsOncePerEpisode") || br.Held < 11*time.Second {
				t.Errorf("borrower held %v, stack %q; want the test's stack, held 11s", br.Held, br.Stack)
			}
		}
		if w := r.Waiters[0]; w.Priority != pool.PriorityLow || w.Goroutine == 0 || !strings.Contains(w.Stack, "Acquire") {
			t.Errorf("waiter %+v", w)
		}
		if !strings.Contains(logged.String(), "possible deadlock") || !strings.Contains(logged.String(), "stalled=1") {
			t.Errorf("log: %s", logged.String())
		}

		time.Sleep(10 * time.Second) // the same episode
		synctest.Wait()
		if len(reports) != 0 || p.Stats().Deadlocks != 1 {
			t.Fatalf("reported the same episode again (%d counted)", p.Stats().Deadlocks)
		}

		a.Release() // progress: to the waiter, the episode ends
		wg.Wait()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.Acquire(ctx, pool.PriorityNormal); err != context.Canceled {
				t.Errorf("err = %v, want context.Canceled", err)
			}
		}()
		<-reports // a new episode
		if n := p.Stats().Deadlocks; n != 2 {
			t.Errorf("deadlocks = %d, want 2", n)
		}
		cancel()
		wg.Wait()
		got.Release()
		b.Release()
	})
}

func TestWithoutTheDetectorNoStackIsCaptured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, &factory{}, pool.Config{MaxSize: 1})
		held := mustAcquire(t, p)
		a := &acquirer{t: t, p: p}
		a.start(context.Background(), "w", pool.PriorityNormal)
		if q := p.Queue(); len(q) != 1 || q[0].Stack != "" || q[0].Goroutine != 0 {
			t.Errorf("Queue() = %+v, want one waiter without a stack", q)
		}
		held.Release()
		a.order()
	})
}

func TestAnAcquisitionUnlikelyToBeServedInTimeFailsAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name      string
		failFast  float64
		prio      pool.Priority
		timeout   time.Duration
		wantErr   error // nil: served
		wantAtOnc bool
	}{
		{"behind nine waiters with 200ms left", 0, pool.PriorityNormal, 200 * time.Millisecond, pool.ErrWouldTimeout, true},
		{"behind nine waiters with 10s left", 0, pool.PriorityNormal, 10 * time.Second, nil, false},
		{"critical, first in line, with 200ms left", 0, pool.PriorityCritical, 200 * time.Millisecond, nil, false},
		{"prediction off", -1, pool.PriorityNormal, 200 * time.Millisecond, context.DeadlineExceeded, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newPool(t, &factory{}, pool.Config{MaxSize: 1, FailFastBelow: tc.failFast, AcquireTimeout: -1})
				ctx, stop := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				for range 10 { // one holds for 100ms, nine wait
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							c, err := p.Acquire(ctx, pool.PriorityNormal)
							if err != nil {
								return
							}
							time.Sleep(100 * time.Millisecond)
							c.Release()
						}
					}()
				}
				time.Sleep(3*time.Second + 50*time.Millisecond) // 30 serves: the estimate is warm
				start := time.Now()
				cctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
				defer cancel()
				c, err := p.Acquire(cctx, tc.prio)
				waited := time.Since(start)
				switch {
				case tc.wantErr == nil && err != nil:
					t.Errorf("err = %v after %v, want served", err, waited)
				case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
					t.Errorf("err = %v, want %v", err, tc.wantErr)
				case c != nil:
					c.Release()
				}
				if atOnce := waited == 0; atOnce != tc.wantAtOnc {
					t.Errorf("returned after %v", waited)
				}
				if tc.wantErr == pool.ErrWouldTimeout {
					if !errors.Is(err, pool.ErrAcquireTimeout) || !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("err = %v, want it to match ErrAcquireTimeout and context.DeadlineExceeded too", err)
					}
					var te *pool.TimeoutError
					if !errors.As(err, &te) || te.Ahead != 9 || te.Expected != time.Second {
						t.Errorf("err = %#v, want 9 ahead, 1s expected", err)
					}
					if n := p.Stats().WouldTimeout; n != 1 {
						t.Errorf("WouldTimeout = %d, want 1", n)
					}
				}
				stop()
				wg.Wait()
			})
		})
	}
}

func TestPoissonTail(t *testing.T) {
	for _, tc := range []struct {
		mu   float64
		k    int
		want float64
	}{
		{0.5, 1, 1 - math.Exp(-0.5)},
		{1, 3, 1 - math.Exp(-1)*2.5},
		{2, 10, 4.6498e-5},
		{0, 1, 0},
		{5, 5, 1}, // mu >= k: never a reason to refuse
		{100, 1000, 0},
	} {
		if got := pool.PoissonAtLeast(tc.mu, tc.k); math.Abs(got-tc.want) > 1e-6+1e-3*tc.want {
			t.Errorf("P(N >= %d | mu %v) = %v, want %v", tc.k, tc.mu, got, tc.want)
		}
	}
}

func TestInvalidQueueConfigNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		cfg  pool.Config
		want string
	}{
		{pool.Config{CriticalReserve: -1}, "CriticalReserve"},
		{pool.Config{MaxSize: 2, CriticalReserve: 2}, "CriticalReserve"},
		{pool.Config{FailFastBelow: 1}, "FailFastBelow"},
		{pool.Config{DeadlockThreshold: -time.Second}, "DeadlockThreshold"},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
	cfg, err := pool.New[*fakeConn](&factory{}, pool.Config{AcquireTimeout: 8 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	if got := cfg.Config().StarvationAfter; got != 2*time.Second {
		t.Errorf("default StarvationAfter = %v, want AcquireTimeout/4", got)
	}
}

// BenchmarkHandOff measures acquire and release with 64 goroutines on 4
// connections, so that most releases hand the connection to a waiter, with
// the wait-queue features off, at their defaults (starvation boosts and
// FailFastBelow on), and all on.
func BenchmarkHandOff(b *testing.B) {
	for _, tc := range []struct {
		name string
		cfg  pool.Config
	}{
		{"features=off", pool.Config{StarvationAfter: -1, FailFastBelow: -1}},
		{"features=default", pool.Config{}},
		{"features=all", pool.Config{FairQueue: true, CriticalReserve: 1, StarvationAfter: time.Millisecond,
			DeadlockThreshold: time.Hour, Logger: discardLogger(), OnQueuePosition: func(context.Context, int) {}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := tc.cfg
			cfg.MaxSize = 4
			p, err := pool.New[*fakeConn](&factory{}, cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			ctx := context.Background()
			b.ReportAllocs()
			b.SetParallelism(32) // 64 goroutines on 2 CPUs
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c, err := p.Acquire(ctx, pool.PriorityNormal)
					if err != nil {
						b.Error(err)
						return
					}
					c.Release()
				}
			})
		})
	}
}
