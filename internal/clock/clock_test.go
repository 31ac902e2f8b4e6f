package clock

import (
	"testing"
	"testing/synctest"
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

// TestNowRebases checks that a base older than rebaseAfter, or ahead of
// the clock (another clock's: a testing/synctest bubble's), is replaced.
func TestNowRebases(t *testing.T) {
	for _, off := range []time.Duration{-2 * rebaseAfter, time.Hour} {
		stale := time.Now().Add(off)
		base.Store(&stale)
		before := time.Now()
		if got := Now(); got.Before(before) || got.Sub(before) > time.Second {
			t.Errorf("base %v from now: Now() = %v, want about %v", off, got, before)
		}
		if b := base.Load(); b.Equal(stale) {
			t.Errorf("base %v from now: still the stale base", off)
		}
	}
}

// TestNowInsideAndOutsideASynctestBubble checks that Now follows each
// goroutine's clock when a bubble (whose time starts in 2000) and the real
// world take turns with the shared base.
func TestNowInsideAndOutsideASynctestBubble(t *testing.T) {
	Now()
	synctest.Test(t, func(t *testing.T) {
		if got, want := Now(), time.Now(); !got.Equal(want) {
			t.Errorf("in the bubble: Now() = %v, want %v", got, want)
		}
	})
	before := time.Now()
	if got := Now(); got.Before(before) || got.Sub(before) > time.Second {
		t.Errorf("after the bubble: Now() = %v, want about %v", got, before)
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
