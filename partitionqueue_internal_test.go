package sqlpool

import (
	"context"
	"testing"

	"github.com/sqlpool/sqlpool/drivertest"
	"github.com/sqlpool/sqlpool/partition"
)

// A borrowing within a partition's MaxSize (kept by the pool's queue)
// allocates nothing inside sqlpool either.
func TestBindAndReleaseWithinAPartitionsMaxSizeAllocateNothing(t *testing.T) {
	d := drivertest.New(drivertest.Options{})
	c, err := Wrap(d.Connector("x"), Config{Routing: partition.RouterConfig{Template: partition.Config{MaxSize: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := WithTenant(context.Background(), "acme")
	h := &conn{c: c}
	if _, err := h.bind(ctx); err != nil {
		t.Fatal(err)
	}
	h.IsValid()
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := h.bind(ctx); err != nil {
			t.Fatal(err)
		}
		h.IsValid()
	})
	if allocs != 0 {
		t.Errorf("bind+release allocates %v times per run, want 0", allocs)
	}
	if s := c.Stats().Partitions["acme"]; s.InUse != 0 || s.Waiting != 0 {
		t.Errorf("partition %+v after the borrowings, want none in use or waiting", s)
	}
}
