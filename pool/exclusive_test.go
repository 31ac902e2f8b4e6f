package pool_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sqlpool/sqlpool/pool"
)

// TestExclusivityNoConnectionIsLentTwice runs 64 goroutines that acquire and
// release (or destroy, or break) connections of a small pool as fast as they
// can, with priorities, impatient callers, validation on every acquisition,
// lifetimes and idle timeouts short enough that maintenance closes
// connections all the time. Each connection carries a borrowed flag that
// every acquisition sets and every release clears: a connection lent to two
// borrowers at once, or a closed one lent at all, fails the test; the fake
// factory panics on a connection closed twice.
func TestExclusivityNoConnectionIsLentTwice(t *testing.T) {
	const goroutines = 64
	total := 200_000
	if testing.Short() {
		total = 40_000
	}
	for _, tc := range []struct {
		name string
		cfg  pool.Config
	}{
		{"lifo", pool.Config{}},
		{"fair", pool.Config{FairQueue: true}},
		{"fair-reserve-queue", pool.Config{FairQueue: true, CriticalReserve: 1, MaxWaitQueue: 56, StarvationAfter: 100 * time.Microsecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.MaxSize, cfg.MinSize = 4, 1
			cfg.ValidationBypass = -1
			cfg.MaxLifetime, cfg.IdleTimeout, cfg.MaintenanceInterval = 3*time.Millisecond, time.Millisecond, time.Millisecond
			cfg.AcquireTimeout = 5 * time.Second
			f := &factory{}
			p := newPool(t, f, cfg)
			var borrowed sync.Map // *fakeConn → *atomic.Bool
			var violations atomic.Int64
			var first atomic.Pointer[string]
			violate := func(format string, args ...any) {
				if violations.Add(1) == 1 {
					s := fmt.Sprintf(format, args...)
					first.Store(&s)
				}
			}
			flag := func(c *fakeConn) *atomic.Bool {
				v, _ := borrowed.LoadOrStore(c, new(atomic.Bool))
				return v.(*atomic.Bool)
			}
			var lent atomic.Int64 // successful acquisitions, up to total/3
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(g), 2))
					for lent.Load() < int64(total/3) {
						ctx, cancel := context.Background(), context.CancelFunc(func() {})
						if rng.IntN(10) == 0 { // an impatient caller
							ctx, cancel = context.WithTimeout(ctx, time.Duration(rng.IntN(100))*time.Microsecond)
						}
						c, err := p.Acquire(ctx, pool.Priority(rng.IntN(4)))
						cancel()
						if err != nil {
							if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, pool.ErrQueueFull) {
								t.Errorf("Acquire: %v", err)
								return
							}
							runtime.Gosched()
							continue
						}
						lent.Add(1)
						fc := c.Value()
						if fc.closed.Load() {
							violate("closed connection %d lent", fc.id)
						}
						if !flag(fc).CompareAndSwap(false, true) {
							violate("connection %d lent while borrowed", fc.id)
						}
						if rng.IntN(4) == 0 {
							time.Sleep(time.Duration(rng.IntN(50)) * time.Microsecond) // hold it a while
						}
						if !flag(fc).CompareAndSwap(true, false) {
							violate("connection %d taken from its borrower", fc.id)
						}
						switch r := rng.IntN(100); {
						case r < 2:
							c.Destroy(pool.CloseErrors)
						case r < 4:
							fc.broken.Store(true) // fails its next check
							c.Release()
						default:
							c.Release()
						}
					}
				}()
			}
			wg.Wait()
			if n := violations.Load(); n > 0 {
				t.Errorf("%d exclusivity violations; the first: %s", n, *first.Load())
			}
			waitFor(t, "the pool to be idle", func() bool { s := p.Stats(); return s.InUse == 0 && s.Waiting == 0 })
			s := p.Stats()
			t.Logf("%s: %d acquisitions, %d waits, %d timeouts, %d refused (queue full), %d dialed, closed %v",
				tc.name, s.Acquires, s.Waits, s.Timeouts, s.QueueFull, s.Created, s.Closed)
			p.Close()
			if n := f.open(); n != 0 {
				t.Errorf("%d connections open after Close", n)
			}
		})
	}
}
