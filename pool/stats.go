package pool

import "time"

// counters are the cumulative statistics; guarded by Pool.mu.
type counters struct {
	waits, timeouts, queueFull, canceled int64
	created, connectErrors               int64
	closed                               [numCloseReasons]int64
	boosts, wouldTimeout, deadlocks      int64
	shortened, overdue, keepalives       int64
}

// Stats is a snapshot of a pool.
type Stats struct {
	Suspended bool // Suspend is in force
	MaxSize   int  // the configured cap
	Size      int  // connections open or being dialed
	Idle      int  // idle connections, parked ones included
	InUse     int  // connections lent out (or being checked)
	Dialing   int  // dials in progress
	// Waiting counts the acquisitions waiting for a connection, but for
	// those held back by their Group's cap (GroupStats.Waiting counts them).
	Waiting int

	Acquires         int64         // successful acquisitions
	Waits            int64         // acquisitions that had to wait
	WaitTime         time.Duration // total time spent waiting
	Timeouts         int64         // acquisitions that timed out
	Canceled         int64         // acquisitions whose context was canceled
	QueueFull        int64         // acquisitions refused by MaxWaitQueue
	WouldTimeout     int64         // acquisitions refused at once by FailFastBelow
	Boosts           int64         // priority levels gained by starving waiters, counted as they leave the queue
	Deadlocks        int64         // exhaustion episodes reported by the deadlock detector
	Created          int64         // connections dialed
	ConnectErrors    int64         // failed dials
	LastConnectError error         // the last dial error, nil if none yet

	Closed map[CloseReason]int64 // connections closed, by reason

	Shortened  int64   // connections closed by a lifetime that adaptive aging had shortened (counted in Closed[CloseLifetime] too)
	ErrorRate  float64 // failed share of the pool's last ErrorWindow borrowings (adaptive aging on); -1 until the window is full
	Keepalives int64   // keepalive pings of idle connections
	Overdue    int64   // borrowings that passed MaxBorrowTime (the reclaimed ones are in Closed[CloseReclaimed] too)
	Warnings   int64   // warnings given: soft ones, and MaxBorrowTime passed

	// WarmupTarget is the number of connections maintenance keeps open
	// with PredictiveWarmup: MinSize, or more ahead of and during an hour
	// of day that was busy; 0 when PredictiveWarmup is off.
	WarmupTarget   int
	CircuitOpen    bool  // the circuit breaker is open (Config.BreakAfter)
	CircuitOpens   int64 // times the circuit opened (a failed probe keeps it open: not counted again)
	CircuitRefused int64 // acquisitions refused by the open circuit (ErrCircuitOpen)
}

// Stats returns a consistent snapshot of the pool.
func (p *Pool[T]) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	parked := p.parkedLocked()
	s := Stats{
		Suspended: p.suspended,
		MaxSize:   p.cfg.MaxSize, Size: p.total, Idle: len(p.idle) + parked, InUse: p.inUse - parked,
		Dialing: p.dialing, Waiting: p.queue.len - p.queue.blocked,
		Acquires: p.acquires.Load() + p.retakesLocked(), Waits: p.stats.waits, WaitTime: time.Duration(p.waitTime.Load()),
		Timeouts: p.stats.timeouts, Canceled: p.stats.canceled, QueueFull: p.stats.queueFull,
		WouldTimeout: p.stats.wouldTimeout, Boosts: p.stats.boosts, Deadlocks: p.stats.deadlocks,
		Created: p.stats.created, ConnectErrors: p.stats.connectErrors,
		LastConnectError: p.lastConnErr,
		Closed:           make(map[CloseReason]int64, numCloseReasons),
		Shortened:        p.stats.shortened, ErrorRate: p.window.rate(p.cfg.ErrorWindow),
		Keepalives: p.stats.keepalives, Overdue: p.stats.overdue, Warnings: p.warnings.Load(),
		WarmupTarget: p.warm.target,
		CircuitOpen:  p.breaker.open, CircuitOpens: p.breaker.opens, CircuitRefused: p.breaker.refused,
	}
	for r, n := range p.stats.closed {
		s.Closed[CloseReason(r)] = n
	}
	return s
}
