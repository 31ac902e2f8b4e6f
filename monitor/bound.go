package monitor

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds on what the collector, the management API and the exports show.
// Partition names come from requests (one per tenant id, say) and may be
// hostile: every list and label set that grows with them is bounded.
const (
	// DefaultTopPartitions is the default of CollectorConfig.TopPartitions
	// and HandlerConfig.TopPartitions: how many partitions are shown apart,
	// the most active ones; the rest are added up under OverflowPartition.
	DefaultTopPartitions = 50
	// DefaultMaxLeaks is the default of HandlerConfig.MaxLeaks: how many
	// leaks the management API lists, the longest held first.
	DefaultMaxLeaks = 100
	// MaxNameLength is the length in bytes of the longest partition name
	// shown as given. A longer name is cut at MaxNameLength bytes in all,
	// ending with "…" and 8 hex digits of a hash of the whole name, so that
	// two long names that differ only at the end stay apart.
	MaxNameLength = 128
)

// unbounded, as a number of partitions or leaks, shows them all.
const unbounded = math.MaxInt

// safeName returns name as the monitor shows it, as a label value, a JSON
// string, a CSV cell or dashboard text: valid UTF-8 with no control or
// format characters (each invalid byte, control character, and invisible
// format character such as a bidirectional override is replaced with
// U+FFFD), at most MaxNameLength bytes (see MaxNameLength). A name that
// needs none of that is returned as it is, without allocating.
func safeName(name string) string {
	if nameIsSafe(name) {
		return name
	}
	// Only the first MaxNameLength bytes of the safe form can be shown:
	// stop there, however long the name.
	var b strings.Builder
	for i := 0; i < len(name) && b.Len() <= MaxNameLength; {
		r, size := utf8.DecodeRuneInString(name[i:])
		if !safeRune(r, size) {
			r = utf8.RuneError
		}
		b.WriteRune(r)
		i += size
	}
	s := b.String()
	if len(s) <= MaxNameLength {
		return s
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	suffix := fmt.Sprintf("…%08x", h.Sum32())
	cut := MaxNameLength - len(suffix)
	for !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + suffix
}

// nameIsSafe reports whether safeName would leave name as it is.
func nameIsSafe(name string) bool {
	if len(name) > MaxNameLength {
		return false
	}
	for i := 0; i < len(name); {
		if c := name[i]; c < utf8.RuneSelf {
			if c < ' ' || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(name[i:])
		if !safeRune(r, size) {
			return false
		}
		i += size
	}
	return true
}

// safeRune reports whether the rune r, decoded from size bytes, is shown as
// it is: valid, and a letter, mark, number, punctuation, symbol or space.
func safeRune(r rune, size int) bool {
	if r == utf8.RuneError && size <= 1 {
		return false // an invalid byte
	}
	return unicode.IsGraphic(r)
}

// partitionName is the name under which the partition called name is shown:
// safeName's, DefaultPartition for the empty name.
func partitionName(name string) string {
	if name == "" {
		return DefaultPartition
	}
	return safeName(name)
}

// boundReport returns r with every partition name made safe (partitionName)
// and at most top partitions shown apart; the rest are added up under
// OverflowPartition, and counted in OmittedPartitions. The partitions shown
// apart are the most active: by acquisition attempts since the statistics
// started, plus connections in use and acquisitions waiting now; then by
// name. Partitions whose safe names are equal are added up under that
// name, as is a partition named OverflowPartition with the overflow. The
// pool's and the recorder's lists keep their sums (the totals are left as
// they are). At most maxLeaks leaks are kept, the longest held first; the
// rest are counted in OmittedLeaks. r's slices are not modified.
//
// boundReport of a bounded report with the same or larger bounds returns it
// unchanged.
func boundReport(r Report, top, maxLeaks int) Report {
	type entry struct {
		name       string
		state      PartitionState
		metrics    Metrics
		hasState   bool
		hasMetrics bool
		ownBuckets bool // metrics' Buckets are copies, which add may change
	}
	byName := map[string]*entry{}
	get := func(name string) *entry {
		e := byName[name]
		if e == nil {
			e = &entry{name: name, metrics: Metrics{Partition: name, PeakHour: -1}}
			byName[name] = e
		}
		return e
	}
	addState := func(e *entry, s PartitionState) {
		s.Name = e.name
		if !e.hasState {
			e.state, e.hasState = s, true
			return
		}
		e.state.add(s)
	}
	addMetrics := func(e *entry, m Metrics) {
		m.Partition = e.name
		if !e.hasMetrics {
			e.metrics, e.hasMetrics = m, true
			return
		}
		if !e.ownBuckets { // r's are shared: copy them before adding
			e.metrics.Wait.Buckets = slices.Clone(e.metrics.Wait.Buckets)
			e.metrics.Hold.Buckets = slices.Clone(e.metrics.Hold.Buckets)
			e.ownBuckets = true
		}
		e.metrics.add(m)
	}
	for _, s := range r.Pool.Partitions {
		addState(get(partitionName(s.Name)), s)
	}
	for _, m := range r.Metrics.Partitions {
		addMetrics(get(partitionName(m.Partition)), m)
	}

	ranked := make([]*entry, 0, len(byName))
	for name, e := range byName {
		if name != OverflowPartition {
			ranked = append(ranked, e)
		}
	}
	activity := func(e *entry) int64 {
		return e.metrics.Attempts + int64(e.state.InUse) + int64(e.state.Waiting)
	}
	slices.SortFunc(ranked, func(a, b *entry) int {
		return cmp.Or(cmp.Compare(activity(b), activity(a)), strings.Compare(a.name, b.name))
	})
	if len(ranked) > top {
		other := get(OverflowPartition)
		for _, e := range ranked[top:] {
			if e.hasState {
				addState(other, e.state)
			}
			if e.hasMetrics {
				addMetrics(other, e.metrics)
			}
		}
		r.OmittedPartitions += len(ranked) - top
		ranked = ranked[:top]
	}
	if other := byName[OverflowPartition]; other != nil {
		ranked = append(ranked, other)
	}
	slices.SortFunc(ranked, func(a, b *entry) int { return strings.Compare(a.name, b.name) })

	states, metrics := r.Pool.Partitions[:0:0], r.Metrics.Partitions[:0:0]
	for _, e := range ranked {
		if e.hasState {
			states = append(states, e.state)
		}
		if e.hasMetrics {
			metrics = append(metrics, e.metrics)
		}
	}
	r.Pool.Partitions, r.Metrics.Partitions = states, metrics

	if r.Leaks != nil {
		leaks := make([]Leak, len(r.Leaks))
		for i, l := range r.Leaks {
			l.Partition = partitionName(l.Partition)
			leaks[i] = l
		}
		slices.SortStableFunc(leaks, func(a, b Leak) int { return cmp.Compare(b.Held, a.Held) })
		if len(leaks) > maxLeaks {
			r.OmittedLeaks += len(leaks) - maxLeaks
			leaks = leaks[:maxLeaks]
		}
		r.Leaks = leaks
	}
	return r
}

// add adds o's connections and waiting acquisitions into s. The sum has a
// MaxSize when both have one, and is suspended when both are.
func (s *PartitionState) add(o PartitionState) {
	s.Idle += o.Idle
	s.InUse += o.InUse
	s.Waiting += o.Waiting
	if s.MaxSize > 0 && o.MaxSize > 0 {
		s.MaxSize += o.MaxSize
	} else {
		s.MaxSize = 0
	}
	s.Suspended = s.Suspended && o.Suspended
}

// add adds o's counters into m and derives m's rates again. The latencies'
// percentiles are the higher of the two: an upper bound of the sum's.
func (m *Metrics) add(o Metrics) {
	m.Attempts += o.Attempts
	m.Successes += o.Successes
	m.Failures += o.Failures
	m.Timeouts += o.Timeouts
	m.QueueFull += o.QueueFull
	m.Canceled += o.Canceled
	m.Errors += o.Errors
	m.SuccessRate = ratio(m.Successes, m.Attempts)
	m.Releases += o.Releases
	m.Borrowed += o.Borrowed
	m.AcquiresPerSecond += o.AcquiresPerSecond
	m.ReleasesPerSecond += o.ReleasesPerSecond
	m.Wait.add(o.Wait)
	m.Hold.add(o.Hold)
	var peak int64
	m.PeakHour = -1
	for h, n := range o.AcquisitionsByHour {
		m.AcquisitionsByHour[h] += n
		if m.AcquisitionsByHour[h] > peak {
			m.PeakHour, peak = h, m.AcquisitionsByHour[h]
		}
	}
	m.StatementCacheHits += o.StatementCacheHits
	m.StatementCacheMisses += o.StatementCacheMisses
	m.StatementCacheHitRate = ratio(m.StatementCacheHits, m.StatementCacheHits+m.StatementCacheMisses)
	m.LeaksDetected += o.LeaksDetected
}

// add adds o's durations into l. Count, Sum, Mean, Max and Buckets stay
// exact (Buckets are dropped if the two have different bounds); the
// percentiles are the higher of the two, an upper bound of the sum's.
func (l *Latency) add(o Latency) {
	if o.Count == 0 {
		return
	}
	if l.Count == 0 {
		*l = o
		l.Buckets = slices.Clone(o.Buckets)
		return
	}
	l.Count += o.Count
	l.Sum += o.Sum
	l.Mean = Duration(int64(l.Sum) / l.Count)
	l.P50, l.P95, l.P99 = max(l.P50, o.P50), max(l.P95, o.P95), max(l.P99, o.P99)
	l.Max = max(l.Max, o.Max)
	if !slices.EqualFunc(l.Buckets, o.Buckets, func(a, b Bucket) bool { return a.UpperBound == b.UpperBound }) {
		l.Buckets = nil
		return
	}
	for i, b := range o.Buckets {
		l.Buckets[i].Count += b.Count
	}
}
