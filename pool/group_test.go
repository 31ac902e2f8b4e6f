package pool_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sqlpool/sqlpool/pool"
)

// grant is the outcome of an acquisition started by acquireIn.
type grant struct {
	name string
	c    *pool.Conn[*fakeConn]
	err  error
}

// acquireIn starts an acquisition named name for a borrower of g, begun at
// began, reporting on out; inside a synctest bubble, it returns once the
// acquisition is served or waits.
func acquireIn(p *pool.Pool[*fakeConn], g *pool.Group, prio pool.Priority, began time.Time, name string, out chan<- grant) {
	go func() {
		c, err := p.AcquireGroup(context.Background(), began, time.Now(), prio, 0, g)
		out <- grant{name, c, err}
	}()
	synctest.Wait()
}

func mustAcquireIn(t *testing.T, p *pool.Pool[*fakeConn], g *pool.Group) *pool.Conn[*fakeConn] {
	t.Helper()
	now := time.Now()
	c, err := p.AcquireGroup(context.Background(), now, now, pool.PriorityNormal, 0, g)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A waiter of a group at its cap keeps its place in the pool's queue, but a
// connection given back goes past it to the best waiter whose group has
// room; once its own group has room, its priority counts again.
func TestAWaiterAtItsGroupsCapIsPassedOverUntilItHasRoom(t *testing.T) {
	for _, fair := range []bool{false, true} {
		t.Run(fmt.Sprintf("FairQueue=%v", fair), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newPool(t, &factory{}, pool.Config{MaxSize: 2, StarvationAfter: -1, FairQueue: fair})
				a, b := pool.NewGroup(`partition "a"`, 1, 0), pool.NewGroup(`partition "b"`, 2, 0)
				a1, b1 := mustAcquireIn(t, p, a), mustAcquireIn(t, p, b) // a at its cap, the pool full
				out := make(chan grant, 3)
				acquireIn(p, a, pool.PriorityHigh, time.Now(), "a-high", out)
				time.Sleep(time.Millisecond) // distinct arrival times, for FairQueue
				acquireIn(p, b, pool.PriorityNormal, time.Now(), "b-1", out)
				time.Sleep(time.Millisecond)
				acquireIn(p, b, pool.PriorityNormal, time.Now(), "b-2", out)

				q := p.Queue()
				if len(q) != 3 || !q[0].Capped || q[0].Group != `partition "a"` || q[0].Priority != pool.PriorityHigh || q[1].Capped || q[2].Capped {
					t.Fatalf("queue %+v: want a-high first, held back by its group, then b-1 and b-2", q)
				}
				if s, gs := p.Stats(), p.GroupStats(a); s.Waiting != 2 || gs.Waiting != 1 || gs.InUse != 1 {
					t.Errorf("pool waiting %d, group a %+v: want 2 waiting for the pool, 1 at a's cap with 1 in use", s.Waiting, gs)
				}

				b1.Release() // a is still at its cap: b-1 goes past a-high
				if g := <-out; g.name != "b-1" || g.err != nil {
					t.Fatalf("first served: %s (%v), want b-1", g.name, g.err)
				}
				a1.Release() // a has room: a-high goes first again, ahead of b-2
				ga := <-out
				if ga.name != "a-high" || ga.err != nil {
					t.Fatalf("then served: %s (%v), want a-high", ga.name, ga.err)
				}
				if err := p.CheckGroups(a, b); err != nil {
					t.Fatal(err)
				}
				ga.c.Release() // nobody of a waits: to b-2
				g := <-out
				if g.name != "b-2" || g.err != nil {
					t.Fatalf("last served: %s (%v), want b-2", g.name, g.err)
				}
				g.c.Release()
				if gs := p.GroupStats(a); gs.InUse != 0 || gs.Waiting != 0 {
					t.Errorf("group a %+v after every release, want none in use or waiting", gs)
				}
				if gs := p.GroupStats(b); gs.InUse != 1 { // b-1's
					t.Errorf("group b %+v, want 1 in use", gs)
				}
			})
		})
	}
}

// A caller that waits at its group's cap and then for the pool has one
// deadline: the AcquireTimeout from when its acquisition began.
func TestAWaitAtAGroupsCapThenForThePoolHasOneDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = time.Second
		p := newPool(t, &factory{}, pool.Config{MaxSize: 2, AcquireTimeout: timeout, StarvationAfter: -1, FailFastBelow: -1})
		a, b := pool.NewGroup(`partition "a"`, 1, 0), pool.NewGroup(`partition "b"`, 2, 0)
		a1, b1 := mustAcquireIn(t, p, a), mustAcquireIn(t, p, b)
		defer b1.Release()
		began := time.Now().Add(-200 * time.Millisecond) // it waited elsewhere first
		out := make(chan grant, 2)
		acquireIn(p, a, pool.PriorityNormal, began, "a", out)
		acquireIn(p, b, pool.PriorityHigh, time.Now(), "b-high", out)
		time.Sleep(300 * time.Millisecond)
		a1.Release() // a has room, but b-high is served first: a now waits for the pool
		gb := <-out
		if gb.name != "b-high" {
			t.Fatalf("served %s, want b-high", gb.name)
		}
		defer gb.c.Release()
		g := <-out
		var te *pool.TimeoutError
		if !errors.As(g.err, &te) || errors.Is(g.err, context.DeadlineExceeded) {
			t.Fatalf("a: %v, want an AcquireTimeout", g.err)
		}
		if waited := time.Since(began); waited != timeout {
			t.Errorf("a gave up %v after it began, want its AcquireTimeout, %v", waited, timeout)
		}
		if te.Group != "" {
			t.Errorf("error %q names the group, whose cap no longer held it back", g.err)
		}
	})
}

// A caller held back by its group's cap that times out gets an
// ErrAcquireTimeout naming the group and its cap, and what to do; the
// group's MaxWait refuses callers beyond it.
func TestATimeoutAtAGroupsCapNamesTheGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = time.Second
		p := newPool(t, &factory{}, pool.Config{MaxSize: 4, AcquireTimeout: timeout})
		a := pool.NewGroup(`partition "a"`, 1, 1)
		held := mustAcquireIn(t, p, a) // the pool has room, a has none
		defer held.Release()

		start := time.Now()
		_, err := p.AcquireGroup(context.Background(), start.Add(-200*time.Millisecond), start, pool.PriorityNormal, 0, a)
		if took := time.Since(start); took != timeout-200*time.Millisecond {
			t.Errorf("waited %v, want what was left of the AcquireTimeout", took)
		}
		var te *pool.TimeoutError
		if !errors.As(err, &te) || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want an AcquireTimeout", err)
		}
		if te.Group != `partition "a"` || te.GroupMax != 1 || te.GroupInUse != 1 || te.GroupWaiting != 1 {
			t.Errorf("error %+v: want it to name partition a, its cap 1, 1 in use, 1 waiting", te)
		}
		for _, want := range []string{`waiting for partition "a", at its MaxSize of 1`, "raise its MaxSize"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q: want %q", err, want)
			}
		}

		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		now := time.Now()
		if _, err := p.AcquireGroup(ctx, now, now, pool.PriorityNormal, 0, a); !errors.Is(err, context.DeadlineExceeded) ||
			!errors.Is(err, pool.ErrAcquireTimeout) || !strings.Contains(err.Error(), `partition "a"`) {
			t.Errorf("err = %v, want the context's deadline, naming partition a", err)
		}
		if gs, s := p.GroupStats(a), p.Stats(); gs.Timeouts != 2 || s.Timeouts != 2 {
			t.Errorf("timeouts: group %d, pool %d; want 2 and 2", gs.Timeouts, s.Timeouts)
		}

		out := make(chan grant, 1)
		acquireIn(p, a, pool.PriorityNormal, time.Now(), "waiter", out) // a's one place in the queue
		if _, err := p.AcquireGroup(context.Background(), now, now, pool.PriorityNormal, 0, a); !errors.Is(err, pool.ErrQueueFull) ||
			!strings.Contains(err.Error(), `partition "a"`) {
			t.Errorf("err = %v, want ErrQueueFull naming partition a", err)
		}
		if gs := p.GroupStats(a); gs.QueueFull != 1 || gs.Waiting != 1 {
			t.Errorf("group %+v: want 1 refused, 1 waiting", gs)
		}
		if g := <-out; !errors.Is(g.err, pool.ErrAcquireTimeout) {
			t.Errorf("waiter: %v, want a timeout", g.err)
		}
	})
}

// A goroutine that holds its group's only connection and asks for another
// waits for itself, though the pool has room: the deadlock report lists it,
// held back by its group.
func TestTheDeadlockReportListsAWaiterHeldBackByItsGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reports := make(chan pool.DeadlockReport, 1)
		p := newPool(t, &factory{}, pool.Config{MaxSize: 4, DeadlockThreshold: time.Second,
			Logger: discardLogger(), OnDeadlock: func(r pool.DeadlockReport) { reports <- r }})
		a := pool.NewGroup(`partition "a"`, 1, 0)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() {
			first := mustAcquireIn(t, p, a)
			defer first.Release()
			now := time.Now()
			_, err := p.AcquireGroup(ctx, now, now, pool.PriorityNormal, 0, a)
			done <- err
		}()
		r := <-reports
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		if len(r.Waiters) != 1 || !r.Waiters[0].Capped || r.Waiters[0].Group != `partition "a"` {
			t.Fatalf("waiters %+v: want the one held back by partition a's cap", r.Waiters)
		}
		if ids := r.SelfDeadlocked(); len(ids) != 1 || ids[0] != r.Waiters[0].Goroutine {
			t.Errorf("self-deadlocked goroutines %v, want the waiter's %d", ids, r.Waiters[0].Goroutine)
		}
		if s := r.String(); !strings.Contains(s, `held back by the MaxSize of partition "a"`) {
			t.Errorf("report:\n%s\nwant it to say the waiter is held back by its partition", s)
		}
	})
}

// TestGroupCountsHoldThroughEveryTransition drives borrowers of groups (and
// of none) through every way a borrowing starts and ends (hand-offs,
// dials, timeouts, cancellations, Destroy, Replace, failed checks,
// reclaims, Resize) while another goroutine checks, under the pool's lock,
// that each group's counts agree with the queue and its cap; then every
// group's count is back to 0: each borrowing was counted out exactly once.
func TestGroupCountsHoldThroughEveryTransition(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reclaim bool // maintenance reclaims connections held past MaxBorrowTime
		fair    bool
	}{{"reclaim", true, false}, {"FairQueue", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := pool.Config{
				MaxSize: 6, MinSize: 2, MaxConcurrentConnects: 2,
				AcquireTimeout:      5 * time.Millisecond,
				MaxUses:             5,
				MaxLifetime:         20 * time.Millisecond,
				ValidationBypass:    time.Millisecond,
				MaintenanceInterval: time.Millisecond,
				FairQueue:           tc.fair,
				CloseTimeout:        time.Hour,
			}
			if tc.reclaim {
				cfg.MaxBorrowTime, cfg.ReclaimBorrowed = 3*time.Millisecond, true
			}
			f := &factory{}
			p := newPool(t, f, cfg)
			caps := []int{1, 2, 4}
			groups := []*pool.Group{pool.NewGroup("g1", caps[0], 0), pool.NewGroup("g2", caps[1], 2), pool.NewGroup("g3", caps[2], 0)}
			var holders [3]atomic.Int32 // borrowers of each group that hold a connection, as they see it

			stopChecking := checkWhileRunning(func() error {
				return errors.Join(p.CheckCounts(), p.CheckGroups(groups...))
			})

			var wg sync.WaitGroup
			for w := range 8 {
				wg.Go(func() {
					r := rand.New(rand.NewPCG(uint64(w), 23))
					for range 300 {
						i := r.IntN(len(groups) + 1)
						var g *pool.Group
						if i < len(groups) {
							g = groups[i]
						}
						ctx, cancel := context.WithCancel(context.Background())
						if r.IntN(8) == 0 {
							cancel()
						}
						now := time.Now()
						c, err := p.AcquireGroup(ctx, now, now, pool.Priority(r.IntN(4)-1), 0, g)
						cancel()
						if err != nil {
							var te *pool.TimeoutError
							var ce *pool.ConnectError
							if !errors.As(err, &te) && !errors.As(err, &ce) && !errors.Is(err, context.Canceled) && !errors.Is(err, pool.ErrQueueFull) {
								t.Errorf("Acquire: %v", err)
								return
							}
							continue
						}
						if g != nil && !tc.reclaim { // a reclaim frees the slot while its borrower holds on
							if n := holders[i].Add(1); n > int32(caps[i]) {
								t.Errorf("%d borrowers of a group with a cap of %d", n, caps[i])
							}
						}
						switch r.IntN(8) {
						case 0:
							<-time.After(time.Duration(r.IntN(4)) * time.Millisecond) // may outlast MaxBorrowTime
						case 1:
							c.Value().broken.Store(true) // fails its next Reset or Validate
						}
						if g != nil && !tc.reclaim {
							holders[i].Add(-1)
						}
						switch r.IntN(5) {
						case 0:
							c.Destroy(pool.CloseErrors)
						case 1:
							c.Replace(pool.CloseValidation)
						default:
							c.Release()
						}
					}
				})
			}
			workersDone := make(chan struct{})
			adminDone := make(chan struct{})
			go func() { // the pool's size and dials change under the workers
				defer close(adminDone)
				for i := 0; ; i++ {
					select {
					case <-workersDone:
						f.setConnectErr(nil)
						return
					default:
					}
					switch i % 3 {
					case 0:
						f.setConnectErr(errors.New("refused"))
					case 1:
						f.setConnectErr(nil)
					case 2:
						if err := p.Resize(3 + i%4); err != nil {
							t.Errorf("Resize: %v", err)
						}
					}
				}
			}()
			wg.Wait()
			close(workersDone)
			<-adminDone
			if err := stopChecking(); err != nil {
				t.Fatal(err)
			}
			if err := p.CheckGroups(groups...); err != nil {
				t.Fatal(err)
			}
			for _, g := range groups {
				if gs := p.GroupStats(g); gs.InUse != 0 || gs.Waiting != 0 {
					t.Errorf("group %+v after every borrowing ended: want none in use or waiting", gs)
				}
			}
		})
	}
}

// The hot path of a borrower of a group allocates nothing: acquiring an
// idle connection within the group's cap, and releasing it.
func TestAcquireAndReleaseInAGroupAllocateNothing(t *testing.T) {
	p := newPool(t, &factory{}, pool.Config{MaxSize: 2})
	g := pool.NewGroup("g", 1, 0)
	mustAcquireIn(t, p, g).Release()
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		now := time.Now()
		c, err := p.AcquireGroup(ctx, now, now, pool.PriorityNormal, 0, g)
		if err != nil {
			t.Fatal(err)
		}
		c.Release()
	})
	if allocs != 0 {
		t.Errorf("acquire+release in a group allocates %v times, want 0", allocs)
	}
}
