package pool_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sqlpool/sqlpool/pool"
)

// dialCounter is a factory that counts every dial, failed or not; with
// hang set, dials wait for their context to end, and with gate set, for
// the gate to close.
type dialCounter struct {
	*factory
	dials atomic.Int32
	hang  atomic.Bool
	gate  atomic.Pointer[chan struct{}]
}

func (f *dialCounter) Create(ctx context.Context) (*fakeConn, error) {
	f.dials.Add(1)
	if f.hang.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if g := f.gate.Load(); g != nil {
		select {
		case <-*g:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return f.factory.Create(ctx)
}

func newCountingPool(t *testing.T, cfg pool.Config) (*pool.Pool[*fakeConn], *dialCounter) {
	t.Helper()
	f := &dialCounter{factory: &factory{}}
	p, err := pool.New[*fakeConn](f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p, f
}

var errRefused = errors.New("dial tcp 10.0.0.7:5432: connect: connection refused")

// checkRefused fails unless err is the open circuit's, and nothing else.
func checkRefused(t *testing.T, err error, failures int) {
	t.Helper()
	var ce *pool.CircuitOpenError
	switch {
	case !errors.Is(err, pool.ErrCircuitOpen) || !errors.As(err, &ce):
		t.Fatalf("err = %v, want a CircuitOpenError", err)
	case errors.Is(err, errRefused):
		t.Errorf("err matches its LastErr: %v", err)
	case ce.Failures != failures || ce.LastErr != errRefused || ce.BreakFor != time.Second:
		t.Errorf("CircuitOpenError %+v, want %d failures, the last dial error, BreakFor 1s", ce, failures)
	case !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "every 1s"):
		t.Errorf("message %q: want the last error and the probe interval", err)
	}
}

func checkStats(t *testing.T, p *pool.Pool[*fakeConn], open bool, opens, refused int64) {
	t.Helper()
	s := p.Stats()
	if s.CircuitOpen != open || s.CircuitOpens != opens || s.CircuitRefused != refused || p.CircuitOpen() != open {
		t.Errorf("circuit open %v (CircuitOpen() %v), opens %d, refused %d; want %v, %d, %d",
			s.CircuitOpen, p.CircuitOpen(), s.CircuitOpens, s.CircuitRefused, open, opens, refused)
	}
	if err := p.CheckCounts(); err != nil {
		t.Error(err)
	}
}

func TestAfterBreakAfterFailedDialsAcquireFailsAtOnceWithoutDialing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, f := newCountingPool(t, pool.Config{MaxSize: 4, BreakAfter: 3, BreakFor: time.Second, MaintenanceInterval: time.Hour})
		f.setConnectErr(errRefused)
		for i := range 3 {
			_, err := p.Acquire(context.Background(), pool.PriorityNormal)
			if !errors.Is(err, errRefused) || errors.Is(err, pool.ErrCircuitOpen) {
				t.Fatalf("dial %d: err = %v, want the connect error", i+1, err)
			}
		}
		checkStats(t, p, true, 1, 0)
		start := time.Now()
		for range 5 {
			_, err := p.Acquire(context.Background(), pool.PriorityNormal)
			checkRefused(t, err, 3)
		}
		if time.Since(start) != 0 {
			t.Errorf("refusals took %v of the fake clock, want none", time.Since(start))
		}
		if n := f.dials.Load(); n != 3 {
			t.Errorf("%d dials, want 3: none while open", n)
		}
		checkStats(t, p, true, 1, 5)
		if s := p.Stats(); s.ConnectErrors != 3 || s.Waits != 0 || s.Timeouts != 0 {
			t.Errorf("connect errors %d, waits %d, timeouts %d; want 3, 0, 0", s.ConnectErrors, s.Waits, s.Timeouts)
		}
	})
}

func TestAnOpeningCircuitFailsTheQueuedWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, f := newCountingPool(t, pool.Config{MaxSize: 4, MaxConcurrentConnects: 1, BreakAfter: 1,
			BreakFor: time.Second, AcquireTimeout: time.Minute, MaintenanceInterval: time.Hour})
		f.setConnectErr(errRefused)
		f.dialGate = make(chan struct{})
		errs := make(chan error, 3)
		for range 3 { // one dials, two queue behind MaxConcurrentConnects
			go func() {
				_, err := p.Acquire(context.Background(), pool.PriorityNormal)
				errs <- err
			}()
		}
		synctest.Wait()
		if s := p.Stats(); s.Dialing != 1 || s.Waiting != 2 {
			t.Fatalf("dialing %d, waiting %d; want 1 and 2", s.Dialing, s.Waiting)
		}
		start := time.Now()
		close(f.dialGate) // the dial fails: the circuit opens
		var connect, refused int
		for range 3 {
			err := <-errs
			switch {
			case errors.Is(err, pool.ErrCircuitOpen):
				checkRefused(t, err, 1)
				refused++
			case errors.Is(err, errRefused):
				connect++
			default:
				t.Errorf("err = %v", err)
			}
		}
		if connect != 1 || refused != 2 {
			t.Errorf("%d connect errors, %d refusals; want 1 and 2", connect, refused)
		}
		if waited := time.Since(start); waited != 0 {
			t.Errorf("the waiters were failed after %v, want at once", waited)
		}
		if n := f.dials.Load(); n != 1 {
			t.Errorf("%d dials, want 1", n)
		}
		checkStats(t, p, true, 1, 2)
		if s := p.Stats(); s.Waiting != 0 || s.Timeouts != 0 {
			t.Errorf("waiting %d, timeouts %d; want 0, 0", s.Waiting, s.Timeouts)
		}
	})
}

func TestIdleConnectionsStillServeWhileTheCircuitIsOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, f := newCountingPool(t, pool.Config{MaxSize: 4, BreakAfter: 2, BreakFor: time.Second, MaintenanceInterval: time.Hour})
		held := mustAcquire(t, p)
		f.setConnectErr(errRefused)
		for range 2 {
			if _, err := p.Acquire(context.Background(), pool.PriorityNormal); !errors.Is(err, errRefused) {
				t.Fatalf("err = %v, want the connect error", err)
			}
		}
		held.Release()
		for range 3 {
			c := mustAcquire(t, p) // the idle one
			if c != held {
				t.Fatal("got another connection than the idle one")
			}
			_, err := p.Acquire(context.Background(), pool.PriorityNormal) // would dial
			checkRefused(t, err, 2)
			c.Release()
		}
		if n := f.dials.Load(); n != 3 {
			t.Errorf("%d dials, want 3", n)
		}
		checkStats(t, p, true, 1, 3)
	})
}

func TestTheProbeDialsOncePerBreakForReopensOnFailureAndClosesOnSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const breakFor = time.Second
		p, f := newCountingPool(t, pool.Config{MaxSize: 4, BreakAfter: 1, BreakFor: breakFor, MaintenanceInterval: time.Hour})
		f.setConnectErr(errRefused)
		if _, err := p.Acquire(context.Background(), pool.PriorityNormal); !errors.Is(err, errRefused) {
			t.Fatalf("err = %v, want the connect error", err)
		}
		refused := int64(0)
		refuse := func() {
			t.Helper()
			_, err := p.Acquire(context.Background(), pool.PriorityNormal)
			checkRefused(t, err, int(f.dials.Load()))
			refused++
		}
		for probe := 1; probe <= 3; probe++ {
			tick(breakFor - time.Millisecond)
			refuse()
			if n := f.dials.Load(); n != int32(probe) {
				t.Fatalf("%d dials before probe %d is due, want %d", n, probe, probe)
			}
			tick(time.Millisecond) // the probe, which fails
			if n := f.dials.Load(); n != int32(probe+1) {
				t.Fatalf("%d dials when probe %d is due, want %d", n, probe, probe+1)
			}
			refuse()
			checkStats(t, p, true, 1, refused)
		}
		f.setConnectErr(nil) // the host is back
		tick(breakFor)
		if n := f.dials.Load(); n != 5 {
			t.Fatalf("%d dials, want 5", n)
		}
		checkStats(t, p, false, 1, refused)
		if s := p.Stats(); s.Idle != 1 || s.Created != 1 {
			t.Errorf("idle %d, created %d; want the probe's connection idle", s.Idle, s.Created)
		}
		c := mustAcquire(t, p)
		c2 := mustAcquire(t, p) // dials again
		c.Release()
		c2.Release()
		if n := f.dials.Load(); n != 6 {
			t.Errorf("%d dials, want 6", n)
		}
		tick(10 * breakFor)
		if n := f.dials.Load(); n != 6 {
			t.Errorf("%d dials after the circuit closed, want no more probes", n)
		}
	})
}

func TestAProbeWithoutRoomIsPutOffByBreakFor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, f := newCountingPool(t, pool.Config{MaxSize: 2, BreakAfter: 1, BreakFor: time.Second, MaintenanceInterval: time.Hour})
		held := mustAcquire(t, p)
		f.setConnectErr(errRefused)
		if _, err := p.Acquire(context.Background(), pool.PriorityNormal); !errors.Is(err, errRefused) {
			t.Fatalf("err = %v, want the connect error", err)
		}
		if err := p.Resize(1); err != nil { // the held connection fills the pool
			t.Fatal(err)
		}
		f.setConnectErr(nil)
		tick(time.Second)
		if n := f.dials.Load(); n != 2 || !p.CircuitOpen() {
			t.Fatalf("%d dials, circuit open %v; want no probe without room", n, p.CircuitOpen())
		}
		if err := p.Resize(2); err != nil {
			t.Fatal(err)
		}
		tick(time.Second) // the probe put off by BreakFor
		if n := f.dials.Load(); n != 3 {
			t.Fatalf("%d dials, want the probe", n)
		}
		checkStats(t, p, false, 1, 0)
		if s := p.Stats(); s.Idle != 1 || s.InUse != 1 {
			t.Errorf("idle %d, in use %d; want the probe's connection idle beside the held one", s.Idle, s.InUse)
		}
		held.Release()
	})
}

func TestTheProbesConnectionServesAWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, f := newCountingPool(t, pool.Config{MaxSize: 2, BreakAfter: 1, BreakFor: time.Second, MaintenanceInterval: time.Hour})
		held := mustAcquire(t, p)
		f.setConnectErr(errRefused)
		if _, err := p.Acquire(context.Background(), pool.PriorityNormal); !errors.Is(err, errRefused) {
			t.Fatalf("err = %v, want the connect error", err)
		}
		f.setConnectErr(nil)
		gate := make(chan struct{})
		f.gate.Store(&gate)
		tick(time.Second) // the probe starts, and fills the pool
		got := make(chan error, 1)
		go func() { // at MaxSize: it waits for the probe, not refused
			c, err := p.Acquire(context.Background(), pool.PriorityNormal)
			if err == nil {
				c.Release()
			}
			got <- err
		}()
		synctest.Wait()
		if s := p.Stats(); s.Dialing != 1 || s.Waiting != 1 {
			t.Fatalf("dialing %d, waiting %d; want the probe and a waiter", s.Dialing, s.Waiting)
		}
		close(gate)
		if err := <-got; err != nil {
			t.Fatalf("the waiter: %v, want the probe's connection", err)
		}
		checkStats(t, p, false, 1, 0)
		if s := p.Stats(); s.Created != 2 || s.Waits != 1 {
			t.Errorf("created %d, waits %d; want 2 and 1", s.Created, s.Waits)
		}
		held.Release()
	})
}

func TestNothingDialsWhileTheCircuitIsOpenButTheProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// MinSize keeps maintenance dialing (one attempt a pass) until
		// the circuit opens; then only the probe dials.
		// The host is down before New: its fill may dial at once, on
		// another goroutine.
		f := &dialCounter{factory: &factory{}}
		f.setConnectErr(errRefused)
		p, err := pool.New[*fakeConn](f, pool.Config{MinSize: 3, MaxSize: 4, BreakAfter: 2, BreakFor: time.Second,
			MaintenanceInterval: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		synctest.Wait()
		tick(100 * time.Millisecond) // InitialSize's dial and one pass: 2 failures
		if n := f.dials.Load(); n != 2 || !p.CircuitOpen() {
			t.Fatalf("%d dials, circuit open %v; want 2 and open", n, p.CircuitOpen())
		}
		tick(time.Second) // 10 passes, and the first probe
		if n := f.dials.Load(); n != 3 {
			t.Fatalf("%d dials after 1s open, want 3: the probe only", n)
		}
		tick(time.Second)
		if n := f.dials.Load(); n != 4 {
			t.Fatalf("%d dials after 2s open, want 4", n)
		}
		f.setConnectErr(nil)
		tick(time.Second) // the probe succeeds; maintenance refills to MinSize
		tick(100 * time.Millisecond)
		if s := p.Stats(); s.CircuitOpen || s.Idle != 3 {
			t.Errorf("circuit open %v, idle %d; want closed and MinSize idle", s.CircuitOpen, s.Idle)
		}
	})
}

func TestBadConnectionsOnlyBringTheBreakerToItsThreshold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, f := newCountingPool(t, pool.Config{MaxSize: 4, BreakAfter: 2, BreakFor: time.Second, MaintenanceInterval: time.Hour})
		destroyTwo := func() {
			a, b := mustAcquire(t, p), mustAcquire(t, p)
			a.Destroy(pool.CloseErrors)
			b.Destroy(pool.CloseErrors)
			synctest.Wait()
		}
		// A restart: the connections are bad, the next dial succeeds and
		// resets the count.
		destroyTwo()
		checkStats(t, p, false, 0, 0)
		mustAcquire(t, p).Release()
		checkStats(t, p, false, 0, 0)
		// The host is down: the connections are bad (the dials that
		// made them reset the count first), the next dial fails and opens
		// the circuit at once.
		p.EvictIdle(nil)
		destroyTwo()
		f.setConnectErr(errRefused)
		if _, err := p.Acquire(context.Background(), pool.PriorityNormal); !errors.Is(err, errRefused) {
			t.Fatalf("err = %v, want the connect error", err)
		}
		checkStats(t, p, true, 1, 0)
		_, err := p.Acquire(context.Background(), pool.PriorityNormal)
		checkRefused(t, err, 3) // the two bad connections and the dial
	})
}

func TestAtTheThresholdDialsGoOneAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, f := newCountingPool(t, pool.Config{MaxSize: 4, BreakAfter: 1, BreakFor: time.Second, MaintenanceInterval: time.Hour})
		mustAcquire(t, p).Destroy(pool.CloseErrors) // at the threshold, circuit closed
		synctest.Wait()
		f.dialGate = make(chan struct{})
		f.setConnectErr(errRefused)
		errs := make(chan error, 3)
		for range 3 {
			go func() {
				_, err := p.Acquire(context.Background(), pool.PriorityNormal)
				errs <- err
			}()
		}
		synctest.Wait()
		if s := p.Stats(); s.Dialing != 1 || s.Waiting != 2 {
			t.Fatalf("dialing %d, waiting %d; want one dial at a time", s.Dialing, s.Waiting)
		}
		close(f.dialGate)
		refused := 0
		for range 3 {
			if err := <-errs; errors.Is(err, pool.ErrCircuitOpen) {
				refused++
			}
		}
		if refused != 2 || f.dials.Load() != 2 {
			t.Errorf("%d refused, %d dials; want 2 and 2", refused, f.dials.Load())
		}
	})
}

func TestCloseEndsAProbeInProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &dialCounter{factory: &factory{}}
		p, err := pool.New[*fakeConn](f, pool.Config{MaxSize: 2, BreakAfter: 1, BreakFor: time.Second, MaintenanceInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		f.setConnectErr(errRefused)
		p.Acquire(context.Background(), pool.PriorityNormal)
		f.hang.Store(true) // the probe hangs until its context ends
		tick(time.Second)
		if s := p.Stats(); s.Dialing != 1 {
			t.Fatalf("dialing %d, want the probe", s.Dialing)
		}
		p.Close() // cancels it and waits for it; the bubble fails if a goroutine is left
		if s := p.Stats(); s.Dialing != 0 || s.Size != 0 {
			t.Errorf("after Close: dialing %d, size %d", s.Dialing, s.Size)
		}
	})
}

func TestCircuitBreakerConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  pool.Config
		want string
	}{
		{pool.Config{BreakAfter: -1}, "BreakAfter is -1, must not be negative"},
		{pool.Config{BreakAfter: 3, BreakFor: -time.Second}, "BreakFor is -1s, must not be negative"},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	p := newPool(t, &factory{}, pool.Config{BreakAfter: 3})
	if got := p.Config().BreakFor; got != pool.DefaultBreakFor {
		t.Errorf("BreakFor %v by default, want %v", got, pool.DefaultBreakFor)
	}
	p = newPool(t, &factory{}, pool.Config{})
	if got := p.Config(); got.BreakAfter != 0 || got.BreakFor != 0 {
		t.Errorf("BreakAfter %d, BreakFor %v by default, want off", got.BreakAfter, got.BreakFor)
	}
}

func TestWithoutBreakAfterTheCircuitNeverOpens(t *testing.T) {
	p, f := newCountingPool(t, pool.Config{MaxSize: 2})
	f.setConnectErr(errRefused)
	for range 20 {
		if _, err := p.Acquire(context.Background(), pool.PriorityNormal); !errors.Is(err, errRefused) {
			t.Fatalf("err = %v, want the connect error", err)
		}
	}
	checkStats(t, p, false, 0, 0)
	if n := f.dials.Load(); n != 20 {
		t.Errorf("%d dials, want 20", n)
	}
}

// BenchmarkCircuitOpenRefusal measures an Acquire refused by the open
// circuit; read it against BenchmarkAcquireRelease.
func BenchmarkCircuitOpenRefusal(b *testing.B) {
	f := &factory{}
	p, err := pool.New[*fakeConn](f, pool.Config{MaxSize: 4, BreakAfter: 1, BreakFor: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	f.setConnectErr(errRefused)
	ctx := context.Background()
	p.Acquire(ctx, pool.PriorityNormal)
	if !p.CircuitOpen() {
		b.Fatal("the circuit did not open")
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.Acquire(ctx, pool.PriorityNormal); err == nil {
				b.Error("acquired with the circuit open")
				return
			}
		}
	})
}

func TestTheCircuitsOpeningAndClosingAreLogged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		p, f := newCountingPool(t, pool.Config{MaxSize: 2, BreakAfter: 1, BreakFor: time.Second, MaintenanceInterval: time.Hour,
			Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))})
		f.setConnectErr(errRefused)
		p.Acquire(context.Background(), pool.PriorityNormal)
		synctest.Wait()
		tick(time.Second) // a probe that fails: no second warning
		f.setConnectErr(nil)
		tick(time.Second)
		log := buf.String()
		if n := strings.Count(log, "circuit breaker open"); n != 1 || !strings.Contains(log, "connection refused") {
			t.Errorf("%d warnings of the opening, want 1 with the last error:\n%s", n, log)
		}
		if n := strings.Count(log, "circuit breaker closed"); n != 1 {
			t.Errorf("%d notes of the closing, want 1:\n%s", n, log)
		}
	})
}
