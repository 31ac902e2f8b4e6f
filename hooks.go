package sqlpool

import (
	"context"
	"log/slog"
	"time"
)

// Hooks are optional funcs that sqlpool calls on connection events, for
// monitoring and tracing. Each runs synchronously on the goroutine of the
// event, on the hot path: keep it short, never block, never call back into
// the pool. A nil func costs nothing.
type Hooks struct {
	// OnConnect is called after each dial of a physical connection.
	OnConnect func(ConnectEvent)
	// OnAcquire is called after each borrowing of a physical connection by
	// an operation, or its failure.
	OnAcquire func(AcquireEvent)
	// OnRelease is called when a borrowing ends.
	OnRelease func(ReleaseEvent)
	// OnQueryStart is called before each operation on a physical connection.
	OnQueryStart func(QueryEvent)
	// OnQueryEnd is called after it, with its duration and error. Err is
	// driver.ErrSkip when the driver declined the query and database/sql
	// prepares it instead: a prepare and a statement's Start and End follow.
	OnQueryEnd func(QueryEvent)
	// OnClose is called when a physical connection is closed, with why.
	OnClose func(CloseEvent)
	// OnLeak is called once for each borrowing held past
	// Config.LeakThreshold.
	OnLeak func(Leak)
}

// ConnectEvent describes one dial.
type ConnectEvent struct {
	ConnID   int64         // the new connection's ID; 0 if the dial failed
	Duration time.Duration // how long the dial took
	Err      error
}

// AcquireEvent describes one borrowing of a physical connection.
type AcquireEvent struct {
	// Ctx is the context of the operation that asked, for tracing.
	Ctx       context.Context
	Partition string
	ConnID    int64         // 0 when Err is set
	Wait      time.Duration // time to get the connection, checks included
	Err       error
}

// ReleaseEvent describes the end of a borrowing.
type ReleaseEvent struct {
	Partition string
	ConnID    int64
	Hold      time.Duration // time since the borrowing began
}

// QueryEvent describes one operation on a physical connection.
type QueryEvent struct {
	// Ctx is the operation's context, for tracing; context.Background()
	// for Commit and Rollback, which take none.
	Ctx       context.Context
	Partition string
	ConnID    int64
	Op        string        // query, exec, prepare, begin, commit, rollback, ping
	Query     string        // the SQL text, for query, exec and prepare
	Duration  time.Duration // OnQueryEnd only
	Err       error         // OnQueryEnd only
	// Cached (OnQueryEnd only): the operation ran a prepared statement
	// found in the connection's statement cache.
	Cached bool
}

// CloseEvent describes the closing of a physical connection.
type CloseEvent struct {
	ConnID int64
	Reason string // idle, lifetime, usage, errors, validation, evicted, reclaimed, pool_closed
}

// Leak describes a borrowing held longer than Config.LeakThreshold.
type Leak struct {
	Partition string
	ConnID    int64
	Held      time.Duration
	// Kind guesses what holds the connection: "tx" (an unfinished
	// transaction), "rows" (an unclosed Rows, or an *sql.Conn whose last
	// statement was a query), "conn" (an *sql.Conn held after an exec).
	Kind string
	// Stack is where the connection was acquired, when
	// Config.LeakStacks is set.
	Stack string
}

// SlogHooks returns Hooks that log every event to l: dials, closes and leaks
// at Info (failures and leaks at Warn), borrowings and operations at Debug.
func SlogHooks(l *slog.Logger) Hooks {
	ctx := context.Background()
	return Hooks{
		OnConnect: func(e ConnectEvent) {
			if e.Err != nil {
				l.LogAttrs(ctx, slog.LevelWarn, "sqlpool: connect failed", slog.Duration("duration", e.Duration), slog.Any("error", e.Err))
				return
			}
			l.LogAttrs(ctx, slog.LevelInfo, "sqlpool: connected", slog.Int64("conn", e.ConnID), slog.Duration("duration", e.Duration))
		},
		OnAcquire: func(e AcquireEvent) {
			if e.Err != nil {
				l.LogAttrs(ctx, slog.LevelWarn, "sqlpool: acquire failed", slog.String("partition", e.Partition), slog.Duration("wait", e.Wait), slog.Any("error", e.Err))
				return
			}
			l.LogAttrs(ctx, slog.LevelDebug, "sqlpool: acquired", slog.String("partition", e.Partition), slog.Int64("conn", e.ConnID), slog.Duration("wait", e.Wait))
		},
		OnRelease: func(e ReleaseEvent) {
			l.LogAttrs(ctx, slog.LevelDebug, "sqlpool: released", slog.String("partition", e.Partition), slog.Int64("conn", e.ConnID), slog.Duration("hold", e.Hold))
		},
		OnQueryEnd: func(e QueryEvent) {
			l.LogAttrs(ctx, slog.LevelDebug, "sqlpool: "+e.Op, slog.String("partition", e.Partition), slog.Int64("conn", e.ConnID),
				slog.String("query", e.Query), slog.Duration("duration", e.Duration), slog.Any("error", e.Err))
		},
		OnClose: func(e CloseEvent) {
			l.LogAttrs(ctx, slog.LevelInfo, "sqlpool: closed", slog.Int64("conn", e.ConnID), slog.String("reason", e.Reason))
		},
		OnLeak: func(e Leak) {
			l.LogAttrs(ctx, slog.LevelWarn, "sqlpool: connection held past LeakThreshold", slog.String("partition", e.Partition),
				slog.Int64("conn", e.ConnID), slog.Duration("held", e.Held), slog.String("kind", e.Kind), slog.String("stack", e.Stack))
		},
	}
}
