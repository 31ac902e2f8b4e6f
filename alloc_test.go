package sqlpool

import (
	"context"
	"fmt"
	"testing"

	"github.com/sqlpool/sqlpool/drivertest"
	"github.com/sqlpool/sqlpool/partition"
)

// TestBindAndReleaseOfAnIdleConnectionAllocateNothing guards the hot path:
// a handle borrowing an idle physical connection for a tagged context and
// giving it back allocates nothing inside sqlpool, with or without a
// partition MaxSize (kept by the pool's queue).
func TestBindAndReleaseOfAnIdleConnectionAllocateNothing(t *testing.T) {
	for name, cfg := range map[string]Config{
		"defaults":          {},
		"partition MaxSize": {Routing: partition.RouterConfig{Template: partition.Config{MaxSize: 1}}},
	} {
		t.Run(name, func(t *testing.T) {
			d := drivertest.New(drivertest.Options{})
			c, err := Wrap(d.Connector("x"), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx := WithTenant(context.Background(), "acme")
			h := &conn{c: c}
			if _, err := h.bind(ctx, false); err != nil {
				t.Fatal(err)
			}
			h.IsValid()
			allocs := testing.AllocsPerRun(1000, func() {
				if _, err := h.bind(ctx, false); err != nil {
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
		})
	}
}

// BenchmarkBindRelease measures what sqlpool adds to each database/sql
// borrowing: one bind of an idle connection (route, partition, pool,
// metrics) and one release, without database/sql or the driver's work.
//
//	go test -run '^$' -bench BindRelease -count 6 .
func BenchmarkBindRelease(b *testing.B) {
	for _, metrics := range []bool{true, false} {
		b.Run(fmt.Sprintf("metrics=%v", metrics), func(b *testing.B) {
			c, err := Wrap(drivertest.New(drivertest.Options{}).Connector("x"), Config{DisableMetrics: !metrics})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			ctx := WithTenant(context.Background(), "acme")
			h := &conn{c: c}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.bind(ctx, false); err != nil {
					b.Fatal(err)
				}
				h.IsValid()
			}
		})
	}
}
