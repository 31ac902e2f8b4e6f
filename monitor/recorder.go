package monitor

import (
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Result is the outcome of one acquisition attempt. Its String is the value
// of the result label of sqlpool_acquires_total.
type Result uint8

// Acquisition results.
const (
	ResultSuccess   Result = iota // a connection was lent
	ResultTimeout                 // AcquireTimeout or the caller's deadline passed
	ResultQueueFull               // refused at once: the wait queue was full
	ResultCanceled                // the caller's context was canceled
	ResultError                   // any other failure: a dial error, the pool closed
	numResults
)

var resultNames = [numResults]string{"success", "timeout", "queue_full", "canceled", "error"}

// String returns the result's label value: success, timeout, queue_full,
// canceled or error.
func (r Result) String() string {
	if r < numResults {
		return resultNames[r]
	}
	return "error"
}

// Partition names the Recorder gives itself.
const (
	// DefaultPartition is the name recorded for the empty partition name:
	// acquisitions whose context carries no partition key.
	DefaultPartition = "default"
	// OverflowPartition collects every partition beyond
	// RecorderConfig.MaxPartitions, so that a flood of distinct names
	// (one per tenant id, say) cannot grow memory and metric cardinality
	// without bound.
	OverflowPartition = "other"
)

// DefaultMaxPartitions is RecorderConfig.MaxPartitions's default.
const DefaultMaxPartitions = 256

// Sampling of rates and history; see Snapshot.
const (
	// SampleInterval is the period of the history's samples, taken by
	// Recorder.Run (or Sample), and the least time between two samples
	// that Snapshot takes itself when nothing runs the sampler.
	SampleInterval = time.Second
	// RateWindow is the span over which Snapshot's per-second rates are
	// averaged.
	RateWindow = 10 * time.Second
	// HistoryLength is the number of samples kept for Snapshot.History:
	// five minutes at one sample a second. The history is a ring of
	// HistoryLength+1 points (a few dozen bytes each): its memory is fixed.
	HistoryLength = 300
)

// partitionSamples is the per-partition ring's capacity: enough to span
// RateWindow at one sample per SampleInterval.
const partitionSamples = int(RateWindow/SampleInterval) + 2

// RecorderConfig configures a Recorder. Its zero value is usable.
type RecorderConfig struct {
	// MaxPartitions caps the number of distinct partitions recorded apart;
	// the rest are recorded as OverflowPartition. Each partition costs
	// about 55 KB (two HDR histograms), and as much again for each extra
	// stripe that contention makes it use (up to GOMAXPROCS, at most 8).
	// Default DefaultMaxPartitions (256).
	MaxPartitions int
}

// Recorder records acquisitions, releases, statement-cache lookups and
// leaks, per partition. Recording on a PartitionRecorder takes no lock
// shared with other partitions: each partition has a few stripes, each
// guarded by its own mutex, and an uncontended stripe is found with
// TryLock. Looking a partition up by name takes a read lock on the map of
// partitions. Nothing is allocated once a partition and its stripes exist.
// The zero Recorder is not usable: call NewRecorder. A Recorder is safe for
// concurrent use.
type Recorder struct {
	now      func() time.Time // a test seam; time.Now
	hours    hourCache
	maxParts int
	stripes  int // stripes per partition

	mu sync.RWMutex
	// guarded by mu:
	parts map[string]*PartitionRecorder // by name, OverflowPartition included
	named int                           // partitions other than OverflowPartition

	// snapMu serializes Snapshot and Reset. Lock order: snapMu, then mu,
	// then a stripe's mu. The hot path takes only mu (read) and one stripe.
	snapMu sync.Mutex
	// guarded by snapMu:
	start   time.Time // when recording started, or was last reset
	history ring      // of the totals
	// sampled is set by the first Sample: from then on the history is the
	// sampler's, evenly spaced, and Snapshot only reads it.
	sampled bool
	// Scratch histograms: one partition's stripes merged, and the total.
	partWait, partHold   *histogram
	totalWait, totalHold *histogram
}

// NewRecorder returns a Recorder configured by cfg.
func NewRecorder(cfg RecorderConfig) *Recorder {
	return newRecorder(cfg, time.Now)
}

func newRecorder(cfg RecorderConfig, now func() time.Time) *Recorder {
	if cfg.MaxPartitions <= 0 {
		cfg.MaxPartitions = DefaultMaxPartitions
	}
	return &Recorder{
		now:      now,
		maxParts: cfg.MaxPartitions,
		stripes:  min(max(runtime.GOMAXPROCS(0), 1), 8),
		parts:    make(map[string]*PartitionRecorder),
		start:    now(),
		history:  newRing(HistoryLength + 1),

		partWait:  newHistogram(),
		partHold:  newHistogram(),
		totalWait: newHistogram(),
		totalHold: newHistogram(),
	}
}

// Partition returns the recorder of the named partition, creating it on
// first use; the empty name is DefaultPartition, names beyond
// MaxPartitions share OverflowPartition, and a name that is not valid UTF-8,
// holds control characters or is longer than MaxNameLength is recorded
// under a safe form of it (invalid bytes and control characters replaced
// with U+FFFD, cut with a hash of the whole), so that names cost at most
// MaxNameLength bytes each. Looking up an existing partition by a safe name
// allocates nothing and takes only a read lock, but callers on a hot path
// should look it up once and keep the handle.
func (r *Recorder) Partition(name string) *PartitionRecorder {
	name = partitionName(name)
	r.mu.RLock()
	p := r.parts[name]
	if p == nil && r.named >= r.maxParts {
		p = r.parts[OverflowPartition]
	}
	r.mu.RUnlock()
	if p != nil {
		return p
	}
	return r.addPartition(name)
}

func (r *Recorder) addPartition(name string) *PartitionRecorder {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.parts[name]; p != nil {
		return p
	}
	p := r.newPartition(name)
	r.parts[name] = p
	if name == OverflowPartition {
		return p
	}
	// Once full, the overflow partition exists, so that lookups of the
	// names that overflow find it under the read lock.
	if r.named++; r.named >= r.maxParts && r.parts[OverflowPartition] == nil {
		r.parts[OverflowPartition] = r.newPartition(OverflowPartition)
	}
	return p
}

func (r *Recorder) newPartition(name string) *PartitionRecorder {
	return &PartitionRecorder{
		name:    name,
		now:     r.now,
		hours:   &r.hours,
		stripes: make([]stripe, r.stripes),
		samples: newRing(partitionSamples),
	}
}

// partitionsLocked returns every partition, sorted by name. r.mu must be held.
func (r *Recorder) partitionsLocked() []*PartitionRecorder {
	ps := make([]*PartitionRecorder, 0, len(r.parts))
	for _, p := range r.parts {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b *PartitionRecorder) int { return strings.Compare(a.name, b.name) })
	return ps
}

// RecordAcquire records an acquisition attempt on the named partition; see
// PartitionRecorder.RecordAcquire.
func (r *Recorder) RecordAcquire(partition string, wait time.Duration, res Result) {
	r.Partition(partition).RecordAcquire(wait, res)
}

// RecordRelease records the end of a borrowing on the named partition; see
// PartitionRecorder.RecordRelease.
func (r *Recorder) RecordRelease(partition string, hold time.Duration) {
	r.Partition(partition).RecordRelease(hold)
}

// RecordStatementCache records a statement-cache lookup on the named
// partition; see PartitionRecorder.RecordStatementCache.
func (r *Recorder) RecordStatementCache(partition string, hit bool) {
	r.Partition(partition).RecordStatementCache(hit)
}

// RecordLeak records a leak detected on the named partition; see
// PartitionRecorder.RecordLeak.
func (r *Recorder) RecordLeak(partition string) {
	r.Partition(partition).RecordLeak()
}

// Sample adds a sample of the totals to the history (Snapshot.History) now,
// unless the newest sample is less than half a SampleInterval old. Call it
// once per SampleInterval, or let Run do it, so that the history fills
// whether or not anything takes Snapshots: a dashboard opened later shows
// the past HistoryLength samples at once. Once Sample has been called,
// Snapshot no longer samples the history itself. It reads only the
// counters (no histogram), each stripe briefly locked.
func (r *Recorder) Sample() {
	r.snapMu.Lock()
	defer r.snapMu.Unlock()
	now := r.now()
	r.mu.RLock()
	ps := r.partitionsLocked()
	r.mu.RUnlock()
	total := point{t: now}
	for _, p := range ps {
		total.add(p.point())
	}
	r.sampled = true
	if last, ok := r.history.newest(); ok && now.Sub(last.t) < SampleInterval/2 {
		return
	}
	r.history.append(total)
}

// Run calls Sample every SampleInterval until ctx is done, then returns.
// Run it on a goroutine that its owner waits for when it stops the pool,
// so that no sampler outlives the pool.
func (r *Recorder) Run(ctx context.Context) {
	t := time.NewTicker(SampleInterval)
	defer t.Stop()
	r.Sample()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.Sample()
		}
	}
}

// Reset zeroes every counter and histogram and forgets the history, as if
// recording had just started. Partitions stay known, and the number of
// connections currently borrowed (Metrics.Borrowed) is kept, since their
// releases are still to come.
func (r *Recorder) Reset() {
	r.snapMu.Lock()
	defer r.snapMu.Unlock()
	r.mu.RLock()
	ps := r.partitionsLocked()
	r.mu.RUnlock()
	for _, p := range ps {
		p.reset()
	}
	r.start = r.now()
	r.history.clear()
}

// PartitionRecorder records one partition's statistics. Get one from
// Recorder.Partition; its methods are safe for concurrent use and allocate
// nothing once the partition is warm.
type PartitionRecorder struct {
	name  string
	now   func() time.Time
	hours *hourCache // the Recorder's

	// stripes spread recording over several mutexes, so that concurrent
	// borrowers of one partition rarely wait for each other. A record goes
	// to the first stripe whose TryLock succeeds, starting from its key's
	// (RecordAcquireFor), or, when all are busy, to a random one. The events of one record (a count, a histogram value,
	// an hour) land in one stripe under one lock, so a Snapshot never sees
	// a count without its histogram value.
	stripes []stripe

	stmtHits   atomic.Int64 // statement-cache lookups that found the statement
	stmtMisses atomic.Int64 // statement-cache lookups that had to prepare
	leaks      atomic.Int64 // borrowings reported held past the leak threshold

	samples ring // for the rates; guarded by Recorder.snapMu
}

// stripe is one share of a partition's counters.
type stripe struct {
	mu sync.Mutex
	// guarded by mu:
	acquires [numResults]int64 // attempts by result
	releases int64             // borrowings ended
	borrowed int64             // successful acquisitions less releases; never reset
	byHour   [24]int64         // successful acquisitions by local hour of day
	wait     latency           // wait of every attempt
	hold     latency           // hold of every borrowing

	_ [64]byte // keeps the next stripe's mu off this one's cache line
}

// Name returns the partition's name.
func (p *PartitionRecorder) Name() string { return p.name }

// lock locks and returns a stripe: the first free one from key's, or a
// random busy one.
func (p *PartitionRecorder) lock(key uint64) *stripe {
	n := uint64(len(p.stripes))
	for i := range n {
		if s := &p.stripes[(key+i)%n]; s.mu.TryLock() {
			return s
		}
	}
	s := &p.stripes[rand.IntN(len(p.stripes))]
	s.mu.Lock()
	return s
}

// RecordAcquire records one acquisition attempt that ended with res after
// waiting wait (the time from the request to the connection or the
// failure; zero when an idle connection was at hand). Every result counts in
// the wait histogram; a success also counts as borrowed, in the hour of day
// (local time), until RecordRelease.
func (p *PartitionRecorder) RecordAcquire(wait time.Duration, res Result) {
	p.RecordAcquireAt(p.now(), wait, res)
}

// RecordAcquireAt is RecordAcquire for a caller that has read the clock: at
// is when the acquisition ended.
func (p *PartitionRecorder) RecordAcquireAt(at time.Time, wait time.Duration, res Result) {
	p.RecordAcquireFor(0, at, wait, res)
}

// RecordAcquireFor is RecordAcquireAt for a borrowing of the connection
// identified by key, such as its ID. The records of one key go to one
// stripe while it is free, so that borrowers on different cores, each with
// its own connections, do not share its cache line; pass the same key to
// RecordReleaseFor.
func (p *PartitionRecorder) RecordAcquireFor(key uint64, at time.Time, wait time.Duration, res Result) {
	if res >= numResults {
		res = ResultError
	}
	hour := -1
	if res == ResultSuccess {
		hour = p.hours.of(at)
	}
	s := p.lock(key)
	s.acquires[res]++
	s.wait.record(wait)
	if hour >= 0 {
		s.byHour[hour]++
		s.borrowed++
	}
	s.mu.Unlock()
}

// RecordRelease records the end of a borrowing held for hold, whether the
// connection went back to the pool or was closed.
func (p *PartitionRecorder) RecordRelease(hold time.Duration) { p.RecordReleaseFor(0, hold) }

// RecordReleaseFor is RecordRelease for the connection identified by key
// (see RecordAcquireFor).
func (p *PartitionRecorder) RecordReleaseFor(key uint64, hold time.Duration) {
	s := p.lock(key)
	s.releases++
	s.borrowed--
	s.hold.record(hold)
	s.mu.Unlock()
}

// RecordStatementCache records one statement-cache lookup: a hit found a
// prepared statement, a miss had to prepare one.
func (p *PartitionRecorder) RecordStatementCache(hit bool) {
	if hit {
		p.stmtHits.Add(1)
	} else {
		p.stmtMisses.Add(1)
	}
}

// RecordLeak records one borrowing detected as leaked (held past the leak
// threshold). Call it once per borrowing, when it is first detected.
func (p *PartitionRecorder) RecordLeak() { p.leaks.Add(1) }

// reset zeroes the partition's counters, except borrowed.
func (p *PartitionRecorder) reset() {
	for i := range p.stripes {
		s := &p.stripes[i]
		s.mu.Lock()
		s.acquires = [numResults]int64{}
		s.releases = 0
		s.byHour = [24]int64{}
		s.wait.reset()
		s.hold.reset()
		s.mu.Unlock()
	}
	p.stmtHits.Store(0)
	p.stmtMisses.Store(0)
	p.leaks.Store(0)
	p.samples.clear()
}

// counts are a partition's (or the total's) counters added up over stripes.
type counts struct {
	acquires   [numResults]int64
	releases   int64
	borrowed   int64
	byHour     [24]int64
	wait, hold latencySum
	stmtHits   int64
	stmtMisses int64
	leaks      int64
}

// collect adds up the partition's stripes, merging their histograms into
// wait and hold, which it resets first. Recorder.snapMu must be held.
func (p *PartitionRecorder) collect(wait, hold *histogram) counts {
	var c counts
	wait.Reset()
	hold.Reset()
	c.wait.h, c.hold.h = wait, hold
	for i := range p.stripes {
		s := &p.stripes[i]
		s.mu.Lock()
		for j, n := range s.acquires {
			c.acquires[j] += n
		}
		c.releases += s.releases
		c.borrowed += s.borrowed
		for j, n := range s.byHour {
			c.byHour[j] += n
		}
		c.wait.add(&s.wait)
		c.hold.add(&s.hold)
		s.mu.Unlock()
	}
	c.stmtHits = p.stmtHits.Load()
	c.stmtMisses = p.stmtMisses.Load()
	c.leaks = p.leaks.Load()
	return c
}

// point returns the partition's counters behind the history, added up over
// its stripes; its time is zero. Recorder.snapMu must be held.
func (p *PartitionRecorder) point() point {
	var pt point
	for i := range p.stripes {
		s := &p.stripes[i]
		s.mu.Lock()
		var attempts int64
		for _, n := range s.acquires {
			attempts += n
		}
		ok := s.acquires[ResultSuccess]
		pt.successes += ok
		pt.failed += attempts - ok
		pt.releases += s.releases
		pt.borrowed += s.borrowed
		s.mu.Unlock()
	}
	return pt
}

// add adds o into c; c's histograms must be distinct from o's.
func (c *counts) add(o *counts) {
	for j, n := range o.acquires {
		c.acquires[j] += n
	}
	c.releases += o.releases
	c.borrowed += o.borrowed
	for j, n := range o.byHour {
		c.byHour[j] += n
	}
	c.wait.merge(&o.wait)
	c.hold.merge(&o.hold)
	c.stmtHits += o.stmtHits
	c.stmtMisses += o.stmtMisses
	c.leaks += o.leaks
}

// point is one sample of the counters behind rates and history.
type point struct {
	t                           time.Time
	successes, releases, failed int64
	borrowed                    int64
}

// add adds o's counters into p, keeping p's time.
func (p *point) add(o point) {
	p.successes += o.successes
	p.releases += o.releases
	p.failed += o.failed
	p.borrowed += o.borrowed
}

// ring keeps the last samples, oldest first.
type ring struct {
	buf  []point
	head int // index of the oldest
	n    int
}

func newRing(size int) ring { return ring{buf: make([]point, size)} }

func (r *ring) clear() { r.head, r.n = 0, 0 }

func (r *ring) at(i int) point { return r.buf[(r.head+i)%len(r.buf)] }

func (r *ring) newest() (point, bool) {
	if r.n == 0 {
		return point{}, false
	}
	return r.at(r.n - 1), true
}

// push appends p, unless the newest sample is younger than SampleInterval.
func (r *ring) push(p point) {
	if last, ok := r.newest(); ok && p.t.Sub(last.t) < SampleInterval {
		return
	}
	r.append(p)
}

// append appends p, dropping the oldest sample when the ring is full.
func (r *ring) append(p point) {
	if r.n < len(r.buf) {
		r.buf[(r.head+r.n)%len(r.buf)] = p
		r.n++
		return
	}
	r.buf[r.head] = p
	r.head = (r.head + 1) % len(r.buf)
}

// rates returns the acquisitions and releases per second at cur. They are
// measured from the oldest sample within RateWindow that is at least
// SampleInterval old; failing that, from the newest older sample (the
// previous Snapshot, for callers that snapshot rarely); failing that, from
// start, when the counters were zero.
func (r *ring) rates(cur point, start time.Time) (acquires, releases float64) {
	base := point{t: start}
	for i := range r.n {
		p := r.at(i)
		age := cur.t.Sub(p.t)
		if age < SampleInterval {
			break
		}
		base = p
		if age <= RateWindow {
			break
		}
	}
	dt := cur.t.Sub(base.t).Seconds()
	if dt <= 0 {
		return 0, 0
	}
	return float64(cur.successes-base.successes) / dt, float64(cur.releases-base.releases) / dt
}

// hourCache remembers the local hour of day of a one-hour span: Time.Hour
// looks the time zone up, and every acquisition of the same hour would
// repeat that. It is safe for concurrent use.
type hourCache struct{ span atomic.Pointer[hourSpan] }

// hourSpan is an hour of day in loc and the Unix seconds [start, end) it
// covers.
type hourSpan struct {
	start, end int64
	loc        *time.Location
	hour       int
}

// of returns t's hour of day in t's location.
func (c *hourCache) of(t time.Time) int {
	sec, loc := t.Unix(), t.Location()
	if s := c.span.Load(); s != nil && s.start <= sec && sec < s.end && s.loc == loc {
		return s.hour
	}
	// A span ends at the next hour boundary, where a daylight-saving
	// change happens too.
	h, m, sc := t.Clock()
	start := sec - int64(m*60+sc)
	c.span.Store(&hourSpan{start: start, end: start + 3600, loc: loc, hour: h})
	return h
}
