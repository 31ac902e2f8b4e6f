package sqlpool

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"github.com/sqlpool/sqlpool/pool"
)

// This file holds what the Connector adds to the pool's connection
// lifecycle: recycling strategies and session reset on release, the
// reclaim of connections borrowed past MaxBorrowTime, warnings, and the
// classification of a borrowing's errors for adaptive aging.

// RecycleStrategy says what happens to a physical connection's session when
// a borrowing ends and the connection goes back to the pool.
type RecycleStrategy uint8

// Recycling strategies.
const (
	// RecycleFast only ends the borrowing's own statements (those not
	// kept in the statement cache). Whatever the borrower left in the
	// session (variables set with SET, temporary tables, advisory or user
	// locks, prepared statements it made itself) is there for the next
	// borrower: use it when every borrower sets what it needs, or with
	// partitions' SetupSQL/ResetSQL. The zero value, and the fastest.
	RecycleFast RecycleStrategy = iota
	// RecycleChecked resets the session fully before the connection is
	// lent again: the driver's ResetSession, then Config.ResetSQL, bounded
	// by ValidationTimeout. A connection whose reset fails is closed
	// (reason validation). ResetSQL defaults to DISCARD ALL on PostgreSQL
	// (lib/pq, pgx), which also deallocates prepared statements: the
	// connection's statement cache is then dropped (and pgx's own caches
	// reset). go-sql-driver/mysql has no way to reset a session (its
	// ResetSession only checks the socket; it does not expose
	// COM_RESET_CONNECTION, go-sql-driver/mysql#1273), nor does SQLite's
	// driver, so for them, and any other driver, RecycleChecked without a
	// ResetSQL is RecycleReplace; go-mssqldb's ResetSession resets the
	// session itself (sp_reset_connection) and is trusted.
	RecycleChecked
	// RecycleReplace closes the connection and dials a new one in the
	// background, for the next borrower. The strongest isolation, at the
	// cost of a dial per borrowing.
	RecycleReplace
	// RecycleAdaptive picks one of the above for each release: Replace
	// when the connection is near the end of its life (WarnFraction of its
	// lifetime or of MaxUses, closed with the reason lifetime or usage),
	// Checked when the borrowing returned an error (its session may be
	// left in any state), Fast otherwise.
	RecycleAdaptive
)

// String returns the strategy's name.
func (s RecycleStrategy) String() string {
	switch s {
	case RecycleFast:
		return "fast"
	case RecycleChecked:
		return "checked"
	case RecycleReplace:
		return "replace"
	case RecycleAdaptive:
		return "adaptive"
	}
	return fmt.Sprintf("RecycleStrategy(%d)", s)
}

// ErrReclaimed is the error of an operation on a connection that the pool
// took back from its borrower because it was borrowed longer than
// Config.MaxBorrowTime (with Config.ReclaimBorrowed). Every later operation
// of the same transaction or *sql.Conn fails with it too: end the
// transaction or close the *sql.Conn, and start again. It is not
// driver.ErrBadConn, so database/sql retries nothing: the statement may have
// run.
var ErrReclaimed = errors.New("sqlpool: connection reclaimed: borrowed longer than MaxBorrowTime")

// reclaimedError is the error of an operation interrupted by the reclaim of
// its connection: it matches ErrReclaimed, never the driver's error (which
// may be driver.ErrBadConn), whose text it keeps.
type reclaimedError struct{ cause string }

func (e *reclaimedError) Error() string { return ErrReclaimed.Error() + " (" + e.cause + ")" }
func (e *reclaimedError) Unwrap() error { return ErrReclaimed }

// Limit names a connection limit, in a Warning.
type Limit = pool.Limit

// Limits.
const (
	LimitLifetime   = pool.LimitLifetime   // MaxLifetime, jittered and maybe shortened
	LimitUses       = pool.LimitUses       // MaxUses
	LimitBorrowTime = pool.LimitBorrowTime // MaxBorrowTime
)

// Warning describes a physical connection that reached WarnFraction of one
// of its limits, or was borrowed past MaxBorrowTime (Exceeded, and
// Reclaimed when ReclaimBorrowed is set). See pool.Warning for the fields.
type Warning struct {
	ConnID    int64  // as in Stats().Connections and the hooks
	Partition string // the partition the connection's session was last set up for
	pool.Warning
}

// Warn implements pool.Warner: it logs w (at Debug for lifetime and use
// limits, which every connection nears in its normal life, at Warn for the
// borrowed-time limit) and calls Config.OnWarning.
func (f factory) Warn(pc *physConn, w pool.Warning) {
	c := f.c
	e := Warning{ConnID: pc.id, Warning: w}
	if ps := pc.label.Load(); ps != nil {
		e.Partition = ps.name
	}
	if l := c.cfg.Logger; l != nil {
		pool.LogWarning(l, w, slog.Int64("conn", e.ConnID), slog.String("partition", e.Partition))
	}
	if c.cfg.OnWarning != nil {
		c.cfg.OnWarning(e)
	}
}

// resetPlan is how RecycleChecked resets a session for a driver.
type resetPlan struct {
	sql         []string // statements, in order
	resetter    bool     // the driver's ResetSession resets the session by itself
	deallocates bool     // sql drops the session's prepared statements
}

// ok reports whether the plan resets anything: otherwise Checked replaces.
func (r resetPlan) ok() bool { return len(r.sql) > 0 || r.resetter }

// resetPlanFor returns the session reset of driver d, with resetSQL (the
// Config's) instead of the driver's default when it is set.
func resetPlanFor(t traits, resetSQL string) resetPlan {
	r := resetPlan{sql: t.fullReset, resetter: strings.HasSuffix(t.pkg, "go-mssqldb")}
	if resetSQL != "" {
		r.sql = []string{resetSQL}
	}
	for _, q := range r.sql {
		u := strings.ToUpper(q)
		if strings.Contains(u, "DISCARD ALL") || strings.Contains(u, "DEALLOCATE") {
			r.deallocates = true
		}
	}
	return r
}

// recycle ends a borrowing that leaves the connection usable, by the
// recycling strategy: the connection goes back to the pool as it is
// (Fast), after a full session reset (Checked), or is replaced (Replace).
// failed says the borrowing returned an error. It reports whether the pool
// took the connection (see pool.Conn.Release).
func (c *Connector) recycle(pc *pool.Conn[*physConn], failed bool, now time.Time) bool {
	s := c.recycleMode
	if s == RecycleAdaptive {
		switch near := c.nearEnd; {
		case pc.Lifetime() > 0 && float64(now.Sub(pc.CreatedAt())) >= near*float64(pc.Lifetime()):
			return pc.Replace(pool.CloseLifetime)
		case c.maxUses > 0 && float64(pc.Uses()) >= near*float64(c.maxUses):
			return pc.Replace(pool.CloseUsage)
		case failed:
			s = RecycleChecked
		default:
			s = RecycleFast
		}
	}
	if s == RecycleChecked && !c.reset.ok() {
		s = RecycleReplace
	}
	switch s {
	case RecycleChecked:
		if err := c.resetSession(pc.Value()); err != nil {
			return pc.Destroy(pool.CloseValidation)
		}
		pc.SetLabel(0)      // the partition's session setup is gone too
		return pc.Release() // after the reset: a fresh clock reading
	case RecycleReplace:
		return pc.Replace(pool.CloseEvicted)
	}
	return pc.ReleaseAt(now)
}

// resetSession resets pc's session fully (RecycleChecked), within
// ValidationTimeout.
func (c *Connector) resetSession(pc *physConn) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.validationTimeout)
	defer cancel()
	if pc.resetter != nil {
		if err := pc.resetter.ResetSession(ctx); err != nil {
			return err
		}
	}
	for _, q := range c.reset.sql {
		if err := pc.execSession(ctx, q); err != nil {
			return fmt.Errorf("sqlpool: ResetSQL %q: %w", q, err)
		}
	}
	pc.label.Store(nil)
	if c.reset.deallocates {
		return c.dropStmts(ctx, pc)
	}
	return nil
}

// dropStmts forgets pc's statements after the server dropped them all
// (DISCARD ALL, DEALLOCATE ALL), and pgx's own caches of them.
func (c *Connector) dropStmts(ctx context.Context, pc *physConn) error {
	pc.forgetStmts()
	if c.traits.pgx {
		return pgxDeallocateAll(ctx, pc.Conn)
	}
	return nil
}

// pgxDeallocateAll resets the statement and description caches of a pgx
// stdlib connection after DISCARD ALL, through its Conn() *pgx.Conn and
// DeallocateAll methods, found by reflection (sqlpool does not import pgx).
// Without it, pgx would run its cached statements by names the server no
// longer knows, and fail once per statement.
func pgxDeallocateAll(ctx context.Context, dc driver.Conn) error {
	m := reflect.ValueOf(dc).MethodByName("Conn")
	if !m.IsValid() || m.Type().NumIn() != 0 || m.Type().NumOut() != 1 {
		return nil
	}
	d, ok := m.Call(nil)[0].Interface().(interface{ DeallocateAll(context.Context) error })
	if !ok {
		return nil
	}
	return d.DeallocateAll(ctx)
}

// forgetStmts drops every statement of pc's cache without closing it: the
// server has deallocated them (DISCARD ALL), or the connection is closed
// (reclaimed). Only pc's borrower calls it.
func (pc *physConn) forgetStmts() {
	sc := &pc.cache
	clear(sc.temps)
	clear(sc.retired)
	sc.retired = sc.retired[:0]
	for sc.head != nil {
		sc.remove(sc.head)
		pc.total.Add(-1)
	}
	sc.borrowing++
}

// releasePart gives back the partition slot of pc's borrowing, exactly
// once: by the borrower when the borrowing ends, or by the reclaim.
func (pc *physConn) releasePart() {
	if ps := pc.part.Swap(nil); ps != nil {
		ps.inUse.Add(-1)
		ps.leave()
	}
}

// With ReclaimBorrowed, a handle brackets every call into the driver (and
// the work of its release) with enterOp and exitOp, counting the calls in
// progress in physConn.state, and the reclaim (factory.Close with
// CloseReclaimed, on the pool's maintenance goroutine) sets reclaimBit in
// the same word:
//
//   - no call in progress: the reclaim closes the driver connection at
//     once. Its compare-and-swap read the state the borrower's last exitOp
//     wrote, so that call happens before the close (no data race, even in
//     drivers that touch unguarded state in Close), and every later
//     enterOp sees the bit and makes no call.
//   - a call in progress: the reclaim sets closeOwedBit, and that call's
//     exitOp closes the connection when it returns, on the borrower's
//     goroutine; its error becomes ErrReclaimed.
//
// The pool frees the connection's slot at once either way. A call in
// progress is not interrupted: closing a connection under a running call
// is a data race inside go-sql-driver/mysql and pgx, whose Close writes
// its terminate message through the buffers the call reads with. Bound
// calls with contexts or statement timeouts. Rows being read (their calls
// go straight to the driver) and a connection reached with Raw are outside
// the bracket: the reclaim may close the connection under them.
const (
	callMask     = 1<<30 - 1 // calls in progress
	reclaimBit   = 1 << 30   // reclaimed: make no more calls
	closeOwedBit = -1 << 31  // the call in progress closes the connection when it ends
)

// enterCall begins a driver call; false: the connection was reclaimed,
// make none.
func (pc *physConn) enterCall() bool {
	if pc.state.Add(1)&reclaimBit == 0 {
		return true
	}
	pc.exitCall()
	return false
}

// exitCall ends a driver call, closing the connection if the reclaim left
// that to it.
func (pc *physConn) exitCall() {
	s := pc.state.Add(-1)
	if s&closeOwedBit != 0 && s&callMask == 0 && pc.state.CompareAndSwap(s, s&^closeOwedBit) {
		pc.closeDriver()
	}
}

// reclaimed reports whether the reclaim took the connection.
func (pc *physConn) reclaimed() bool { return pc.state.Load()&reclaimBit != 0 }

// markReclaimed marks the connection reclaimed and closes it at once when
// no call is in progress, or leaves the close to that call's end.
func (pc *physConn) markReclaimed() {
	for {
		s := pc.state.Load()
		if s&callMask == 0 {
			if pc.state.CompareAndSwap(s, s|reclaimBit) {
				pc.closeDriver()
				return
			}
		} else if pc.state.CompareAndSwap(s, s|reclaimBit|closeOwedBit) {
			return
		}
	}
}

// closeDriver closes the driver connection, after the BeforeClose hook.
func (pc *physConn) closeDriver() error {
	if f := pc.beforeClose; f != nil {
		f(pc.Conn)
	}
	return pc.Close()
}

// enterOp begins a driver call on the bound connection; false: the
// connection was reclaimed, make none.
func (h *conn) enterOp() bool {
	return !h.c.reclaim || h.pc.Value().enterCall()
}

// exitOp ends a driver call begun by enterOp and returns its error, made
// ErrReclaimed when the connection was reclaimed during the call.
func (h *conn) exitOp(err error) error {
	if !h.c.reclaim || h.pc == nil {
		return err
	}
	v := h.pc.Value()
	v.exitCall()
	if err != nil && v.reclaimed() && !errors.Is(err, ErrReclaimed) {
		return &reclaimedError{err.Error()}
	}
	return err
}

// classify notes an operation's error for adaptive aging and for the
// release: the caller's own cancellation (canceled) is not the
// connection's fault and does not count; nor do
// errors that are the statement's or the transaction's (SQLSTATE classes
// 22 data, 23 integrity, 40 rollback, 42 syntax or access, when the driver
// reports a SQLSTATE); every other error marks the borrowing failed.
func (h *conn) classify(err error, canceled bool) {
	if err == nil || err == driver.ErrSkip || err == errFallBack || errors.Is(err, ErrReclaimed) {
		return
	}
	if canceled {
		h.canceled = true
		return
	}
	var state interface{ SQLState() string }
	if errors.As(err, &state) {
		switch s := state.SQLState(); {
		case len(s) == 5 && (s[:2] == "22" || s[:2] == "23" || s[:2] == "40" || s[:2] == "42"):
			return
		}
	}
	h.failed = true
}
