package sqlpool_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
)

// BenchmarkQuery runs one query with database/sql's own pool (the baseline)
// and with sqlpool, on the fake driver, so their ratio can be read from one
// run. Sweep goroutines with -cpu.
func BenchmarkQuery(b *testing.B) {
	for _, tc := range []struct {
		name string
		open func(b *testing.B) *sql.DB
	}{
		{"pool=database-sql", func(b *testing.B) *sql.DB {
			db := sql.OpenDB(drivertest.New(drivertest.Options{}).Connector("bench"))
			db.SetMaxIdleConns(10)
			db.SetMaxOpenConns(10)
			return db
		}},
		{"pool=sqlpool", func(b *testing.B) *sql.DB {
			c, err := sqlpool.Wrap(drivertest.New(drivertest.Options{}).Connector("bench"), sqlpool.Config{MaxSize: 10})
			if err != nil {
				b.Fatal(err)
			}
			return sqlpool.OpenDB(c)
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			db := tc.open(b)
			defer db.Close()
			ctx := sqlpool.WithTenant(context.Background(), "bench")
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
