package pool_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sqlpool/sqlpool/pool"
)

// park parks c, failing the test when the pool released it instead.
func park(t *testing.T, c *pool.Conn[*fakeConn]) uint64 {
	t.Helper()
	tok := c.Park(time.Now())
	if tok == 0 {
		t.Fatal("Park released the connection: want it parked")
	}
	return tok
}

func TestAParkedConnectionIsRetakenAsAnAcquisition(t *testing.T) {
	f := &factory{}
	p := newPool(t, f, pool.Config{MaxSize: 2})
	c := mustAcquire(t, p)
	tok := park(t, c)
	if s := p.Stats(); s.Idle != 1 || s.InUse != 0 || s.Acquires != 1 {
		t.Fatalf("parked: Idle %d InUse %d Acquires %d, want 1 0 1", s.Idle, s.InUse, s.Acquires)
	}
	resets := f.resets.Load()
	if !c.Retake(context.Background(), tok, time.Now()) {
		t.Fatal("Retake of a connection nobody needed: false, want true")
	}
	if s := p.Stats(); s.Idle != 0 || s.InUse != 1 || s.Acquires != 2 {
		t.Fatalf("retaken: Idle %d InUse %d Acquires %d, want 0 1 2", s.Idle, s.InUse, s.Acquires)
	}
	if c.Uses() != 2 || f.resets.Load() != resets+1 {
		t.Fatalf("retaken: Uses %d, Resets +%d; want 2, +1", c.Uses(), f.resets.Load()-resets)
	}
	if c.Retake(context.Background(), tok, time.Now()) {
		t.Fatal("second Retake with one token: true, want false")
	}
	c.Release()
	if s := p.Stats(); s.Acquires != 2 {
		t.Fatalf("Acquires %d after the release, want 2", s.Acquires)
	}
}

func TestAnAcquisitionTakesAParkedConnectionRatherThanDialing(t *testing.T) {
	f := &factory{}
	p := newPool(t, f, pool.Config{MaxSize: 2})
	c := mustAcquire(t, p)
	tok := park(t, c)
	d := mustAcquire(t, p)
	if d != c || len(f.created) != 1 {
		t.Fatalf("got a new connection (%d dialed): want the parked one", len(f.created))
	}
	if c.Retake(context.Background(), tok, time.Now()) {
		t.Fatal("Retake of a connection the pool lent to another: true, want false")
	}
	// A token of an earlier parking never matches again (ABA).
	tok2 := park(t, d)
	if c.Retake(context.Background(), tok, time.Now()) {
		t.Fatal("Retake with the first parking's token: true, want false")
	}
	if !d.Retake(context.Background(), tok2, time.Now()) {
		t.Fatal("Retake with the second parking's token: false, want true")
	}
	d.Release()
}

func TestAParkerReleasesToAWaiter(t *testing.T) {
	f := &factory{}
	p := newPool(t, f, pool.Config{MaxSize: 1})
	c := mustAcquire(t, p)
	got := make(chan *pool.Conn[*fakeConn])
	go func() {
		d, err := p.Acquire(context.Background(), pool.PriorityNormal)
		if err != nil {
			t.Error(err)
		}
		got <- d
	}()
	waitFor(t, "the waiter", func() bool { return p.Stats().Waiting == 1 })
	if tok := c.Park(time.Now()); tok != 0 {
		t.Fatal("Park while a caller waits: parked, want released")
	}
	if d := <-got; d != c {
		t.Fatal("the waiter got another connection")
	}
	c.Release()
}

func TestCloseSuspendAndEvictIdleTakeBackParkedConnections(t *testing.T) {
	f := &factory{}
	p := newPool(t, f, pool.Config{MaxSize: 2})
	c := mustAcquire(t, p)
	tok := park(t, c)
	p.Suspend()
	if c.Retake(context.Background(), tok, time.Now()) {
		t.Fatal("Retake after Suspend: true, want false")
	}
	if s := p.Stats(); s.Idle != 1 || s.InUse != 0 {
		t.Fatalf("suspended: Idle %d InUse %d, want 1 0", s.Idle, s.InUse)
	}
	p.Resume()
	c = mustAcquire(t, p)
	p.Suspend()
	if c.Park(time.Now()) != 0 {
		t.Fatal("Park while suspended: parked, want released")
	}
	p.Resume()
	c = mustAcquire(t, p)
	park(t, c)
	if n := p.EvictIdle(nil); n != 1 || f.open() != 0 {
		t.Fatalf("EvictIdle closed %d, %d left open; want 1, 0", n, f.open())
	}
	c = mustAcquire(t, p)
	tok = park(t, c)
	p.Close()
	if f.open() != 0 {
		t.Fatal("a parked connection outlived Close")
	}
	if c.Retake(context.Background(), tok, time.Now()) {
		t.Fatal("Retake after Close: true, want false")
	}
	c.Unpark(tok) // does nothing
}

func TestMaintenanceClosesAConnectionParkedPastIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &factory{}
		p := newPool(t, f, pool.Config{MaxSize: 2, IdleTimeout: time.Minute, MaintenanceInterval: time.Second})
		c := mustAcquire(t, p)
		tok := park(t, c)
		time.Sleep(2 * time.Minute) // fake time: maintenance runs each second
		synctest.Wait()
		if f.open() != 0 {
			t.Fatal("a connection parked past IdleTimeout is still open")
		}
		if c.Retake(context.Background(), tok, time.Now()) {
			t.Fatal("Retake of a connection closed idle: true, want false")
		}
		if s := p.Stats(); s.Closed[pool.CloseIdle] != 1 {
			t.Fatalf("Closed[idle] %d, want 1", s.Closed[pool.CloseIdle])
		}
	})
}

func TestAPoolThatTracksBorrowingsDoesNotPark(t *testing.T) {
	for _, cfg := range []pool.Config{
		{MaxSize: 1, LeakThreshold: time.Hour},
		{MaxSize: 1, ValidateOnRelease: true},
		{MaxSize: 2, CriticalReserve: 1},
		{MaxSize: 1, ErrorThreshold: 0.5},
		{MaxSize: 1, MaxUses: 1},
	} {
		f := &factory{}
		p := newPool(t, f, cfg)
		c := mustAcquire(t, p)
		if tok := c.Park(time.Now()); tok != 0 {
			t.Errorf("%+v: parked, want released", cfg)
		}
		if s := p.Stats(); s.InUse != 0 {
			t.Errorf("%+v: InUse %d after Park, want 0", cfg, s.InUse)
		}
	}
}

// TestParkingBorrowersShareThePoolExactly runs more borrowers than
// connections, each parking and retaking its own, and checks that none
// holds a connection another holds, and that the counts add up at the end.
func TestParkingBorrowersShareThePoolExactly(t *testing.T) {
	const borrowers, rounds, size = 8, 300, 3
	f := &factory{}
	p := newPool(t, f, pool.Config{MaxSize: size})
	var mu sync.Mutex
	held := map[*pool.Conn[*fakeConn]]int{} // guarded by mu
	hold := func(c *pool.Conn[*fakeConn], by int) {
		mu.Lock()
		defer mu.Unlock()
		if other, ok := held[c]; ok {
			t.Errorf("borrower %d got a connection borrower %d holds", by, other)
		}
		held[c] = by
	}
	drop := func(c *pool.Conn[*fakeConn]) {
		mu.Lock()
		delete(held, c)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for b := range borrowers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var parked *pool.Conn[*fakeConn]
			var tok uint64
			for range rounds {
				c := parked
				if c == nil || !c.Retake(context.Background(), tok, time.Now()) {
					var err error
					if c, err = p.Acquire(context.Background(), pool.PriorityNormal); err != nil {
						t.Error(err)
						return
					}
				}
				hold(c, b)
				drop(c)
				parked, tok = c, c.Park(time.Now())
			}
			if parked != nil {
				parked.Unpark(tok)
			}
		}()
	}
	wg.Wait()
	s := p.Stats()
	if s.InUse != 0 || s.Idle != s.Size || s.Size > size {
		t.Fatalf("after all unparked: InUse %d Idle %d Size %d, want 0, Size, ≤ %d", s.InUse, s.Idle, s.Size, size)
	}
	if s.Acquires != borrowers*rounds {
		t.Fatalf("Acquires %d, want %d", s.Acquires, borrowers*rounds)
	}
}

// TestACallerAtItsGroupsCapTakesBackItsGroupsParkedConnections parks a
// connection of another group first, then one of group g, at g's cap: a
// caller of g must be served by g's, not left waiting for maintenance.
func TestACallerAtItsGroupsCapTakesBackItsGroupsParkedConnections(t *testing.T) {
	f := &factory{}
	p := newPool(t, f, pool.Config{MaxSize: 4, MaintenanceInterval: time.Hour})
	g, h := pool.NewGroup("g", 1, 0), pool.NewGroup("h", 1, 0)
	acquire := func(ctx context.Context, grp *pool.Group) (*pool.Conn[*fakeConn], error) {
		now := time.Now()
		return p.AcquireGroup(ctx, now, now, pool.PriorityNormal, 0, grp)
	}
	ch, err := acquire(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	cg, err := acquire(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	park(t, ch) // listed first: a caller taking back one parked connection takes this one
	park(t, cg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := acquire(ctx, g)
	if err != nil {
		t.Fatalf("a caller of g with g's connection parked: %v", err)
	}
	c.Release()
}

// A parked connection taken back before a sibling failed, and put back
// after it, is as suspect as an idle one: the waiter it serves validates
// it first.
func TestAParkedConnectionTakenBackAcrossAFailureIsValidatedForAWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &factory{}
		p := newPool(t, f, pool.Config{MaxSize: 2, ValidationBypass: time.Hour, MaintenanceInterval: time.Hour})
		a, b := mustAcquire(t, p), mustAcquire(t, p)
		park(t, b)
		putBack := p.TakeParked()
		time.Sleep(time.Second)
		a.Destroy(pool.CloseErrors) // b, last used before, is suspect
		c := mustAcquire(t, p)      // dials in a's place: the pool is full
		got := make(chan *pool.Conn[*fakeConn])
		go func() {
			w, err := p.Acquire(context.Background(), pool.PriorityNormal)
			if err != nil {
				t.Error(err)
			}
			got <- w
		}()
		synctest.Wait() // the waiter is queued
		validates := f.validates.Load()
		putBack()
		if w := <-got; w != b {
			t.Fatal("the waiter got another connection than b")
		}
		if n := f.validates.Load() - validates; n != 1 {
			t.Errorf("%d validations before b served the waiter, want 1", n)
		}
		b.Release()
		c.Release()
	})
}
