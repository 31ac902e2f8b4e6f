package pool_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sqlpool/sqlpool/pool"
)

// hangFactory's Validate blocks while hang is set, ignoring its context,
// until hang is closed (as lib/pq's Ping does while the network stalls).
type hangFactory struct {
	*factory
	hang     atomic.Pointer[chan struct{}]
	only     int // hang only this connection's validations; 0: all
	hanging  atomic.Int32
	validate atomic.Int32
}

func (f *hangFactory) Validate(ctx context.Context, c *fakeConn) error {
	f.validate.Add(1)
	if ch := f.hang.Load(); ch != nil && (f.only == 0 || f.only == c.id) {
		f.hanging.Add(1)
		<-*ch
		f.hanging.Add(-1)
	}
	return f.factory.Validate(ctx, c)
}

func newHangPool(t *testing.T, f *hangFactory, cfg pool.Config) *pool.Pool[*fakeConn] {
	t.Helper()
	p, err := pool.New[*fakeConn](f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// hangValidation makes f's validations hang until the test ends.
func hangValidation(t *testing.T, f *hangFactory) (release func()) {
	hang := make(chan struct{})
	f.hang.Store(&hang)
	released := false
	release = func() {
		if !released {
			released = true
			close(hang)
		}
	}
	t.Cleanup(release) // before the pool's Close, which waits for the validations
	return release
}

func TestValidationTimeoutBoundsAValidateThatIgnoresItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &hangFactory{factory: &factory{}}
		p := newHangPool(t, f, pool.Config{MaxSize: 1, ValidationBypass: -1, ValidationTimeout: 50 * time.Millisecond})
		mustAcquire(t, p).Release() // dialed: not validated
		release := hangValidation(t, f)

		start := time.Now()
		c, err := p.Acquire(context.Background(), pool.PriorityNormal)
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != 50*time.Millisecond {
			t.Errorf("the acquisition took %v, want the ValidationTimeout, 50ms", took)
		}
		if c.Value().id != 2 {
			t.Errorf("got connection %d, want a new one, 2, in the slot the hung one freed", c.Value().id)
		}
		s := p.Stats()
		if s.Closed[pool.CloseValidation] != 1 || s.Size != 1 || s.InUse != 1 || s.Idle != 0 {
			t.Errorf("stats %+v: want the hung connection counted closed by validation, one in use", s)
		}
		first := f.created[0]
		if first.closed.Load() {
			t.Errorf("the hung connection was closed while Validate still used it")
		}
		release()
		synctest.Wait()
		if !first.closed.Load() {
			t.Errorf("the hung connection was not closed when its Validate returned")
		}
		c.Release()
	})
}

func TestAValidateThatIgnoresItsContextEndsAtTheCallersDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &hangFactory{factory: &factory{}}
		p := newHangPool(t, f, pool.Config{MaxSize: 1, ValidationBypass: -1, ValidationTimeout: time.Minute})
		mustAcquire(t, p).Release()
		release := hangValidation(t, f)

		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := p.Acquire(ctx, pool.PriorityNormal)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
		if took := time.Since(start); took != 20*time.Millisecond {
			t.Errorf("the acquisition took %v, want its deadline, 20ms", took)
		}
		if s := p.Stats(); s.Size != 0 || s.InUse != 0 || s.Closed[pool.CloseValidation] != 1 {
			t.Errorf("stats %+v: want the slot free, the hung connection counted closed", s)
		}
		// Close waits for the hung Validate, then nothing is left open.
		closed := make(chan struct{})
		go func() { p.Close(); close(closed) }()
		synctest.Wait()
		select {
		case <-closed:
			t.Fatal("Close returned while a Validate was running")
		default:
		}
		release()
		<-closed
		if n := f.open(); n != 0 {
			t.Errorf("%d connections open after Close", n)
		}
	})
}

func TestKeepaliveGivesUpOnAValidateThatIgnoresItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &hangFactory{factory: &factory{}, only: 1}
		p := newHangPool(t, f, pool.Config{MaxSize: 2, MinSize: 1, KeepaliveInterval: time.Minute,
			ValidationTimeout: 50 * time.Millisecond, IdleTimeout: -1})
		synctest.Wait() // the fill to MinSize
		release := hangValidation(t, f)
		time.Sleep(time.Minute + time.Second) // the keepalive pass, then its timeout
		synctest.Wait()
		s := p.Stats()
		if s.Keepalives != 1 || s.Closed[pool.CloseValidation] != 1 || s.Idle != 1 || s.Size != 1 {
			t.Errorf("stats %+v: want the hung connection given up and replaced", s)
		}
		release()
		synctest.Wait()
		if n := f.open(); n != 1 || !f.created[0].closed.Load() {
			t.Errorf("%d connections open, want 1, the replacement", n)
		}
	})
}

func TestADialingCallerTakesAConnectionReleasedMeanwhile(t *testing.T) {
	f := &factory{}
	p := newPool(t, f, pool.Config{MaxSize: 2})
	held := mustAcquire(t, p)
	f.dialGate = make(chan struct{}) // the next dials wait
	defer close(f.dialGate)

	type result struct {
		c   *pool.Conn[*fakeConn]
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := p.Acquire(context.Background(), pool.PriorityNormal)
		done <- result{c, err}
	}()
	waitFor(t, "the dial", func() bool { return p.Stats().Dialing == 1 })
	heldConn := held.Value()
	held.Release()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.c.Value() != heldConn {
		t.Errorf("got connection %d, want the released one, %d", r.c.Value().id, heldConn.id)
	}
	if s := p.Stats(); s.InUse != 1 || s.Dialing != 1 || s.Size != 2 || s.Waiting != 0 {
		t.Errorf("stats %+v: want the released connection in use, the abandoned dial going on", s)
	}
	f.dialGate <- struct{}{} // the abandoned dial ends
	waitFor(t, "the abandoned dial's connection to go idle", func() bool {
		s := p.Stats()
		return s.Idle == 1 && s.Dialing == 0 && s.Size == 2 && s.InUse == 1
	})
	r.c.Release()
}

func TestDialingCallersAndReleasesUnderRace(t *testing.T) {
	f := &factory{}
	f.dialGate = make(chan struct{})
	p := newPool(t, f, pool.Config{MaxSize: 4, AcquireTimeout: 5 * time.Second})
	stop := make(chan struct{})
	gateDone := make(chan struct{})
	go func() { // dials are slow: they pass one at a time
		defer close(gateDone)
		for {
			select {
			case f.dialGate <- struct{}{}:
			case <-stop:
				return
			}
		}
	}()
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for range 50 {
				c, err := p.Acquire(context.Background(), pool.PriorityNormal)
				if err != nil {
					errs <- err
					return
				}
				c.Release()
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	waitFor(t, "the dials to end", func() bool { return p.Stats().Dialing == 0 })
	close(stop)
	<-gateDone
	if s := p.Stats(); s.InUse != 0 || s.Waiting != 0 || s.Idle != s.Size || s.Size > 4 {
		t.Errorf("stats %+v: want everything idle", s)
	}
}

func TestCloseClosesBorrowedConnectionsAfterCloseTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &factory{}
		p := newPool(t, f, pool.Config{MaxSize: 3, CloseTimeout: time.Second})
		a, b, c := mustAcquire(t, p), mustAcquire(t, p), mustAcquire(t, p)
		c.Release() // idle: closed at once
		start := time.Now()
		closed := make(chan struct{})
		go func() { p.Close(); close(closed) }()
		synctest.Wait()
		if !c.Value().closed.Load() || a.Value().closed.Load() || b.Value().closed.Load() {
			t.Fatalf("after Close began: want the idle connection closed, the borrowed ones open")
		}
		time.Sleep(500 * time.Millisecond)
		if !b.Release() {
			t.Errorf("Release during Close's wait reported false")
		}
		if !b.Value().closed.Load() {
			t.Errorf("a connection released during Close's wait is still open")
		}
		select {
		case <-closed:
			t.Fatal("Close returned while a connection was borrowed, before CloseTimeout")
		default:
		}
		<-closed
		if took := time.Since(start); took != time.Second {
			t.Errorf("Close took %v, want the CloseTimeout, 1s", took)
		}
		if !a.Value().closed.Load() || !a.Reclaimed() {
			t.Errorf("the connection still borrowed was not taken back and closed at CloseTimeout")
		}
		if a.Release() || a.Destroy(pool.CloseErrors) { // the factory panics on a second close
			t.Errorf("Release or Destroy of a connection Close took back reported true")
		}
		s := p.Stats()
		if s.Size != 0 || s.InUse != 0 || s.Closed[pool.ClosePoolClosed] != 3 {
			t.Errorf("stats %+v: want every connection closed by the pool's closing", s)
		}
		if err := p.CheckCounts(); err != nil {
			t.Error(err)
		}
	})
}

func TestCloseReturnsWhenTheLastBorrowedConnectionIsReleased(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &factory{}
		p := newPool(t, f, pool.Config{MaxSize: 1, CloseTimeout: time.Minute})
		a := mustAcquire(t, p)
		start := time.Now()
		closed := make(chan struct{})
		go func() { p.Close(); close(closed) }()
		time.Sleep(time.Second)
		a.Release()
		<-closed
		if took := time.Since(start); took != time.Second {
			t.Errorf("Close took %v, want 1s, when the connection was released", took)
		}
		if f.open() != 0 || a.Reclaimed() {
			t.Errorf("want the released connection closed, not taken back")
		}
	})
}

func TestCloseWithoutCloseTimeoutLeavesBorrowedConnectionsToTheirRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &factory{}
		p := newPool(t, f, pool.Config{MaxSize: 1})
		a := mustAcquire(t, p)
		p.Close() // returns at once
		if a.Value().closed.Load() {
			t.Fatal("Close without CloseTimeout closed a borrowed connection")
		}
		a.Release()
		if !a.Value().closed.Load() {
			t.Error("a connection released after Close is still open")
		}
	})
}

// TestACallerWaitsForAnOrphanedDialRatherThanDialingAnother: a dial whose
// caller gave up (or was served by a released connection) goes on, and the
// next caller with nothing idle waits for it instead of dialing one more;
// if it fails, the waiter dials in its place. Without this, a burst of
// short borrowings fills the pool to MaxSize.
func TestACallerWaitsForAnOrphanedDialRatherThanDialingAnother(t *testing.T) {
	f := &factory{dialGate: make(chan struct{})} // dials wait for the test
	p := newPool(t, f, pool.Config{MaxSize: 8, AcquireTimeout: 5 * time.Second})

	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error)
	go func() {
		_, err := p.Acquire(ctx, pool.PriorityNormal)
		gaveUp <- err
	}()
	waitFor(t, "the first dial", func() bool { return f.dialing.Load() == 1 })
	cancel()
	if err := <-gaveUp; err != context.Canceled {
		t.Fatalf("err = %v, want context.Canceled", err)
	}

	got := make(chan *pool.Conn[*fakeConn])
	go func() {
		c, err := p.Acquire(context.Background(), pool.PriorityNormal)
		if err != nil {
			t.Error(err)
		}
		got <- c
	}()
	waitFor(t, "the second caller to wait", func() bool { return p.Stats().Waiting == 1 })
	if s := p.Stats(); s.Dialing != 1 || s.Size != 1 {
		t.Fatalf("stats %+v: want the caller waiting for the orphaned dial, not dialing a second connection", s)
	}

	f.setConnectErr(errors.New("refused"))
	f.dialGate <- struct{}{} // the orphaned dial fails: the waiter dials in its place
	waitFor(t, "the waiter's own dial", func() bool { s := p.Stats(); return s.Waiting == 0 && s.Dialing == 1 })
	f.setConnectErr(nil)
	f.dialGate <- struct{}{}
	c := <-got
	if s := p.Stats(); s.Created != 1 || s.ConnectErrors != 1 || s.Size != 1 || s.InUse != 1 {
		t.Errorf("stats %+v: want 1 connection created and in use, 1 dial failed", s)
	}
	if c != nil {
		c.Release()
	}
}
