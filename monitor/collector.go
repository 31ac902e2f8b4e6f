//go:build !sqlpool_noprometheus

package monitor

import (
	"github.com/prometheus/client_golang/prometheus"
)

// NewCollector returns a prometheus.Collector that calls report once per
// scrape and emits constant metrics from it. It registers nothing: register
// it where you want it. The metrics:
//
//	sqlpool_connections{partition,state}           gauge: state idle or in_use
//	sqlpool_max_connections                        gauge: the pool's MaxSize
//	sqlpool_wait_queue_length{partition}           gauge
//	sqlpool_leaked_connections                     gauge: borrowings held past the leak threshold now
//	sqlpool_acquires_total{partition,result}       counter: result success, timeout, queue_full, canceled, error
//	sqlpool_acquire_wait_seconds{partition}        histogram: wait of every acquisition attempt
//	sqlpool_hold_seconds{partition}                histogram: time each borrowing held its connection
//	sqlpool_connections_created_total              counter
//	sqlpool_connect_errors_total                   counter
//	sqlpool_connections_closed_total{reason}       counter
//	sqlpool_statement_cache_hits_total             counter
//	sqlpool_statement_cache_misses_total           counter
//	sqlpool_leaks_detected_total                   counter
//	sqlpool_circuit_open                           gauge: 1 while the circuit breaker is open, else 0
//	sqlpool_circuit_opens_total                    counter: times the circuit breaker opened
//	sqlpool_circuit_refused_total                  counter: acquisitions refused by the open circuit
//
// The histograms' buckets are exact counts kept beside the HDR histograms,
// at bounds from 100 µs to one minute (see Latency.Buckets); their sums are
// exact too.
//
// The partition label takes at most DefaultTopPartitions+1 values: the most
// active partitions, and OverflowPartition adding up the rest, so that the
// sum over partitions stays the pool's total (see CollectorConfig). Its
// values are valid UTF-8 without control characters, at most MaxNameLength
// bytes, whatever names the pool was given.
func NewCollector(report func() Report) prometheus.Collector {
	return NewCollectorWithConfig(CollectorConfig{Report: report})
}

// CollectorConfig configures NewCollectorWithConfig.
type CollectorConfig struct {
	// Report returns the pool's current Report; it is called once per
	// scrape. Required.
	Report func() Report
	// TopPartitions is the number of partitions labeled apart: the most
	// active ones, by acquisition attempts since the statistics started
	// plus connections in use and acquisitions waiting now. The others
	// are added up under the partition label OverflowPartition. A
	// partition that enters or leaves the top moves its counts between its
	// own series and OverflowPartition's, which Prometheus reads as a
	// counter reset: choose a bound above the number of partitions you
	// want to follow. Zero or negative: DefaultTopPartitions (50).
	TopPartitions int
}

// NewCollectorWithConfig is NewCollector with a configurable bound on the
// partition label. It panics if cfg.Report is nil.
func NewCollectorWithConfig(cfg CollectorConfig) prometheus.Collector {
	if cfg.Report == nil {
		panic("monitor: NewCollectorWithConfig: CollectorConfig.Report is nil")
	}
	if cfg.TopPartitions <= 0 {
		cfg.TopPartitions = DefaultTopPartitions
	}
	return newCollector(cfg.Report, cfg.TopPartitions)
}

// newCollector returns the collector of report that labels top partitions
// apart (unbounded: all of them, their names made safe).
func newCollector(report func() Report, top int) *collector {
	return &collector{
		report: report,
		top:    top,
		connections: prometheus.NewDesc("sqlpool_connections",
			"Physical connections open, by partition and state (idle or in_use).",
			[]string{"partition", "state"}, nil),
		maxConnections: prometheus.NewDesc("sqlpool_max_connections",
			"The pool's cap on open connections (MaxSize).", nil, nil),
		queue: prometheus.NewDesc("sqlpool_wait_queue_length",
			"Acquisitions waiting for a connection, by partition.",
			[]string{"partition"}, nil),
		leaked: prometheus.NewDesc("sqlpool_leaked_connections",
			"Borrowings currently held past the leak threshold.", nil, nil),
		acquires: prometheus.NewDesc("sqlpool_acquires_total",
			"Acquisition attempts, by partition and result (success, timeout, queue_full, canceled, error).",
			[]string{"partition", "result"}, nil),
		wait: prometheus.NewDesc("sqlpool_acquire_wait_seconds",
			"Time each acquisition attempt waited, whatever its result, by partition.",
			[]string{"partition"}, nil),
		hold: prometheus.NewDesc("sqlpool_hold_seconds",
			"Time each borrowing held its connection, by partition.",
			[]string{"partition"}, nil),
		created: prometheus.NewDesc("sqlpool_connections_created_total",
			"Physical connections dialed.", nil, nil),
		connectErrors: prometheus.NewDesc("sqlpool_connect_errors_total",
			"Dials that failed.", nil, nil),
		closed: prometheus.NewDesc("sqlpool_connections_closed_total",
			"Physical connections closed, by reason.", []string{"reason"}, nil),
		cacheHits: prometheus.NewDesc("sqlpool_statement_cache_hits_total",
			"Statement-cache lookups that found a prepared statement.", nil, nil),
		cacheMisses: prometheus.NewDesc("sqlpool_statement_cache_misses_total",
			"Statement-cache lookups that had to prepare the statement.", nil, nil),
		leaks: prometheus.NewDesc("sqlpool_leaks_detected_total",
			"Borrowings detected held past the leak threshold.", nil, nil),
		circuitOpen: prometheus.NewDesc("sqlpool_circuit_open",
			"1 while the circuit breaker is open (acquisitions that need a new connection are refused), else 0.", nil, nil),
		circuitOpens: prometheus.NewDesc("sqlpool_circuit_opens_total",
			"Times the circuit breaker opened.", nil, nil),
		circuitRefused: prometheus.NewDesc("sqlpool_circuit_refused_total",
			"Acquisitions refused at once by the open circuit breaker.", nil, nil),
	}
}

// collector is the Collector of NewCollector. Its Descs are built once.
type collector struct {
	report func() Report
	top    int // partitions labeled apart

	connections, maxConnections, queue, leaked *prometheus.Desc
	acquires, wait, hold                       *prometheus.Desc
	created, connectErrors, closed             *prometheus.Desc
	cacheHits, cacheMisses, leaks              *prometheus.Desc
	circuitOpen, circuitOpens, circuitRefused  *prometheus.Desc
}

// Describe sends every Desc.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.connections, c.maxConnections, c.queue, c.leaked,
		c.acquires, c.wait, c.hold,
		c.created, c.connectErrors, c.closed,
		c.cacheHits, c.cacheMisses, c.leaks,
		c.circuitOpen, c.circuitOpens, c.circuitRefused,
	} {
		ch <- d
	}
}

// Collect takes one report and sends its metrics.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	// Partition names come from requests: boundReport makes them valid
	// label values, unique, and few. Should a label value still be
	// invalid (a closing reason, say), it fails that one metric, not the
	// whole scrape.
	r := boundReport(c.report(), c.top, unbounded)
	send := func(d *prometheus.Desc, m prometheus.Metric, err error) {
		if err != nil {
			m = prometheus.NewInvalidMetric(d, err)
		}
		ch <- m
	}
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		m, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
		send(d, m, err)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		m, err := prometheus.NewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
		send(d, m, err)
	}
	histogram := func(d *prometheus.Desc, l Latency, labels ...string) {
		buckets := make(map[float64]uint64, len(l.Buckets))
		for _, b := range l.Buckets {
			buckets[b.UpperBound] = uint64(b.Count)
		}
		m, err := prometheus.NewConstHistogram(d, uint64(l.Count), l.Sum.Seconds(), buckets, labels...)
		send(d, m, err)
	}

	for _, p := range r.Pool.partitionStates() {
		gauge(c.connections, p.Idle, p.Name, "idle")
		gauge(c.connections, p.InUse, p.Name, "in_use")
		gauge(c.queue, p.Waiting, p.Name)
	}
	gauge(c.maxConnections, r.Pool.MaxSize)
	gauge(c.leaked, len(r.Leaks)+r.OmittedLeaks)
	counter(c.created, r.Pool.Created)
	counter(c.connectErrors, r.Pool.ConnectErrors)
	for reason, n := range r.Pool.Closed {
		counter(c.closed, n, reason)
	}
	gauge(c.circuitOpen, r.Pool.circuitOpen())
	counter(c.circuitOpens, r.Pool.CircuitOpens)
	counter(c.circuitRefused, r.Pool.CircuitRefused)

	for _, m := range r.Metrics.Partitions {
		for res := range numResults {
			counter(c.acquires, m.Count(res), m.Partition, res.String())
		}
		histogram(c.wait, m.Wait, m.Partition)
		histogram(c.hold, m.Hold, m.Partition)
	}
	t := r.Metrics.Total
	counter(c.cacheHits, t.StatementCacheHits)
	counter(c.cacheMisses, t.StatementCacheMisses)
	counter(c.leaks, t.LeaksDetected)
}
