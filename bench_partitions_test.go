package sqlpool

import (
	"fmt"
	"testing"

	"github.com/sqlpool/sqlpool/drivertest"
	"github.com/sqlpool/sqlpool/partition"
)

// BenchmarkNewTenant measures what a brand-new tenant costs a Connector that
// already has partitions=N of them: one Route of an unknown tenant, which
// creates its partition from the template (the router's bookkeeping, the
// root package's partition state, the monitor's recorder). B/op is the
// memory allocated per new tenant; partitions/s the rate they are created.
// Every N/10 new tenants they are removed again, off the clock, so that the
// count stays between N and 1.1·N.
//
//	go test -run '^$' -bench NewTenant -benchmem -count 6 .
func BenchmarkNewTenant(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("partitions=%d", n), func(b *testing.B) {
			c, err := Wrap(drivertest.New(drivertest.Options{}).Connector("x"), Config{Routing: partition.RouterConfig{MaxPartitions: -1}})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			r := c.Partitions()
			for i := range n {
				if _, err := r.Route(partition.Key{Tenant: fmt.Sprintf("seed-%d", i)}); err != nil {
					b.Fatal(err)
				}
			}
			batch := make([]string, max(n/10, 1))
			next := len(batch) // index in batch of the next new tenant
			round := 0
			b.ReportAllocs()
			for b.Loop() {
				if next == len(batch) {
					b.StopTimer()
					for i, name := range batch {
						if name != "" {
							if err := r.Remove(name); err != nil {
								b.Fatal(err)
							}
						}
						batch[i] = fmt.Sprintf("new-%d-%d", round, i)
					}
					round, next = round+1, 0
					b.StartTimer()
				}
				if _, err := r.Route(partition.Key{Tenant: batch[next]}); err != nil {
					b.Fatal(err)
				}
				next++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "partitions/s")
		})
	}
}
