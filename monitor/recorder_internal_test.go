package monitor

import (
	"testing"
	"time"
	_ "time/tzdata" // the zones below, whatever the machine has
)

// TestHourCacheAgreesWithTimeHour walks two days in 7-minute steps, across
// both daylight-saving changes of New York and in a half-hour zone, and
// checks the cached hour against Time.Hour at every step, in order and
// going back.
func TestHourCacheAgreesWithTimeHour(t *testing.T) {
	for _, zone := range []string{"America/New_York", "Asia/Kolkata", "UTC"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		for _, day := range []time.Time{
			time.Date(2026, 3, 7, 12, 0, 0, 0, loc),   // spring forward on the 8th
			time.Date(2026, 10, 31, 12, 0, 0, 0, loc), // fall back on November 1st
		} {
			var c hourCache
			var steps []time.Time
			for tt := day; tt.Before(day.Add(48 * time.Hour)); tt = tt.Add(7*time.Minute + 13*time.Second) {
				steps = append(steps, tt)
			}
			for _, tt := range append(steps, steps[len(steps)/3], steps[0]) { // then back in time
				if got, want := c.of(tt), tt.Hour(); got != want {
					t.Fatalf("%s: hour of %v = %d, want %d", zone, tt, got, want)
				}
				if u := tt.UTC(); c.of(u) != u.Hour() { // the same instant elsewhere
					t.Fatalf("%s: hour of %v = %d, want %d", zone, u, c.of(u), u.Hour())
				}
			}
		}
	}
}

// TestZeroValuesCountInThePercentiles checks that values under 1 µs, kept
// apart from the HDR histogram, still count in its percentiles and buckets.
func TestZeroValuesCountInThePercentiles(t *testing.T) {
	var l latency
	for range 90 {
		l.record(0)
	}
	for range 10 {
		l.record(5 * time.Millisecond)
	}
	a := latencySum{h: newHistogram()}
	a.add(&l)
	got := a.summary()
	if got.Count != 100 || got.P50 != 0 || got.P95 < Duration(4900*time.Microsecond) || got.Buckets[0].Count != 90 {
		t.Errorf("count %d, p50 %v, p95 %v, first bucket %d; want 100, 0, 5ms, 90", got.Count, got.P50, got.P95, got.Buckets[0].Count)
	}
	only := latency{}
	only.record(300 * time.Nanosecond)
	b := latencySum{h: newHistogram()}
	b.add(&only)
	if s := b.summary(); s.Count != 1 || s.P99 != 0 {
		t.Errorf("a sub-µs value alone: count %d, p99 %v; want 1, 0", s.Count, s.P99)
	}
}
