package monitor_test

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/sqlpool/sqlpool/monitor"
)

// at1430 is a fixed local time, 14:30.
var at1430 = time.Date(2025, 3, 4, 14, 30, 0, 0, time.Local)

func newTestRecorder() (*monitor.Recorder, *clock) {
	c := newClock(at1430)
	return monitor.NewRecorderWithClock(monitor.RecorderConfig{}, c.Now), c
}

func partition(t *testing.T, s monitor.Snapshot, name string) monitor.Metrics {
	t.Helper()
	m, ok := s.Partition(name)
	if !ok {
		t.Fatalf("snapshot has no partition %q; it has %v", name, s.Partitions)
	}
	return m
}

func TestEachRecordMovesItsCounters(t *testing.T) {
	tests := []struct {
		name   string
		record func(p *monitor.PartitionRecorder)
		check  func(m monitor.Metrics) bool
	}{
		{"success", func(p *monitor.PartitionRecorder) { p.RecordAcquire(time.Millisecond, monitor.ResultSuccess) },
			func(m monitor.Metrics) bool {
				return m.Attempts == 1 && m.Successes == 1 && m.Failures == 0 && m.Borrowed == 1 &&
					m.Wait.Count == 1 && m.AcquisitionsByHour[14] == 1 && m.PeakHour == 14 && m.SuccessRate == 1
			}},
		{"timeout", func(p *monitor.PartitionRecorder) { p.RecordAcquire(time.Second, monitor.ResultTimeout) },
			func(m monitor.Metrics) bool {
				return m.Attempts == 1 && m.Timeouts == 1 && m.Failures == 1 && m.Successes == 0 &&
					m.Borrowed == 0 && m.Wait.Count == 1 && m.PeakHour == -1 && m.SuccessRate == 0
			}},
		{"queue full", func(p *monitor.PartitionRecorder) { p.RecordAcquire(0, monitor.ResultQueueFull) },
			func(m monitor.Metrics) bool { return m.Attempts == 1 && m.QueueFull == 1 && m.Failures == 1 }},
		{"canceled", func(p *monitor.PartitionRecorder) { p.RecordAcquire(0, monitor.ResultCanceled) },
			func(m monitor.Metrics) bool { return m.Attempts == 1 && m.Canceled == 1 && m.Failures == 1 }},
		{"error", func(p *monitor.PartitionRecorder) { p.RecordAcquire(0, monitor.ResultError) },
			func(m monitor.Metrics) bool { return m.Attempts == 1 && m.Errors == 1 && m.Failures == 1 }},
		{"out-of-range result counts as error", func(p *monitor.PartitionRecorder) { p.RecordAcquire(0, monitor.Result(200)) },
			func(m monitor.Metrics) bool { return m.Attempts == 1 && m.Errors == 1 }},
		{"release", func(p *monitor.PartitionRecorder) { p.RecordRelease(time.Millisecond) },
			func(m monitor.Metrics) bool {
				return m.Releases == 1 && m.Borrowed == -1 && m.Hold.Count == 1 && m.Attempts == 0
			}},
		{"statement cache hit", func(p *monitor.PartitionRecorder) { p.RecordStatementCache(true) },
			func(m monitor.Metrics) bool {
				return m.StatementCacheHits == 1 && m.StatementCacheMisses == 0 && m.StatementCacheHitRate == 1
			}},
		{"statement cache miss", func(p *monitor.PartitionRecorder) { p.RecordStatementCache(false) },
			func(m monitor.Metrics) bool {
				return m.StatementCacheHits == 0 && m.StatementCacheMisses == 1 && m.StatementCacheHitRate == 0
			}},
		{"leak", func(p *monitor.PartitionRecorder) { p.RecordLeak() },
			func(m monitor.Metrics) bool { return m.LeaksDetected == 1 && m.Attempts == 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newTestRecorder()
			tt.record(r.Partition("acme"))
			s := r.Snapshot()
			if m := partition(t, s, "acme"); !tt.check(m) {
				t.Errorf("partition metrics after %s: %+v", tt.name, m)
			}
			if !tt.check(s.Total) {
				t.Errorf("total metrics after %s: %+v", tt.name, s.Total)
			}
		})
	}
}

func TestRecorderConvenienceMethodsRecordOnTheNamedPartition(t *testing.T) {
	r, _ := newTestRecorder()
	r.RecordAcquire("acme", time.Millisecond, monitor.ResultSuccess)
	r.RecordRelease("acme", time.Millisecond)
	r.RecordStatementCache("acme", true)
	r.RecordLeak("acme")
	m := partition(t, r.Snapshot(), "acme")
	if m.Successes != 1 || m.Releases != 1 || m.StatementCacheHits != 1 || m.LeaksDetected != 1 || m.Borrowed != 0 {
		t.Errorf("metrics: %+v", m)
	}
}

func TestTotalIsTheSumOfPartitions(t *testing.T) {
	r, _ := newTestRecorder()
	for i, name := range []string{"a", "b", "c"} {
		p := r.Partition(name)
		for j := 0; j <= i; j++ {
			p.RecordAcquire(time.Duration(j+1)*time.Millisecond, monitor.ResultSuccess)
			p.RecordAcquire(time.Second, monitor.ResultTimeout)
			p.RecordRelease(time.Duration(10*(j+1)) * time.Millisecond)
			p.RecordStatementCache(j%2 == 0)
		}
	}
	s := r.Snapshot()
	if len(s.Partitions) != 3 || s.Partitions[0].Partition != "a" || s.Partitions[2].Partition != "c" {
		t.Fatalf("partitions not sorted by name: %+v", s.Partitions)
	}
	var sum monitor.Metrics
	for _, m := range s.Partitions {
		sum.Successes += m.Successes
		sum.Timeouts += m.Timeouts
		sum.Releases += m.Releases
		sum.Wait.Count += m.Wait.Count
		sum.Wait.Sum += m.Wait.Sum
		sum.Hold.Count += m.Hold.Count
		sum.StatementCacheHits += m.StatementCacheHits
	}
	tot := s.Total
	if tot.Partition != "" || tot.Successes != 6 || sum.Successes != 6 || tot.Timeouts != sum.Timeouts ||
		tot.Releases != sum.Releases || tot.Wait.Count != 12 || tot.Wait.Sum != sum.Wait.Sum ||
		tot.Hold.Count != sum.Hold.Count || tot.StatementCacheHits != sum.StatementCacheHits {
		t.Errorf("total %+v is not the sum %+v", tot, sum)
	}
	if tot.Wait.Max != monitor.Duration(time.Second) || tot.Hold.Max != monitor.Duration(30*time.Millisecond) {
		t.Errorf("total max wait %v, hold %v; want 1s, 30ms", tot.Wait.Max, tot.Hold.Max)
	}
}

func TestPercentilesMatchKnownInputs(t *testing.T) {
	r, _ := newTestRecorder()
	p := r.Partition("acme")
	// 1 ms, 2 ms, ... 1000 ms, in a scrambled order.
	for i := range 1000 {
		v := (i*7919)%1000 + 1
		p.RecordAcquire(time.Duration(v)*time.Millisecond, monitor.ResultSuccess)
		p.RecordRelease(time.Duration(v) * time.Microsecond * 10)
	}
	w := partition(t, r.Snapshot(), "acme").Wait
	near := func(name string, got monitor.Duration, want time.Duration) {
		t.Helper()
		if rel := math.Abs(got.Seconds()-want.Seconds()) / want.Seconds(); rel > 0.01 {
			t.Errorf("%s = %v, want %v within 1%%", name, got, want)
		}
	}
	near("p50", w.P50, 500*time.Millisecond)
	near("p95", w.P95, 950*time.Millisecond)
	near("p99", w.P99, 990*time.Millisecond)
	if w.Max != monitor.Duration(time.Second) {
		t.Errorf("max = %v, want exactly 1s", w.Max)
	}
	if w.Mean != monitor.Duration(500500*time.Microsecond) || w.Count != 1000 || w.Sum != monitor.Duration(500500*time.Millisecond) {
		t.Errorf("mean %v, count %d, sum %v; want 500.5ms, 1000, 500.5s", w.Mean, w.Count, w.Sum)
	}
	if w.P50 > w.P95 || w.P95 > w.P99 || w.P99 > w.Max {
		t.Errorf("percentiles out of order: %+v", w)
	}
}

func TestPercentilesNeverExceedTheMaximum(t *testing.T) {
	r, _ := newTestRecorder()
	p := r.Partition("acme")
	p.RecordAcquire(1234567*time.Nanosecond, monitor.ResultSuccess)
	w := partition(t, r.Snapshot(), "acme").Wait
	if w.P99 > w.Max || w.Max != monitor.Duration(1234567*time.Nanosecond) {
		t.Errorf("p99 %v, max %v: want p99 ≤ max = 1.234567ms", w.P99, w.Max)
	}
}

func TestBucketsAreCumulativeAndExactAtTheirBounds(t *testing.T) {
	r, _ := newTestRecorder()
	p := r.Partition("acme")
	for _, d := range []time.Duration{0, 100 * time.Microsecond, 101 * time.Microsecond, time.Millisecond, time.Minute, time.Hour} {
		p.RecordAcquire(d, monitor.ResultSuccess)
	}
	w := partition(t, r.Snapshot(), "acme").Wait
	want := map[float64]int64{0.0001: 2, 0.00025: 3, 0.001: 4, 60: 5}
	for _, b := range w.Buckets {
		if n, ok := want[b.UpperBound]; ok && b.Count != n {
			t.Errorf("bucket le=%g: %d, want %d", b.UpperBound, b.Count, n)
		}
	}
	if last := w.Buckets[len(w.Buckets)-1]; last.UpperBound != 60 || w.Count != 6 {
		t.Errorf("last bucket %+v, count %d: the hour-long wait counts only in Count", last, w.Count)
	}
	for i := 1; i < len(w.Buckets); i++ {
		if w.Buckets[i].Count < w.Buckets[i-1].Count || w.Buckets[i].UpperBound <= w.Buckets[i-1].UpperBound {
			t.Fatalf("buckets not cumulative: %+v", w.Buckets)
		}
	}
}

func TestAcquisitionsAreCountedByLocalHourWithThePeak(t *testing.T) {
	r, c := newTestRecorder()
	p := r.Partition("acme")
	p.RecordAcquire(0, monitor.ResultSuccess) // 14:30
	c.Advance(time.Hour)
	for range 3 {
		p.RecordAcquire(0, monitor.ResultSuccess) // 15:30
	}
	p.RecordAcquire(0, monitor.ResultTimeout) // failures do not count
	c.Advance(10 * time.Hour)
	p.RecordAcquire(0, monitor.ResultSuccess) // 01:30 the next day
	m := partition(t, r.Snapshot(), "acme")
	if m.AcquisitionsByHour[14] != 1 || m.AcquisitionsByHour[15] != 3 || m.AcquisitionsByHour[1] != 1 || m.PeakHour != 15 {
		t.Errorf("by hour %v, peak %d; want 14:1 15:3 1:1, peak 15", m.AcquisitionsByHour, m.PeakHour)
	}
}

func TestRatesAreAveragedOverTheWindow(t *testing.T) {
	r, c := newTestRecorder()
	p := r.Partition("acme")
	// Before any sample, rates run from the recorder's start.
	c.Advance(2 * time.Second)
	for range 10 {
		p.RecordAcquire(0, monitor.ResultSuccess)
	}
	s := r.Snapshot()
	if s.Total.AcquiresPerSecond != 5 || partition(t, s, "acme").AcquiresPerSecond != 5 {
		t.Errorf("first rates: total %v, acme %v; want 5/s", s.Total.AcquiresPerSecond, partition(t, s, "acme").AcquiresPerSecond)
	}
	// Then from the oldest sample in the window, one a second.
	for range 4 {
		c.Advance(time.Second)
		for range 20 {
			p.RecordAcquire(0, monitor.ResultSuccess)
			p.RecordRelease(0)
		}
		s = r.Snapshot()
	}
	if s.Total.AcquiresPerSecond != 20 || s.Total.ReleasesPerSecond != 20 {
		t.Errorf("steady rates %v, %v; want 20/s", s.Total.AcquiresPerSecond, s.Total.ReleasesPerSecond)
	}
	// A snapshot within SampleInterval of the last takes no sample.
	c.Advance(100 * time.Millisecond)
	s = r.Snapshot()
	if n := len(s.History); n != 4 {
		t.Errorf("history has %d samples, want 4 (5 samples, 4 intervals)", n)
	}
	for _, h := range s.History {
		if h.AcquiresPerSecond != 20 || h.ReleasesPerSecond != 20 || h.FailuresPerSecond != 0 {
			t.Errorf("history sample %+v, want 20/s", h)
		}
	}
	// A rare caller gets the rate since the previous sample.
	c.Advance(time.Minute)
	for range 120 {
		p.RecordAcquire(0, monitor.ResultTimeout)
		p.RecordAcquire(0, monitor.ResultSuccess)
	}
	s = r.Snapshot()
	if got := s.Total.AcquiresPerSecond; math.Abs(got-120/60.1) > 1e-9 {
		t.Errorf("rate after a minute: %v, want %v", got, 120/60.1)
	}
	if last := s.History[len(s.History)-1]; math.Abs(last.FailuresPerSecond-120/60.1) > 1e-9 {
		t.Errorf("last history sample %+v, want failures 120/60.1 s", last)
	}
}

func TestHistoryKeepsTheLastFiveMinutes(t *testing.T) {
	r, c := newTestRecorder()
	for range monitor.HistoryLength + 50 {
		c.Advance(time.Second)
		r.Snapshot()
	}
	s := r.Snapshot()
	if len(s.History) != monitor.HistoryLength {
		t.Fatalf("history length %d, want %d", len(s.History), monitor.HistoryLength)
	}
	if first := s.History[0].Time; s.Time.Sub(first) != time.Duration(monitor.HistoryLength-1)*time.Second {
		t.Errorf("oldest sample at %v, %v before the newest", first, s.Time.Sub(first))
	}
}

func TestResetZeroesAllButBorrowed(t *testing.T) {
	r, c := newTestRecorder()
	p := r.Partition("acme")
	p.RecordAcquire(time.Millisecond, monitor.ResultSuccess)
	p.RecordAcquire(time.Millisecond, monitor.ResultSuccess)
	p.RecordRelease(time.Millisecond)
	p.RecordStatementCache(true)
	p.RecordLeak()
	c.Advance(time.Second)
	r.Snapshot()
	c.Advance(time.Second)
	r.Reset()
	s := r.Snapshot()
	m := partition(t, s, "acme")
	if m.Attempts != 0 || m.Releases != 0 || m.Wait.Count != 0 || m.Hold.Count != 0 || m.StatementCacheHits != 0 ||
		m.LeaksDetected != 0 || m.AcquisitionsByHour[14] != 0 || m.Wait.P99 != 0 || len(s.History) != 0 {
		t.Errorf("after Reset: %+v, history %v", m, s.History)
	}
	if m.Borrowed != 1 {
		t.Errorf("borrowed after Reset: %d, want 1 (one borrowing is still out)", m.Borrowed)
	}
	if !s.Since.Equal(at1430.Add(2 * time.Second)) {
		t.Errorf("Since = %v, want the time of Reset", s.Since)
	}
	p.RecordRelease(time.Millisecond)
	if m := partition(t, r.Snapshot(), "acme"); m.Borrowed != 0 || m.Releases != 1 {
		t.Errorf("after the last release: %+v", m)
	}
}

func TestTheEmptyPartitionNameIsDefault(t *testing.T) {
	r, _ := newTestRecorder()
	if p := r.Partition(""); p.Name() != monitor.DefaultPartition || p != r.Partition(monitor.DefaultPartition) {
		t.Errorf("Partition(\"\") = %q", p.Name())
	}
}

func TestPartitionsBeyondTheCapShareTheOverflowPartition(t *testing.T) {
	r := monitor.NewRecorder(monitor.RecorderConfig{MaxPartitions: 2})
	a, b := r.Partition("a"), r.Partition("b")
	c, d := r.Partition("c"), r.Partition("d")
	if a.Name() != "a" || b.Name() != "b" || c != d || c.Name() != monitor.OverflowPartition {
		t.Fatalf("partitions %q %q %q %q", a.Name(), b.Name(), c.Name(), d.Name())
	}
	if r.Partition("a") != a || r.Partition(monitor.OverflowPartition) != c {
		t.Error("lookups after the cap changed the known partitions")
	}
	if allocs := testing.AllocsPerRun(100, func() { r.Partition("e") }); allocs != 0 {
		t.Errorf("looking up an overflowing name: %v allocations, want 0", allocs)
	}
	c.RecordAcquire(0, monitor.ResultSuccess)
	d.RecordAcquire(0, monitor.ResultSuccess)
	s := r.Snapshot()
	if len(s.Partitions) != 3 || partition(t, s, monitor.OverflowPartition).Successes != 2 {
		t.Errorf("partitions %+v", s.Partitions)
	}
}

func TestResultsHaveTheirLabelValues(t *testing.T) {
	want := map[monitor.Result]string{
		monitor.ResultSuccess: "success", monitor.ResultTimeout: "timeout", monitor.ResultQueueFull: "queue_full",
		monitor.ResultCanceled: "canceled", monitor.ResultError: "error", monitor.Result(99): "error",
	}
	for r, s := range want {
		if r.String() != s {
			t.Errorf("Result(%d).String() = %q, want %q", r, r.String(), s)
		}
	}
}

func TestConcurrentRecordingLosesNothing(t *testing.T) {
	r := monitor.NewRecorder(monitor.RecorderConfig{})
	const goroutines, n = 8, 2000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	snapshots := make(chan struct{})
	go func() { // snapshots run alongside, and must be consistent
		defer close(snapshots)
		for {
			select {
			case <-stop:
				return
			default:
			}
			s := r.Snapshot()
			if s.Total.Wait.Count != s.Total.Attempts || s.Total.Hold.Count != s.Total.Releases {
				t.Errorf("inconsistent snapshot: %d attempts, %d waits; %d releases, %d holds",
					s.Total.Attempts, s.Total.Wait.Count, s.Total.Releases, s.Total.Hold.Count)
				return
			}
		}
	}()
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := r.Partition([]string{"a", "b"}[g%2])
			for i := range n {
				p.RecordAcquire(time.Duration(i)*time.Microsecond, monitor.ResultSuccess)
				p.RecordRelease(time.Microsecond)
				p.RecordStatementCache(i%4 != 0)
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-snapshots
	s := r.Snapshot()
	const total = goroutines * n
	if s.Total.Successes != total || s.Total.Releases != total || s.Total.Borrowed != 0 ||
		s.Total.Wait.Count != total || s.Total.StatementCacheHits != total*3/4 {
		t.Errorf("after %d records: %+v", total, s.Total)
	}
	if a := partition(t, s, "a"); a.Successes != total/2 {
		t.Errorf("partition a: %d successes, want %d", a.Successes, total/2)
	}
}

func TestRecordingOnAnExistingPartitionAllocatesNothing(t *testing.T) {
	r := monitor.NewRecorder(monitor.RecorderConfig{})
	p := r.Partition("acme")
	p.RecordAcquire(time.Millisecond, monitor.ResultSuccess) // creates the stripe's histograms
	p.RecordRelease(time.Millisecond)
	tests := map[string]func(){
		"PartitionRecorder.RecordAcquire": func() { p.RecordAcquire(3*time.Millisecond, monitor.ResultSuccess) },
		"PartitionRecorder.RecordRelease": func() { p.RecordRelease(5 * time.Millisecond) },
		"PartitionRecorder.RecordAcquire timeout": func() {
			p.RecordAcquire(time.Second, monitor.ResultTimeout)
		},
		"PartitionRecorder.RecordStatementCache": func() { p.RecordStatementCache(true) },
		"PartitionRecorder.RecordLeak":           func() { p.RecordLeak() },
		"Recorder.Partition":                     func() { r.Partition("acme") },
		"Recorder.RecordAcquire":                 func() { r.RecordAcquire("acme", time.Millisecond, monitor.ResultSuccess) },
		"Recorder.RecordRelease":                 func() { r.RecordRelease("acme", time.Millisecond) },
	}
	for name, f := range tests {
		if allocs := testing.AllocsPerRun(1000, f); allocs != 0 {
			t.Errorf("%s: %v allocations per call, want 0", name, allocs)
		}
	}
}

func BenchmarkRecord(b *testing.B) {
	r := monitor.NewRecorder(monitor.RecorderConfig{})
	p := r.Partition("acme")
	b.Run("acquire+release", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p.RecordAcquire(time.Millisecond, monitor.ResultSuccess)
			p.RecordRelease(time.Millisecond)
		}
	})
	b.Run("acquire+release/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				p.RecordAcquire(time.Millisecond, monitor.ResultSuccess)
				p.RecordRelease(time.Millisecond)
			}
		})
	})
	b.Run("lookup+acquire+release", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r.RecordAcquire("acme", time.Millisecond, monitor.ResultSuccess)
			r.RecordRelease("acme", time.Millisecond)
		}
	})
}

func BenchmarkSnapshot(b *testing.B) {
	r := monitor.NewRecorder(monitor.RecorderConfig{})
	for _, name := range []string{"a", "b", "c", "d"} {
		for i := range 1000 {
			r.RecordAcquire(name, time.Duration(i)*time.Microsecond, monitor.ResultSuccess)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Snapshot()
	}
}
