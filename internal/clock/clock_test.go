package clock

import (
	"testing"
	"time"
)

// TestNowFollowsTimeNow checks that Now's readings lie between time.Now's
// taken around them, on both clocks, and never go back.
func TestNowFollowsTimeNow(t *testing.T) {
	last := Now()
	for range 1000 {
		before := time.Now()
		got := Now()
		after := time.Now()
		if got.Before(before) || got.After(after) { // monotonic comparison
			t.Fatalf("Now() = %v, not within [%v, %v]", got, before, after)
		}
		// The wall parts, as Round(0) strips the monotonic reading: equal
		// to time.Now's up to a wall-clock step, of which a test machine
		// makes none.
		if w := got.Round(0); w.Before(before.Round(0).Add(-time.Millisecond)) || w.After(after.Round(0).Add(time.Millisecond)) {
			t.Fatalf("Now()'s wall clock %v, not within a millisecond of [%v, %v]", w, before.Round(0), after.Round(0))
		}
		if got.Before(last) {
			t.Fatalf("Now() went back from %v to %v", last, got)
		}
		last = got
	}
}

// TestNowRebases checks that a base older than rebaseAfter is replaced.
func TestNowRebases(t *testing.T) {
	old := time.Now().Add(-2 * rebaseAfter)
	base.Store(&old)
	Now()
	if b := base.Load(); !b.After(old.Add(rebaseAfter)) {
		t.Fatalf("base %v still the old one %v", b, old)
	}
}

func BenchmarkNow(b *testing.B) {
	for b.Loop() {
		Now()
	}
}

func BenchmarkTimeNow(b *testing.B) {
	for b.Loop() {
		time.Now()
	}
}
