package sqlpool

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/sqlpool/sqlpool/internal/clock"
	"github.com/sqlpool/sqlpool/pool"
)

// conn is the logical handle database/sql holds. It borrows a physical
// connection from the pool on the first operation of each borrowing, with
// that operation's context, and gives it back when database/sql takes the
// handle back (IsValid) or closes it. database/sql serialises all calls on a
// handle, so its fields need no lock.
type conn struct {
	c       *Connector            // the pool of the borrowing (a Cluster's: of its host)
	cl      *Cluster              // the handle's Cluster, if any: it picks c at each bind
	pc      *pool.Conn[*physConn] // bound physical connection; nil between borrowings
	part    *partState            // the partition of the borrowing
	tags    *tags                 // the routing tags of the borrowing (of its first operation)
	want    *tags                 // tags of the context database/sql gave the handle with (Connect, ResetSession); nil: none
	tx      bool                  // a transaction is open on pc
	boundAt time.Time             // when pc was bound
	bad     bool                  // pc returned driver.ErrBadConn
	failed  bool                  // an operation of the borrowing failed (classify)
	// canceled: an operation of the borrowing failed because its caller's
	// context ended.
	canceled bool

	// Between borrowings, the handle may keep its last connection parked
	// (pool.Conn.Park), for the next borrowing of the same partition to
	// retake without the pool's lock: parked, with its token, the
	// partition and the tags of the borrowing that parked it.
	parked     *pool.Conn[*physConn]
	parkTok    uint64
	parkPart   *partState
	parkedTags *tags
}

var (
	_ driver.Conn               = (*conn)(nil)
	_ driver.Pinger             = (*conn)(nil)
	_ driver.ExecerContext      = (*conn)(nil)
	_ driver.QueryerContext     = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.NamedValueChecker  = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
	_ driver.Validator          = (*conn)(nil)
)

// bind returns the bound physical connection, borrowing one routed by ctx when
// there is none; write says the operation may write (a Cluster sends it to
// its primary). An acquisition error is never driver.ErrBadConn.
func (h *conn) bind(ctx context.Context, write bool) (*physConn, error) {
	if h.pc != nil {
		return h.pc.Value(), h.pinned(ctx)
	}
	t := tagsFrom(ctx)
	if h.want != nil && t != h.want {
		if t != defaultTags { // database/sql's context and the operation's disagree
			if err := h.c.sameRoute(h.want, t); err != nil {
				return nil, err
			}
		}
		t = h.want // db.Conn(ctx) binds to ctx's partition
	}
	if h.cl != nil {
		c, err := h.cl.pick(t, write)
		if err != nil {
			return nil, err
		}
		h.c = c
	}
	// One clock reading per acquisition: the pool measures from it, and
	// says when it lent the connection.
	t0 := clock.Now()
	pc, ps := h.retake(ctx, t0, t)
	var err error
	if pc == nil {
		pc, ps, err = h.c.acquire(ctx, t0, t)
	}
	var v *physConn
	var end time.Time // of the acquisition
	if err == nil {
		v = pc.Value()
		end = pc.LentAt()
		h.boundAt = end
	} else {
		end = clock.Now()
	}
	wait := end.Sub(t0)
	if err != nil {
		noteWait(err, wait)
	}
	if h.c.metrics {
		if ps != nil {
			var key uint64 // the connection's: see RecordAcquireFor
			if v != nil {
				key = uint64(v.id)
			}
			ps.rec.RecordAcquireFor(key, end, wait, result(err))
		} else {
			h.c.rec.RecordAcquire("", wait, result(err))
		}
	}
	if err == nil {
		h.pc, h.part, h.tags = pc, ps, t
		if hs := h.c.host; hs != nil {
			hs.inUse.Add(1)
		}
		ps.lend(v.id)
		v.part.Store(ps)
		if h.c.cfg.LeakThreshold > 0 {
			h.c.trackBorrow(v, &ps.name)
		}
	}
	if f := h.c.cfg.Hooks.OnAcquire; f != nil {
		e := AcquireEvent{Ctx: ctx, Wait: wait, Err: err}
		if ps != nil {
			e.Partition = ps.name
		}
		if v != nil {
			e.ConnID = v.id
		}
		h.onAcquire(f, e)
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}

// retake lends the handle its parked connection again, at now, when the
// borrowing tagged t routes to the partition it was parked in; otherwise,
// or when the pool took it back, it returns nil, and the caller acquires.
func (h *conn) retake(ctx context.Context, now time.Time, t *tags) (*pool.Conn[*physConn], *partState) {
	pc, ps := h.parked, h.parkPart
	if pc == nil {
		return nil, nil
	}
	h.parked = nil
	same := t == h.parkedTags
	if !same {
		ps2, err := h.c.route(t)
		same = err == nil && ps2 == ps
	}
	// The session must still be set up for ps: its last borrower may have
	// undone the setup (DISCARD ALL), and setLabel runs it again.
	if !same || pc.Value().label.Load() != ps {
		pc.Unpark(h.parkTok)
		return nil, nil
	}
	if !pc.Retake(ctx, h.parkTok, now) {
		return nil, nil
	}
	if len(ps.setup) > 0 { // as setLabel counts it
		ps.labeled.Add(1)
	}
	return pc, ps
}

// unpark gives the handle's parked connection, if any, back to the pool.
func (h *conn) unpark() {
	if h.parked != nil {
		h.parked.Unpark(h.parkTok)
		h.parked = nil
	}
}

// noteWait records in a timeout error the whole wait of its acquisition:
// QueryRate and pool (at the partition's MaxSize or the pool's).
func noteWait(err error, wait time.Duration) {
	var te *TimeoutError
	if errors.As(err, &te) {
		te.Waited = wait
	}
}

// onAcquire calls the OnAcquire hook; if it panics, the borrowing it was
// told of ends before the panic goes on.
func (h *conn) onAcquire(f func(AcquireEvent), e AcquireEvent) {
	ok := false
	defer func() {
		if !ok {
			h.release(false)
		}
	}()
	f(e)
	ok = true
}

// pinned checks an operation on the handle's bound connection (inside a
// transaction or an *sql.Conn): a context routed to another partition is
// refused with ErrPartitionMismatch, and the partition's QueryRate is
// waited for.
func (h *conn) pinned(ctx context.Context) error {
	if t := tagsFrom(ctx); t != defaultTags && t != h.tags {
		ps, err := h.c.route(t)
		if err != nil {
			return err
		}
		if ps != h.part {
			return mismatch(h.part, ps)
		}
		h.tags = t // same partition: quick next time
	}
	if h.part.limiter != nil {
		return h.c.throttle(ctx, clock.Now(), h.part) // as for an acquisition: one deadline, counted
	}
	return nil
}

// sameRoute returns ErrPartitionMismatch unless a and b route to the same
// partition.
func (c *Connector) sameRoute(a, b *tags) error {
	pa, err := c.route(a)
	if err != nil {
		return err
	}
	pb, err := c.route(b)
	if err != nil {
		return err
	}
	if pa != pb {
		return mismatch(pa, pb)
	}
	return nil
}

func mismatch(bound, asked *partState) error {
	return fmt.Errorf("%w: the connection serves partition %q, the context routes to %q: "+
		"run each tenant's work in its own transaction or *sql.Conn, made with that tenant's context", ErrPartitionMismatch, bound.name, asked.name)
}

// check notes a driver.ErrBadConn from the physical connection and returns
// err unchanged (database/sql compares some errors by identity).
func (h *conn) check(err error) error {
	if err != nil && errors.Is(err, driver.ErrBadConn) {
		h.bad = true
	}
	return err
}

// release ends the borrowing: the physical connection goes back to the pool
// (recycled by Config.Recycle), or is closed when it is broken or left
// inside a transaction. A connection reclaimed by the pool (MaxBorrowTime)
// is already closed: release only drops what the handle kept of it. With
// park, a connection RecycleFast would give back as it is stays parked in
// the handle for its next borrowing (see retake), as far as the pool
// allows.
func (h *conn) release(park bool) {
	h.want = nil
	pc := h.pc
	if pc == nil {
		return
	}
	tags := h.tags
	h.pc, h.tags = nil, nil
	c := h.c
	if c.host != nil {
		c.host.inUse.Add(-1)
	}
	v := pc.Value()
	now := clock.Now() // the one clock reading of the release
	hold := now.Sub(h.boundAt)
	if c.metrics {
		h.part.rec.RecordReleaseFor(uint64(v.id), hold)
	}
	if f := c.cfg.Hooks.OnRelease; f != nil {
		f(ReleaseEvent{Partition: h.part.name, ConnID: v.id, Hold: hold})
	}
	v.releasePart()
	if c.cfg.LeakThreshold > 0 {
		v.borrow.since.Store(0)
	}
	bad, inTx, failed, canceled := h.bad, h.tx, h.failed, h.canceled
	h.bad, h.tx, h.failed, h.canceled = false, false, false, false
	if c.reclaim && !v.enterCall() { // reclaimed: the pool has closed it
		v.forgetStmts()
		return
	}
	v.cache.endBorrowing()
	if failed {
		pc.ReportError()
	}
	var taken bool
	switch {
	case bad || (v.validator != nil && !v.validator.IsValid()):
		reason := pool.CloseErrors
		if canceled { // the caller's cancellation broke it (mysql closes on cancel)
			reason = pool.CloseEvicted
		}
		taken = pc.Destroy(reason)
	case inTx:
		taken = pc.Destroy(pool.CloseEvicted)
	case c.cfg.AfterRelease != nil && !c.cfg.AfterRelease(v.Conn):
		taken = pc.Destroy(pool.CloseEvicted)
	case park && c.parks && h.cl == nil && h.part.limiter == nil:
		// A Cluster's handle picks its host at each borrowing; a QueryRate
		// is waited for before borrowing.
		if tok := pc.Park(now); tok != 0 {
			h.parked, h.parkTok, h.parkPart, h.parkedTags = pc, tok, h.part, tags
		}
		taken = true
	default:
		taken = c.recycle(pc, failed, now)
	}
	if !taken { // reclaimed meanwhile
		v.forgetStmts()
	}
	if c.reclaim {
		v.exitCall()
	}
}

// IsValid is called by database/sql each time it takes the handle back: the
// borrowing ends and the physical connection returns to the pool. The handle
// stays valid until the Connector closes.
func (h *conn) IsValid() bool {
	h.release(true)
	return !h.c.closed.Load()
}

// ResetSession is called by database/sql before it reuses the handle, with
// the context of the caller it reuses it for. It acquires nothing: the next
// operation does, routed by its own context, or by this one when the
// operation's carries no routing tags (db.Conn(ctx), then a statement
// without tags, binds to ctx's partition).
func (h *conn) ResetSession(ctx context.Context) error {
	if h.c.closed.Load() {
		return driver.ErrBadConn
	}
	h.setWant(ctx)
	return nil
}

// setWant notes the routing tags of the context database/sql gave the
// handle with.
func (h *conn) setWant(ctx context.Context) {
	if t := tagsFrom(ctx); t != defaultTags {
		h.want = t
	}
}

// Close ends any borrowing. database/sql calls it when it discards the handle.
func (h *conn) Close() error {
	h.release(false)
	h.unpark()
	return nil
}

// Raw returns the physical connection bound to the handle, or nil between
// borrowings. See the package function Raw.
func (h *conn) Raw() driver.Conn {
	if h.pc == nil {
		return nil
	}
	return h.pc.Value().Conn
}

// Raw returns the wrapped driver's connection under driverConn, the value
// (*sql.Conn).Raw passes to its function, borrowing one routed by ctx if the
// handle has none yet. The connection stays bound until the *sql.Conn is
// closed. Use it for driver-specific calls, such as pgx's CopyFrom:
//
//	err := conn.Raw(func(dc any) error {
//		raw, err := sqlpool.Raw(ctx, dc)
//		if err != nil {
//			return err
//		}
//		pgxConn := raw.(*stdlib.Conn).Conn()
//		...
//	})
func Raw(ctx context.Context, driverConn any) (driver.Conn, error) {
	h, ok := driverConn.(*conn)
	if !ok {
		return nil, errors.New("sqlpool: Raw: not a sqlpool connection")
	}
	pc, err := h.bind(ctx, true) // it may write
	if err != nil {
		return nil, err
	}
	return pc.Conn, nil
}
