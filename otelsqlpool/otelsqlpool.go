// Package otelsqlpool traces a sqlpool Connector's operations and exports
// its pool metrics with OpenTelemetry, following OpenTelemetry's semantic
// conventions for database clients.
//
// [Hooks] (or [Instrument], which keeps the hooks already in a Config)
// gives sqlpool.Hooks that start one client span per operation on a
// physical connection (query, exec, prepare, begin, commit, rollback,
// ping), a child of the span in the operation's context, and record the
// histograms db.client.connection.wait_time, use_time and create_time.
// [RegisterMetrics] exports, from the Connector's Stats at each collection,
// db.client.connection.count (state idle and used), max,
// pending_requests and timeouts.
//
// # Spans
//
// A span is named "sqlpool." and the operation ("sqlpool.query",
// "sqlpool.commit", ...) and has the attributes:
//
//	db.system.name                 WithSystem; default "other_sql"
//	db.client.connection.pool.name WithPoolName; default "sqlpool"
//	sqlpool.partition              the partition the connection serves
//	sqlpool.conn.id                the physical connection's ID
//	sqlpool.acquire.wait           on the first operation of a borrowing: seconds
//	                               spent getting the connection (float)
//	db.query.text                  WithQueryText only: the SQL with its literals
//	                               replaced by ?
//	error.type                     when the operation failed: the error's Go type
//
// A failed operation has the status Error and the error recorded as an
// event. An operation the driver declined (driver.ErrSkip: database/sql
// prepares the statement instead, and a prepare span follows) is not an
// error; its span has sqlpool.skipped=true. Commit and Rollback take no
// context: their spans are children of the span that began the borrowing
// (the BeginTx context's). An acquisition that fails gets a span of its
// own, "sqlpool.acquire", with the error.
//
// Query, exec and prepare spans also carry sqlpool.statement_cache.hit:
// whether the operation's prepared statement came from the connection's
// statement cache (QueryEvent.Cached).
//
// # Metrics not exported
//
// db.client.connection.idle.min and idle.max are not exported: a Connector
// does not expose its MinSize, and it has no cap on idle connections below
// MaxSize.
package otelsqlpool

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sqlpool/sqlpool"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/dbconv"
	"go.opentelemetry.io/otel/trace"
)

// scope is the instrumentation scope of the spans and metrics.
const scope = "github.com/sqlpool/sqlpool/otelsqlpool"

// Attribute keys of sqlpool's own span attributes.
const (
	PartitionKey   = attribute.Key("sqlpool.partition")           // the partition served
	ConnIDKey      = attribute.Key("sqlpool.conn.id")             // the physical connection's ID
	AcquireWaitKey = attribute.Key("sqlpool.acquire.wait")        // seconds to get the connection
	SkippedKey     = attribute.Key("sqlpool.skipped")             // the driver declined the operation
	CacheHitKey    = attribute.Key("sqlpool.statement_cache.hit") // the prepared statement came from the connection's cache
)

// An Option configures Hooks, Instrument and RegisterMetrics.
type Option func(*config)

type config struct {
	tp        trace.TracerProvider // default otel.GetTracerProvider()
	mp        metric.MeterProvider // default otel.GetMeterProvider()
	system    string               // db.system.name
	pool      string               // db.client.connection.pool.name
	queryText bool                 // record db.query.text, sanitized
}

func newConfig(opts []Option) config {
	c := config{system: string(dbconv.SystemNameOtherSQL), pool: "sqlpool"}
	for _, o := range opts {
		o(&c)
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	return c
}

// WithTracerProvider sets the TracerProvider that makes the spans. Default:
// the global one, otel.GetTracerProvider().
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

// WithMeterProvider sets the MeterProvider of the metrics. Default: the
// global one, otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.mp = mp }
}

// WithSystem sets db.system.name, the database product, in OpenTelemetry's
// words: "postgresql", "mysql", "mariadb", "sqlite", ... Default
// "other_sql".
func WithSystem(name string) Option {
	return func(c *config) { c.system = name }
}

// WithPoolName sets db.client.connection.pool.name, which must be unique
// among the application's pools: give each Connector its own, and the same
// to its Hooks and its RegisterMetrics. Default "sqlpool".
func WithPoolName(name string) Option {
	return func(c *config) { c.pool = name }
}

// WithQueryText records each operation's SQL in db.query.text, with its
// string and number literals replaced by ? (see Sanitize). Default off: a
// query can hold what its literals should not leak.
func WithQueryText() Option {
	return func(c *config) { c.queryText = true }
}

// Instrument adds the hooks of Hooks(opts...) to cfg.Hooks, after the ones
// already set there, which keep being called.
func Instrument(cfg *sqlpool.Config, opts ...Option) {
	cfg.Hooks = chain(cfg.Hooks, Hooks(opts...))
}

// Hooks returns sqlpool.Hooks that trace each operation and record the
// connection histograms. An instrument the MeterProvider refuses is
// reported to otel.Handle and left out.
func Hooks(opts ...Option) sqlpool.Hooks {
	t := newTracer(newConfig(opts))
	return sqlpool.Hooks{
		OnConnect:    t.onConnect,
		OnAcquire:    t.onAcquire,
		OnRelease:    t.onRelease,
		OnQueryStart: t.onQueryStart,
		OnQueryEnd:   t.onQueryEnd,
		OnClose:      t.onClose,
	}
}

// tracer holds what the hooks of one Hooks call share.
type tracer struct {
	cfg    config
	tracer trace.Tracer
	attrs  []attribute.KeyValue // of every span: system and pool name

	waitTime   dbconv.ClientConnectionWaitTime
	useTime    dbconv.ClientConnectionUseTime
	createTime dbconv.ClientConnectionCreateTime

	mu sync.Mutex
	// conns holds what is known of each open physical connection, by ID;
	// an entry goes when its connection closes. Guarded by mu.
	conns map[int64]*connState
}

// connState is what the hooks carry from one event of a physical
// connection to the next. Guarded by tracer.mu.
type connState struct {
	span   trace.Span        // the operation in progress; nil between operations
	wait   time.Duration     // the borrowing's wait, for its first span
	waited bool              // wait is set and not yet on a span
	parent trace.SpanContext // the borrowing's caller, for Commit and Rollback
}

func newTracer(cfg config) *tracer {
	t := &tracer{
		cfg:    cfg,
		tracer: cfg.tp.Tracer(scope),
		attrs: []attribute.KeyValue{
			semconv.DBSystemNameKey.String(cfg.system),
			semconv.DBClientConnectionPoolName(cfg.pool),
		},
		conns: make(map[int64]*connState),
	}
	m := cfg.mp.Meter(scope)
	var err error
	if t.waitTime, err = dbconv.NewClientConnectionWaitTime(m); err != nil {
		otel.Handle(err)
	}
	if t.useTime, err = dbconv.NewClientConnectionUseTime(m); err != nil {
		otel.Handle(err)
	}
	if t.createTime, err = dbconv.NewClientConnectionCreateTime(m); err != nil {
		otel.Handle(err)
	}
	return t
}

// stateLocked returns id's state, made if missing.
func (t *tracer) stateLocked(id int64) *connState {
	st := t.conns[id]
	if st == nil {
		st = new(connState)
		t.conns[id] = st
	}
	return st
}

// takeSpan removes and returns id's span in progress, nil if none.
func (t *tracer) takeSpan(id int64) trace.Span {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.conns[id]
	if st == nil {
		return nil
	}
	s := st.span
	st.span = nil
	return s
}

func (t *tracer) onConnect(e sqlpool.ConnectEvent) {
	if e.Err == nil {
		t.createTime.Record(context.Background(), e.Duration.Seconds(), t.cfg.pool)
	}
}

func (t *tracer) onAcquire(e sqlpool.AcquireEvent) {
	ctx := e.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	if e.Err != nil {
		now := time.Now()
		_, s := t.tracer.Start(ctx, "sqlpool.acquire",
			trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(now.Add(-e.Wait)),
			trace.WithAttributes(t.attrs...),
			trace.WithAttributes(PartitionKey.String(e.Partition), AcquireWaitKey.Float64(e.Wait.Seconds())))
		fail(s, e.Err)
		s.End(trace.WithTimestamp(now))
		return
	}
	t.waitTime.Record(ctx, e.Wait.Seconds(), t.cfg.pool)
	t.mu.Lock()
	st := t.stateLocked(e.ConnID)
	st.wait, st.waited = e.Wait, true
	st.parent = trace.SpanContextFromContext(ctx)
	t.mu.Unlock()
}

func (t *tracer) onRelease(e sqlpool.ReleaseEvent) {
	t.useTime.Record(context.Background(), e.Hold.Seconds(), t.cfg.pool)
	t.mu.Lock()
	var s trace.Span
	if st := t.conns[e.ConnID]; st != nil {
		s = st.span
		*st = connState{}
	}
	t.mu.Unlock()
	if s != nil { // an operation whose end was not told: end it now
		s.End()
	}
}

func (t *tracer) onClose(e sqlpool.CloseEvent) {
	t.mu.Lock()
	var s trace.Span
	if st := t.conns[e.ConnID]; st != nil {
		s = st.span
		delete(t.conns, e.ConnID)
	}
	t.mu.Unlock()
	if s != nil {
		s.End()
	}
}

func (t *tracer) onQueryStart(e sqlpool.QueryEvent) {
	ctx := e.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	t.mu.Lock()
	st := t.stateLocked(e.ConnID)
	prev := st.span
	st.span = nil
	wait, waited := st.wait, st.waited
	st.waited = false
	parent := st.parent
	t.mu.Unlock()
	if prev != nil { // its OnQueryEnd never came: never leak it
		prev.End()
	}

	if !trace.SpanContextFromContext(ctx).IsValid() && parent.IsValid() {
		ctx = trace.ContextWithSpanContext(ctx, parent)
	}
	attrs := make([]attribute.KeyValue, 0, len(t.attrs)+4)
	attrs = append(attrs, t.attrs...)
	attrs = append(attrs, PartitionKey.String(e.Partition), ConnIDKey.Int64(e.ConnID))
	if waited {
		attrs = append(attrs, AcquireWaitKey.Float64(wait.Seconds()))
	}
	if t.cfg.queryText && e.Query != "" {
		attrs = append(attrs, semconv.DBQueryText(Sanitize(e.Query)))
	}
	_, s := t.tracer.Start(ctx, "sqlpool."+e.Op, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))

	t.mu.Lock()
	t.stateLocked(e.ConnID).span = s
	t.mu.Unlock()
}

func (t *tracer) onQueryEnd(e sqlpool.QueryEvent) {
	s := t.takeSpan(e.ConnID)
	if s == nil {
		return
	}
	if e.Op == "query" || e.Op == "exec" || e.Op == "prepare" {
		s.SetAttributes(CacheHitKey.Bool(e.Cached))
	}
	switch {
	case e.Err == nil:
	case errors.Is(e.Err, driver.ErrSkip):
		s.SetAttributes(SkippedKey.Bool(true))
	default:
		fail(s, e.Err)
	}
	s.End()
}

// fail marks s as failed with err.
func fail(s trace.Span, err error) {
	s.SetAttributes(semconv.ErrorTypeKey.String(fmt.Sprintf("%T", err)))
	s.RecordError(err)
	s.SetStatus(codes.Error, err.Error())
}

// chain returns Hooks calling a's hook, then b's, for each event.
func chain(a, b sqlpool.Hooks) sqlpool.Hooks {
	return sqlpool.Hooks{
		OnConnect:    both(a.OnConnect, b.OnConnect),
		OnAcquire:    both(a.OnAcquire, b.OnAcquire),
		OnRelease:    both(a.OnRelease, b.OnRelease),
		OnQueryStart: both(a.OnQueryStart, b.OnQueryStart),
		OnQueryEnd:   both(a.OnQueryEnd, b.OnQueryEnd),
		OnClose:      both(a.OnClose, b.OnClose),
		OnLeak:       both(a.OnLeak, b.OnLeak),
	}
}

// both returns a func calling f then g, either of which may be nil.
func both[E any](f, g func(E)) func(E) {
	switch {
	case f == nil:
		return g
	case g == nil:
		return f
	}
	return func(e E) { f(e); g(e) }
}
