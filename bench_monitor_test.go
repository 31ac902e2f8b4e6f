package sqlpool_test

import (
	"context"
	"testing"
	"time"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
)

// BenchmarkMonitoringOverhead runs one query on the fake driver with
// monitoring off, with the metrics (the default), and with every hook set
// too, so the cost of each can be read as a ratio from one run:
//
//	go test -run '^$' -bench MonitoringOverhead -count 6 . | benchstat -col /monitoring -
func BenchmarkMonitoringOverhead(b *testing.B) {
	nop := sqlpool.Hooks{
		OnConnect: func(sqlpool.ConnectEvent) {}, OnAcquire: func(sqlpool.AcquireEvent) {},
		OnRelease: func(sqlpool.ReleaseEvent) {}, OnQueryStart: func(sqlpool.QueryEvent) {},
		OnQueryEnd: func(sqlpool.QueryEvent) {}, OnClose: func(sqlpool.CloseEvent) {},
	}
	for _, tc := range []struct {
		name string
		cfg  sqlpool.Config
	}{
		{"off", sqlpool.Config{DisableMetrics: true}},
		{"metrics", sqlpool.Config{}},
		{"metrics+hooks", sqlpool.Config{Hooks: nop}},
		{"metrics+hooks+leaks", sqlpool.Config{Hooks: nop, LeakThreshold: time.Minute}},
	} {
		b.Run("monitoring="+tc.name, func(b *testing.B) {
			tc.cfg.MaxSize = 8
			c, err := sqlpool.Wrap(drivertest.New(drivertest.Options{}).Connector("x"), tc.cfg)
			if err != nil {
				b.Fatal(err)
			}
			db := sqlpool.OpenDB(c)
			defer db.Close()
			ctx := sqlpool.WithTenant(context.Background(), "acme")
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var n int64
				for pb.Next() {
					if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&n); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
