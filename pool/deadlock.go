package pool

import (
	"bytes"
	"cmp"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// detector is the state of the deadlock detector; guarded by Pool.mu.
type detector struct {
	lastRelease time.Time // the last release or close of a connection
	alerted     bool      // the episode that began at alertedFor was reported
	alertedFor  time.Time // lastRelease when it was
}

// WaiterInfo describes an acquisition waiting in the queue.
type WaiterInfo struct {
	Position  int           // 1 is next to be served
	Priority  Priority      // as asked (clamped to the named range)
	Effective Priority      // after starvation boosts
	Waited    time.Duration // since it joined the queue (with FairQueue, since its Acquire began)
	// Group names the caller's Group (see NewGroup), "" if none; Capped
	// says that its cap holds the caller back: it is passed over until a
	// borrower of the group gives a connection back.
	Group  string
	Capped bool
	// Goroutine and Stack are those of the waiting goroutine, captured while
	// the deadlock detector is on (Config.DeadlockThreshold); else 0 and "".
	Goroutine int64
	Stack     string
}

// BorrowerInfo describes a borrowed connection.
type BorrowerInfo struct {
	Held time.Duration // since it was acquired
	Uses int64         // acquisitions of the connection so far
	// Goroutine and Stack are those of the Acquire that took the connection.
	Goroutine int64
	Stack     string
}

// DeadlockReport describes a pool stalled past Config.DeadlockThreshold:
// acquisitions wait and no connection has been released since Stalled ago.
type DeadlockReport struct {
	At        time.Time     // when the stall was detected
	Stalled   time.Duration // since the last release, or since the oldest waiter queued if later
	MaxSize   int
	Idle      int            // idle connections: only the CriticalReserve can leave some
	Borrowers []BorrowerInfo // longest held first
	Waiters   []WaiterInfo   // in service order
}

// SelfDeadlocked returns the goroutines that wait for a connection while
// they hold one: with every connection borrowed, such a goroutine waits for
// itself (for instance a query on the *sql.DB, not on the Tx, inside a
// transaction), and only a timeout ends it.
func (r DeadlockReport) SelfDeadlocked() []int64 {
	var ids []int64
	for _, w := range r.Waiters {
		if w.Goroutine == 0 || slices.Contains(ids, w.Goroutine) {
			continue
		}
		for _, b := range r.Borrowers {
			if b.Goroutine == w.Goroutine {
				ids = append(ids, w.Goroutine)
				break
			}
		}
	}
	return ids
}

// String renders the report, stacks included, for a log or a terminal.
func (r DeadlockReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sqlpool: pool exhausted: no connection released for %v; %d borrowed of %d, %d idle, %d waiting\n",
		r.Stalled.Round(time.Millisecond), len(r.Borrowers), r.MaxSize, r.Idle, len(r.Waiters))
	if ids := r.SelfDeadlocked(); len(ids) > 0 {
		fmt.Fprintf(&b, "self-deadlock: goroutines %v wait for a connection while holding one\n", ids)
	}
	for i, c := range r.Borrowers {
		fmt.Fprintf(&b, "\nborrower %d: goroutine %d, held for %v\n%s", i+1, c.Goroutine, c.Held.Round(time.Millisecond), c.Stack)
	}
	for _, w := range r.Waiters {
		var group string
		switch {
		case w.Capped:
			group = ", held back by the MaxSize of " + w.Group
		case w.Group != "":
			group = ", of " + w.Group
		}
		fmt.Fprintf(&b, "\nwaiter %d: goroutine %d, priority %v (effective %v)%s, waiting for %v\n%s",
			w.Position, w.Goroutine, w.Priority, w.Effective, group, w.Waited.Round(time.Millisecond), w.Stack)
	}
	return b.String()
}

// Queue returns the waiting acquisitions in service order.
func (p *Pool[T]) Queue() []WaiterInfo {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitersLocked(now)
}

func (p *Pool[T]) waitersLocked(now time.Time) []WaiterInfo {
	ws := make([]WaiterInfo, 0, p.queue.len)
	p.queue.walk(now, p.cfg.StarvationAfter, func(w *waiter[T], pos int) bool {
		wi := WaiterInfo{
			Position:  pos,
			Priority:  priorityAt(w.prio),
			Effective: priorityAt(level(w, now, p.cfg.StarvationAfter)),
			Waited:    now.Sub(w.since),
			Capped:    !w.eligible(),
			Goroutine: goroutineID(w.stack),
			Stack:     string(w.stack),
		}
		if w.group != nil {
			wi.Group = w.group.name
		}
		ws = append(ws, wi)
		return true
	})
	return ws
}

// list puts c, just acquired for a borrower of g, on the list of
// borrowers, with the stack of the acquiring goroutine when the deadlock
// detector is on.
func (p *Pool[T]) list(c *Conn[T], g *Group) {
	if p.cfg.DeadlockThreshold > 0 {
		c.stack = captureStack(c.stack)
	}
	p.mu.Lock()
	// under mu: the reclaim, on another goroutine, counts it out
	c.group = g
	c.borrowedAt, c.borrowWarned, c.overdue, c.leaked = c.lastUsed, false, false, false // lent just now
	c.bprev, c.bnext = nil, p.borrowed
	if p.borrowed != nil {
		p.borrowed.bprev = c
	}
	p.borrowed = c
	c.listed = true
	p.mu.Unlock()
}

// returnedLocked notes that c was released or closed while the pool tracks
// borrowings: progress, and one borrower fewer.
func (p *Pool[T]) returnedLocked(c *Conn[T], now time.Time) {
	p.detector.lastRelease = now
	if !c.listed {
		return
	}
	if c.bprev != nil {
		c.bprev.bnext = c.bnext
	} else {
		p.borrowed = c.bnext
	}
	if c.bnext != nil {
		c.bnext.bprev = c.bprev
	}
	c.bnext, c.bprev, c.listed = nil, nil, false
}

// publishStack captures the stack of w's goroutine for the deadlock report.
func (p *Pool[T]) publishStack(w *waiter[T]) {
	w.stackBuf = captureStack(w.stackBuf)
	p.mu.Lock()
	if w.queued {
		w.stack = w.stackBuf
	}
	p.mu.Unlock()
}

// maxStack bounds a captured stack.
const maxStack = 64 << 10

// captureStack returns the calling goroutine's stack, in buf when it fits.
func captureStack(buf []byte) []byte {
	if cap(buf) == 0 {
		buf = make([]byte, 4<<10)
	}
	for {
		buf = buf[:cap(buf)]
		n := runtime.Stack(buf, false)
		if n < len(buf) || len(buf) >= maxStack {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}

// goroutineID parses the id from a stack's header ("goroutine 7 [running]:").
func goroutineID(stack []byte) int64 {
	rest, ok := bytes.CutPrefix(stack, []byte("goroutine "))
	if !ok {
		return 0
	}
	if i := bytes.IndexByte(rest, ' '); i > 0 {
		id, _ := strconv.ParseInt(string(rest[:i]), 10, 64)
		return id
	}
	return 0
}

// checkDeadlock reports a stall once per episode: waiters, no dial in
// progress, and no release or close for DeadlockThreshold. It runs on the
// maintenance goroutine.
func (p *Pool[T]) checkDeadlock() {
	now := time.Now()
	p.mu.Lock()
	d := &p.detector
	oldest := p.queue.oldest()
	if p.closed || oldest == nil || p.dialing > 0 || (d.alerted && d.alertedFor.Equal(d.lastRelease)) {
		p.mu.Unlock()
		return
	}
	since := oldest.since
	if d.lastRelease.After(since) {
		since = d.lastRelease
	}
	stalled := now.Sub(since)
	if stalled < p.cfg.DeadlockThreshold {
		p.mu.Unlock()
		return
	}
	d.alerted, d.alertedFor = true, d.lastRelease
	p.stats.deadlocks++
	r := DeadlockReport{At: now, Stalled: stalled, MaxSize: p.cfg.MaxSize, Idle: len(p.idle),
		Waiters: p.waitersLocked(now)}
	for c := p.borrowed; c != nil; c = c.bnext {
		r.Borrowers = append(r.Borrowers, BorrowerInfo{Held: now.Sub(c.borrowedAt), Uses: c.uses,
			Goroutine: goroutineID(c.stack), Stack: string(c.stack)})
	}
	p.mu.Unlock()

	slices.SortStableFunc(r.Borrowers, func(a, b BorrowerInfo) int { return cmp.Compare(b.Held, a.Held) })
	p.logger().Warn("sqlpool: pool exhausted, possible deadlock",
		slog.Duration("stalled", r.Stalled), slog.Int("borrowed", len(r.Borrowers)),
		slog.Int("max_size", r.MaxSize), slog.Int("waiting", len(r.Waiters)),
		slog.Any("self_deadlocked_goroutines", r.SelfDeadlocked()),
		slog.String("report", r.String()))
	if p.cfg.OnDeadlock != nil {
		p.cfg.OnDeadlock(r)
	}
}
