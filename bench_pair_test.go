//go:build unix

package sqlpool_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"
)

// benchPairRound is how many operations one client of a pair runs before
// the other takes over: long enough (15–170 ms on PostgreSQL) that starting
// the goroutines costs nothing measurable, short enough that the machine's
// drift, which takes seconds, falls on both clients alike.
const benchPairRound = 500

// benchPairWarmup is how long each client of a pair runs, the two taking
// turns, before the measurement. A fresh pool on PostgreSQL runs up to 2× slower than later
// for its first thousands of queries, and the pool opened second, sqlpool's,
// slower for longer: after a warm-up of 400 queries sqlpool took up to 1.3×
// pgx's time in runs of 1,000 queries, after a warm-up of a second no
// longer than pgx's.
const benchPairWarmup = time.Second

// BenchmarkWorkloadPair runs BenchmarkWorkload's workloads on PostgreSQL at
// 8 goroutines with two clients in one benchmark, a baseline and sqlpool
// over the same driver: both pools open and warmed up, taking turns of benchPairRound
// operations in the order baseline, sqlpool, sqlpool, baseline, and so on,
// so that each goes first as often. On a shared machine whose speed drifts
// by tens of percent over minutes, BenchmarkWorkload's sub-benchmarks, which
// run one after another, measure the drift as much as the clients; taking
// turns cancels it. It reports each client's time per operation
// (base-ns/op, sqlpool-ns/op), the CPU time this process spent per
// operation in each client's turns (base-cpu-ns/op, sqlpool-cpu-ns/op: the
// driver's, the pools' and the kernel's work on their behalf, not the
// server's), and speedup, the baseline's time over sqlpool's (above 1,
// sqlpool is the faster):
//
//	go test -run '^$' -bench WorkloadPair -benchtime 20000x -count 6 . | tee pair.txt
//	benchstat pair.txt
//
// The pairs: pair=pgx-vs-sqlpool-pgx, pgx's database/sql driver alone and
// under sqlpool (pgx keeps its statement cache); pair=prepared-vs-sqlpool,
// lib/pq with *sql.Stmt prepared by hand, and lib/pq under sqlpool with the
// query text each time (sqlpool prepares); pair=pgx-vs-pgx, the same client
// twice, whose speedup shows how far from 1 the method itself strays.
func BenchmarkWorkloadPair(b *testing.B) {
	const goroutines = 8
	pg := benchDBs(b.TempDir())[0]
	pairs := []struct{ base, sqlpool string }{
		{"pgx", "sqlpool-pgx"},
		{"prepared", "sqlpool"},
		{"pgx", "pgx"},
	}
	b.Run("db="+pg.name, func(b *testing.B) {
		dsn := pg.prepare(b)
		for _, w := range benchWorkloads {
			for _, p := range pairs {
				b.Run(fmt.Sprintf("workload=%s/pair=%s-vs-%s", w.name, p.base, p.sqlpool), func(b *testing.B) {
					ctx := context.Background()
					var ops [2]func(g int) error // baseline's, sqlpool's
					var settle [2]func()
					for i, name := range []string{p.base, p.sqlpool} {
						s := pg.client(b, name).open(b, dsn, pg.q)
						rngs := benchRands(goroutines)
						ops[i] = func(g int) error { return w.run(ctx, s, rngs[g]) }
						settle[i] = settler(s)
					}
					// Warm up taking turns too: a connection idle for a
					// second would pay for it (pgx pings it) in the first
					// measured round.
					for start := time.Now(); time.Since(start) < 2*benchPairWarmup && !b.Failed(); {
						for _, op := range ops {
							spread(b, goroutines, benchPairRound, op) // open connections, prepare statements
						}
					}
					for _, f := range settle {
						if f != nil {
							f()
						}
					}
					var spent, cpu [2]time.Duration
					turn := func(i, n int) {
						cpu0, start := cpuTime(b), time.Now()
						spread(b, goroutines, n, ops[i])
						spent[i] += time.Since(start)
						cpu[i] += cpuTime(b) - cpu0
					}
					if b.Failed() {
						b.FailNow()
					}
					b.ResetTimer()
					for round := 0; round*benchPairRound < b.N; round++ {
						n := min(benchPairRound, b.N-round*benchPairRound)
						first := round % 2
						turn(first, n)
						turn(1-first, n)
					}
					b.StopTimer()
					perOp := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) }
					b.ReportMetric(0, "ns/op") // both clients' time: meaningless
					b.ReportMetric(perOp(spent[0]), "base-ns/op")
					b.ReportMetric(perOp(spent[1]), "sqlpool-ns/op")
					b.ReportMetric(perOp(cpu[0]), "base-cpu-ns/op")
					b.ReportMetric(perOp(cpu[1]), "sqlpool-cpu-ns/op")
					b.ReportMetric(spent[0].Seconds()/spent[1].Seconds(), "speedup")
				})
			}
		}
	})
}

// cpuTime returns the CPU time, user and system, this process has used.
func cpuTime(b *testing.B) time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		b.Fatal(err)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}
