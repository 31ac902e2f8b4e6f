package sqlpool

import (
	"context"
	"database/sql/driver"
	"sync/atomic"
)

// Defaults of the statement cache.
const (
	defaultStatementCacheSize     = 64
	defaultStatementCacheMaxTotal = 1024
	defaultStatementCacheMaxBytes = 1 << 20
)

// stmtCache is one physical connection's prepared statements: an LRU of
// cached ones by SQL text, and the uncached ones of the current borrowing.
// It belongs to the connection's borrower, so it needs no lock; only its
// counters are read concurrently, by Stats.
//
// A cached statement used during the current borrowing is pinned: eviction
// skips it. database/sql ends a borrowing only after every Rows of it is
// closed, so no statement is ever closed under an open Rows, without counting
// references.
type stmtCache struct {
	max      int                    // entries kept; 0: none
	maxBytes int                    // SQL text bytes kept
	bytes    int                    // SQL text bytes of entries
	entries  map[string]*cachedStmt // by SQL text
	// The LRU list: head is the most recently used.
	head, tail *cachedStmt
	borrowing  uint64 // sequence of the current borrowing

	temps   map[string]driver.Stmt // uncached statements of this borrowing
	retired []driver.Stmt          // invalidated during this borrowing
	owned   []driver.Stmt          // COPY statements of this borrowing, each its *stmt's
	hit     bool                   // the current operation's statement came from the cache

	cached, hits, misses, evictions, prepares, invalidations atomic.Int64
}

type cachedStmt struct {
	query      string
	si         driver.Stmt
	borrowing  uint64 // the last borrowing that used it
	prev, next *cachedStmt
}

// CacheStats are statement-cache counters.
type CacheStats struct {
	Cached        int64 // statements cached now
	Hits          int64 // statements found in the cache
	Misses        int64 // statements that had to be prepared
	Evictions     int64 // cached statements closed to make room
	Prepares      int64 // statements prepared on the server
	Invalidations int64 // cached statements dropped after the server invalidated their plan
}

func (s *CacheStats) add(o CacheStats) {
	s.Cached += o.Cached
	s.Hits += o.Hits
	s.Misses += o.Misses
	s.Evictions += o.Evictions
	s.Prepares += o.Prepares
	s.Invalidations += o.Invalidations
}

// stats returns the counters.
func (sc *stmtCache) stats() CacheStats {
	return CacheStats{
		Cached: sc.cached.Load(), Hits: sc.hits.Load(), Misses: sc.misses.Load(), Evictions: sc.evictions.Load(),
		Prepares: sc.prepares.Load(), Invalidations: sc.invalidations.Load(),
	}
}

// stmt returns the physical statement for query: cached, or prepared now
// and cached when there is room. Otherwise an implicit statement (CacheAll's
// queries with arguments) is not prepared (errFallBack: the caller takes the
// driver's one-off path), so that no input can make a connection keep
// statements past the cache's bounds, even inside one long transaction; an
// explicit one (a prepare the borrower asked for) is kept until the
// borrowing ends.
func (pc *physConn) stmt(ctx context.Context, query string, implicit bool) (driver.Stmt, error) {
	sc := &pc.cache
	if e := sc.entries[query]; e != nil {
		sc.hits.Add(1)
		sc.hit = true
		pc.recordStatementCache(true)
		e.borrowing = sc.borrowing
		sc.moveToFront(e)
		return e.si, nil
	}
	if si, ok := sc.temps[query]; ok {
		return si, nil
	}
	room := pc.makeRoom(len(query))
	if !room && implicit {
		return nil, errFallBack
	}
	sc.misses.Add(1)
	pc.recordStatementCache(false)
	si, err := pc.prepareDriver(ctx, query)
	if err != nil {
		if room {
			pc.total.Add(-1)
		}
		return nil, err
	}
	sc.prepares.Add(1)
	if room {
		sc.insert(query, si)
		return si, nil
	}
	if sc.temps == nil {
		sc.temps = make(map[string]driver.Stmt)
	}
	sc.temps[query] = si
	return si, nil
}

// prepareDriver prepares query as database/sql would (ctxDriverPrepare).
func (pc *physConn) prepareDriver(ctx context.Context, query string) (driver.Stmt, error) {
	if pc.preparer != nil {
		return pc.preparer.PrepareContext(ctx, query)
	}
	si, err := pc.Prepare(query)
	if err == nil {
		select {
		default:
		case <-ctx.Done():
			si.Close()
			return nil, ctx.Err()
		}
	}
	return si, err
}

// makeRoom makes room in the cache for a statement of n bytes of SQL,
// evicting this connection's least recently used unpinned statements, and
// reserves its place under the pool's total cap. It reports false when the
// caps cannot be met.
func (pc *physConn) makeRoom(n int) bool {
	sc := &pc.cache
	if sc.max <= 0 || n > sc.maxBytes {
		return false
	}
	for len(sc.entries) >= sc.max || sc.bytes+n > sc.maxBytes {
		if !sc.evict(pc.total) {
			return false
		}
	}
	return pc.reserve() || sc.evict(pc.total) && pc.reserve()
}

// insert caches si, whose place makeRoom reserved.
func (sc *stmtCache) insert(query string, si driver.Stmt) {
	e := &cachedStmt{query: query, si: si, borrowing: sc.borrowing}
	if sc.entries == nil {
		sc.entries = make(map[string]*cachedStmt, sc.max)
	}
	sc.entries[query] = e
	sc.pushFront(e)
}

// reserve takes one place under the pool's total cap.
func (pc *physConn) reserve() bool {
	if pc.total.Add(1) <= pc.maxTotal {
		return true
	}
	pc.total.Add(-1)
	return false
}

// evict closes the least recently used statement not pinned by the current
// borrowing, and reports whether there was one.
func (sc *stmtCache) evict(total *atomic.Int64) bool {
	for e := sc.tail; e != nil; e = e.prev {
		if e.borrowing != sc.borrowing {
			sc.remove(e)
			e.si.Close()
			total.Add(-1)
			sc.evictions.Add(1)
			return true
		}
	}
	return false
}

// invalidate drops query's statement after the server invalidated its plan.
// It is closed when the borrowing ends, in case a Rows of it is still open,
// or at once on a driver that hands out one prepared statement per SQL text
// until it is closed (pgx's stdlib, sharedPrep), so that preparing again
// gets a fresh one: pgx runs one query at a time on a connection, so no
// Rows of it is open.
func (pc *physConn) invalidate(query string) {
	sc := &pc.cache
	sc.invalidations.Add(1)
	var si driver.Stmt
	if e := sc.entries[query]; e != nil {
		sc.remove(e)
		pc.total.Add(-1)
		si = e.si
	} else if t, ok := sc.temps[query]; ok {
		delete(sc.temps, query)
		si = t
	} else {
		return
	}
	if pc.sharedPrep {
		si.Close()
	} else {
		sc.retired = append(sc.retired, si)
	}
}

// own keeps si, a COPY's statement, for the borrowing.
func (sc *stmtCache) own(si driver.Stmt) *ownedStmt {
	sc.owned = append(sc.owned, si)
	return &ownedStmt{si: si, sc: sc, borrowing: sc.borrowing}
}

// closeOwn closes si if the borrowing still owns it.
func (sc *stmtCache) closeOwn(si driver.Stmt) error {
	for i, o := range sc.owned {
		if o == si {
			sc.owned = append(sc.owned[:i], sc.owned[i+1:]...)
			return si.Close()
		}
	}
	return nil
}

// closeOwned closes the borrowing's COPY statements: before its transaction
// ends, or with the borrowing.
func (sc *stmtCache) closeOwned() {
	for i, si := range sc.owned {
		si.Close()
		sc.owned[i] = nil
	}
	sc.owned = sc.owned[:0]
}

// ownedStmt is a statement one *stmt owns, in one borrowing.
type ownedStmt struct {
	si        driver.Stmt
	sc        *stmtCache
	borrowing uint64
}

// live reports whether o's borrowing is the one h has now.
func (o *ownedStmt) live(h *conn) bool {
	return h.pc != nil && &h.pc.Value().cache == o.sc && o.sc.borrowing == o.borrowing
}

// endBorrowing closes the statements that do not outlive the borrowing and
// unpins the cached ones.
func (sc *stmtCache) endBorrowing() {
	if len(sc.owned) > 0 {
		sc.closeOwned()
	}
	if len(sc.temps) > 0 { // an empty map's range and clear cost as much as the rest
		for _, si := range sc.temps {
			si.Close()
		}
		clear(sc.temps)
	}
	for i, si := range sc.retired {
		si.Close()
		sc.retired[i] = nil
	}
	sc.retired = sc.retired[:0]
	sc.borrowing++
}

// closeAll closes every statement, when the connection closes.
func (pc *physConn) closeAllStmts() {
	sc := &pc.cache
	sc.endBorrowing()
	for sc.head != nil {
		e := sc.head
		sc.remove(e)
		e.si.Close()
		pc.total.Add(-1)
	}
}

func (sc *stmtCache) pushFront(e *cachedStmt) {
	sc.cached.Add(1)
	sc.bytes += len(e.query)
	e.prev, e.next = nil, sc.head
	if sc.head != nil {
		sc.head.prev = e
	} else {
		sc.tail = e
	}
	sc.head = e
}

func (sc *stmtCache) remove(e *cachedStmt) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		sc.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		sc.tail = e.prev
	}
	e.prev, e.next = nil, nil
	delete(sc.entries, e.query)
	sc.cached.Add(-1)
	sc.bytes -= len(e.query)
}

func (sc *stmtCache) moveToFront(e *cachedStmt) {
	if sc.head == e {
		return
	}
	sc.remove(e)
	sc.entries[e.query] = e
	sc.pushFront(e)
}

// withStmt runs fn with query's physical statement on pc (see stmt for
// implicit). When the server has invalidated a cached plan, or no longer
// knows the statement (SQLSTATE 26000: a borrower ran DEALLOCATE ALL or
// DISCARD ALL), the entry (for 26000, the whole cache: they are all gone)
// is dropped and, outside a transaction, the statement is prepared again
// and fn retried once: the server ran nothing. Inside one, the error is
// returned (the transaction is aborted anyway). No other error is retried.
func withStmt[R any](ctx context.Context, h *conn, pc *physConn, query string, implicit bool, fn func(driver.Stmt) (R, error)) (R, error) {
	si, err := pc.stmt(ctx, query, implicit)
	if err != nil {
		var zero R
		return zero, err
	}
	r, err := fn(si)
	if err == nil || err == errFallBack {
		return r, err
	}
	switch {
	case stmtGone(err):
		pc.cache.invalidations.Add(1)
		pc.forgetStmts()
	case planInvalidated(err):
		pc.invalidate(query)
	default:
		return r, err
	}
	if !h.tx {
		if si, err = pc.stmt(ctx, query, implicit); err == nil {
			r, err = fn(si)
		}
	}
	return r, err
}
