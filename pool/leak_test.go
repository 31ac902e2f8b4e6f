package pool_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sqlpool/sqlpool/pool"
)

// leakFactory is a factory that records the leaks it is told of, declining
// the first decline of them.
type leakFactory struct {
	*factory
	mu      sync.Mutex
	decline int             // guarded by mu: leaks still to decline
	asked   int             // guarded by mu: calls of Leak
	leaks   []time.Duration // guarded by mu: the held time of each leak taken
	closed  []bool          // guarded by mu: whether the connection was closed when told
	passes  int             // guarded by mu: calls of Maintain
	ctxs    []context.Context
}

func (f *leakFactory) Leak(c *fakeConn, held time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked++
	if f.decline > 0 {
		f.decline--
		return false
	}
	f.leaks = append(f.leaks, held)
	f.closed = append(f.closed, c.closed.Load())
	return true
}

func (f *leakFactory) Maintain(ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.passes++
	f.ctxs = append(f.ctxs, ctx)
}

func (f *leakFactory) told() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.leaks...)
}

func TestALeakIsReportedOncePerBorrowingWithinAQuarterOfTheThreshold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &leakFactory{factory: &factory{}}
		// Maintenance passes an hour apart: only the leak check runs.
		p, err := pool.New[*fakeConn](f, pool.Config{MaxSize: 1, LeakThreshold: time.Minute,
			MaintenanceInterval: time.Hour, MaxLifetime: -1, IdleTimeout: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		c := mustAcquire(t, p)
		tick(59 * time.Second)
		if l := f.told(); len(l) != 0 {
			t.Fatalf("leaks before LeakThreshold: %v", l)
		}
		tick(15 * time.Second)
		l := f.told()
		if len(l) != 1 || l[0] < time.Minute || l[0] > time.Minute+15*time.Second {
			t.Fatalf("leaks %v; want one, held 1m to 1m15s (checked every 15s)", l)
		}
		tick(5 * time.Minute)
		if n := len(f.told()); n != 1 {
			t.Fatalf("%d leaks, want the borrowing reported once", n)
		}
		c.Release()
		tick(5 * time.Minute)
		if n := len(f.told()); n != 1 {
			t.Fatalf("%d leaks, want none for an idle connection", n)
		}
		c = mustAcquire(t, p) // the same connection, a new borrowing
		tick(75 * time.Second)
		if n := len(f.told()); n != 2 {
			t.Errorf("%d leaks, want the new borrowing reported too", n)
		}
		c.Release()
	})
}

func TestALeakTheFactoryDeclinesIsAskedAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &leakFactory{factory: &factory{}, decline: 2}
		p, err := pool.New[*fakeConn](f, pool.Config{MaxSize: 1, LeakThreshold: time.Minute,
			MaintenanceInterval: time.Hour, MaxLifetime: -1, IdleTimeout: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		c := mustAcquire(t, p)
		defer c.Release()
		tick(time.Minute + 45*time.Second) // three checks past the threshold
		f.mu.Lock()
		asked, taken := f.asked, len(f.leaks)
		f.mu.Unlock()
		if asked != 3 || taken != 1 {
			t.Fatalf("asked %d times, %d taken; want 3 and 1 (declined twice, then taken)", asked, taken)
		}
		tick(5 * time.Minute)
		if f.mu.Lock(); f.asked != 3 {
			t.Errorf("asked %d times after the leak was taken, want 3", f.asked)
		}
		f.mu.Unlock()
	})
}

func TestALeakIsReportedBeforeTheReclaimClosesIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &leakFactory{factory: &factory{}}
		p, err := pool.New[*fakeConn](f, pool.Config{MaxSize: 1, LeakThreshold: time.Minute,
			MaxBorrowTime: time.Minute, ReclaimBorrowed: true, MaintenanceInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		c := mustAcquire(t, p)
		tick(75 * time.Second)
		f.mu.Lock()
		leaks, closed := len(f.leaks), f.closed
		f.mu.Unlock()
		if leaks != 1 || closed[0] {
			t.Fatalf("%d leaks, closed when told %v; want one, told before the close", leaks, closed)
		}
		// The one walk found both: the leak check also enforced MaxBorrowTime.
		if !c.Reclaimed() || p.Stats().Overdue != 1 {
			t.Errorf("reclaimed %v, overdue %d; want MaxBorrowTime enforced by the leak check", c.Reclaimed(), p.Stats().Overdue)
		}
	})
}

func TestWithoutALeakerLeaksAreLogged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		var mu sync.Mutex
		logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, nil))
		p, err := pool.New[*fakeConn](&factory{}, pool.Config{MaxSize: 1, LeakThreshold: time.Minute, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		c := mustAcquire(t, p)
		defer c.Release()
		tick(2 * time.Minute)
		mu.Lock()
		defer mu.Unlock()
		if out := buf.String(); strings.Count(out, "held past LeakThreshold") != 1 || !strings.Contains(out, "level=WARN") {
			t.Errorf("log %q; want one warning of the leak", out)
		}
	})
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func TestBorrowingsListsThoseHeldLongestFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, &factory{}, pool.Config{MaxSize: 3, LeakThreshold: time.Hour, MaxLifetime: -1, IdleTimeout: -1})
		a := mustAcquire(t, p)
		tick(time.Minute)
		b := mustAcquire(t, p)
		tick(time.Minute)
		bs := p.Borrowings(time.Now(), 0)
		if len(bs) != 2 || bs[0].Value != a.Value() || bs[0].Held != 2*time.Minute || bs[1].Value != b.Value() || bs[1].Held != time.Minute {
			t.Fatalf("borrowings %+v; want a held 2m, then b held 1m", bs)
		}
		if bs := p.Borrowings(time.Now(), 90*time.Second); len(bs) != 1 || bs[0].Value != a.Value() {
			t.Fatalf("borrowings held 90s+: %+v; want a only", bs)
		}
		a.Release()
		b.Release()
		if bs := p.Borrowings(time.Now(), 0); len(bs) != 0 {
			t.Errorf("borrowings after release: %+v", bs)
		}
	})
}

func TestBorrowingsAreNotListedWithoutALimitThatTracksThem(t *testing.T) {
	p := newPool(t, &factory{}, pool.Config{MaxSize: 1})
	c := mustAcquire(t, p)
	defer c.Release()
	if bs := p.Borrowings(time.Now(), 0); bs != nil {
		t.Errorf("borrowings %+v, want nil: nothing tracks them", bs)
	}
}

func TestMaintainerIsCalledAfterEveryPassUntilClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &leakFactory{factory: &factory{}}
		p, err := pool.New[*fakeConn](f, pool.Config{MaintenanceInterval: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		tick(3*time.Second + time.Millisecond)
		p.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.passes != 3 {
			t.Fatalf("Maintain called %d times in 3 passes", f.passes)
		}
		if err := f.ctxs[0].Err(); err == nil {
			t.Error("Maintain's context still live after Close")
		}
	})
}
