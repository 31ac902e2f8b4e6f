package sqlpool_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
)

// benchMaxSize caps every pool of the benchmarks, baselines and sqlpool alike.
const benchMaxSize = 16

// benchGoroutines is the dimension the benchmarks sweep: 1 measures the
// uncontended fast path, 8 contention below the cap, 64 hand-off to waiters.
var benchGoroutines = []int{1, 8, 64}

// BenchmarkQuery runs one QueryRowContext(...).Scan of "SELECT 1" on the fake
// driver (no latency), so that what is measured is the pooling:
//
//   - pool=database-sql: database/sql's own pool on the bare driver, the
//     baseline;
//   - pool=sqlpool: the same code through sqlpool.OpenDB;
//   - pool=naive: database/sql with SetMaxIdleConns(0), every query a
//     Connect and a Close, which is what a wrapper that pools behind
//     database/sql's back without logical handles would pay.
//
// Every pool holds at most 16 connections. Read the ratios from one run:
//
//	go test -run '^$' -bench 'Query$' -count 6 . | tee query.txt
//	benchstat -col /pool query.txt
func BenchmarkQuery(b *testing.B) {
	pools := []struct {
		name string
		open func(b *testing.B) *sql.DB
	}{
		{"database-sql", func(b *testing.B) *sql.DB {
			db := sql.OpenDB(drivertest.New(drivertest.Options{}).Connector("bench"))
			db.SetMaxOpenConns(benchMaxSize)
			db.SetMaxIdleConns(benchMaxSize)
			return db
		}},
		{"sqlpool", func(b *testing.B) *sql.DB {
			c, err := sqlpool.Wrap(drivertest.New(drivertest.Options{}).Connector("bench"), sqlpool.Config{MaxSize: benchMaxSize})
			if err != nil {
				b.Fatal(err)
			}
			return sqlpool.OpenDB(c)
		}},
		{"naive", func(b *testing.B) *sql.DB {
			db := sql.OpenDB(drivertest.New(drivertest.Options{}).Connector("bench"))
			db.SetMaxOpenConns(benchMaxSize)
			db.SetMaxIdleConns(0)
			return db
		}},
	}
	for _, g := range benchGoroutines {
		for _, p := range pools {
			b.Run(fmt.Sprintf("goroutines=%d/pool=%s", g, p.name), func(b *testing.B) {
				db := p.open(b)
				defer db.Close()
				ctx := sqlpool.WithTenant(context.Background(), "bench")
				query := func(int) error {
					var n int64
					return db.QueryRowContext(ctx, "SELECT 1").Scan(&n)
				}
				runGoroutines(b, g, query, nil)
			})
		}
	}
}

// benchWarmup is how many calls per goroutine warm a pool up before it is
// measured: enough that every connection it opened has served some, since a
// connection's first queries cost more (the driver prepares its statements,
// the server fills its caches), and sqlpool, which lets a caller take a
// connection released while its own dial goes on, may open a connection
// that no call of a single warm-up round uses.
const benchWarmup = 50

// runGoroutines calls op b.N times in all, from exactly goroutines
// goroutines, after a warm-up of benchWarmup calls per goroutine (and then
// settle, if not nil), and reports allocations. Each goroutine passes op
// its own index, from 0.
func runGoroutines(b *testing.B, goroutines int, op func(g int) error, settle func()) {
	b.Helper()
	spread(b, goroutines, benchWarmup*goroutines, op) // open connections, prepare statements
	if b.Failed() {
		b.FailNow()
	}
	if settle != nil {
		settle()
	}
	b.ReportAllocs()
	b.ResetTimer()
	spread(b, goroutines, b.N, op)
	b.StopTimer()
}

// spread calls op n times in all from goroutines goroutines, each passing
// its own index, and returns when they are done. A goroutine whose op fails
// reports the error to b and stops.
func spread(b *testing.B, goroutines, n int, op func(g int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if err := op(g); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
