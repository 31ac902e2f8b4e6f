//go:build !sqlpool_noprometheus

package monitor_test

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/sqlpool/sqlpool/monitor"
)

func TestCollectorIsLintClean(t *testing.T) {
	problems, err := testutil.CollectAndLint(monitor.NewCollector(sampleReport))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestCollectorPassesAPedanticRegistry(t *testing.T) {
	for name, report := range map[string]func() monitor.Report{
		"sample": sampleReport,
		"empty":  func() monitor.Report { return monitor.Report{} },
	} {
		t.Run(name, func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry()
			if err := reg.Register(monitor.NewCollector(report)); err != nil {
				t.Fatal(err)
			}
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			if len(mfs) == 0 {
				t.Error("no metric families")
			}
		})
	}
}

func TestCollectorTakesOneReportPerScrape(t *testing.T) {
	calls := 0
	c := monitor.NewCollector(func() monitor.Report { calls++; return sampleReport() })
	if n := testutil.CollectAndCount(c); n == 0 || calls != 1 {
		t.Errorf("%d metrics from %d reports, want some from 1", n, calls)
	}
}

func TestCollectorEmitsTheDesignedMetrics(t *testing.T) {
	const want = `
# HELP sqlpool_acquires_total Acquisition attempts, by partition and result (success, timeout, queue_full, canceled, error).
# TYPE sqlpool_acquires_total counter
sqlpool_acquires_total{partition="acme",result="canceled"} 0
sqlpool_acquires_total{partition="acme",result="error"} 0
sqlpool_acquires_total{partition="acme",result="queue_full"} 0
sqlpool_acquires_total{partition="acme",result="success"} 3
sqlpool_acquires_total{partition="acme",result="timeout"} 1
sqlpool_acquires_total{partition="globex",result="canceled"} 0
sqlpool_acquires_total{partition="globex",result="error"} 0
sqlpool_acquires_total{partition="globex",result="queue_full"} 1
sqlpool_acquires_total{partition="globex",result="success"} 1
sqlpool_acquires_total{partition="globex",result="timeout"} 0
# HELP sqlpool_connections Physical connections open, by partition and state (idle or in_use).
# TYPE sqlpool_connections gauge
sqlpool_connections{partition="acme",state="idle"} 1
sqlpool_connections{partition="acme",state="in_use"} 2
sqlpool_connections{partition="globex",state="idle"} 0
sqlpool_connections{partition="globex",state="in_use"} 1
# HELP sqlpool_connections_closed_total Physical connections closed, by reason.
# TYPE sqlpool_connections_closed_total counter
sqlpool_connections_closed_total{reason="idle"} 1
sqlpool_connections_closed_total{reason="lifetime"} 0
# HELP sqlpool_connections_created_total Physical connections dialed.
# TYPE sqlpool_connections_created_total counter
sqlpool_connections_created_total 5
# HELP sqlpool_circuit_open 1 while the circuit breaker is open (acquisitions that need a new connection are refused), else 0.
# TYPE sqlpool_circuit_open gauge
sqlpool_circuit_open 1
# HELP sqlpool_circuit_opens_total Times the circuit breaker opened.
# TYPE sqlpool_circuit_opens_total counter
sqlpool_circuit_opens_total 2
# HELP sqlpool_circuit_refused_total Acquisitions refused at once by the open circuit breaker.
# TYPE sqlpool_circuit_refused_total counter
sqlpool_circuit_refused_total 7
# HELP sqlpool_connect_errors_total Dials that failed.
# TYPE sqlpool_connect_errors_total counter
sqlpool_connect_errors_total 1
# HELP sqlpool_leaked_connections Borrowings currently held past the leak threshold.
# TYPE sqlpool_leaked_connections gauge
sqlpool_leaked_connections 1
# HELP sqlpool_leaks_detected_total Borrowings detected held past the leak threshold.
# TYPE sqlpool_leaks_detected_total counter
sqlpool_leaks_detected_total 1
# HELP sqlpool_max_connections The pool's cap on open connections (MaxSize).
# TYPE sqlpool_max_connections gauge
sqlpool_max_connections 10
# HELP sqlpool_statement_cache_hits_total Statement-cache lookups that found a prepared statement.
# TYPE sqlpool_statement_cache_hits_total counter
sqlpool_statement_cache_hits_total 3
# HELP sqlpool_statement_cache_misses_total Statement-cache lookups that had to prepare the statement.
# TYPE sqlpool_statement_cache_misses_total counter
sqlpool_statement_cache_misses_total 1
# HELP sqlpool_wait_queue_length Acquisitions waiting for a connection, by partition.
# TYPE sqlpool_wait_queue_length gauge
sqlpool_wait_queue_length{partition="acme"} 1
sqlpool_wait_queue_length{partition="globex"} 0
`
	err := testutil.CollectAndCompare(monitor.NewCollector(sampleReport), strings.NewReader(want),
		"sqlpool_acquires_total", "sqlpool_connections", "sqlpool_connections_closed_total",
		"sqlpool_connections_created_total", "sqlpool_connect_errors_total", "sqlpool_leaked_connections",
		"sqlpool_leaks_detected_total", "sqlpool_max_connections", "sqlpool_statement_cache_hits_total",
		"sqlpool_statement_cache_misses_total", "sqlpool_wait_queue_length",
		"sqlpool_circuit_open", "sqlpool_circuit_opens_total", "sqlpool_circuit_refused_total")
	if err != nil {
		t.Error(err)
	}
}

func TestCollectorHistogramsHaveExactBucketsAndSums(t *testing.T) {
	r := monitor.NewRecorder(monitor.RecorderConfig{})
	p := r.Partition("acme")
	for _, d := range []time.Duration{2 * time.Millisecond, 2 * time.Millisecond, 2 * time.Millisecond, time.Second} {
		p.RecordAcquire(d, monitor.ResultSuccess)
	}
	p.RecordRelease(90 * time.Second) // above the last bucket
	rep := monitor.Report{Metrics: r.Snapshot()}
	const want = `
# HELP sqlpool_acquire_wait_seconds Time each acquisition attempt waited, whatever its result, by partition.
# TYPE sqlpool_acquire_wait_seconds histogram
sqlpool_acquire_wait_seconds_bucket{partition="acme",le="0.0001"} 0
sqlpool_acquire_wait_seconds_bucket{partition="acme",le="0.00025"} 0
sqlpool_acquire_wait_seconds_bucket{partition="acme",le="0.0005"} 0
sqlpool_acquire_wait_seconds_bucket{partition="acme",le="0.001"} 0
sqlpool_acquire_wait_seconds_bucket{partition="acme",le="0.0025"} 3
sqlpool_acquire_wait_seconds_bucket{partition="acme",le="0.005"} 3
sqlpool_acquire_wait_seconds_bucket{partition="acme",le="0.01"} 3
sqlpool_acquire_wait_seconds_bucket{partition="acme",le="0.025"} 3
sqlpool_acquire_wait_seconds_bucket{partition="acme",le="0.05"} 3
sqlpool_acquire_wait_seconds_bucket{partition="acme",le="0.1"} 3
sqlpool_acquire_wait_seconds_bucket{partition="acme",le="0.25"} 3
sqlpool_acquire_wait_seconds_bucket{partition="acme",le="0.5"} 3
sqlpool_acquire_wait_seconds_bucket{partition="acme",le="1"} 4
sqlpool_acquire_wait_seconds_bucket{partition="acme",le="2.5"} 4
sqlpool_acquire_wait_seconds_bucket{partition="acme",le="5"} 4
sqlpool_acquire_wait_seconds_bucket{partition="acme",le="10"} 4
sqlpool_acquire_wait_seconds_bucket{partition="acme",le="30"} 4
sqlpool_acquire_wait_seconds_bucket{partition="acme",le="60"} 4
sqlpool_acquire_wait_seconds_bucket{partition="acme",le="+Inf"} 4
sqlpool_acquire_wait_seconds_sum{partition="acme"} 1.006
sqlpool_acquire_wait_seconds_count{partition="acme"} 4
`
	c := monitor.NewCollector(func() monitor.Report { return rep })
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "sqlpool_acquire_wait_seconds"); err != nil {
		t.Error(err)
	}
	const wantHold = `
# HELP sqlpool_hold_seconds Time each borrowing held its connection, by partition.
# TYPE sqlpool_hold_seconds histogram
sqlpool_hold_seconds_bucket{partition="acme",le="0.0001"} 0
sqlpool_hold_seconds_bucket{partition="acme",le="0.00025"} 0
sqlpool_hold_seconds_bucket{partition="acme",le="0.0005"} 0
sqlpool_hold_seconds_bucket{partition="acme",le="0.001"} 0
sqlpool_hold_seconds_bucket{partition="acme",le="0.0025"} 0
sqlpool_hold_seconds_bucket{partition="acme",le="0.005"} 0
sqlpool_hold_seconds_bucket{partition="acme",le="0.01"} 0
sqlpool_hold_seconds_bucket{partition="acme",le="0.025"} 0
sqlpool_hold_seconds_bucket{partition="acme",le="0.05"} 0
sqlpool_hold_seconds_bucket{partition="acme",le="0.1"} 0
sqlpool_hold_seconds_bucket{partition="acme",le="0.25"} 0
sqlpool_hold_seconds_bucket{partition="acme",le="0.5"} 0
sqlpool_hold_seconds_bucket{partition="acme",le="1"} 0
sqlpool_hold_seconds_bucket{partition="acme",le="2.5"} 0
sqlpool_hold_seconds_bucket{partition="acme",le="5"} 0
sqlpool_hold_seconds_bucket{partition="acme",le="10"} 0
sqlpool_hold_seconds_bucket{partition="acme",le="30"} 0
sqlpool_hold_seconds_bucket{partition="acme",le="60"} 0
sqlpool_hold_seconds_bucket{partition="acme",le="+Inf"} 1
sqlpool_hold_seconds_sum{partition="acme"} 90
sqlpool_hold_seconds_count{partition="acme"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(wantHold), "sqlpool_hold_seconds"); err != nil {
		t.Error(err)
	}
}

func TestCollectorReportsPoolTotalsAsTheDefaultPartitionWithoutABreakdown(t *testing.T) {
	rep := monitor.Report{Pool: monitor.PoolState{Idle: 2, InUse: 3, Waiting: 4}}
	const want = `
# HELP sqlpool_connections Physical connections open, by partition and state (idle or in_use).
# TYPE sqlpool_connections gauge
sqlpool_connections{partition="default",state="idle"} 2
sqlpool_connections{partition="default",state="in_use"} 3
# HELP sqlpool_wait_queue_length Acquisitions waiting for a connection, by partition.
# TYPE sqlpool_wait_queue_length gauge
sqlpool_wait_queue_length{partition="default"} 4
`
	c := monitor.NewCollector(func() monitor.Report { return rep })
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "sqlpool_connections", "sqlpool_wait_queue_length"); err != nil {
		t.Error(err)
	}
}

// gather collects c in a pedantic registry, failing the test on any error,
// and indexes the families by name.
func gather(t *testing.T, c prometheus.Collector) map[string]familySeries {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := map[string]familySeries{}
	for _, mf := range mfs {
		var fs familySeries
		for _, m := range mf.GetMetric() {
			s := series{labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.GetGauge() != nil:
				s.value = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				s.value = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				s.value = float64(m.GetHistogram().GetSampleCount())
			}
			fs = append(fs, s)
		}
		out[mf.GetName()] = fs
	}
	return out
}

// series is one metric: its labels, and its value (a histogram's count).
type series struct {
	labels map[string]string
	value  float64
}

type familySeries []series

// sum adds up the values of the series whose labels include the pairs
// given (name, value, name, value...).
func (fs familySeries) sum(match ...string) float64 {
	var total float64
next:
	for _, s := range fs {
		for i := 0; i+1 < len(match); i += 2 {
			if s.labels[match[i]] != match[i+1] {
				continue next
			}
		}
		total += s.value
	}
	return total
}

// partitions returns the distinct values of the partition label, sorted.
func (fs familySeries) partitions() []string {
	var names []string
	for _, s := range fs {
		if !slices.Contains(names, s.labels["partition"]) {
			names = append(names, s.labels["partition"])
		}
	}
	slices.Sort(names)
	return names
}

func TestCollectorLabelsTheMostActivePartitionsAndAddsUpTheRestAsOther(t *testing.T) {
	rep := tenantsReport(200, 0)
	c := monitor.NewCollectorWithConfig(monitor.CollectorConfig{
		Report: func() monitor.Report { return rep }, TopPartitions: 10,
	})
	got := gather(t, c)
	want := []string{monitor.OverflowPartition}
	for i := 190; i < 200; i++ {
		want = append(want, fmt.Sprintf("t%03d", i))
	}
	slices.Sort(want)
	for _, name := range []string{
		"sqlpool_connections", "sqlpool_wait_queue_length", "sqlpool_acquires_total",
		"sqlpool_acquire_wait_seconds", "sqlpool_hold_seconds",
	} {
		if p := got[name].partitions(); !slices.Equal(p, want) {
			t.Errorf("%s: partition label values %q, want the 10 most active and %q", name, p, monitor.OverflowPartition)
		}
	}

	// The sums over partitions are the totals.
	tot := rep.Metrics.Total
	for _, c := range []struct {
		what      string
		got, want float64
	}{
		{"idle connections", got["sqlpool_connections"].sum("state", "idle"), float64(rep.Pool.Idle)},
		{"connections in use", got["sqlpool_connections"].sum("state", "in_use"), float64(rep.Pool.InUse)},
		{"waiting", got["sqlpool_wait_queue_length"].sum(), float64(rep.Pool.Waiting)},
		{"attempts", got["sqlpool_acquires_total"].sum(), float64(tot.Attempts)},
		{"timeouts", got["sqlpool_acquires_total"].sum("result", "timeout"), float64(tot.Timeouts)},
		{"waits", got["sqlpool_acquire_wait_seconds"].sum(), float64(tot.Wait.Count)},
		{"holds", got["sqlpool_hold_seconds"].sum(), float64(tot.Hold.Count)},
	} {
		if c.got != c.want {
			t.Errorf("%s: the partitions add up to %v, the total is %v", c.what, c.got, c.want)
		}
	}
	other := got["sqlpool_acquires_total"].sum("partition", monitor.OverflowPartition)
	if want := float64((190 * 191) / 2); other != want {
		t.Errorf("%q made %v attempts, want %v (those of t000...t189)", monitor.OverflowPartition, other, want)
	}
}

func TestCollectorLabelsDefaultTopPartitionsApartByDefault(t *testing.T) {
	rep := tenantsReport(200, 0)
	got := gather(t, monitor.NewCollector(func() monitor.Report { return rep }))
	for _, name := range []string{"sqlpool_connections", "sqlpool_acquires_total", "sqlpool_hold_seconds"} {
		if n := len(got[name].partitions()); n != monitor.DefaultTopPartitions+1 {
			t.Errorf("%s: %d partition label values, want %d and %q", name, n, monitor.DefaultTopPartitions, monitor.OverflowPartition)
		}
	}
}

func TestAPartitionNamedLikeTheOverflowIsAddedUpWithIt(t *testing.T) {
	rep := tenantsReport(5, 0)
	rep.Pool.Partitions = append(rep.Pool.Partitions, monitor.PartitionState{Name: monitor.OverflowPartition, InUse: 7})
	rep.Pool.InUse += 7
	c := monitor.NewCollectorWithConfig(monitor.CollectorConfig{Report: func() monitor.Report { return rep }, TopPartitions: 2})
	got := gather(t, c) // no duplicate series
	// By activity (attempts, in use, waiting): t004 6, t002 5, t003 5 (after
	// t002 by name), t001 3, t000 1.
	if p := got["sqlpool_connections"].partitions(); strings.Join(p, ",") != "other,t002,t004" {
		t.Errorf("partitions %q, want other,t002,t004", p)
	}
	if n := got["sqlpool_connections"].sum("partition", monitor.OverflowPartition, "state", "in_use"); n != 7+0+1+0 {
		t.Errorf("%q has %v connections in use, want 8: its own 7 and those of t000, t001, t003", monitor.OverflowPartition, n)
	}
}

func TestHostilePartitionNamesPassAPedanticRegistry(t *testing.T) {
	rep := hostileReport()
	report := func() monitor.Report { return rep }

	t.Run("collector", func(t *testing.T) {
		got := gather(t, monitor.NewCollector(report))
		for _, name := range got["sqlpool_acquires_total"].partitions() {
			checkSafeName(t, "label", name)
		}
		if n := got["sqlpool_acquires_total"].sum(); n != float64(rep.Metrics.Total.Attempts) {
			t.Errorf("acquires add up to %v, want %d", n, rep.Metrics.Total.Attempts)
		}
		if n := got["sqlpool_connections"].sum(); n != float64(rep.Pool.InUse) {
			t.Errorf("connections add up to %v, want %d", n, rep.Pool.InUse)
		}
		if long := got["sqlpool_connections"].partitions(); !slices.ContainsFunc(long, func(s string) bool {
			return strings.HasPrefix(s, "longlong") && strings.Contains(s, "…")
		}) {
			t.Errorf("no cut long name among %q", long)
		}
		problems, err := testutil.CollectAndLint(monitor.NewCollector(report))
		if err != nil || len(problems) > 0 {
			t.Errorf("lint: %v %v", err, problems)
		}
	})

	t.Run("two long names stay apart", func(t *testing.T) {
		got := gather(t, monitor.NewCollector(report))
		n := 0
		for _, name := range got["sqlpool_connections"].partitions() {
			if strings.HasPrefix(name, "longlong") {
				n++
			}
		}
		if n != 2 {
			t.Errorf("%d label values for the two long names, want 2", n)
		}
	})
}

// BenchmarkScrapeOfManyPartitions scrapes the collector of a pool with many
// partitions: the cost of bounding them to DefaultTopPartitions.
func BenchmarkScrapeOfManyPartitions(b *testing.B) {
	base := tenantsReport(1, 0).Metrics.Partitions[0]
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("partitions=%d", n), func(b *testing.B) {
			var rep monitor.Report
			for i := range n {
				name := fmt.Sprintf("tenant-%05d", i)
				m := base
				m.Partition, m.Attempts = name, int64(i)
				rep.Metrics.Partitions = append(rep.Metrics.Partitions, m)
				rep.Pool.Partitions = append(rep.Pool.Partitions, monitor.PartitionState{Name: name, InUse: i % 3})
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(monitor.NewCollector(func() monitor.Report { return rep }))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := reg.Gather(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func ExampleNewCollector() {
	report := func() monitor.Report {
		return monitor.Report{Pool: monitor.PoolState{
			Partitions: []monitor.PartitionState{{Name: "acme", Idle: 1, InUse: 2}},
		}}
	}
	reg := prometheus.NewRegistry() // never the global one
	reg.MustRegister(monitor.NewCollector(report))

	out, _ := testutil.GatherAndFormat(reg, expfmt.TypeTextPlain, "sqlpool_connections")
	os.Stdout.WriteString(strings.TrimSpace(string(out)) + "\n")
	// Output:
	// # HELP sqlpool_connections Physical connections open, by partition and state (idle or in_use).
	// # TYPE sqlpool_connections gauge
	// sqlpool_connections{partition="acme",state="idle"} 1
	// sqlpool_connections{partition="acme",state="in_use"} 2
}
