package sqlpool

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sqlpool/sqlpool/internal/clock"
)

// A Cluster is a driver.Connector over several database servers (hosts):
// a primary and its read replicas. Each host has a Connector of its own,
// with its own pool, partitions and Config; the Cluster picks the host of
// each borrowing from its context:
//
//   - writes (Exec, transactions, Raw) go to the primary, and so does every
//     operation whose context is not WithReadOnly;
//   - reads of a WithReadOnly context (Query, Prepare, Ping, a transaction
//     begun with sql.TxOptions{ReadOnly: true}) go to a replica that is up,
//     healthy, within MaxReplicaLag and whose circuit is closed, chosen by
//     Balance; to the primary when there is none, or when the partition
//     wrote within ReadYourWrites.
//
// A goroutine per host checks it every CheckInterval: whether it is a
// primary or a replica, its replication lag and the check's round trip.
// When the primary stops answering and another host reports itself
// primary (it was promoted), writes follow it. The Cluster never promotes
// or fences a server itself: see the README's multi-host section.
//
// A transaction, or an *sql.Conn, stays on the host it began on.
type Cluster struct {
	cfg   ClusterConfig
	hosts []*host

	primary atomic.Pointer[host] // nil: none known
	turn    atomic.Uint64        // the replicas' rotation
	electMu sync.Mutex           // serialises elect
	split   bool                 // guarded by electMu: another writable host was reported

	writesMu sync.Mutex
	writes   map[string]time.Time // guarded by writesMu: partitions' last writes (ReadYourWrites)
	flooded  time.Time            // guarded by writesMu: writes is full; every read goes to the primary until then

	closed   atomic.Bool
	stop     context.CancelFunc
	bg       sync.WaitGroup
	once     sync.Once
	closeErr error
}

// A Host is one server of a Cluster.
type Host struct {
	// Name names the host in errors, Stats, metrics (label host) and the
	// dashboard. Default: "host0", "host1", … by position.
	Name string
	// Connector pools the host's connections (NewConnector or Wrap, one per
	// host). The Cluster owns it: closing the Cluster closes it.
	Connector *Connector
}

// Balance says how a Cluster spreads reads over its replicas.
type Balance uint8

const (
	// LeastInUse sends a read to the replica with the fewest borrowed
	// connections, the first in turn among equals. The default.
	LeastInUse Balance = iota
	// RoundRobin sends reads to the replicas in turn.
	RoundRobin
)

// HostStatus is what a check learns of a host.
type HostStatus struct {
	// ReadOnly: the host is a replica (PostgreSQL: in recovery; MySQL:
	// read_only).
	ReadOnly bool
	// Lag is a replica's replication lag; 0 on a primary, or when unknown.
	Lag time.Duration
}

// ClusterConfig configures a Cluster. The zero value is usable.
type ClusterConfig struct {
	// Balance spreads reads over the replicas. Default LeastInUse.
	Balance Balance
	// MaxReplicaLag skips, for reads, a replica whose lag exceeds it.
	// Default 0: no bound.
	MaxReplicaLag time.Duration
	// ReadYourWrites sends the reads of a partition to the primary for
	// this long after its last write (an Exec or a transaction on the
	// primary), so that a tenant reads what it just wrote. Writes are
	// remembered per partition, for at most 10,000 partitions at once;
	// past that, every read goes to the primary for ReadYourWrites.
	// Default 0: off.
	ReadYourWrites time.Duration
	// CheckInterval is how often each host is checked (role, lag,
	// latency); a check gives up after it too. Default 1s.
	CheckInterval time.Duration
	// Check learns a host's status over db, a database/sql pool of one
	// bare connection to the host (the wrapped driver's, outside the
	// Connector's pool). Default: per driver, PostgreSQL's
	// pg_is_in_recovery() and replay lag, MySQL's @@global.read_only (lag
	// unknown); other drivers must set it.
	Check func(ctx context.Context, host string, db *sql.DB) (HostStatus, error)
	// HealthFactor drains a host whose check round trip (an EWMA) exceeds
	// HealthFactor times the median of its peers' (and them by 2 ms at
	// least): it gets no reads while a healthy replica is left. Default 3;
	// it must be at least 1.
	HealthFactor float64
	// MaxErrorRate drains a host whose share of failed operations (an EWMA
	// per CheckInterval, counting its failed checks; statements' own
	// errors, such as syntax or constraint errors, do not count) exceeds
	// it. Default 0.5; at most 1.
	MaxErrorRate float64
	// Logger receives the Cluster's changes: a new primary, a host down,
	// drained or back. Default: none.
	Logger *slog.Logger
}

// HostRole is what a host is to its Cluster.
type HostRole uint8

const (
	RoleUnknown HostRole = iota // not checked yet, or its checks fail
	RolePrimary                 // writable
	RoleReplica                 // read-only
)

func (r HostRole) String() string {
	switch r {
	case RolePrimary:
		return "primary"
	case RoleReplica:
		return "replica"
	}
	return "unknown"
}

// ErrNoPrimary: no host of a Cluster is known to be a writable primary.
var ErrNoPrimary = errors.New("sqlpool: no host of the cluster is a writable primary")

// ClusterStats is a snapshot of a Cluster.
type ClusterStats struct {
	Primary string // the primary's name; "" when none is known
	Hosts   []HostStats
}

// HostStats describe one host of a Cluster.
type HostStats struct {
	Name string
	Role HostRole // as its last successful check said
	// Up: its last check answered. CheckError is the last check's error.
	Up         bool
	CheckError string
	Lag        time.Duration // replication lag (replicas), as last checked
	// Healthy: not drained (see ClusterConfig.HealthFactor, MaxErrorRate).
	Healthy bool
	// Latency is the EWMA of the check's round trip; ErrorRate the EWMA of
	// the share of its operations that failed.
	Latency   time.Duration
	ErrorRate float64
	// CircuitOpen: its pool's circuit breaker is open.
	CircuitOpen bool
	// Reads and Writes count the borrowings routed to it by kind;
	// Fallbacks the reads it served for want of a replica.
	Reads, Writes, Fallbacks int64
	// Stats are its Connector's.
	Stats Stats
}

// host is a Cluster's view of one server.
type host struct {
	name string
	c    *Connector
	db   *sql.DB // the checks'

	state atomic.Pointer[hostState] // the last check's

	inUse                    atomic.Int64 // borrowings of its connections
	ops, fails               atomic.Int64 // operations, and those that failed (classify)
	reads, writes, fallbacks atomic.Int64 // borrowings routed to it

	checkMu            sync.Mutex // serialises its checks (its goroutine's and CheckHosts')
	lastOps, lastFails int64      // guarded by checkMu: ops and fails at the last check
}

// hostState is a host's status as of its last check.
type hostState struct {
	role      HostRole
	up        bool
	err       string
	lag       time.Duration
	latency   float64 // EWMA of the round trip, in seconds
	errorRate float64 // EWMA
	healthy   bool
}

// maxWriteLog bounds Cluster.writes.
const maxWriteLog = 10_000

// ewma weights of a new sample.
const (
	latencyWeight = 0.3
	errorWeight   = 0.3
	healthFloor   = 2 * time.Millisecond // a drift smaller than this never drains
)

// NewCluster returns a Cluster over hosts (at least one). It checks every
// host once before it returns, so that it knows the primary, within
// CheckInterval; a host that does not answer is checked again later. The
// Cluster owns the hosts' Connectors.
func NewCluster(hosts []Host, cfg ClusterConfig) (*Cluster, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	if len(hosts) == 0 {
		return nil, errors.New("sqlpool: NewCluster: no hosts: give at least one Host")
	}
	cl := &Cluster{cfg: cfg, writes: make(map[string]time.Time)}
	names := make(map[string]bool, len(hosts))
	for i, h := range hosts {
		if h.Connector == nil {
			return nil, fmt.Errorf("sqlpool: NewCluster: hosts[%d].Connector is nil: make one with NewConnector or Wrap", i)
		}
		if h.Name == "" {
			h.Name = fmt.Sprintf("host%d", i)
		}
		if names[h.Name] {
			return nil, fmt.Errorf("sqlpool: NewCluster: two hosts named %q: give each a Name of its own", h.Name)
		}
		names[h.Name] = true
		if h.Connector.host != nil || slices.ContainsFunc(cl.hosts, func(o *host) bool { return o.c == h.Connector }) {
			return nil, fmt.Errorf("sqlpool: NewCluster: host %q: its Connector already serves a Cluster: make one Connector per host", h.Name)
		}
		if cl.cfg.Check == nil && h.Connector.traits.family != familyPostgres && h.Connector.traits.family != familyMySQL {
			return nil, fmt.Errorf("sqlpool: NewCluster: host %q: no built-in check for its driver: set ClusterConfig.Check", h.Name)
		}
		cl.hosts = append(cl.hosts, &host{name: h.Name, c: h.Connector})
	}
	ctx, stop := context.WithCancel(context.Background())
	cl.stop = stop
	for _, hs := range cl.hosts {
		hs.c.host = hs
		hs.db = sql.OpenDB(bareConnector{hs.c.base})
		hs.db.SetMaxOpenConns(1)
		hs.db.SetMaxIdleConns(1)
		hs.state.Store(&hostState{healthy: true})
	}
	cl.CheckHosts(ctx)
	for _, hs := range cl.hosts {
		cl.bg.Add(1)
		go cl.watch(ctx, hs)
	}
	return cl, nil
}

func (cfg *ClusterConfig) normalize() error {
	switch {
	case cfg.Balance > RoundRobin:
		return fmt.Errorf("sqlpool: ClusterConfig.Balance %d: want LeastInUse or RoundRobin", cfg.Balance)
	case cfg.MaxReplicaLag < 0:
		return fmt.Errorf("sqlpool: ClusterConfig.MaxReplicaLag %v: want 0 (no bound) or more", cfg.MaxReplicaLag)
	case cfg.ReadYourWrites < 0:
		return fmt.Errorf("sqlpool: ClusterConfig.ReadYourWrites %v: want 0 (off) or more", cfg.ReadYourWrites)
	case cfg.CheckInterval < 0:
		return fmt.Errorf("sqlpool: ClusterConfig.CheckInterval %v: want 0 (default 1s) or more", cfg.CheckInterval)
	case math.IsNaN(cfg.HealthFactor) || cfg.HealthFactor != 0 && cfg.HealthFactor < 1:
		return fmt.Errorf("sqlpool: ClusterConfig.HealthFactor %v: want 0 (default 3) or 1 and more", cfg.HealthFactor)
	case math.IsNaN(cfg.MaxErrorRate) || cfg.MaxErrorRate < 0 || cfg.MaxErrorRate > 1:
		return fmt.Errorf("sqlpool: ClusterConfig.MaxErrorRate %v: want 0 (default 0.5) up to 1", cfg.MaxErrorRate)
	}
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = time.Second
	}
	if cfg.HealthFactor == 0 {
		cfg.HealthFactor = 3
	}
	if cfg.MaxErrorRate == 0 {
		cfg.MaxErrorRate = 0.5
	}
	return nil
}

// bareConnector hides the wrapped connector's Close from the checks'
// sql.DB: the host's Connector closes it.
type bareConnector struct{ driver.Connector }

var (
	_ driver.Connector = (*Cluster)(nil)
	_ io.Closer        = (*Cluster)(nil)
)

// OpenCluster is OpenDB for a Cluster.
func OpenCluster(cl *Cluster) *sql.DB {
	db := sql.OpenDB(cl)
	n := 0
	for _, hs := range cl.hosts {
		n += hs.c.pool.Config().MaxSize
	}
	db.SetMaxOpenConns(0)
	db.SetMaxIdleConns(min(4*n, 4096))
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return db
}

// Connect returns a logical handle, which picks the host of each
// borrowing. See Connector.Connect.
func (cl *Cluster) Connect(ctx context.Context) (driver.Conn, error) {
	if cl.closed.Load() {
		return nil, ErrClosed
	}
	var first error
	for _, hs := range cl.byPreference() {
		dc, err := hs.c.Connect(ctx) // learns the driver's argument checker on first use
		if err == nil {
			h := dc.(*conn)
			h.cl = cl
			return h, nil
		}
		if first == nil {
			first = fmt.Errorf("host %s: %w", hs.name, err)
		}
	}
	return nil, first
}

// byPreference lists the hosts, the primary first.
func (cl *Cluster) byPreference() []*host {
	p := cl.primary.Load()
	if p == nil {
		return cl.hosts
	}
	l := []*host{p}
	for _, hs := range cl.hosts {
		if hs != p {
			l = append(l, hs)
		}
	}
	return l
}

// Driver returns the first host's driver.
func (cl *Cluster) Driver() driver.Driver { return cl.hosts[0].c.Driver() }

// Close stops the checks and closes every host's Connector. It is
// idempotent.
func (cl *Cluster) Close() error {
	cl.once.Do(func() {
		cl.closed.Store(true)
		cl.stop()
		cl.bg.Wait()
		var errs []error
		for _, hs := range cl.hosts {
			errs = append(errs, hs.db.Close(), hs.c.Close())
		}
		cl.closeErr = errors.Join(errs...)
	})
	return cl.closeErr
}

// Host returns the Connector of the host named name, or nil.
func (cl *Cluster) Host(name string) *Connector {
	for _, hs := range cl.hosts {
		if hs.name == name {
			return hs.c
		}
	}
	return nil
}

// pick returns the Connector of the host for a borrowing with routing tags
// t that may write (write) or only read.
func (cl *Cluster) pick(t *tags, write bool) (*Connector, error) {
	p := cl.primary.Load()
	if write || !t.readOnly || cl.wroteRecently(p, t) {
		if p == nil {
			return nil, cl.noPrimary()
		}
		if write {
			p.writes.Add(1)
			cl.noteWrite(p, t)
		} else {
			p.reads.Add(1)
		}
		return p.c, nil
	}
	if r := cl.replica(); r != nil {
		r.reads.Add(1)
		return r.c, nil
	}
	if p == nil {
		return nil, cl.noPrimary()
	}
	p.fallbacks.Add(1)
	p.reads.Add(1)
	return p.c, nil
}

// replica returns the replica for a read, or nil when none may serve it.
// The rotation runs over the replicas that may serve, so that RoundRobin
// is even whichever hosts are out.
func (cl *Cluster) replica() *host {
	var buf [16]*host
	ok := buf[:0]
	for _, hs := range cl.hosts {
		if cl.readable(hs) {
			ok = append(ok, hs)
		}
	}
	if len(ok) == 0 {
		return nil
	}
	turn := int(cl.turn.Add(1) % uint64(len(ok)))
	best := ok[turn]
	if cl.cfg.Balance == LeastInUse {
		for i := 1; i < len(ok); i++ {
			if hs := ok[(turn+i)%len(ok)]; hs.inUse.Load() < best.inUse.Load() {
				best = hs
			}
		}
	}
	return best
}

// readable reports whether hs may serve reads as a replica.
func (cl *Cluster) readable(hs *host) bool {
	s := hs.state.Load()
	return s.up && s.role == RoleReplica && s.healthy &&
		(cl.cfg.MaxReplicaLag == 0 || s.lag <= cl.cfg.MaxReplicaLag) &&
		!hs.c.pool.CircuitOpen()
}

func (cl *Cluster) noPrimary() error {
	var b []byte
	for _, hs := range cl.hosts {
		s := hs.state.Load()
		b = fmt.Appendf(b, "; %s: %s", hs.name, s.role)
		if !s.up {
			b = fmt.Appendf(b, " (down: %s)", s.err)
		}
	}
	return fmt.Errorf("%w (hosts%s): writes wait for one to be promoted or to come back, checked every %v; run reads WithReadOnly to use the replicas meanwhile",
		ErrNoPrimary, b, cl.cfg.CheckInterval)
}

// The partitions' last writes, for ReadYourWrites.

// noteWrite remembers that t's partition wrote now on primary p.
func (cl *Cluster) noteWrite(p *host, t *tags) {
	if cl.cfg.ReadYourWrites == 0 {
		return
	}
	ps, err := p.c.route(t)
	if err != nil {
		return // the acquisition fails with it
	}
	now := clock.Now()
	cl.writesMu.Lock()
	defer cl.writesMu.Unlock()
	if _, ok := cl.writes[ps.name]; !ok && len(cl.writes) >= maxWriteLog {
		for name, at := range cl.writes {
			if now.Sub(at) >= cl.cfg.ReadYourWrites {
				delete(cl.writes, name)
			}
		}
		if len(cl.writes) >= maxWriteLog {
			cl.flooded = now.Add(cl.cfg.ReadYourWrites)
			return
		}
	}
	cl.writes[ps.name] = now
}

// wroteRecently reports whether t's partition wrote within ReadYourWrites.
func (cl *Cluster) wroteRecently(p *host, t *tags) bool {
	if cl.cfg.ReadYourWrites == 0 || p == nil {
		return false
	}
	ps, err := p.c.route(t)
	if err != nil {
		return false
	}
	now := clock.Now()
	cl.writesMu.Lock()
	defer cl.writesMu.Unlock()
	at, ok := cl.writes[ps.name]
	return ok && now.Sub(at) < cl.cfg.ReadYourWrites || now.Before(cl.flooded)
}

// The checks.

// watch checks hs every CheckInterval until ctx ends.
func (cl *Cluster) watch(ctx context.Context, hs *host) {
	defer cl.bg.Done()
	t := time.NewTicker(cl.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			cl.check(ctx, hs)
			cl.elect()
		}
	}
}

// CheckHosts checks every host now, at once, and updates the primary.
// The Cluster does it every CheckInterval by itself; call it after a
// planned failover to route by it without waiting.
func (cl *Cluster) CheckHosts(ctx context.Context) {
	var wg sync.WaitGroup
	for _, hs := range cl.hosts {
		wg.Go(func() { cl.check(ctx, hs) })
	}
	wg.Wait()
	cl.elect()
}

// check runs one check of hs and stores its new state.
func (cl *Cluster) check(ctx context.Context, hs *host) {
	hs.checkMu.Lock()
	defer hs.checkMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, cl.cfg.CheckInterval)
	defer cancel()
	t0 := time.Now()
	st, err := cl.status(ctx, hs)
	rtt := time.Since(t0)
	if ctx.Err() != nil && errors.Is(err, context.Canceled) && cl.closed.Load() {
		return
	}

	old := hs.state.Load()
	s := *old
	s.up, s.err = err == nil, ""
	failed := 0.0
	if err != nil {
		s.err, failed = err.Error(), 1
	} else {
		s.role, s.lag = RolePrimary, st.Lag
		if st.ReadOnly {
			s.role = RoleReplica
		}
		if s.latency == 0 {
			s.latency = rtt.Seconds()
		} else {
			s.latency += latencyWeight * (rtt.Seconds() - s.latency)
		}
	}
	// The operations' failures since the last check, and the check's own.
	ops, fails := hs.ops.Load(), hs.fails.Load()
	rate := (float64(fails-hs.lastFails) + failed) / float64(ops-hs.lastOps+1)
	hs.lastOps, hs.lastFails = ops, fails
	s.errorRate += errorWeight * (rate - s.errorRate)
	s.healthy = s.errorRate <= cl.cfg.MaxErrorRate && !cl.slow(hs, s.latency)
	hs.state.Store(&s)
	cl.logChange(hs, old, &s)
}

// status runs the check of hs.
func (cl *Cluster) status(ctx context.Context, hs *host) (HostStatus, error) {
	if cl.cfg.Check != nil {
		return cl.cfg.Check(ctx, hs.name, hs.db)
	}
	var st HostStatus
	var lag sql.NullFloat64
	var err error
	switch hs.c.traits.family {
	case familyPostgres:
		err = hs.db.QueryRowContext(ctx, pgStatusQuery).Scan(&st.ReadOnly, &lag)
	default: // MySQL
		err = hs.db.QueryRowContext(ctx, "SELECT @@global.read_only, NULL").Scan(&st.ReadOnly, &lag)
	}
	if lag.Valid {
		st.Lag = time.Duration(lag.Float64 * float64(time.Second))
	}
	return st, err
}

// pgStatusQuery: whether the server is in recovery (a replica) and its
// replay lag in seconds: 0 when it has replayed all it received from a
// primary it streams from, else the age of the last transaction it
// replayed (an overestimate when the primary has been idle).
const pgStatusQuery = `SELECT pg_is_in_recovery(),
	CASE WHEN NOT pg_is_in_recovery() THEN 0
	     WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()
	          AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') THEN 0
	     ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END`

// slow reports whether a round trip of latency seconds drifts from the
// median of hs's peers that are up by more than HealthFactor.
func (cl *Cluster) slow(hs *host, latency float64) bool {
	var peers []float64
	for _, o := range cl.hosts {
		if s := o.state.Load(); o != hs && s.up && s.latency > 0 {
			peers = append(peers, s.latency)
		}
	}
	if len(peers) == 0 {
		return false
	}
	slices.Sort(peers)
	median := peers[len(peers)/2]
	if len(peers)%2 == 0 {
		median = (peers[len(peers)/2-1] + median) / 2
	}
	return latency > cl.cfg.HealthFactor*median && latency-median > healthFloor.Seconds()
}

// observe counts one operation on hs, failed or not.
func (hs *host) observe(failed bool) {
	hs.ops.Add(1)
	if failed {
		hs.fails.Add(1)
	}
}

// elect updates the primary from the hosts' states: the current one while
// it is up and writable; otherwise the first host that is (a promoted
// replica). A primary that is down stays the primary until another is
// found: its writes fail fast with its circuit breaker meanwhile.
func (cl *Cluster) elect() {
	cl.electMu.Lock()
	defer cl.electMu.Unlock()
	cur := cl.primary.Load()
	var curState *hostState
	if cur != nil {
		curState = cur.state.Load()
	}
	var next *host
	for _, hs := range cl.hosts {
		if s := hs.state.Load(); s.up && s.role == RolePrimary && hs != cur {
			next = hs
			break
		}
	}
	switch {
	case cur != nil && curState.up && curState.role == RolePrimary:
		if next != nil && !cl.split {
			cl.log(slog.LevelWarn, "two hosts report themselves writable; writes stay on the current primary: fence the other",
				"primary", cur.name, "other", next.name)
		}
		cl.split = next != nil
		return
	case next != nil:
		cl.primary.Store(next)
		cl.split = false
		was := ""
		if cur != nil {
			was = cur.name
		}
		cl.log(slog.LevelWarn, "writes go to a new primary", "primary", next.name, "was", was)
	case cur != nil && curState.up: // demoted, and no primary elsewhere
		cl.primary.Store(nil)
		cl.log(slog.LevelWarn, "the primary became read-only and no host is writable", "host", cur.name)
	}
}

func (cl *Cluster) logChange(hs *host, old, s *hostState) {
	switch {
	case old.up && !s.up:
		cl.log(slog.LevelWarn, "host down", "host", hs.name, "err", s.err)
	case !old.up && s.up && old.err != "":
		cl.log(slog.LevelInfo, "host back", "host", hs.name, "role", s.role.String())
	}
	if old.healthy != s.healthy {
		cl.log(slog.LevelWarn, "host health changed", "host", hs.name, "healthy", s.healthy,
			"latency", time.Duration(s.latency*float64(time.Second)), "error_rate", s.errorRate)
	}
}

func (cl *Cluster) log(level slog.Level, msg string, args ...any) {
	if l := cl.cfg.Logger; l != nil {
		l.Log(context.Background(), level, "sqlpool: cluster: "+msg, args...)
	}
}

// Stats returns a snapshot of the Cluster.
func (cl *Cluster) Stats() ClusterStats {
	var s ClusterStats
	if p := cl.primary.Load(); p != nil {
		s.Primary = p.name
	}
	for _, hs := range cl.hosts {
		st := hs.state.Load()
		s.Hosts = append(s.Hosts, HostStats{
			Name: hs.name, Role: st.role, Up: st.up, CheckError: st.err, Lag: st.lag, Healthy: st.healthy,
			Latency: time.Duration(st.latency * float64(time.Second)), ErrorRate: st.errorRate,
			CircuitOpen: hs.c.pool.CircuitOpen(),
			Reads:       hs.reads.Load(), Writes: hs.writes.Load(), Fallbacks: hs.fallbacks.Load(),
			Stats: hs.c.Stats(),
		})
	}
	return s
}
