package sqlpool_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
	"github.com/sqlpool/sqlpool/partition"
)

// A partition's MaxSize is kept in the pool's own queue: a High-priority
// caller of a partition at its MaxSize does not hold back a Normal caller
// of another partition, and goes first once its partition has room.
func TestPartitionAtItsMaxSizeWaitsInThePoolsQueueByPriority(t *testing.T) {
	routing := partition.RouterConfig{Partitions: []partition.Config{{Name: "a", MaxSize: 1}, {Name: "b"}}}
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 2, StarvationAfter: -1, Routing: routing})
	ctx := context.Background()
	a, b := sqlpool.WithTenant(ctx, "a"), sqlpool.WithTenant(ctx, "b")
	aHeld, _ := db.Conn(a)
	defer aHeld.Close()
	queryInt(t, a, aHeld, "SELECT 1")
	bHeld, _ := db.Conn(b)
	queryInt(t, b, bHeld, "SELECT 1") // the pool is full, a at its MaxSize

	done := make(chan string, 3)
	// Each caller reports that it was served while it still holds its
	// connection: the order of done is the order of service, not of the
	// goroutines' returns (a-high's release serves b-2 before a-high's
	// goroutine could send).
	exec := func(ctx context.Context, name string) {
		conn, err := db.Conn(ctx)
		if err == nil {
			defer conn.Close()
			_, err = conn.ExecContext(ctx, "SELECT 1")
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		done <- name
	}
	go exec(sqlpool.WithPriority(a, sqlpool.PriorityHigh), "a-high")
	waitFor(t, "a-high at a's MaxSize", func() bool { return c.Stats().Partitions["a"].Waiting == 1 })
	go exec(b, "b-1")
	waitFor(t, "b-1 in the pool's queue", func() bool { return c.Stats().Waiting == 1 })
	bHeld.Close() // to b-1, past a-high
	if got := <-done; got != "b-1" {
		t.Fatalf("%s served first, want b-1: a-high's partition is at its MaxSize", got)
	}
	if s := c.Stats(); s.Partitions["a"].Waiting != 1 {
		t.Fatalf("a-high no longer waits at a's MaxSize (%d)", s.Partitions["a"].Waiting)
	}

	bHeld, _ = db.Conn(b)
	defer bHeld.Close()
	queryInt(t, b, bHeld, "SELECT 1") // the pool is full again
	go exec(b, "b-2")
	waitFor(t, "b-2 in the pool's queue", func() bool { return c.Stats().Waiting == 1 })
	aHeld.Close() // a has room: a-high (High) before b-2 (Normal)
	if got := <-done; got != "a-high" {
		t.Errorf("%s served first, want a-high", got)
	}
	if got := <-done; got != "b-2" {
		t.Errorf("%s served, want b-2", got)
	}
	if s := c.Stats(); s.Partitions["a"].InUse != 0 || s.Partitions["a"].Waiting != 0 {
		t.Errorf("partition a %+v: want nothing in use or waiting", s.Partitions["a"])
	}
}

// A caller that waits at its partition's MaxSize times out with an
// ErrAcquireTimeout that names the partition and its MaxSize and says what
// to do, counted in the partition's Timeouts and the pool's.
func TestATimeoutAtAPartitionsMaxSizeNamesIt(t *testing.T) {
	routing := partition.RouterConfig{Partitions: []partition.Config{{Name: "a", MaxSize: 1}}}
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 4, AcquireTimeout: 50 * time.Millisecond, Routing: routing})
	a := sqlpool.WithTenant(context.Background(), "a")
	held, _ := db.Conn(a)
	defer held.Close()
	queryInt(t, a, held, "SELECT 1")

	_, err := db.ExecContext(a, "SELECT 1")
	var te *sqlpool.TimeoutError
	if !errors.As(err, &te) || te.Group != `partition "a"` || te.Waited < 50*time.Millisecond {
		t.Fatalf("err = %v, want an AcquireTimeout naming partition a, with its wait", err)
	}
	for _, want := range []string{`partition "a", at its MaxSize of 1`, "after waiting", "raise its MaxSize"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q: want %q", err, want)
		}
	}
	if s := c.Stats(); s.Partitions["a"].Timeouts != 1 || s.Timeouts != 1 {
		t.Errorf("timeouts: partition %d, pool %d; want 1 and 1", s.Partitions["a"].Timeouts, s.Timeouts)
	}
}
