package monitor_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

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
		"sqlpool_statement_cache_misses_total", "sqlpool_wait_queue_length")
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
