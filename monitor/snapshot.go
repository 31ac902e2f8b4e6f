package monitor

import (
	"math"
	"strconv"
	"time"
)

// Duration is a time.Duration that is a number of seconds in JSON.
type Duration time.Duration

// Seconds returns d in seconds.
func (d Duration) Seconds() float64 { return time.Duration(d).Seconds() }

// String formats d like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a number of seconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, d.Seconds(), 'g', -1, 64), nil
}

// UnmarshalJSON reads a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return err
	}
	*d = Duration(math.Round(f * float64(time.Second)))
	return nil
}

// Snapshot is one consistent reading of a Recorder: every recorded event is
// in it whole or not at all, and Total is exactly the sum of Partitions.
type Snapshot struct {
	Time  time.Time `json:"time"`  // when it was taken
	Since time.Time `json:"since"` // when recording started or was last reset

	// Total adds up every partition; its Partition is empty.
	Total Metrics `json:"total"`
	// Partitions holds each partition's metrics, sorted by name.
	Partitions []Metrics `json:"partitions"`
	// History holds the totals' rates between consecutive samples, oldest
	// first: up to HistoryLength samples, one per SampleInterval, taken by
	// Recorder.Run (or Sample) whether or not anyone looks; when nothing
	// runs the sampler, by Snapshot calls at least SampleInterval apart.
	History []Sample `json:"history"`
}

// Partition returns the named partition's metrics.
func (s Snapshot) Partition(name string) (Metrics, bool) {
	for _, m := range s.Partitions {
		if m.Partition == name {
			return m, true
		}
	}
	return Metrics{}, false
}

// Metrics are the counters of a partition, or of all of them, since
// recording started or was last reset.
type Metrics struct {
	Partition string `json:"partition,omitempty"` // empty for the total

	Attempts  int64 `json:"acquire_attempts"` // every RecordAcquire
	Successes int64 `json:"acquire_successes"`
	Failures  int64 `json:"acquire_failures"` // Attempts less Successes
	Timeouts  int64 `json:"acquire_timeouts"`
	QueueFull int64 `json:"acquire_queue_full"`
	Canceled  int64 `json:"acquire_canceled"`
	Errors    int64 `json:"acquire_errors"`
	// SuccessRate is Successes / Attempts, 0 without attempts.
	SuccessRate float64 `json:"success_rate"`

	Releases int64 `json:"releases"`
	// Borrowed is the number of borrowings not yet released (successful
	// acquisitions less releases, whatever resets happened in between).
	Borrowed int64 `json:"borrowed"`

	// AcquiresPerSecond and ReleasesPerSecond are successful acquisitions
	// and releases per second, averaged over about the last RateWindow:
	// from the oldest sample in that window at least SampleInterval old,
	// else from the previous sample, else from Snapshot.Since.
	AcquiresPerSecond float64 `json:"acquires_per_second"`
	ReleasesPerSecond float64 `json:"releases_per_second"`

	Wait Latency `json:"wait"` // of every acquisition attempt
	Hold Latency `json:"hold"` // of every borrowing released

	// AcquisitionsByHour counts successful acquisitions by hour of day, in
	// the process's local time zone (time.Local).
	AcquisitionsByHour [24]int64 `json:"acquisitions_by_hour"`
	// PeakHour is the hour with the most acquisitions (the earliest of
	// equals), or -1 when there were none.
	PeakHour int `json:"peak_hour"`

	// StatementCacheHits and StatementCacheMisses count the lookups
	// recorded (RecordStatementCache) for the partition, by its
	// borrowings; the total's are their sums.
	StatementCacheHits   int64 `json:"statement_cache_hits"`
	StatementCacheMisses int64 `json:"statement_cache_misses"`
	// StatementCacheHitRate is hits / (hits + misses), 0 without lookups.
	StatementCacheHitRate float64 `json:"statement_cache_hit_rate"`

	LeaksDetected int64 `json:"leaks_detected"`
}

// Count returns the number of acquisition attempts that ended with res.
func (m Metrics) Count(res Result) int64 {
	switch res {
	case ResultSuccess:
		return m.Successes
	case ResultTimeout:
		return m.Timeouts
	case ResultQueueFull:
		return m.QueueFull
	case ResultCanceled:
		return m.Canceled
	}
	return m.Errors
}

// Latency summarizes recorded durations. Percentiles come from an HDR
// histogram and are within 1% of the true value (never above Max); Count,
// Sum, Mean, Max and Buckets are exact.
type Latency struct {
	Count int64    `json:"count"`
	Sum   Duration `json:"sum_seconds"`
	Mean  Duration `json:"mean_seconds"`
	P50   Duration `json:"p50_seconds"`
	P95   Duration `json:"p95_seconds"`
	P99   Duration `json:"p99_seconds"`
	Max   Duration `json:"max_seconds"`
	// Buckets are cumulative counts at fixed upper bounds, from 100 µs to
	// one minute, as a Prometheus histogram has them; values above the last
	// bound are counted only in Count.
	Buckets []Bucket `json:"buckets,omitempty"`
}

// Bucket is one cumulative histogram bucket.
type Bucket struct {
	UpperBound float64 `json:"le"`    // seconds
	Count      int64   `json:"count"` // values ≤ UpperBound
}

// Sample is the totals' activity between two samples.
type Sample struct {
	Time              time.Time `json:"time"` // the end of the interval
	AcquiresPerSecond float64   `json:"acquires_per_second"`
	ReleasesPerSecond float64   `json:"releases_per_second"`
	FailuresPerSecond float64   `json:"failures_per_second"` // failed attempts
	Borrowed          int64     `json:"borrowed"`            // at Time
}

// Snapshot returns the recorder's counters, histograms and rates. It locks
// each stripe of each partition in turn, briefly; recording goes on
// meanwhile. Calls are serialized, and each one may take a sample for the
// rates, and for the history unless Sample has been called.
func (r *Recorder) Snapshot() Snapshot {
	r.snapMu.Lock()
	defer r.snapMu.Unlock()
	now := r.now()
	r.mu.RLock()
	ps := r.partitionsLocked()
	r.mu.RUnlock()

	s := Snapshot{Time: now, Since: r.start, Partitions: make([]Metrics, 0, len(ps))}
	var total counts
	r.totalWait.Reset()
	r.totalHold.Reset()
	total.wait.h, total.hold.h = r.totalWait, r.totalHold
	for _, p := range ps {
		// The partition's histograms are read (metrics) and merged into
		// the total (add) before the next partition reuses them.
		c := p.collect(r.partWait, r.partHold)
		m := c.metrics(p.name)
		cur := c.point(now)
		m.AcquiresPerSecond, m.ReleasesPerSecond = p.samples.rates(cur, r.start)
		p.samples.push(cur)
		s.Partitions = append(s.Partitions, m)
		total.add(&c)
	}
	s.Total = total.metrics("")
	cur := total.point(now)
	s.Total.AcquiresPerSecond, s.Total.ReleasesPerSecond = r.history.rates(cur, r.start)
	if !r.sampled {
		r.history.push(cur)
	}
	s.History = r.history.samples()
	return s
}

func (c *counts) point(t time.Time) point {
	var attempts int64
	for _, n := range c.acquires {
		attempts += n
	}
	ok := c.acquires[ResultSuccess]
	return point{t: t, successes: ok, releases: c.releases, failed: attempts - ok, borrowed: c.borrowed}
}

func (c *counts) metrics(partition string) Metrics {
	m := Metrics{
		Partition: partition,
		Successes: c.acquires[ResultSuccess],
		Timeouts:  c.acquires[ResultTimeout],
		QueueFull: c.acquires[ResultQueueFull],
		Canceled:  c.acquires[ResultCanceled],
		Errors:    c.acquires[ResultError],
		Releases:  c.releases,
		Borrowed:  c.borrowed,
		Wait:      c.wait.summary(),
		Hold:      c.hold.summary(),

		AcquisitionsByHour:   c.byHour,
		PeakHour:             -1,
		StatementCacheHits:   c.stmtHits,
		StatementCacheMisses: c.stmtMisses,
		LeaksDetected:        c.leaks,
	}
	for _, n := range c.acquires {
		m.Attempts += n
	}
	m.Failures = m.Attempts - m.Successes
	m.SuccessRate = ratio(m.Successes, m.Attempts)
	m.StatementCacheHitRate = ratio(c.stmtHits, c.stmtHits+c.stmtMisses)
	var peak int64
	for h, n := range c.byHour {
		if n > peak {
			m.PeakHour, peak = h, n
		}
	}
	return m
}

func ratio(n, d int64) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// samples returns the activity between consecutive samples.
func (r *ring) samples() []Sample {
	if r.n < 2 {
		return []Sample{}
	}
	out := make([]Sample, 0, r.n-1)
	prev := r.at(0)
	for i := 1; i < r.n; i++ {
		p := r.at(i)
		dt := p.t.Sub(prev.t).Seconds()
		out = append(out, Sample{
			Time:              p.t,
			AcquiresPerSecond: float64(p.successes-prev.successes) / dt,
			ReleasesPerSecond: float64(p.releases-prev.releases) / dt,
			FailuresPerSecond: float64(p.failed-prev.failed) / dt,
			Borrowed:          p.borrowed,
		})
		prev = p
	}
	return out
}
