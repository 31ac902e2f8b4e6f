package sqlpool_test

import (
	"context"
	"database/sql"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/internal/pgbouncer"
	"github.com/sqlpool/sqlpool/partition"
)

// BenchmarkPooler measures SELECT $1::int behind a private PgBouncer in
// transaction mode (4 server connections) from 8 goroutines, with the bare
// drivers in the modes that are correct behind it: lib/pq with
// binary_parameters=yes (one round trip, unnamed statement) and pgx with
// QueryExecModeExec. Each goroutine is a client of the pooler.
func BenchmarkPooler(b *testing.B) {
	bouncer := pgbouncer.Start(b, pgbouncer.Options{PoolSize: 4})
	for _, c := range []struct {
		name string
		open func(b *testing.B) *sql.DB
	}{
		{"bare-pq-binary_parameters", func(b *testing.B) *sql.DB {
			return openPooler(b, "lib/pq", bouncer.DSN("binary_parameters=yes"))
		}},
		{"bare-pgx-exec", func(b *testing.B) *sql.DB {
			return openPooler(b, "pgx", bouncer.DSN("default_query_exec_mode=exec"))
		}},
		{"sqlpool-pq", sqlpoolPooler(bouncer, "lib/pq", "")},
		{"sqlpool-pgx", sqlpoolPooler(bouncer, "pgx", "")},
		// The partition's setup in a transaction around each query: BEGIN,
		// set_config(..., true), the query, COMMIT.
		{"sqlpool-pq-tenant", sqlpoolPooler(bouncer, "lib/pq", "SELECT set_config('app.tenant', $1, true)")},
		{"sqlpool-pgx-tenant", sqlpoolPooler(bouncer, "pgx", "SELECT set_config('app.tenant', $1, true)")},
	} {
		b.Run(c.name+"/goroutines=8", func(b *testing.B) { benchPoolerSelect(b, c.open(b), 8) })
	}
}

// sqlpoolPooler opens sqlpool in transaction-pooler mode over the driver
// named, on the pooler's DSN with no driver setting (sqlpool adds it), with
// setup as the partitions' SetupSQL.
func sqlpoolPooler(bouncer *pgbouncer.Server, drv, setup string) func(b *testing.B) *sql.DB {
	return func(b *testing.B) *sql.DB {
		c, err := sqlpool.NewConnector(poolerDriver(drv), bouncer.DSN(""), sqlpool.Config{
			MaxSize: 8,
			Pooler:  sqlpool.PoolerTransaction,
			Routing: partition.RouterConfig{Template: partition.Config{SetupSQL: setup}},
		})
		if err != nil {
			b.Fatal(err)
		}
		db := sqlpool.OpenDB(c)
		b.Cleanup(func() { db.Close() })
		return db
	}
}

// benchPoolerSelect runs SELECT $1::int on db from goroutines goroutines,
// and fails b if any answer is wrong or any query fails.
func benchPoolerSelect(b *testing.B, db *sql.DB, goroutines int) {
	db.SetMaxIdleConns(goroutines)
	b.SetParallelism((goroutines + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	ctx := sqlpool.WithTenant(context.Background(), "acme")
	var seq, wrong, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			x := int(seq.Add(1))
			var got int
			if err := db.QueryRowContext(ctx, "SELECT $1::int", x).Scan(&got); err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, &err)
			} else if got != x {
				wrong.Add(1)
			}
		}
	})
	b.StopTimer()
	if failed.Load() != 0 || wrong.Load() != 0 {
		var first error
		if p := firstErr.Load(); p != nil {
			first = *p
		}
		b.Errorf("%d queries failed (first: %v), %d wrong answers; want none", failed.Load(), first, wrong.Load())
	}
}
