package sqlpool

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/sqlpool/sqlpool/internal/clock"
	"github.com/sqlpool/sqlpool/monitor"
	"github.com/sqlpool/sqlpool/partition"
	"github.com/sqlpool/sqlpool/pool"
)

// partState is the runtime state of a partition, its partition.Partition's
// State.
type partState struct {
	id      uint64 // the pool label of connections set up for it
	name    string
	cfg     partition.Config
	setup   []string            // session setup statements, in order; none: no session state
	reset   []string            // statements that undo setup; nil with setup: replace the connection
	txSetup []string            // behind a transaction pooler: setup run in each transaction
	nameArg []driver.NamedValue // SetupSQL's argument: the partition's name
	group   *pool.Group         // MaxSize, kept by the pool's wait queue; nil: no cap
	limiter *rate.Limiter       // QueryRate; nil: no cap
	rec     *monitor.PartitionRecorder

	borrows  [borrowStripes]borrowStripe // successful borrowings, and those in progress
	labeled  atomic.Int64                // borrowings of a connection already labeled for the partition
	relabels atomic.Int64                // borrowings that reset another partition's session first
	fresh    atomic.Int64                // borrowings that labeled an unlabeled connection
	// throttled counts callers waiting for QueryRate.
	throttled atomic.Int64
	// rateTimeouts counts acquisitions refused by QueryRate as timeouts;
	// those that timed out at MaxSize are the group's (pool.GroupStats).
	rateTimeouts atomic.Int64
	// pending counts acquisitions begun and not yet served or failed:
	// waiting for QueryRate, the pool (at the partition's MaxSize or the
	// pool's) or a session setup.
	pending atomic.Int64
}

// borrowStripes spreads a partition's counts of borrowings over cache
// lines, by connection ID, so that borrowers on different cores, each with
// its own connections (see conn.retake), do not write to one line at
// every borrowing.
const borrowStripes = 8

// borrowStripe is one share of a partition's counts of borrowings.
type borrowStripe struct {
	acquires atomic.Int64 // successful borrowings
	inUse    atomic.Int64 // borrowings in progress
	_        [48]byte     // keeps the next stripe off this one's cache line
}

// lend counts a borrowing of the connection with ID id.
func (ps *partState) lend(id int64) {
	s := &ps.borrows[uint64(id)%borrowStripes]
	s.acquires.Add(1)
	s.inUse.Add(1)
}

// giveBack counts the end of a borrowing of the connection with ID id.
func (ps *partState) giveBack(id int64) { ps.borrows[uint64(id)%borrowStripes].inUse.Add(-1) }

// borrowings returns the partition's successful borrowings, and those in
// progress.
func (ps *partState) borrowings() (acquires, inUse int64) {
	for i := range ps.borrows {
		acquires += ps.borrows[i].acquires.Load()
		inUse += ps.borrows[i].inUse.Load()
	}
	return acquires, inUse
}

// newPartState builds a partition's runtime state for drivers with traits
// t; behind a transaction pooler its setup runs in each transaction.
func newPartState(c partition.Config, t traits, pooler bool) *partState {
	ps := &partState{name: c.Name, cfg: c, nameArg: []driver.NamedValue{{Ordinal: 1, Value: c.Name}}}
	switch {
	case pooler:
		if c.SetupSQL != "" {
			ps.txSetup = append(ps.txSetup, c.SetupSQL)
		}
		if c.StatementTimeout > 0 {
			ps.txSetup = append(ps.txSetup, fmt.Sprintf("SELECT set_config('statement_timeout', '%d', true)", c.StatementTimeout.Milliseconds()))
		}
	default:
		if c.SetupSQL != "" {
			ps.setup = append(ps.setup, c.SetupSQL)
		}
		if c.ResetSQL != "" {
			ps.reset = append(ps.reset, c.ResetSQL)
		}
		if c.StatementTimeout > 0 {
			ps.setup = append(ps.setup, fmt.Sprintf(t.setTimeout, c.StatementTimeout.Milliseconds()))
			ps.reset = append(ps.reset, t.resetTimeout)
		}
		if c.SetupSQL != "" && c.ResetSQL == "" {
			ps.reset = nil // cannot be undone: replace the connection instead
		}
	}
	if c.MaxSize > 0 {
		ps.group = pool.NewGroup(fmt.Sprintf("partition %q", c.Name), c.MaxSize, c.MaxWaitQueue)
	}
	if c.QueryRate > 0 {
		ps.limiter = rate.NewLimiter(rate.Limit(c.QueryRate), max(c.QueryBurst, 1))
	}
	return ps
}

// newRouter makes the Connector's partition router from cfg.Routing.
func (c *Connector) newRouter(cfg partition.RouterConfig) error {
	for _, pc := range append(cfg.Partitions, cfg.Template) {
		if err := c.checkPartition(pc); err != nil {
			return err
		}
	}
	pooler := c.cfg.Pooler == PoolerTransaction
	cfg.NewState = func(pc partition.Config) any {
		ps := newPartState(pc, c.traits, pooler)
		ps.id = c.partIDs.Add(1)
		ps.rec = c.rec.Partition(pc.Name)
		return ps
	}
	cfg.Load = func(p *partition.Partition) int {
		_, inUse := p.State.(*partState).borrowings()
		return int(inUse)
	}
	r, err := partition.NewRouter(cfg)
	if err != nil {
		return fmt.Errorf("sqlpool: invalid Config: Routing: %w", err)
	}
	c.router = r
	return nil
}

// checkPartition refuses a partition's settings that the driver or the
// Pooler cannot honour.
func (c *Connector) checkPartition(pc partition.Config) error {
	name := pc.Name
	if name == "" {
		name = "Template"
	}
	if c.cfg.Pooler != PoolerTransaction {
		if pc.StatementTimeout > 0 && c.traits.setTimeout == "" {
			return fmt.Errorf("sqlpool: invalid Config: partition %q has a StatementTimeout, which sqlpool can set only on PostgreSQL and MySQL: "+
				"set the timeout in the DSN or in SetupSQL instead", name)
		}
		return nil
	}
	switch {
	case pc.ResetSQL != "":
		return fmt.Errorf("sqlpool: invalid Config: partition %q has a ResetSQL, but behind a transaction pooler (Pooler) "+
			"there is no session to reset: write SetupSQL transaction-local (set_config(..., true) or SET LOCAL) and drop ResetSQL", name)
	case sessionScoped(pc.SetupSQL):
		return fmt.Errorf("sqlpool: invalid Config: partition %q SetupSQL %q sets session state, which a transaction pooler (Pooler) "+
			"hands to other clients after each transaction: make it transaction-local (set_config(name, value, true) or SET LOCAL); "+
			"sqlpool runs it inside every transaction", name, pc.SetupSQL)
	case pc.StatementTimeout > 0 && c.traits.family != familyPostgres:
		return fmt.Errorf("sqlpool: invalid Config: partition %q has a StatementTimeout, which sqlpool can set per transaction "+
			"(Pooler) only on PostgreSQL: set it in the server or DSN instead", name)
	}
	return nil
}

// sessionScoped reports whether a setup statement sets session state in one
// of the usual forms: SET (not SET LOCAL), or set_config(..., false).
func sessionScoped(sql string) bool {
	u := strings.ToUpper(strings.Join(strings.Fields(sql), " "))
	if strings.HasPrefix(u, "SET ") && !strings.HasPrefix(u, "SET LOCAL ") {
		return true
	}
	return strings.Contains(u, "SET_CONFIG(") && (strings.Contains(u, "FALSE)") || strings.Contains(u, "FALSE )"))
}

// route returns the partition of an operation tagged with t.
func (c *Connector) route(t *tags) (*partState, error) {
	p, err := c.router.Route(partition.Key{Tenant: t.tenant, User: t.user, Application: t.application, Service: t.service})
	if err != nil {
		return nil, err
	}
	return p.State.(*partState), nil
}

// errReplace says that a connection's session cannot be made to serve
// another partition: it must be replaced.
var errReplace = errors.New("sqlpool: session cannot be reset")

// setLabel makes pc's session serve ps, unless it already does. A session
// that served another partition is reset first when either partition sets
// session state: fully with the driver's reset (PostgreSQL's DISCARD ALL,
// which drops temporary tables, variables, advisory locks and prepared
// statements, and fails inside a transaction block), after the old
// partition's ResetSQL; where the driver has none, by that ResetSQL alone;
// with neither, or when the reset fails, the connection is replaced
// (errReplace). Then ps's setup runs. A setup failure leaves the connection
// unusable: the caller closes it.
func (c *Connector) setLabel(ctx context.Context, pc *physConn, ps *partState) error {
	old := pc.label.Load()
	if old == ps {
		if len(ps.setup) > 0 {
			ps.labeled.Add(1)
		}
		return nil
	}
	full := c.traits.fullReset
	dirty := old != nil && (len(old.setup) > 0 || len(ps.setup) > 0 && len(full) > 0)
	if dirty && len(full) == 0 && old.reset == nil {
		return errReplace
	}
	pc.label.Store(nil) // until both steps succeed
	if dirty {
		for _, q := range append(old.reset, full...) {
			if err := pc.execSession(ctx, q); err != nil {
				return fmt.Errorf("%w: partition %q reset: %w", errReplace, old.name, err)
			}
		}
		if len(full) > 0 {
			if err := c.dropStmts(ctx, pc); err != nil {
				return fmt.Errorf("%w: %w", errReplace, err)
			}
		}
	}
	if err := pc.runSetup(ctx, ps, ps.setup); err != nil {
		return err
	}
	pc.label.Store(ps)
	switch {
	case dirty:
		ps.relabels.Add(1)
	case len(ps.setup) > 0:
		ps.fresh.Add(1)
	}
	return nil
}

// acquire borrows a physical connection for an operation tagged t, begun at
// start: it routes t to its partition, waits for the partition's QueryRate
// (before anything is borrowed, so that a throttled tenant holds nothing),
// and borrows a connection labeled for it.
func (c *Connector) acquire(ctx context.Context, start time.Time, t *tags) (*pool.Conn[*physConn], *partState, error) {
	ps, err := c.route(t)
	if err != nil {
		return nil, nil, err
	}
	ps.pending.Add(1)
	defer ps.pending.Add(-1)
	stale := false
	if ps.limiter != nil {
		if err := c.throttle(ctx, start, ps); err != nil {
			return nil, ps, err
		}
		stale = true
	}
	pc, err := c.acquireFor(ctx, start, stale, ps, t.priority)
	return pc, ps, err
}

// throttle waits for ps's QueryRate, within the acquisition's deadline (the
// caller's, or AcquireTimeout from start): a wait that cannot end in time
// fails at once, as a timeout, and takes no token.
func (c *Connector) throttle(ctx context.Context, start time.Time, ps *partState) error {
	r := ps.limiter.Reserve()
	delay := r.Delay()
	if delay == 0 {
		return nil
	}
	deadline, byCaller := ctx.Deadline()
	if c.acquireTimeout > 0 {
		if d := start.Add(c.acquireTimeout); !byCaller || d.Before(deadline) {
			deadline, byCaller = d, false
		}
	}
	if !deadline.IsZero() && clock.Now().Add(delay).After(deadline) {
		r.Cancel()
		ps.rateTimeouts.Add(1)
		return &rateTimeout{name: ps.name, rate: ps.cfg.QueryRate, delay: delay, deadline: byCaller}
	}
	ps.throttled.Add(1)
	defer ps.throttled.Add(-1)
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return ctx.Err()
	}
}

// rateTimeout is an acquisition refused because its partition's QueryRate
// would make it wait past its deadline.
type rateTimeout struct {
	name     string
	rate     float64
	delay    time.Duration
	deadline bool // the caller's deadline, not AcquireTimeout
}

func (e *rateTimeout) Error() string {
	return fmt.Sprintf("sqlpool: partition %q is over its QueryRate (%g/s): the next slot is %v away, past the deadline: "+
		"raise the partition's QueryRate or QueryBurst, or slow its callers down", e.name, e.rate, e.delay.Round(time.Millisecond))
}

func (e *rateTimeout) Unwrap() []error {
	if e.deadline {
		return []error{ErrAcquireTimeout, context.DeadlineExceeded}
	}
	return []error{ErrAcquireTimeout}
}

// acquireFor borrows a physical connection labeled for ps, within ps's
// MaxSize (its pool.Group: a caller of a partition at its cap waits in the
// pool's queue), for an acquisition begun at start, whose AcquireTimeout
// runs from start whatever it waits for (stale: start is long ago, read the
// clock again for the pool); on error, or a panic in BeforeAcquire, what it
// holds is given back.
func (c *Connector) acquireFor(ctx context.Context, start time.Time, stale bool, ps *partState, prio Priority) (*pool.Conn[*physConn], error) {
	var pc *pool.Conn[*physConn]
	var err error
	done := false
	defer func() {
		if !done && pc != nil { // a panicking BeforeAcquire
			pc.Destroy(pool.CloseEvicted)
		}
	}()
	vetoes := 0
	now := start
	for attempt := 1; ; attempt++ {
		if stale { // the AcquireTimeout still runs from start: one deadline
			now = clock.Now()
		}
		stale = true // another attempt comes later
		pc, err = c.pool.AcquireGroup(ctx, start, now, prio, ps.id, ps.group)
		if err != nil {
			pc = nil
			return nil, acquireError(err)
		}
		if f := c.cfg.BeforeAcquire; f != nil && !f(ctx, pc.Value().Conn) {
			pc.Destroy(pool.CloseEvicted)
			pc = nil
			attempt--
			if vetoes++; vetoes > c.pool.Config().MaxSize {
				return nil, fmt.Errorf("sqlpool: BeforeAcquire vetoed %d connections in a row: check what it refuses", vetoes)
			}
			continue
		}
		err = c.setLabel(ctx, pc.Value(), ps)
		if err == nil {
			pc.SetLabel(ps.id)
			done = true
			return pc, nil
		}
		if errors.Is(err, errReplace) {
			pc.Destroy(pool.CloseEvicted)
			pc = nil
			continue // bounded: each attempt closes an idle connection, then the pool dials
		}
		pc.Destroy(pool.CloseErrors)
		pc = nil
		if !errors.Is(err, driver.ErrBadConn) || attempt == 3 || ctx.Err() != nil {
			return nil, acquireError(err)
		}
	}
}

// runSetup runs stmts, ps's session or transaction setup, on pc: SetupSQL
// first, with the partition's name as $1.
func (pc *physConn) runSetup(ctx context.Context, ps *partState, stmts []string) error {
	for i, q := range stmts {
		var args []driver.NamedValue
		if i == 0 && ps.cfg.SetupSQL != "" {
			args = ps.nameArg
		}
		if err := pc.execSession(ctx, q, args...); err != nil {
			return fmt.Errorf("sqlpool: partition %q setup: %w", ps.name, err)
		}
	}
	return nil
}

// execSession runs a session statement on pc, preparing it when the driver
// declines a direct exec.
func (pc *physConn) execSession(ctx context.Context, query string, args ...driver.NamedValue) error {
	_, err := pc.exec(ctx, query, args)
	if err != driver.ErrSkip {
		return err
	}
	si, err := pc.prepareDriver(ctx, query)
	if err != nil {
		return err
	}
	defer si.Close()
	_, err = stmtExec(ctx, si, args)
	return err
}

// warm keeps each partition's MinSize connections set up for it: it borrows
// and labels connections for a partition that has fewer, and gives them back
// idle. Run by the Connector's maintenance loop.
func (c *Connector) warm(ctx context.Context) {
	var need map[*partState]int
	for _, p := range c.router.List() {
		if p.MinSize > 0 {
			if need == nil {
				need = make(map[*partState]int)
			}
			need[p.State.(*partState)] = p.MinSize
		}
	}
	if need == nil {
		return
	}
	c.connMu.Lock()
	for pc := range c.live {
		if l := pc.label.Load(); l != nil {
			need[l]--
		}
	}
	c.connMu.Unlock()
	for ps, n := range need {
		var held []*pool.Conn[*physConn]
		for range n {
			actx, cancel := context.WithTimeout(ctx, c.validationTimeout)
			pc, err := c.acquireFor(actx, clock.Now(), false, ps, PriorityLow)
			cancel()
			if err != nil {
				break // tried again next time
			}
			held = append(held, pc)
		}
		for _, pc := range held {
			pc.ReleaseUnused()
		}
	}
}
