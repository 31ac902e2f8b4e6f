package sqlpool_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
	"github.com/sqlpool/sqlpool/partition"
)

// An acquisition that waits for its partition's slot and then for the pool
// has one AcquireTimeout, not one per queue, and its error says how long it
// really waited and what to do.
func TestPartitionAndPoolWaitsShareOneDeadline(t *testing.T) {
	const timeout = 300 * time.Millisecond
	routing := partition.RouterConfig{Partitions: []partition.Config{{Name: "a", MaxSize: 1}}}
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 1, AcquireTimeout: timeout, FailFastBelow: -1, Routing: routing})
	ctx := context.Background()
	a := sqlpool.WithTenant(ctx, "a")
	held, err := db.Conn(sqlpool.WithTenant(ctx, "b")) // the pool's only connection
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	queryInt(t, ctx, held, "SELECT 1")

	first := make(chan error, 1)
	go func() { _, err := db.ExecContext(a, "SELECT 1"); first <- err }() // holds a's slot, waits for the pool
	waitFor(t, "the first caller waiting in the pool", func() bool { return c.Stats().Waiting == 1 })
	start := time.Now()
	_, err = db.ExecContext(a, "SELECT 1") // waits for a's slot, then for the pool
	took := time.Since(start)
	if err := <-first; !errors.Is(err, sqlpool.ErrAcquireTimeout) {
		t.Fatalf("first caller: %v, want ErrAcquireTimeout", err)
	}
	if !errors.Is(err, sqlpool.ErrAcquireTimeout) {
		t.Fatalf("second caller: %v, want ErrAcquireTimeout", err)
	}
	if took > timeout*3/2 {
		t.Errorf("second caller waited %v with an AcquireTimeout of %v: the pool's wait restarted the timeout", took, timeout)
	}
	// At the deadline it may be the partition's wait or the pool's that
	// gives up: both say how long the whole acquisition waited.
	m := regexp.MustCompile(`after waiting ([0-9.]+m?s)`).FindStringSubmatch(err.Error())
	if m == nil {
		t.Fatalf("error %q: want it to say how long it waited", err)
	}
	if d, _ := time.ParseDuration(m[1]); d < timeout*9/10 || d > timeout*3/2 {
		t.Errorf("error %q says it waited %v, want about %v", err, d, timeout)
	}
	if !strings.Contains(err.Error(), "MaxSize") {
		t.Errorf("error %q: want a hint of what to do", err)
	}
}
