package sqlpool

import "errors"

// This file holds the reclaim of connections borrowed past MaxBorrowTime
// (ReclaimBorrowed) and at Close (CloseTimeout), and the end of a
// borrowing in its partition's counts.

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

// releasePart ends pc's borrowing in its partition's counts, exactly once:
// by the borrower when the borrowing ends, or by the reclaim. The slot of
// the partition's MaxSize is the pool's to give back (its Group), once
// too, when the connection is released, destroyed or reclaimed.
func (pc *physConn) releasePart() {
	if ps := pc.part.Swap(nil); ps != nil {
		ps.giveBack(pc.id)
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
