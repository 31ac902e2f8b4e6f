package sqlpool

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sqlpool/sqlpool/monitor"
)

// Handler returns the management API and dashboard: GET / (the dashboard
// page), /api/config, /api/stats, /api/size, /api/queue, /api/partitions,
// /api/leaks, /api/dashboard, /metrics (Prometheus text) and
// /api/export?format=json|csv|prometheus. Actions that change the pool are
// POSTs refused unless the request carries Config.ManagementToken as a bearer
// token; with no token configured the API is read-only. Mount it under a
// prefix with http.StripPrefix and a trailing slash. In a binary built with
// -tags sqlpool_noprometheus, /metrics and format=prometheus answer 501.
func (c *Connector) Handler() http.Handler {
	return monitor.NewHandler(monitor.HandlerConfig{
		Report: c.report,
		Token:  c.cfg.ManagementToken,
		Actions: monitor.Actions{
			ResetStats: func(context.Context) error { c.rec.Reset(); return nil },
			Resize: func(_ context.Context, n int) error {
				if err := c.pool.Resize(n); err != nil {
					return fmt.Errorf("%w: %v", monitor.ErrInvalid, err)
				}
				return nil
			},
			EvictIdle: func(_ context.Context, name string) (int, error) {
				if name == "" {
					return c.pool.EvictIdle(nil), nil
				}
				return c.evictPartition(name)
			},
			Suspend: func(_ context.Context, name string) error {
				if name != "" {
					return fmt.Errorf("%w: only the whole pool can be suspended, not partition %q", monitor.ErrInvalid, name)
				}
				c.pool.Suspend()
				return nil
			},
			Resume: func(_ context.Context, name string) error {
				if name != "" {
					return fmt.Errorf("%w: only the whole pool can be resumed, not partition %q", monitor.ErrInvalid, name)
				}
				c.pool.Resume()
				return nil
			},
			Drain: func(_ context.Context, name string) error {
				_, err := c.evictPartition(name)
				return err
			},
		},
	})
}

// evictPartition closes the idle connections whose session is set up for the
// named partition.
func (c *Connector) evictPartition(name string) (int, error) {
	p := c.router.Get(name)
	if p == nil {
		return 0, fmt.Errorf("%w: partition %q", monitor.ErrNotFound, name)
	}
	ps := p.State.(*partState)
	return c.pool.EvictIdle(func(pc *physConn) bool { return pc.label.Load() == ps }), nil
}

// result classifies an acquisition's outcome for the recorder.
func result(err error) monitor.Result {
	switch {
	case err == nil:
		return monitor.ResultSuccess
	case errors.Is(err, ErrAcquireTimeout), errors.Is(err, context.DeadlineExceeded):
		return monitor.ResultTimeout
	case errors.Is(err, ErrQueueFull):
		return monitor.ResultQueueFull
	case errors.Is(err, context.Canceled):
		return monitor.ResultCanceled
	}
	return monitor.ResultError
}

// report is one reading of the pool for the monitor package.
func (c *Connector) report() monitor.Report {
	s := c.Stats()
	now := time.Now()
	ps := monitor.PoolState{
		MinSize: c.pool.Config().MinSize, MaxSize: s.MaxSize, Size: s.Size, Idle: s.Idle, InUse: s.InUse,
		Dialing: s.Dialing, Waiting: s.Waiting, Created: s.Created, ConnectErrors: s.ConnectErrors, Suspended: s.Suspended,
		CircuitOpen: s.CircuitOpen, CircuitOpens: s.CircuitOpens, CircuitRefused: s.CircuitRefused,
		Closed: make(map[string]int64, len(s.Closed)), Config: c.configMap(),
	}
	for r, n := range s.Closed {
		ps.Closed[r.String()] = n
	}
	// Waiting is defined per partition and the pool's is their sum, read
	// here, so that the rows add up to the header whatever moves meanwhile.
	// Queued (the pool's own queue) cannot be told apart by partition.
	ps.Waiting, ps.Queued = 0, s.Waiting
	idle := c.idleByPartition()
	for _, p := range c.router.List() {
		st := s.Partitions[p.Name]
		w := int(p.State.(*partState).waitingNow())
		ps.Waiting += w
		ps.Partitions = append(ps.Partitions, monitor.PartitionState{
			Name: p.Name, Idle: idle[p.State.(*partState)], InUse: int(st.InUse), Waiting: w, MaxSize: p.MaxSize,
		})
	}
	// The statement-cache figures are the recorder's, counted per
	// partition (recordStatementCache): its Total is their sum. Stats'
	// StatementCache counts the same lookups per connection, since the
	// Connector opened (a management reset does not zero it).
	r := monitor.Report{Pool: ps, Metrics: c.rec.Snapshot()}
	for _, l := range s.Leaks {
		r.Leaks = append(r.Leaks, monitor.Leak{
			Partition: l.Partition, Kind: monitor.LeakKind(l.Kind), AcquiredAt: now.Add(-l.Held),
			Held: monitor.Duration(l.Held), Stack: l.Stack,
		})
	}
	return r
}

// waitingNow returns the partition's acquisitions begun and not yet served
// or failed: waiting for its QueryRate, a slot, the pool or a session setup.
func (ps *partState) waitingNow() int64 {
	return ps.pending.Load()
}

// recordStatementCache records one statement-cache lookup of pc (hit: the
// statement was cached) for the partition whose borrowing made it, so that
// the partitions' cache figures add up to the dashboard's totals. Lookups
// outside a borrowing are not attributed. It allocates nothing: an atomic
// add on the partition's recorder.
func (pc *physConn) recordStatementCache(hit bool) {
	if ps := pc.part.Load(); ps != nil && ps.rec != nil {
		ps.rec.RecordStatementCache(hit)
	}
}

// startHistory starts the goroutine that samples the dashboard's history
// (monitor.Recorder.Run) once a second, whether or not a page is open, so
// that a page opened later shows the last five minutes at once. It runs
// until Close (c.ctx), which waits for it (c.bg). Call it once, in
// newConnector, after c.ctx is set; it does nothing with DisableMetrics.
func (c *Connector) startHistory() {
	if !c.metrics {
		return
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		c.rec.Run(c.ctx)
	}()
}

// idleByPartition counts idle connections by the partition their session is
// labeled for; unlabeled ones count for the default partition.
func (c *Connector) idleByPartition() map[*partState]int {
	def := c.router.Default().State.(*partState)
	m := make(map[*partState]int)
	c.connMu.Lock()
	defer c.connMu.Unlock()
	for pc := range c.live {
		if pc.part.Load() != nil { // borrowed
			continue
		}
		if l := pc.label.Load(); l != nil {
			m[l]++
		} else {
			m[def]++
		}
	}
	return m
}

// configMap is the configuration /api/config shows (never the token).
func (c *Connector) configMap() map[string]any {
	p := c.pool.Config()
	return map[string]any{
		"MinSize": p.MinSize, "MaxSize": p.MaxSize, "InitialSize": p.InitialSize,
		"AcquireTimeout": p.AcquireTimeout.String(), "MaxWaitQueue": p.MaxWaitQueue,
		"MaxLifetime": p.MaxLifetime.String(), "IdleTimeout": p.IdleTimeout.String(),
		"ConnectTimeout": p.ConnectTimeout.String(), "ConnectRate": p.ConnectRate,
		"MaxConcurrentConnects": p.MaxConcurrentConnects, "ValidationTimeout": p.ValidationTimeout.String(),
		"BreakAfter": p.BreakAfter, "BreakFor": p.BreakFor.String(),
		"ValidationBypass": p.ValidationBypass.String(), "ValidateOnRelease": p.ValidateOnRelease,
		"StatementCacheMode": c.mode.String(), "StatementCacheSize": c.cacheSize,
		"StatementCacheMaxTotal": c.cacheMaxTotal, "LeakThreshold": c.cfg.LeakThreshold.String(),
		"FairQueue": p.FairQueue, "CriticalReserve": p.CriticalReserve, "StarvationAfter": p.StarvationAfter.String(),
		"FailFastBelow": p.FailFastBelow, "DeadlockThreshold": p.DeadlockThreshold.String(),
		"LifetimeJitter": p.LifetimeJitter, "MaxUses": p.MaxUses, "ErrorThreshold": p.ErrorThreshold,
		"MaxBorrowTime": p.MaxBorrowTime.String(), "ReclaimBorrowed": p.ReclaimBorrowed,
		"KeepaliveInterval": p.KeepaliveInterval.String(), "Recycle": c.recycleMode.String(),
		"ManagementAPI": map[bool]string{true: "read-write", false: "read-only"}[c.cfg.ManagementToken != ""],
	}
}
