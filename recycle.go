package sqlpool

import (
	"context"
	"database/sql/driver"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/sqlpool/sqlpool/pool"
)

// This file holds what happens to a session when a borrowing ends:
// recycling strategies and session reset.

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
