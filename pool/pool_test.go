package pool_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/sqlpool/sqlpool/pool"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeConn is a connection of the fake factory.
type fakeConn struct {
	id     int
	broken atomic.Bool
	closed atomic.Bool
}

// factory is a Factory whose behaviour tests steer.
type factory struct {
	mu         sync.Mutex
	created    []*fakeConn // guarded by mu
	connectErr error       // guarded by mu
	dialGate   chan struct{}

	dialing, maxDialing atomic.Int32
	validates, resets   atomic.Int32
}

func (f *factory) Create(ctx context.Context) (*fakeConn, error) {
	n := f.dialing.Add(1)
	defer f.dialing.Add(-1)
	for {
		m := f.maxDialing.Load()
		if n <= m || f.maxDialing.CompareAndSwap(m, n) {
			break
		}
	}
	if f.dialGate != nil {
		select {
		case <-f.dialGate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.connectErr != nil {
		return nil, f.connectErr
	}
	c := &fakeConn{id: len(f.created) + 1}
	f.created = append(f.created, c)
	return c, nil
}

func (f *factory) Reset(ctx context.Context, c *fakeConn) error {
	f.resets.Add(1)
	if c.broken.Load() {
		return errors.New("broken")
	}
	return nil
}

func (f *factory) Validate(ctx context.Context, c *fakeConn) error {
	f.validates.Add(1)
	if c.broken.Load() {
		return errors.New("broken")
	}
	return nil
}

func (f *factory) Close(c *fakeConn, _ pool.CloseReason) error {
	if c.closed.Swap(true) {
		panic(fmt.Sprintf("conn %d closed twice", c.id))
	}
	return nil
}

func (f *factory) setConnectErr(err error) {
	f.mu.Lock()
	f.connectErr = err
	f.mu.Unlock()
}

func (f *factory) open() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.created {
		if !c.closed.Load() {
			n++
		}
	}
	return n
}

func newPool(t *testing.T, f *factory, cfg pool.Config) *pool.Pool[*fakeConn] {
	t.Helper()
	p, err := pool.New[*fakeConn](f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func mustAcquire(t *testing.T, p *pool.Pool[*fakeConn]) *pool.Conn[*fakeConn] {
	t.Helper()
	c, err := p.Acquire(context.Background(), pool.PriorityNormal)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPoolGrowsLazilyAndReusesTheMostRecentlyUsed(t *testing.T) {
	f := &factory{}
	p := newPool(t, f, pool.Config{MaxSize: 3})
	if got := p.Stats().Size; got != 0 {
		t.Fatalf("size before any acquire = %d, want 0", got)
	}
	a, b := mustAcquire(t, p), mustAcquire(t, p)
	if p.Stats().Size != 2 {
		t.Fatalf("size = %d, want 2", p.Stats().Size)
	}
	a.Release()
	b.Release()
	if c := mustAcquire(t, p); c.Value() != b.Value() {
		t.Errorf("acquire after releasing a then b got conn %d, want b (%d): idle must be LIFO", c.Value().id, b.Value().id)
	}
	if s := p.Stats(); s.Created != 2 || s.Acquires != 3 {
		t.Errorf("created %d, acquires %d; want 2 and 3", s.Created, s.Acquires)
	}
}

func TestReleaseHandsOffToWaitersInFIFOOrderByPriority(t *testing.T) {
	f := &factory{}
	p := newPool(t, f, pool.Config{MaxSize: 1})
	held := mustAcquire(t, p)

	order := make(chan string, 3)
	var wg sync.WaitGroup
	start := func(name string, prio pool.Priority) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := p.Acquire(context.Background(), prio)
			if err != nil {
				t.Error(err)
				return
			}
			order <- name
			c.Release()
		}()
	}
	// Queue them one at a time so their arrival order is known.
	for i, w := range []struct {
		name string
		prio pool.Priority
	}{{"normal-1", pool.PriorityNormal}, {"normal-2", pool.PriorityNormal}, {"high", pool.PriorityHigh}} {
		start(w.name, w.prio)
		waitFor(t, "waiter queued", func() bool { return p.Stats().Waiting == i+1 })
	}
	held.Release()
	wg.Wait()
	close(order)
	var got []string
	for n := range order {
		got = append(got, n)
	}
	if want := "high normal-1 normal-2"; strings.Join(got, " ") != want {
		t.Errorf("served %v, want %s", got, want)
	}
	if s := p.Stats(); s.Created != 1 || s.Waits != 3 {
		t.Errorf("created %d waits %d, want 1 and 3", s.Created, s.Waits)
	}
}

func TestAcquireTimeoutDescribesThePool(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &factory{}
		p := newPool(t, f, pool.Config{MaxSize: 1, AcquireTimeout: time.Second})
		held := mustAcquire(t, p)
		defer held.Release()

		_, err := p.Acquire(context.Background(), pool.PriorityNormal)
		if !errors.Is(err, pool.ErrAcquireTimeout) {
			t.Fatalf("err = %v, want ErrAcquireTimeout", err)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("AcquireTimeout error matches context.DeadlineExceeded; only a caller deadline should")
		}
		for _, want := range []string{"AcquireTimeout 1s", "1/1 connections", "1 in use", "0 idle"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}

		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err = p.Acquire(ctx, pool.PriorityNormal)
		if !errors.Is(err, pool.ErrAcquireTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want both ErrAcquireTimeout and context.DeadlineExceeded", err)
		}
		if s := p.Stats(); s.Timeouts != 2 || s.Waiting != 0 {
			t.Errorf("timeouts %d waiting %d, want 2 and 0", s.Timeouts, s.Waiting)
		}
	})
}

func TestCanceledWaiterLeavesTheQueue(t *testing.T) {
	f := &factory{}
	p := newPool(t, f, pool.Config{MaxSize: 1})
	held := mustAcquire(t, p)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := p.Acquire(ctx, pool.PriorityNormal)
		done <- err
	}()
	waitFor(t, "waiter queued", func() bool { return p.Stats().Waiting == 1 })
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if s := p.Stats(); s.Waiting != 0 || s.Canceled != 1 {
		t.Errorf("waiting %d canceled %d, want 0 and 1", s.Waiting, s.Canceled)
	}
	held.Release()
	if s := p.Stats(); s.Idle != 1 {
		t.Errorf("idle = %d after release, want 1", s.Idle)
	}
}

func TestMaxWaitQueueFailsAtOnce(t *testing.T) {
	f := &factory{}
	p := newPool(t, f, pool.Config{MaxSize: 1, MaxWaitQueue: 1})
	held := mustAcquire(t, p)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Acquire(ctx, pool.PriorityNormal)
	}()
	waitFor(t, "waiter queued", func() bool { return p.Stats().Waiting == 1 })
	if _, err := p.Acquire(context.Background(), pool.PriorityNormal); !errors.Is(err, pool.ErrQueueFull) {
		t.Errorf("err = %v, want ErrQueueFull", err)
	}
	cancel()
	<-done
	held.Release()
}

func TestCloseFailsWaitersAndLaterAcquires(t *testing.T) {
	f := &factory{}
	p, err := pool.New[*fakeConn](f, pool.Config{MaxSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	held := mustAcquire(t, p)
	mustAcquire(t, p).Release() // one idle
	other := mustAcquire(t, p)
	_ = other
	done := make(chan error)
	go func() {
		_, err := p.Acquire(context.Background(), pool.PriorityNormal)
		done <- err
	}()
	waitFor(t, "waiter queued", func() bool { return p.Stats().Waiting == 1 })
	other.Release() // handed to the waiter... or not: Close races it
	p.Close()
	err = <-done
	if err != nil && !errors.Is(err, pool.ErrClosed) {
		t.Errorf("waiter err = %v, want nil or ErrClosed", err)
	}
	if _, err := p.Acquire(context.Background(), pool.PriorityNormal); !errors.Is(err, pool.ErrClosed) {
		t.Errorf("acquire after Close: err = %v, want ErrClosed", err)
	}
	held.Release()
	p.Close() // idempotent
	if n := f.open(); n > 1 {
		t.Errorf("%d connections open after Close and release, want at most the waiter's", n)
	}
}

func TestCloseClosesEveryConnection(t *testing.T) {
	f := &factory{}
	p, _ := pool.New[*fakeConn](f, pool.Config{MaxSize: 4})
	var cs []*pool.Conn[*fakeConn]
	for range 4 {
		cs = append(cs, mustAcquire(t, p))
	}
	cs[0].Release()
	cs[1].Release()
	p.Close()
	if n := f.open(); n != 2 {
		t.Errorf("%d open after Close, want the 2 borrowed", n)
	}
	cs[2].Release()
	cs[3].Destroy(pool.CloseErrors)
	if n := f.open(); n != 0 {
		t.Errorf("%d open after borrowers returned, want 0", n)
	}
	if s := p.Stats(); s.Size != 0 || s.InUse != 0 {
		t.Errorf("size %d in use %d, want 0", s.Size, s.InUse)
	}
}

func TestIdleTimeoutShrinksToMinSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &factory{}
		p := newPool(t, f, pool.Config{MinSize: 1, MaxSize: 4, IdleTimeout: time.Minute})
		synctest.Wait() // the initial fill to MinSize
		var cs []*pool.Conn[*fakeConn]
		for range 4 {
			cs = append(cs, mustAcquire(t, p))
		}
		for _, c := range cs {
			c.Release()
		}
		time.Sleep(59 * time.Second)
		synctest.Wait()
		if s := p.Stats(); s.Size != 4 {
			t.Fatalf("size %d before IdleTimeout, want 4", s.Size)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		s := p.Stats()
		if s.Size != 1 || s.Closed[pool.CloseIdle] != 3 {
			t.Errorf("size %d, closed idle %d; want 1 and 3", s.Size, s.Closed[pool.CloseIdle])
		}
	})
}

func TestMaxLifetimeClosesOldConnections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &factory{}
		// Without jitter, so that the lifetime is exactly an hour.
		p := newPool(t, f, pool.Config{MaxSize: 2, MaxLifetime: time.Hour, IdleTimeout: -1, LifetimeJitter: -1})
		c := mustAcquire(t, p)
		first := c.Value()
		c.Release()
		// Between maintenance ticks, so that no keepalive ping holds the
		// connection when the test acquires it.
		time.Sleep(30*time.Minute + 500*time.Millisecond)
		if c := mustAcquire(t, p); c.Value() != first {
			t.Fatal("connection replaced before its lifetime")
		} else {
			time.Sleep(31 * time.Minute)
			c.Release() // past its lifetime: closed on release
		}
		if !first.closed.Load() {
			t.Fatal("connection past MaxLifetime was not closed on release")
		}
		c = mustAcquire(t, p)
		c.Release()
		time.Sleep(61 * time.Minute)
		synctest.Wait()
		if s := p.Stats(); s.Size != 0 || s.Closed[pool.CloseLifetime] != 2 {
			t.Errorf("size %d closed by lifetime %d, want 0 and 2", s.Size, s.Closed[pool.CloseLifetime])
		}
	})
}

func TestMinAndInitialSizeAreDialedInTheBackground(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &factory{}
		p := newPool(t, f, pool.Config{MinSize: 2, InitialSize: 3, MaxSize: 5})
		synctest.Wait()
		if s := p.Stats(); s.Idle != 3 {
			t.Fatalf("idle %d after New, want InitialSize 3", s.Idle)
		}
		// A broken connection is replaced by maintenance to keep MinSize.
		var cs []*pool.Conn[*fakeConn]
		for range 3 {
			cs = append(cs, mustAcquire(t, p))
		}
		for _, c := range cs {
			c.Destroy(pool.CloseEvicted)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if s := p.Stats(); s.Idle != 2 {
			t.Errorf("idle %d after maintenance, want MinSize 2", s.Idle)
		}
	})
}

func TestIdleConnectionsAreValidatedPastTheBypassWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &factory{}
		p := newPool(t, f, pool.Config{MaxSize: 2})
		mustAcquire(t, p).Release()
		mustAcquire(t, p).Release()
		if n := f.validates.Load(); n != 0 {
			t.Fatalf("validated %d times within the bypass window, want 0", n)
		}
		time.Sleep(pool.DefaultValidationBypass + time.Millisecond)
		c := mustAcquire(t, p)
		if n := f.validates.Load(); n != 1 {
			t.Fatalf("validated %d times after the bypass window, want 1", n)
		}
		// A stale connection is replaced without the caller noticing.
		c.Value().broken.Store(true)
		c.Release()
		time.Sleep(pool.DefaultValidationBypass + time.Millisecond)
		c = mustAcquire(t, p)
		if c.Value().broken.Load() {
			t.Fatal("acquire returned a connection that failed validation")
		}
		c.Release()
		if s := p.Stats(); s.Closed[pool.CloseValidation] != 1 {
			t.Errorf("closed by validation = %d, want 1", s.Closed[pool.CloseValidation])
		}
	})
}

func TestABrokenConnectionMakesItsIdleSiblingsSuspect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &factory{}
		p := newPool(t, f, pool.Config{MaxSize: 4, MaintenanceInterval: time.Hour})
		var cs []*pool.Conn[*fakeConn]
		for range 4 {
			cs = append(cs, mustAcquire(t, p))
		}
		for _, c := range cs {
			c.Value().broken.Store(true) // the database restarted
		}
		for _, c := range cs[1:] {
			c.Release() // used a moment ago: inside the bypass window
		}
		cs[0].Destroy(pool.CloseErrors) // a borrower saw the failure
		synctest.Wait()                 // maintenance checks the siblings now
		if s := p.Stats(); s.Idle != 0 || s.Closed[pool.CloseValidation] != 3 {
			t.Fatalf("idle %d, closed by validation %d; want 0 and 3", s.Idle, s.Closed[pool.CloseValidation])
		}
		if c := mustAcquire(t, p); c.Value().broken.Load() {
			t.Fatal("got a stale connection after a sibling failed")
		}
	})
}

func TestConnectErrorsAreReturnedAndFreeTheSlot(t *testing.T) {
	f := &factory{}
	f.setConnectErr(errors.New("password authentication failed"))
	p := newPool(t, f, pool.Config{MaxSize: 1})
	_, err := p.Acquire(context.Background(), pool.PriorityNormal)
	if err == nil || !strings.Contains(err.Error(), "password authentication failed") {
		t.Fatalf("err = %v, want the connect error", err)
	}
	f.setConnectErr(nil)
	mustAcquire(t, p).Release()
	if s := p.Stats(); s.ConnectErrors != 1 || s.Size != 1 || s.LastConnectError == nil {
		t.Errorf("stats %+v", s)
	}
}

func TestMaxConcurrentConnectsCapsDials(t *testing.T) {
	f := &factory{dialGate: make(chan struct{})}
	p := newPool(t, f, pool.Config{MaxSize: 8, MaxConcurrentConnects: 2})
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := p.Acquire(context.Background(), pool.PriorityNormal)
			if err != nil {
				t.Error(err)
				return
			}
			c.Release()
		}()
	}
	waitFor(t, "two dials and four waiters", func() bool {
		s := p.Stats()
		return s.Dialing == 2 && s.Waiting == 4
	})
	close(f.dialGate)
	wg.Wait()
	if m := f.maxDialing.Load(); m > 2 {
		t.Errorf("%d dials at once, want at most 2", m)
	}
}

func TestConnectRateThrottlesDials(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &factory{}
		p := newPool(t, f, pool.Config{MaxSize: 10, ConnectRate: 2, MaxConcurrentConnects: 1})
		start := time.Now()
		var cs []*pool.Conn[*fakeConn]
		for range 5 {
			cs = append(cs, mustAcquire(t, p))
		}
		// A burst of 1, then one every 500ms.
		if got := time.Since(start); got != 2*time.Second {
			t.Errorf("5 dials at 2/s took %v, want 2s", got)
		}
		for _, c := range cs {
			c.Release()
		}
	})
}

// TestNothingIsLostWhenWaitersGiveUp races hand-offs against cancellations and
// checks that every connection ends idle.
func TestNothingIsLostWhenWaitersGiveUp(t *testing.T) {
	f := &factory{}
	p := newPool(t, f, pool.Config{MaxSize: 3})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				ctx, cancel := context.WithCancel(context.Background())
				if (g+i)%3 == 0 {
					go cancel()
				}
				c, err := p.Acquire(ctx, pool.Priority(i%4-1))
				if err == nil {
					c.Release()
				} else if err != context.Canceled {
					t.Error(err)
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	s := p.Stats()
	if s.InUse != 0 || s.Waiting != 0 || s.Idle != s.Size || s.Size > 3 {
		t.Errorf("after the storm: %+v; want everything idle", s)
	}
	if err := p.CheckCounts(); err != nil {
		t.Error(err)
	}
}

func TestInvalidConfigNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		cfg  pool.Config
		want string
	}{
		{pool.Config{MaxSize: -1}, "MaxSize"},
		{pool.Config{MinSize: 5, MaxSize: 2}, "MinSize"},
		{pool.Config{InitialSize: 20, MaxSize: 2}, "InitialSize"},
		{pool.Config{MaxWaitQueue: -3}, "MaxWaitQueue"},
		{pool.Config{ConnectRate: -1}, "ConnectRate"},
		{pool.Config{ValidationTimeout: -time.Second}, "ValidationTimeout"},
	} {
		_, err := pool.New[*fakeConn](&factory{}, tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) err = %v, want one naming %s", tc.cfg, err, tc.want)
		}
	}
}

func TestInvalidConfigRejectsNaNAndInfinities(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, tc := range []struct {
		cfg  pool.Config
		want string
	}{
		{pool.Config{ConnectRate: nan}, "ConnectRate"},
		{pool.Config{ConnectRate: inf}, "ConnectRate"},
		{pool.Config{FailFastBelow: nan}, "FailFastBelow"},
		{pool.Config{FailFastBelow: -inf}, "FailFastBelow"},
		{pool.Config{LifetimeJitter: nan}, "LifetimeJitter"},
		{pool.Config{LifetimeJitter: -inf}, "LifetimeJitter"},
		{pool.Config{WarnFraction: nan}, "WarnFraction"},
		{pool.Config{ErrorThreshold: nan}, "ErrorThreshold"},
		{pool.Config{ErrorThreshold: inf}, "ErrorThreshold"},
	} {
		_, err := pool.New[*fakeConn](&factory{}, tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) err = %v, want one naming %s", tc.cfg, err, tc.want)
		}
		if err := tc.cfg.Validate(); err == nil {
			t.Errorf("%+v.Validate() = nil, want an error naming %s", tc.cfg, tc.want)
		}
	}
}

// TestAcquireAndReleaseAllocateNothing guards the hot path: acquiring an
// idle connection and releasing it allocate nothing, with the defaults and
// with every wait-queue feature on.
func TestAcquireAndReleaseAllocateNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  pool.Config
	}{
		{"defaults", pool.Config{MaxSize: 1}},
		{"queue features", pool.Config{MaxSize: 2, FairQueue: true, CriticalReserve: 1,
			StarvationAfter: time.Second, OnQueuePosition: func(context.Context, int) {}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPool(t, &factory{}, tc.cfg)
			mustAcquire(t, p).Release()
			ctx := context.Background()
			allocs := testing.AllocsPerRun(1000, func() {
				c, err := p.Acquire(ctx, pool.PriorityNormal)
				if err != nil {
					t.Fatal(err)
				}
				c.Release()
			})
			if allocs != 0 {
				t.Errorf("acquire+release allocates %v times, want 0", allocs)
			}
		})
	}
}

func BenchmarkAcquireRelease(b *testing.B) {
	p, err := pool.New[*fakeConn](&factory{}, pool.Config{MaxSize: 4})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	b.ReportAllocs()
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
}

func TestADialOutlivesItsImpatientCaller(t *testing.T) {
	f := &factory{dialGate: make(chan struct{})}
	p := newPool(t, f, pool.Config{MaxSize: 1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := p.Acquire(ctx, pool.PriorityNormal)
		done <- err
	}()
	waitFor(t, "the dial", func() bool { return f.dialing.Load() == 1 })
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	close(f.dialGate) // the dial completes after its caller left
	waitFor(t, "the connection to become idle", func() bool { return p.Stats().Idle == 1 })
	mustAcquire(t, p).Release()
	if s := p.Stats(); s.Created != 1 {
		t.Errorf("created %d, want 1: the abandoned dial's connection was not kept", s.Created)
	}
}

func TestAcquireLabeledPrefersAMatchingIdleConnection(t *testing.T) {
	p := newPool(t, &factory{}, pool.Config{MaxSize: 3})
	a, b, c := mustAcquire(t, p), mustAcquire(t, p), mustAcquire(t, p)
	a.SetLabel(7)
	b.SetLabel(8)
	a.Release()
	b.Release()
	c.Release() // on top, unlabeled
	got, err := p.AcquireLabeled(context.Background(), pool.PriorityNormal, 7)
	if err != nil {
		t.Fatal(err)
	}
	if got.Value() != a.Value() {
		t.Errorf("got conn %d, want the one labeled 7 (%d)", got.Value().id, a.Value().id)
	}
	if top := mustAcquire(t, p); top.Value() != c.Value() {
		t.Errorf("the stack order changed: got %d, want %d", top.Value().id, c.Value().id)
	}
}

func TestResizeShrinksAndGrows(t *testing.T) {
	f := &factory{}
	p := newPool(t, f, pool.Config{MaxSize: 4})
	var cs []*pool.Conn[*fakeConn]
	for range 4 {
		cs = append(cs, mustAcquire(t, p))
	}
	cs[0].Release()
	cs[1].Release()
	if err := p.Resize(1); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Size != 2 || s.Idle != 0 {
		t.Errorf("after Resize(1): size %d idle %d, want 2 and 0 (idle surplus closed)", s.Size, s.Idle)
	}
	cs[2].Release() // still above: closed
	if s := p.Stats(); s.Size != 1 || s.Closed[pool.CloseEvicted] != 3 {
		t.Errorf("size %d, evicted %d; want 1 and 3", s.Size, s.Closed[pool.CloseEvicted])
	}
	cs[3].Release() // at the new size: kept
	if s := p.Stats(); s.Size != 1 || s.Idle != 1 {
		t.Errorf("size %d idle %d, want 1 and 1", s.Size, s.Idle)
	}
	if err := p.CheckCounts(); err != nil {
		t.Error(err)
	}
	if err := p.Resize(3); err != nil {
		t.Fatal(err)
	}
	if err := p.Resize(0); err == nil || !strings.Contains(err.Error(), "MaxSize") {
		t.Errorf("Resize(0) = %v, want an error naming MaxSize", err)
	}
}

func TestEvictIdle(t *testing.T) {
	f := &factory{}
	p := newPool(t, f, pool.Config{MaxSize: 3})
	a, b := mustAcquire(t, p), mustAcquire(t, p)
	a.Release()
	b.Release()
	if n := p.EvictIdle(func(c *fakeConn) bool { return c == a.Value() }); n != 1 || !a.Value().closed.Load() || b.Value().closed.Load() {
		t.Errorf("evicted %d; a closed %v, b closed %v; want 1, true, false", n, a.Value().closed.Load(), b.Value().closed.Load())
	}
	if n := p.EvictIdle(nil); n != 1 {
		t.Errorf("evicted %d, want the last idle one", n)
	}
}

func TestSuspendHoldsAcquisitionsUntilResume(t *testing.T) {
	p := newPool(t, &factory{}, pool.Config{MaxSize: 2})
	mustAcquire(t, p).Release()
	p.Suspend()
	got := make(chan *pool.Conn[*fakeConn])
	go func() {
		c, err := p.Acquire(context.Background(), pool.PriorityNormal)
		if err != nil {
			t.Error(err)
		}
		got <- c
	}()
	waitFor(t, "a waiter while suspended", func() bool { return p.Stats().Waiting == 1 })
	if s := p.Stats(); !s.Suspended || s.Idle != 1 {
		t.Fatalf("suspended %v, idle %d: the idle connection must not be lent", s.Suspended, s.Idle)
	}
	p.Resume()
	(<-got).Release()
	if s := p.Stats(); s.Suspended || s.Waiting != 0 {
		t.Errorf("after Resume: %+v", s)
	}
}

// TestAcquireAtMeasuresFromTheCallersStart checks the clock reading a caller
// passes to AcquireAt: a connection at hand is lent at start (no second
// reading), and the AcquireTimeout runs from start, so an acquisition begun
// longer than AcquireTimeout ago gives up as soon as it would wait.
func TestAcquireAtMeasuresFromTheCallersStart(t *testing.T) {
	p := newPool(t, &factory{}, pool.Config{MaxSize: 1, AcquireTimeout: time.Minute})
	ctx := context.Background()
	start := time.Now().Add(-time.Second)
	c, err := p.AcquireAt(ctx, start, pool.PriorityNormal, 0)
	if err != nil {
		t.Fatal(err)
	}
	c.Release()
	c, err = p.AcquireAt(ctx, start, pool.PriorityNormal, 0) // idle: at hand
	if err != nil {
		t.Fatal(err)
	}
	if !c.LentAt().Equal(start) {
		t.Errorf("LentAt() = %v, want the start passed, %v", c.LentAt(), start)
	}
	began := time.Now()
	_, err = p.AcquireAt(ctx, time.Now().Add(-2*time.Minute), pool.PriorityNormal, 0) // must wait: none left
	if !errors.Is(err, pool.ErrAcquireTimeout) {
		t.Fatalf("err = %v, want ErrAcquireTimeout", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("gave up after %v, want at once: its AcquireTimeout ran out a minute ago", d)
	}
	c.ReleaseAt(time.Now())
}
