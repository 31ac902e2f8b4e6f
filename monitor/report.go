package monitor

import "time"

// Report is everything the handler, the exporters and the collector show:
// one reading of the pool, taken by its owner. NewHandler and NewCollector
// take a func() Report and call it once per request or scrape.
type Report struct {
	Pool    PoolState `json:"pool"`    // the pool's own state
	Metrics Snapshot  `json:"metrics"` // the Recorder's Snapshot
	Leaks   []Leak    `json:"leaks"`   // borrowings currently held past the leak threshold

	// OmittedPartitions is the number of partitions added up under
	// OverflowPartition, and OmittedLeaks the number of leaks left out of
	// Leaks, by the bounds of the handler or the collector (see
	// HandlerConfig.TopPartitions and MaxLeaks). The owner leaves them
	// zero.
	OmittedPartitions int `json:"omitted_partitions"`
	OmittedLeaks      int `json:"omitted_leaks"`
}

// PoolState is the pool's state as its owner sees it.
type PoolState struct {
	MinSize int `json:"min_size"`
	MaxSize int `json:"max_size"`
	Size    int `json:"size"`    // connections open or being dialed
	Idle    int `json:"idle"`    // idle connections
	InUse   int `json:"in_use"`  // connections lent out
	Dialing int `json:"dialing"` // dials in progress
	// Waiting is the number of acquisitions begun and not yet served or
	// failed, whatever they wait for. When Partitions is given it is the
	// sum of their Waiting, so that the rows add up to it.
	Waiting int `json:"waiting"`
	// Queued is the number of acquisitions in the pool's own queue for a
	// connection, of any partition; the pool cannot tell their partitions
	// apart, so it is shown beside Waiting, not broken down.
	Queued    int  `json:"queued"`
	Suspended bool `json:"suspended"`

	Created       int64 `json:"connections_created"` // connections dialed
	ConnectErrors int64 `json:"connect_errors"`      // failed dials
	// Closed counts closed connections by reason (idle, lifetime, errors,
	// validation, evicted, pool_closed, ... as the pool names them).
	Closed map[string]int64 `json:"connections_closed"`

	// CircuitOpen says the pool's circuit breaker is open: acquisitions
	// that need a new connection are refused at once. CircuitOpens counts
	// the times it opened, CircuitRefused the acquisitions it refused.
	CircuitOpen    bool  `json:"circuit_open"`
	CircuitOpens   int64 `json:"circuit_opens"`
	CircuitRefused int64 `json:"circuit_refused"`

	// Partitions breaks Idle, InUse and Waiting down by partition. When it
	// is empty, the collector reports the pool's totals as
	// DefaultPartition.
	Partitions []PartitionState `json:"partitions"`

	// Config is the pool's configuration as /api/config shows it: field
	// names as keys, durations preferably as strings ("30s").
	Config map[string]any `json:"config"`
}

// PartitionState is one partition's share of the pool.
type PartitionState struct {
	Name  string `json:"name"`
	Idle  int    `json:"idle"`
	InUse int    `json:"in_use"`
	// Waiting is the number of the partition's acquisitions begun and
	// not yet served or failed (see PoolState.Waiting).
	Waiting   int  `json:"waiting"`
	MaxSize   int  `json:"max_size,omitempty"` // the partition's cap; 0: none
	Suspended bool `json:"suspended,omitempty"`
}

// LeakKind says what holds a leaked connection.
type LeakKind string

// Leak kinds.
const (
	LeakRows    LeakKind = "rows"    // an open *sql.Rows
	LeakTx      LeakKind = "tx"      // an unfinished *sql.Tx
	LeakConn    LeakKind = "conn"    // a held *sql.Conn
	LeakUnknown LeakKind = "unknown" // none of those could be told apart
)

// Leak is one borrowing held past the leak threshold.
type Leak struct {
	Partition  string    `json:"partition"`
	Kind       LeakKind  `json:"kind"`
	AcquiredAt time.Time `json:"acquired_at"`
	Held       Duration  `json:"held_seconds"` // at the time of the report
	// Stack is where the connection was acquired, when stacks are captured;
	// empty otherwise.
	Stack string `json:"stack,omitempty"`
}

// Efficiency is derived from a Report.
type Efficiency struct {
	// Utilization is InUse / MaxSize: how much of the cap is lent out.
	Utilization float64 `json:"utilization"`
	// ReuseRate is the share of successful acquisitions served by an
	// existing connection rather than a new dial: 1 - Created / Successes,
	// at least 0. Both counts run since their own start (a Reset zeroes
	// only the Recorder's), so read it over long runs.
	ReuseRate float64 `json:"reuse_rate"`
	// SuccessRate and StatementCacheHitRate are the totals' (see Metrics).
	SuccessRate           float64 `json:"success_rate"`
	StatementCacheHitRate float64 `json:"statement_cache_hit_rate"`
}

// Efficiency derives the efficiency ratios of r.
func (r Report) Efficiency() Efficiency {
	t := r.Metrics.Total
	e := Efficiency{
		Utilization:           ratio(int64(r.Pool.InUse), int64(r.Pool.MaxSize)),
		SuccessRate:           t.SuccessRate,
		StatementCacheHitRate: t.StatementCacheHitRate,
	}
	if t.Successes > 0 {
		e.ReuseRate = max(0, 1-float64(r.Pool.Created)/float64(t.Successes))
	}
	return e
}

// circuitOpen is CircuitOpen as a 0 or 1 gauge.
func (p PoolState) circuitOpen() int {
	if p.CircuitOpen {
		return 1
	}
	return 0
}

// partitionStates returns r's per-partition pool state, or the totals as
// DefaultPartition when the pool gives no breakdown.
func (p PoolState) partitionStates() []PartitionState {
	if len(p.Partitions) > 0 {
		return p.Partitions
	}
	return []PartitionState{{Name: DefaultPartition, Idle: p.Idle, InUse: p.InUse, Waiting: p.Waiting}}
}
