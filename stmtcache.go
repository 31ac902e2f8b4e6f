package sqlpool

import (
	"context"
	"database/sql/driver"
	"errors"
	"strings"
	"sync/atomic"
)

// Defaults of the statement cache.
const (
	defaultStatementCacheSize     = 64
	defaultStatementCacheMaxTotal = 1024
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
	max     int                    // entries kept; 0: none
	entries map[string]*cachedStmt // by SQL text
	// The LRU list: head is the most recently used.
	head, tail *cachedStmt
	borrowing  uint64 // sequence of the current borrowing

	temps   map[string]driver.Stmt // uncached statements of this borrowing
	retired []driver.Stmt          // invalidated during this borrowing

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

// stmt returns the physical statement for query: cached, or prepared now and
// cached when cache is set and there is room, or else kept until the
// borrowing ends.
func (pc *physConn) stmt(ctx context.Context, query string, cache bool) (driver.Stmt, error) {
	sc := &pc.cache
	if e := sc.entries[query]; e != nil {
		sc.hits.Add(1)
		e.borrowing = sc.borrowing
		sc.moveToFront(e)
		return e.si, nil
	}
	if si, ok := sc.temps[query]; ok {
		return si, nil
	}
	sc.misses.Add(1)
	si, err := pc.prepareDriver(ctx, query)
	if err != nil {
		return nil, err
	}
	sc.prepares.Add(1)
	if cache && pc.cacheAdd(query, si) {
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

// cacheAdd caches si if the connection's and the pool's caps allow, evicting
// this connection's least recently used unpinned statement when needed.
func (pc *physConn) cacheAdd(query string, si driver.Stmt) bool {
	sc := &pc.cache
	if sc.max <= 0 {
		return false
	}
	if len(sc.entries) >= sc.max && !sc.evict(pc.total) {
		return false
	}
	if !pc.reserve() && (!sc.evict(pc.total) || !pc.reserve()) {
		return false
	}
	e := &cachedStmt{query: query, si: si, borrowing: sc.borrowing}
	if sc.entries == nil {
		sc.entries = make(map[string]*cachedStmt, sc.max)
	}
	sc.entries[query] = e
	sc.pushFront(e)
	return true
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

// invalidate drops query's cached statement; it is closed when the borrowing
// ends, in case a Rows of it is still open.
func (pc *physConn) invalidate(query string) {
	sc := &pc.cache
	sc.invalidations.Add(1)
	if e := sc.entries[query]; e != nil {
		sc.remove(e)
		pc.total.Add(-1)
		sc.retired = append(sc.retired, e.si)
		return
	}
	if si, ok := sc.temps[query]; ok {
		delete(sc.temps, query)
		sc.retired = append(sc.retired, si)
	}
}

// endBorrowing closes the statements that do not outlive the borrowing and
// unpins the cached ones.
func (sc *stmtCache) endBorrowing() {
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
}

func (sc *stmtCache) moveToFront(e *cachedStmt) {
	if sc.head == e {
		return
	}
	sc.remove(e)
	sc.entries[e.query] = e
	sc.pushFront(e)
}

// planInvalidated reports whether err says the server threw away the plan of
// a prepared statement, which re-preparing fixes: PostgreSQL's "cached plan
// must not change result type" (SQLSTATE 0A000), MySQL's error 1615
// ("Prepared statement needs to be re-prepared").
func planInvalidated(err error) bool {
	var state interface{ SQLState() string }
	if errors.As(err, &state) && state.SQLState() == "0A000" &&
		strings.Contains(err.Error(), "cached plan must not change result type") {
		return true
	}
	return strings.Contains(err.Error(), "Error 1615")
}

// runStmt runs fn with query's physical statement, within the hooks of
// operation op. When the server has invalidated a cached plan, the entry is
// dropped and, outside a transaction, the statement is prepared again and fn
// retried once; inside one, the error is returned (the transaction is
// aborted anyway). No other error is retried.
func runStmt[R any](ctx context.Context, h *conn, op, query string, fn func(driver.Stmt) (R, error)) (R, error) {
	var zero R
	pc, t0, err := h.start(ctx, op, query)
	if err != nil {
		return zero, err
	}
	si, err := pc.stmt(ctx, query, true)
	if err != nil {
		return zero, h.end(ctx, op, query, t0, err)
	}
	r, err := fn(si)
	if err != nil && planInvalidated(err) {
		pc.invalidate(query)
		if !h.tx {
			if si, err = pc.stmt(ctx, query, true); err == nil {
				r, err = fn(si)
			}
		}
	}
	if err == errArgCount {
		return r, err // not run: the caller takes the driver's path
	}
	return r, h.end(ctx, op, query, t0, err)
}

// cacheModeFor picks the statement cache mode for a driver: off for pgx,
// which caches statements itself; all for lib/pq, go-sql-driver/mysql and
// mattn/go-sqlite3, which do not, and whose one-off queries with arguments
// cost extra round trips (or parses); explicit for any other driver.
func cacheModeFor(d driver.Driver) CacheMode {
	switch pkg := driverPackage(d); {
	case strings.HasPrefix(pkg, "github.com/jackc/pgx"):
		return CacheOff
	case pkg == "github.com/lib/pq", pkg == "github.com/go-sql-driver/mysql", pkg == "github.com/mattn/go-sqlite3":
		return CacheAll
	}
	return CacheExplicit
}
