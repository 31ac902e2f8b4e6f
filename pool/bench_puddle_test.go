package pool_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/puddle/v2"

	"github.com/sqlpool/sqlpool/pool"
)

// quietFactory is the tests' factory without the shared counter its Reset
// bumps on every acquisition: a contended atomic that puddle, which has no
// reset hook, would not pay.
type quietFactory struct{ *factory }

func (quietFactory) Reset(context.Context, *fakeConn) error { return nil }

// BenchmarkAcquireReleaseVsPuddle measures one Acquire and Release of an idle
// connection, with the pool alone (pool=sqlpool) and with puddle v2, the
// generic pool under pgxpool (pool=puddle), both capped at 16 connections:
// at goroutines=1 the uncontended fast path, at 8 contention for the lock,
// at 64 hand-off to waiters. Read the ratios from one run:
//
//	go test -run '^$' -bench VsPuddle -count 6 ./pool | tee pool.txt
//	benchstat -col /pool pool.txt
func BenchmarkAcquireReleaseVsPuddle(b *testing.B) {
	const maxSize = 16
	ctx := context.Background()
	for _, g := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("goroutines=%d/pool=sqlpool", g), func(b *testing.B) {
			p, err := pool.New[*fakeConn](quietFactory{&factory{}}, pool.Config{MaxSize: maxSize})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			runGoroutines(b, g, func() error {
				c, err := p.Acquire(ctx, pool.PriorityNormal)
				if err != nil {
					return err
				}
				c.Release()
				return nil
			})
		})
		b.Run(fmt.Sprintf("goroutines=%d/pool=puddle", g), func(b *testing.B) {
			f := &factory{}
			p, err := puddle.NewPool(&puddle.Config[*fakeConn]{
				Constructor: f.Create,
				Destructor:  func(c *fakeConn) { _ = f.Close(c, pool.CloseEvicted) },
				MaxSize:     maxSize,
			})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			runGoroutines(b, g, func() error {
				r, err := p.Acquire(ctx)
				if err != nil {
					return err
				}
				r.Release()
				return nil
			})
		})
	}
}

// BenchmarkManyWaiters queues 10,000 goroutines on a pool of 16 connections,
// all borrowed; once every goroutine waits (or has timed out), the 16 are
// released, and the waiters are served by hand-off, each releasing its
// connection at once, unless they time out first. One op is one such round.
//
// measure=timeouts, with an AcquireTimeout of 20ms, reports max-ms, the
// longest Acquire of any round, to hold against AcquireTimeout + 50ms, and
// served-%, the share of Acquires that got a connection.
//
// measure=memory, with no AcquireTimeout, reports heap-B/waiter: the heap
// that 10,000 waiting Acquires add to the same 10,000 goroutines parked
// before calling Acquire (the waiter nodes and their channels),
// after a GC, per waiter. The GC takes long enough with 10,000 goroutines to
// distort timeouts, hence two rounds.
//
// It needs more goroutines than the race detector allows: run it without
// -race.
func BenchmarkManyWaiters(b *testing.B) {
	const waiters, maxSize = 10_000, 16
	b.Run("measure=timeouts", func(b *testing.B) {
		const timeout = 20 * time.Millisecond
		var longest time.Duration
		var served float64
		for range b.N {
			took, got := waitRound(b, waiters, pool.Config{MaxSize: maxSize, AcquireTimeout: timeout}, nil)
			longest = max(longest, slices.Max(took))
			served += 100 * float64(got) / waiters
		}
		b.ReportMetric(float64(longest)/float64(time.Millisecond), "max-ms")
		b.ReportMetric(served/float64(b.N), "served-%")
	})
	b.Run("measure=memory", func(b *testing.B) {
		var heap float64
		for range b.N {
			var before, after runtime.MemStats
			waitRound(b, waiters, pool.Config{MaxSize: maxSize, AcquireTimeout: -1}, func(queued bool) {
				runtime.GC()
				if !queued {
					// Twice: the last round's waiter nodes, cached by its
					// sync.Pool, go only at the second GC.
					runtime.GC()
					runtime.ReadMemStats(&before)
				} else {
					runtime.ReadMemStats(&after)
				}
			})
			heap += float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / waiters
		}
		b.ReportMetric(heap/float64(b.N), "heap-B/waiter")
	})
}

// waitRound runs one round of BenchmarkManyWaiters: it borrows every
// connection of a new pool, starts n goroutines parked before their Acquire,
// calls measure(false), lets them Acquire, calls measure(true) once each
// waits or has given up, releases the connections and waits for the
// goroutines. It returns how long each Acquire took and how many succeeded.
func waitRound(b *testing.B, n int, cfg pool.Config, measure func(queued bool)) (took []time.Duration, served int64) {
	ctx := context.Background()
	p, err := pool.New[*fakeConn](quietFactory{&factory{}}, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	held := make([]*pool.Conn[*fakeConn], cfg.MaxSize)
	for i := range held {
		if held[i], err = p.Acquire(ctx, pool.PriorityNormal); err != nil {
			b.Fatal(err)
		}
	}

	var parked, wg sync.WaitGroup
	var finished, got atomic.Int64
	took = make([]time.Duration, n)
	start := make(chan struct{})
	parked.Add(n)
	for i := range n {
		wg.Go(func() {
			parked.Done()
			<-start
			t0 := time.Now()
			c, err := p.Acquire(ctx, pool.PriorityNormal)
			took[i] = time.Since(t0)
			switch {
			case err == nil:
				got.Add(1)
				c.Release()
			case !errors.Is(err, pool.ErrAcquireTimeout):
				b.Error(err)
			}
			finished.Add(1)
		})
	}
	parked.Wait()
	if measure != nil {
		measure(false)
	}
	close(start)
	for p.Stats().Waiting+int(finished.Load()) < n {
		runtime.Gosched()
	}
	if measure != nil {
		measure(true)
	}
	for _, c := range held {
		c.Release()
	}
	wg.Wait()
	return took, got.Load()
}

// runGoroutines calls op b.N times in all, from exactly goroutines
// goroutines, after a warm-up round of one call per goroutine (which dials
// the connections), and reports allocations.
func runGoroutines(b *testing.B, goroutines int, op func() error) {
	b.Helper()
	spread := func(n int) {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range goroutines {
			wg.Go(func() {
				for next.Add(1) <= int64(n) {
					if err := op(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	spread(goroutines)
	if b.Failed() {
		b.FailNow()
	}
	b.ReportAllocs()
	b.ResetTimer()
	spread(b.N)
	b.StopTimer()
}
