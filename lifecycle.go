package sqlpool

import (
	"database/sql/driver"
	"errors"
	"log/slog"

	"github.com/sqlpool/sqlpool/pool"
)

// This file holds the warnings of connections near their limits, and the
// classification of a borrowing's errors for adaptive aging. Recycling is
// in recycle.go, the reclaim of connections borrowed too long in
// reclaim.go.

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

// classify notes an operation's error for adaptive aging and for the
// release: the caller's own cancellation (canceled) is not the
// connection's fault and does not count; nor do
// errors that are the statement's or the transaction's (SQLSTATE classes
// 22 data, 23 integrity, 40 rollback, 42 syntax or access, when the driver
// reports a SQLSTATE); every other error marks the borrowing failed. It
// reports whether err marked it (it counts against the host's health too).
func (h *conn) classify(err error, canceled bool) (failed bool) {
	if err == nil || err == driver.ErrSkip || err == errFallBack || errors.Is(err, ErrReclaimed) {
		return false
	}
	if canceled {
		h.canceled = true
		return false
	}
	var state interface{ SQLState() string }
	if errors.As(err, &state) {
		switch s := state.SQLState(); {
		case len(s) == 5 && (s[:2] == "22" || s[:2] == "23" || s[:2] == "40" || s[:2] == "42"):
			return false
		}
	}
	h.failed = true
	return true
}
