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
			}
		}
	}
}
