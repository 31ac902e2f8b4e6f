package sqlpool

import (
	"context"
	"testing"

	"github.com/sqlpool/sqlpool/drivertest"
)

// TestBindAndReleaseOfAnIdleConnectionAllocateNothing guards the hot path:
// a handle borrowing an idle physical connection for a tagged context and
// giving it back allocates nothing inside sqlpool.
func TestBindAndReleaseOfAnIdleConnectionAllocateNothing(t *testing.T) {
	d := drivertest.New(drivertest.Options{})
	c, err := Wrap(d.Connector("x"), Config{})
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
}
