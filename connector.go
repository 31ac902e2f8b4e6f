package sqlpool

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sqlpool/sqlpool/monitor"
	"github.com/sqlpool/sqlpool/partition"
	"github.com/sqlpool/sqlpool/pool"
)

// Connector is a driver.Connector that pools the physical connections of
// another driver. Hand it to OpenDB (or sql.OpenDB); database/sql then holds
// only light logical handles, and every physical connection, limit, queue and
// age is the Connector's. It is safe for concurrent use.
type Connector struct {
	base   driver.Connector
	driver driver.Driver // what Driver returns
	cfg    Config        // the caller's Config, copied
	pool   *pool.Pool[*physConn]

	closed   atomic.Bool
	closeErr error     // the base connector's Close error
	once     sync.Once // Close

	// probed is set once a physical connection has been made, so checker
	// holds the driver's NamedValueChecker (or nil when it has none).
	probed  atomic.Bool
	checker atomic.Pointer[driver.NamedValueChecker]

	host *host // the Cluster's host it pools, if any

	router  *partition.Router
	partIDs atomic.Uint64 // partState ids

	mode          CacheMode    // resolved: never CacheDefault
	cacheSize     int          // statements per connection; 0: none
	cacheMaxTotal int64        // statements in all connections
	cachedTotal   atomic.Int64 // statements cached in all connections
	nextID        atomic.Int64 // physical connection IDs
	connMu        sync.Mutex
	live          map[*physConn]struct{} // guarded by connMu
	closedCache   CacheStats             // guarded by connMu: counters of closed connections

	traits         traits            // the wrapped driver's behaviour
	textStmts      bool              // Pooler: prepared statements keep only their text
	cacheMaxBytes  int               // SQL bytes cached per connection
	acquireTimeout time.Duration     // the pool's, normalised
	metrics        bool              // record to rec
	rec            *monitor.Recorder // per-partition metrics

	ctx           context.Context // canceled by Close (stop): background work exits
	stop          context.CancelFunc
	bg            sync.WaitGroup // the history sampler and the partitions' warm-up
	warming       atomic.Bool    // a warm-up goroutine runs (factory.Maintain)
	leaksDetected atomic.Int64   // borrowings reported held past LeakThreshold

	// The lifecycle (lifecycle.go), resolved from the Config.
	recycleMode       RecycleStrategy
	parks             bool          // handles park their connections between borrowings (see conn.release)
	reset             resetPlan     // RecycleChecked's session reset
	reclaim           bool          // ReclaimBorrowed: handles bracket driver calls (enterOp)
	nearEnd           float64       // RecycleAdaptive replaces past this fraction of a limit
	maxUses           int64         // Config.MaxUses
	validationTimeout time.Duration // bounds a session reset
}

var (
	_ driver.Connector       = (*Connector)(nil)
	_ io.Closer              = (*Connector)(nil)
	_ pool.Leaker[*physConn] = factory{}
	_ pool.Maintainer        = factory{}
	_ pool.Warner[*physConn] = factory{}
)

// NewConnector returns a Connector for dsn over driver d. It uses d's
// OpenConnector when d implements driver.DriverContext (go-sql-driver/mysql
// and pgx's stdlib do), so a malformed DSN is reported here with the
// driver's own error; other drivers (lib/pq's Driver, mattn/go-sqlite3)
// parse it only when dialing, so use Wrap(pq.NewConnector(dsn)) to check a
// lib/pq DSN at once. It dials nothing: connections
// are made when first needed (and InitialSize in the background).
func NewConnector(d driver.Driver, dsn string, cfg Config) (*Connector, error) {
	if d == nil {
		return nil, errors.New("sqlpool: NewConnector: driver is nil")
	}
	if isSQLiteMemory(d, dsn) && !(cfg.MaxSize == 1 && cfg.MaxLifetime < 0 && cfg.IdleTimeout < 0 &&
		cfg.MaxUses == 0 && !cfg.ReclaimBorrowed && (cfg.Recycle == RecycleFast || cfg.Recycle == RecycleChecked && cfg.ResetSQL != "")) {
		return nil, fmt.Errorf("sqlpool: DSN %q is an in-memory SQLite database, one per connection, which recycling would silently empty: "+
			"use a file, or mode=memory&cache=shared, or set MaxSize 1, MaxLifetime -1 and IdleTimeout -1 "+
			"(and no MaxUses, ReclaimBorrowed, or Recycle that replaces connections)", dsn)
	}
	if cfg.Pooler == PoolerTransaction {
		dsn = poolerDSN(traitsOf(d), dsn)
	}
	var base driver.Connector = dsnConnector{dsn: dsn, d: d}
	if dc, ok := d.(driver.DriverContext); ok {
		var err error
		if base, err = dc.OpenConnector(dsn); err != nil {
			return nil, err
		}
	}
	return newConnector(base, d, cfg)
}

// Wrap returns a Connector over an existing connector, such as
// mysql.NewConnector, pq.NewConnector or pgx's stdlib.GetConnector. Close
// closes base too when it implements io.Closer.
func Wrap(base driver.Connector, cfg Config) (*Connector, error) {
	if base == nil {
		return nil, errors.New("sqlpool: Wrap: connector is nil")
	}
	return newConnector(base, base.Driver(), cfg)
}

func newConnector(base driver.Connector, d driver.Driver, cfg Config) (*Connector, error) {
	pcfg, err := cfg.poolConfig()
	if err != nil {
		return nil, err
	}
	c := &Connector{
		base:          base,
		driver:        &wrapDriver{d: d, cfg: cfg},
		cfg:           cfg,
		mode:          cfg.StatementCacheMode,
		cacheSize:     cfg.StatementCacheSize,
		cacheMaxTotal: int64(cfg.StatementCacheMaxTotal),
		live:          make(map[*physConn]struct{}),
	}
	c.traits = traitsOf(d)
	if c.mode == CacheDefault {
		c.mode = c.traits.cacheMode
	}
	if cfg.Pooler == PoolerTransaction {
		if err := checkPoolerConnector(c.traits, base); err != nil {
			return nil, err
		}
		c.mode, c.textStmts = CacheOff, true
	}
	c.rec = monitor.NewRecorder(monitor.RecorderConfig{})
	c.metrics = !cfg.DisableMetrics
	if c.cacheSize == 0 {
		c.cacheSize = defaultStatementCacheSize
	}
	if c.cacheSize < 0 || c.mode == CacheOff {
		c.cacheSize = 0
	}
	if c.cacheMaxTotal == 0 {
		c.cacheMaxTotal = defaultStatementCacheMaxTotal
	}
	if c.cacheMaxBytes = cfg.StatementCacheMaxBytes; c.cacheMaxBytes == 0 {
		c.cacheMaxBytes = defaultStatementCacheMaxBytes
	}
	if err := c.newRouter(cfg.Routing); err != nil {
		return nil, err
	}
	c.recycleMode, c.reset = cfg.Recycle, resetPlanFor(c.traits, cfg.ResetSQL)
	// A handle parks its connection (pool.Conn.Park) only when a release
	// does no more than give it back, and an acquisition no more than take
	// it, for the pool to decide.
	c.parks = cfg.Recycle == RecycleFast && cfg.BeforeAcquire == nil
	// CloseTimeout takes borrowed connections back too: the same machinery.
	c.reclaim, c.maxUses = cfg.ReclaimBorrowed || cfg.CloseTimeout > 0, cfg.MaxUses
	c.pool, err = pool.New[*physConn](factory{c}, pcfg)
	if err != nil {
		return nil, fmt.Errorf("sqlpool: invalid Config: %w", err)
	}
	pcfg = c.pool.Config()
	c.validationTimeout, c.acquireTimeout = pcfg.ValidationTimeout, pcfg.AcquireTimeout
	if c.nearEnd = pcfg.WarnFraction; c.nearEnd <= 0 {
		c.nearEnd = pool.DefaultWarnFraction
	}
	c.ctx, c.stop = context.WithCancel(context.Background())
	c.startHistory()
	return c, nil
}

// isSQLiteMemory reports whether dsn names a private in-memory SQLite
// database (one per connection).
func isSQLiteMemory(d driver.Driver, dsn string) bool {
	if !strings.Contains(strings.ToLower(fmt.Sprintf("%T", d)), "sqlite") {
		return false
	}
	private := !strings.Contains(dsn, "cache=shared")
	return private && (strings.Contains(dsn, ":memory:") || strings.Contains(dsn, "mode=memory"))
}

// Connect returns a logical handle. It binds no physical connection: the
// handle borrows one, routed by the operation's context, on its first
// operation, because database/sql may call Connect with a context other than
// the caller's. The very first Connect dials one connection, to learn how the
// driver checks arguments.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if !c.probed.Load() {
		pc, err := c.pool.Acquire(ctx, tagsFrom(ctx).priority)
		if err != nil {
			return nil, acquireError(err)
		}
		pc.ReleaseUnused()
	}
	h := &conn{c: c}
	h.setWant(ctx) // the caller's, unless database/sql's opener dials for it (no tags)
	return h, nil
}

// Driver returns a driver that opens Connectors like this one (with the
// same Config) for other DSNs.
func (c *Connector) Driver() driver.Driver { return c.driver }

// Close closes every idle physical connection now and each borrowed one when
// it is released, fails waiting and later operations with ErrClosed, stops
// the background work, and closes the wrapped connector when it is an
// io.Closer. database/sql calls it from DB.Close. It is idempotent.
func (c *Connector) Close() error {
	c.once.Do(func() {
		c.closed.Store(true)
		c.stop()
		c.pool.Close() // its maintenance, which starts warm-ups, ends first
		c.bg.Wait()
		if cl, ok := c.base.(io.Closer); ok {
			c.closeErr = cl.Close()
		}
	})
	return c.closeErr
}

// Stats is a snapshot of a Connector's pool. database/sql's own DB.Stats
// count logical handles under sqlpool and say little: use these.
type Stats struct {
	pool.Stats
	// Partitions holds per-partition counters, by partition name.
	Partitions map[string]PartitionStats
	// StatementCacheMode is the cache mode in force (never CacheDefault).
	StatementCacheMode CacheMode
	// StatementCache totals the statement caches of every connection, open
	// or closed.
	StatementCache CacheStats
	// Connections lists the open physical connections.
	Connections []ConnStats
	// LeaksDetected counts borrowings reported held past LeakThreshold.
	LeaksDetected int64
	// Leaks lists the borrowings held past LeakThreshold now.
	Leaks []Leak
}

// ConnStats describe one physical connection.
type ConnStats struct {
	ID             int64 // unique within the Connector, in order of creation
	StatementCache CacheStats
}

// PartitionStats are one partition's counters.
type PartitionStats struct {
	Acquires int64 // borrowings
	InUse    int64 // borrowings in progress
	// Waiting counts callers waiting because the partition is at its
	// MaxSize; they wait in the pool's queue, but are not in
	// Stats().Waiting, which counts those waiting for the pool's MaxSize.
	Waiting int64
	// Throttled counts callers waiting for the partition's QueryRate,
	// holding no connection.
	Throttled int64
	// Timeouts counts acquisitions that timed out at the partition's
	// MaxSize or QueryRate (also in Stats().Timeouts).
	Timeouts int64
	Labeled  int64 // borrowings of a connection already set up for the partition
	Relabels int64 // borrowings that reset another partition's session first
	Fresh    int64 // borrowings that set up an unlabeled connection
}

// Stats returns a snapshot of the pool.
func (c *Connector) Stats() Stats {
	s := Stats{
		Stats:              c.pool.Stats(),
		Partitions:         make(map[string]PartitionStats),
		StatementCacheMode: c.mode,
		LeaksDetected:      c.leaksDetected.Load(),
		Leaks:              c.leaks(),
	}
	c.connMu.Lock()
	s.StatementCache = c.closedCache
	for pc := range c.live {
		cs := ConnStats{ID: pc.id, StatementCache: pc.cache.stats()}
		s.StatementCache.add(cs.StatementCache)
		s.Connections = append(s.Connections, cs)
	}
	c.connMu.Unlock()
	slices.SortFunc(s.Connections, func(a, b ConnStats) int { return cmp.Compare(a.ID, b.ID) })
	for _, p := range c.router.List() {
		ps := p.State.(*partState)
		rateTimeouts := ps.rateTimeouts.Load()
		acquires, inUse := ps.borrowings()
		st := PartitionStats{
			Acquires: acquires, InUse: inUse, Throttled: ps.throttled.Load(), Timeouts: rateTimeouts,
			Labeled: ps.labeled.Load(), Relabels: ps.relabels.Load(), Fresh: ps.fresh.Load(),
		}
		if ps.group != nil {
			gs := c.pool.GroupStats(ps.group)
			st.Waiting, st.Timeouts = int64(gs.Waiting), st.Timeouts+gs.Timeouts // the group's are in the pool's Timeouts
		}
		s.Partitions[p.Name] = st
		s.Timeouts += rateTimeouts // the pool's own and QueryRate's
	}
	return s
}

// Partitions returns the partition router, to add, remove and list
// partitions at run time.
func (c *Connector) Partitions() *partition.Router { return c.router }

// acquireError turns a pool error into the error an operation returns. A
// failed dial returns the driver's own error, unwrapped, as the bare driver
// would (tests and callers compare it with ==). An acquisition that failed
// must not be retried by database/sql as a bad connection (that would
// multiply the caller's wait), so ErrBadConn is hidden.
func acquireError(err error) error {
	var ce *pool.ConnectError
	if errors.As(err, &ce) {
		err = ce.Err
	}
	if errors.Is(err, driver.ErrBadConn) {
		return errors.New(err.Error())
	}
	return err
}

// OpenDB returns sql.OpenDB(c) with the database/sql settings that suit a
// wrapped pool: no cap on open handles (waiting must happen in sqlpool, where
// the caller's context is known), no lifetime (sqlpool ages the physical
// connections), and enough idle handles that database/sql reuses them instead
// of making a new one per operation. A handle holds no physical connection
// while idle, so this costs a few hundred bytes each.
func OpenDB(c *Connector) *sql.DB {
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(0)
	db.SetMaxIdleConns(min(4*c.pool.Config().MaxSize, 4096))
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return db
}

// factory makes the pool's physical connections with the base connector.
type factory struct{ c *Connector }

func (f factory) Create(ctx context.Context) (*physConn, error) {
	c := f.c
	var t0 time.Time
	if c.cfg.Hooks.OnConnect != nil {
		t0 = time.Now()
	}
	dc, err := c.connect(ctx)
	if err != nil {
		if f := c.cfg.Hooks.OnConnect; f != nil {
			f(ConnectEvent{Duration: time.Since(t0), Err: err})
		}
		return nil, err
	}
	pc := newPhysConn(dc, c.nextID.Add(1))
	pc.beforeClose, pc.sharedPrep = c.cfg.BeforeClose, c.traits.pgx
	if f := c.cfg.Hooks.OnConnect; f != nil {
		f(ConnectEvent{ConnID: pc.id, Duration: time.Since(t0)})
	}
	pc.cache.max, pc.cache.maxBytes = c.cacheSize, c.cacheMaxBytes
	pc.total, pc.maxTotal = &c.cachedTotal, c.cacheMaxTotal
	if !c.probed.Load() {
		c.checker.Store(&pc.checker)
		c.probed.Store(true)
	}
	c.connMu.Lock()
	c.live[pc] = struct{}{}
	c.connMu.Unlock()
	return pc, nil
}

// connect dials a driver connection, with the BeforeConnect and
// AfterConnect hooks.
func (c *Connector) connect(ctx context.Context) (driver.Conn, error) {
	if f := c.cfg.BeforeConnect; f != nil {
		if err := f(ctx); err != nil {
			return nil, fmt.Errorf("sqlpool: BeforeConnect: %w", err)
		}
	}
	dc, err := c.base.Connect(ctx)
	if err != nil {
		return nil, err
	}
	if c.textStmts && c.traits.pgx {
		if err := checkPgxExecMode(dc); err != nil {
			dc.Close()
			return nil, err
		}
	}
	if f := c.cfg.AfterConnect; f != nil {
		if err := f(ctx, dc); err != nil {
			dc.Close()
			return nil, fmt.Errorf("sqlpool: AfterConnect: %w", err)
		}
	}
	return dc, nil
}

// Maintain, run by the pool at the end of each maintenance pass, starts
// the partitions' MinSize warm-up (warm) when a partition has a MinSize, on
// a goroutine of its own, one at a time: the warm-up acquires connections
// and may wait up to ValidationTimeout for each, which the pool's
// maintenance must not.
func (f factory) Maintain(context.Context) {
	c := f.c
	if !c.wantsWarm() || !c.warming.CompareAndSwap(false, true) {
		return
	}
	c.bg.Add(1) // before Close waits: Close closes the pool, ending its maintenance, first
	go func() {
		defer c.bg.Done()
		defer c.warming.Store(false)
		c.warm(c.ctx)
	}()
}

// wantsWarm reports whether a partition has a MinSize to keep warm.
func (c *Connector) wantsWarm() bool {
	for _, p := range c.router.List() {
		if p.MinSize > 0 {
			return true
		}
	}
	return false
}

func (factory) Reset(ctx context.Context, pc *physConn) error {
	if pc.resetter != nil {
		return pc.resetter.ResetSession(ctx)
	}
	return nil
}

func (factory) Validate(ctx context.Context, pc *physConn) error {
	if pc.validator != nil && !pc.validator.IsValid() {
		return driver.ErrBadConn
	}
	if pc.pinger != nil {
		return pc.pinger.Ping(ctx)
	}
	return nil
}

// Close closes a physical connection. A reclaimed one is closed on the
// pool's maintenance goroutine while its borrower may still hold it: its
// statements, which belong to the borrower, are left to it (the handle
// forgets them), its partition slot is freed here (releasePart runs once,
// here or in the borrower's release), and the driver connection is closed
// now or at the end of the call in progress (see enterOp).
func (f factory) Close(pc *physConn, reason pool.CloseReason) error {
	c := f.c
	// A borrowed connection taken back (MaxBorrowTime, or Close after
	// CloseTimeout) may have a call in progress.
	reclaimed := reason == pool.CloseReclaimed || reason == pool.ClosePoolClosed && c.reclaim && pc.part.Load() != nil
	if !reclaimed {
		pc.closeAllStmts()
	}
	c.connMu.Lock()
	delete(c.live, pc)
	cs := pc.cache.stats()
	if reclaimed {
		cs.Cached = 0 // forgotten by the borrower
	}
	c.closedCache.add(cs)
	c.connMu.Unlock()
	if f := c.cfg.Hooks.OnClose; f != nil {
		f(CloseEvent{ConnID: pc.id, Reason: reason.String()})
	}
	if reclaimed {
		pc.releasePart()
		pc.markReclaimed() // closes now, or when the call in progress ends
		return nil
	}
	return pc.closeDriver()
}
