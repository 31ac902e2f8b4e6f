package monitor

import (
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// The HDR histograms hold microseconds from 1 µs to one hour, to two
// significant digits: a percentile is within 1% of the true value (values
// under 1 µs count as 0, values over an hour as an hour). Each costs about
// 26 KB; three significant digits would cost 180 KB.
const (
	histLowest  = 1
	histHighest = int64(time.Hour / time.Microsecond)
	histDigits  = 2
)

// histogram is an HDR histogram of microseconds. It is not safe for
// concurrent use: each has an owner that guards it.
type histogram = hdr.Histogram

func newHistogram() *histogram { return hdr.New(histLowest, histHighest, histDigits) }

// bucketBounds are the upper bounds of the cumulative buckets kept exactly
// beside the HDR histogram, for Prometheus (sqlpool_acquire_wait_seconds and
// sqlpool_hold_seconds). They are counted exactly rather than derived from
// the HDR histogram, whose 1% value ranges straddle the bounds.
var bucketBounds = [...]time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second,
	10 * time.Second, 30 * time.Second, time.Minute,
}

const numBuckets = len(bucketBounds)

// latency records durations: an HDR histogram for percentiles, exact count,
// sum and max, and exact counts per bucket. Its owner guards it.
type latency struct {
	h       *histogram // created on first record
	zeros   int64      // values under 1 µs, not yet in h: an acquisition with a connection at hand waits 0
	count   int64
	sum     time.Duration
	max     time.Duration
	buckets [numBuckets]int64 // values in (bucketBounds[i-1], bucketBounds[i]]
}

func (l *latency) record(d time.Duration) {
	d = max(d, 0)
	l.count++
	l.sum += d
	l.max = max(l.max, d)
	if d < time.Microsecond { // the common case, counted apart: h would record 0
		l.zeros++
		l.buckets[0]++
		return
	}
	if l.h == nil {
		l.h = newHistogram()
	}
	l.h.RecordValue(min(int64(d/time.Microsecond), histHighest)) // in range: no error
	for i, b := range bucketBounds {
		if d <= b {
			l.buckets[i]++
			break
		}
	}
}

func (l *latency) reset() {
	if l.h != nil {
		l.h.Reset()
	}
	l.zeros, l.count, l.sum, l.max = 0, 0, 0, 0
	l.buckets = [numBuckets]int64{}
}

// latencySum adds up latencies, its histogram owned by a snapshot.
type latencySum struct {
	h       *histogram
	count   int64
	sum     time.Duration
	max     time.Duration
	buckets [numBuckets]int64
}

// add adds l, whose owner's lock the caller holds.
func (a *latencySum) add(l *latency) {
	if l.h != nil && l.count > l.zeros {
		a.h.Merge(l.h)
	}
	if l.zeros > 0 {
		a.h.RecordValues(0, l.zeros)
	}
	a.count += l.count
	a.sum += l.sum
	a.max = max(a.max, l.max)
	for i, n := range l.buckets {
		a.buckets[i] += n
	}
}

// merge adds o, whose histogram must not be a's.
func (a *latencySum) merge(o *latencySum) {
	if o.count > 0 {
		a.h.Merge(o.h)
	}
	a.count += o.count
	a.sum += o.sum
	a.max = max(a.max, o.max)
	for i, n := range o.buckets {
		a.buckets[i] += n
	}
}

// summary returns the Latency of a.
func (a *latencySum) summary() Latency {
	l := Latency{Count: a.count, Sum: Duration(a.sum), Max: Duration(a.max)}
	l.Buckets = make([]Bucket, numBuckets)
	var cum int64
	for i, n := range a.buckets {
		cum += n
		l.Buckets[i] = Bucket{UpperBound: bucketBounds[i].Seconds(), Count: cum}
	}
	if a.count == 0 {
		return l
	}
	l.Mean = Duration(a.sum / time.Duration(a.count))
	// HDR returns the highest value equivalent to the percentile's, which
	// may exceed the exact maximum by up to 1%.
	at := func(q float64) Duration {
		return min(Duration(time.Duration(a.h.ValueAtQuantile(q))*time.Microsecond), l.Max)
	}
	l.P50, l.P95, l.P99 = at(50), at(95), at(99)
	return l
}
