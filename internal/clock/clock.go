// Package clock reads the time for the pool's hot paths at half the cost of
// time.Now.
//
// On Linux time.Now makes two clock readings, the wall clock and the
// monotonic one (about 47 ns together on the 2-core VMs this project is
// measured on); a monotonic reading alone costs about half that. Now takes
// one monotonic reading and adds it to a base time read with time.Now at
// most a second earlier, so its result carries both clocks like time.Now's:
// its monotonic part is exact, and its wall part is off by at most a step
// of the wall clock (an NTP step, a manual change) made in the last second.
// Durations, deadlines and ages, which use the monotonic parts, are exact.
package clock

import (
	"sync/atomic"
	"time"
)

// rebaseAfter is how long a base serves before Now reads the wall clock
// again.
const rebaseAfter = time.Second

var base atomic.Pointer[time.Time]

func init() {
	t := time.Now()
	base.Store(&t)
}

// Now returns the current time, as time.Now does, with a single monotonic
// clock reading most of the time.
func Now() time.Time {
	b := base.Load()
	// d < 0: the base comes from another clock, a testing/synctest
	// bubble's or the real one (a bubble's time starts in 2000).
	if d := time.Since(*b); d >= 0 && d < rebaseAfter {
		return b.Add(d)
	}
	t := time.Now()
	base.Store(&t)
	return t
}
