package pool_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/sqlpool/sqlpool/pool"
)

// TestCountsHoldThroughEveryTransition drives a pool through every change of
// its connection counts at once (dials that succeed, fail or are abandoned,
// lends, returns, hand-offs, closes for each reason, replacements,
// validations, timeouts, cancellations, reclaims, Resize, EvictIdle,
// maintenance and Close) while another goroutine checks, under the pool's lock, that the
// counts add up as slots.go states; and again with the circuit breaker
// opening, refusing, probing and closing under the same load.
func TestCountsHoldThroughEveryTransition(t *testing.T) {
	t.Run("defaults", func(t *testing.T) { countsHold(t, 0) })
	t.Run("circuit breaker", func(t *testing.T) { countsHold(t, 2) })
}

func countsHold(t *testing.T, breakAfter int) {
	f := &factory{}
	p := newPool(t, f, pool.Config{
		BreakAfter: breakAfter, BreakFor: 2 * time.Millisecond,
		MaxSize: 6, MinSize: 2, MaxConcurrentConnects: 2,
		AcquireTimeout:      5 * time.Millisecond,
		MaxUses:             5,
		MaxLifetime:         20 * time.Millisecond,
		IdleTimeout:         5 * time.Millisecond,
		KeepaliveInterval:   2 * time.Millisecond,
		ValidationBypass:    time.Millisecond,
		MaintenanceInterval: time.Millisecond,
		MaxBorrowTime:       3 * time.Millisecond,
		ReclaimBorrowed:     true,
		CloseTimeout:        time.Hour,
	})

	stopChecking := checkWhileRunning(p.CheckCounts)

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 17))
			for range 300 {
				ctx, cancel := context.WithCancel(context.Background())
				if r.IntN(8) == 0 {
					cancel() // gives up at once, or while waiting or dialing
				}
				c, err := p.Acquire(ctx, pool.Priority(r.IntN(4)-1))
				cancel()
				if err != nil {
					var te *pool.TimeoutError
					var ce *pool.ConnectError
					if !errors.As(err, &te) && !errors.As(err, &ce) && !errors.Is(err, context.Canceled) &&
						(breakAfter == 0 || !errors.Is(err, pool.ErrCircuitOpen)) {
						t.Errorf("Acquire: %v", err)
						return
					}
					continue
				}
				switch r.IntN(10) {
				case 0:
					c.Destroy(pool.CloseErrors)
				case 1:
					c.Replace(pool.CloseValidation)
				case 2:
					c.Value().broken.Store(true) // fails its next Reset or Validate
					c.Release()
				case 3: // work that may outlast MaxBorrowTime: maintenance reclaims the connection
					<-time.After(time.Duration(r.IntN(5)) * time.Millisecond)
					c.Release()
				default:
					c.Release()
				}
			}
		})
	}
	workersDone := make(chan struct{})
	adminDone := make(chan struct{})
	go func() { // the pool's size, dials and idle stack change under the workers
		defer close(adminDone)
		r := rand.New(rand.NewPCG(99, 17))
		for i := 0; ; i++ {
			select {
			case <-workersDone:
				f.setConnectErr(nil)
				return
			default:
			}
			switch i % 4 {
			case 0:
				f.setConnectErr(errors.New("refused"))
				// With the breaker, dials stay refused until the circuit
				// opens, so that every run opens (and refuses) at least once.
				for breakAfter > 0 && !p.CircuitOpen() {
					select {
					case <-workersDone:
						f.setConnectErr(nil)
						return
					case <-time.After(100 * time.Microsecond):
					}
				}
			case 1:
				f.setConnectErr(nil)
			case 2:
				if err := p.Resize(2 + r.IntN(5)); err != nil {
					t.Errorf("Resize: %v", err)
				}
			case 3:
				p.EvictIdle(func(c *fakeConn) bool { return c.id%2 == 0 })
			}
		}
	}()
	wg.Wait()
	close(workersDone)
	<-adminDone
	if err := stopChecking(); err != nil {
		t.Fatal(err)
	}
	if err := p.CheckCounts(); err != nil {
		t.Fatal(err)
	}

	// The dials succeed again: a probe closes the circuit.
	waitFor(t, "the circuit to close", func() bool { return !p.CircuitOpen() })

	// Close waits (CloseTimeout) for a borrowed connection, released once
	// Close has begun.
	held := mustAcquire(t, p)
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		p.Close()
	}()
	waitFor(t, "Close to begin", func() bool {
		c, err := p.Acquire(context.Background(), pool.PriorityNormal)
		if err == nil {
			c.Release()
		}
		return errors.Is(err, pool.ErrClosed)
	})
	held.Release()
	<-closed
	if err := p.CheckCounts(); err != nil {
		t.Fatalf("after Close: %v", err)
	}
	if s := p.Stats(); s.Size != 0 || s.InUse != 0 || s.Idle != 0 || s.Dialing != 0 {
		t.Errorf("after Close, stats %+v: want no connection counted", s)
	}
	if n := f.open(); n != 0 {
		t.Errorf("after Close, %d connections open: want 0", n)
	}
	if s := p.Stats(); breakAfter > 0 && (s.CircuitOpens == 0 || s.CircuitRefused == 0) {
		t.Errorf("the circuit opened %d times and refused %d acquisitions: want both, or the load does not exercise it",
			s.CircuitOpens, s.CircuitRefused)
	}
}

// checkWhileRunning runs check over and over on a goroutine of its own,
// until it fails or the returned stop is called; stop returns the first
// failure.
func checkWhileRunning(check func() error) (stop func() error) {
	done := make(chan struct{})
	checked := make(chan error, 1)
	go func() {
		for {
			if err := check(); err != nil {
				checked <- err
				return
			}
			select {
			case <-done:
				checked <- nil
				return
			default:
			}
		}
	}()
	return func() error {
		close(done)
		return <-checked
	}
}
