package otelsqlpool_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
	"github.com/sqlpool/sqlpool/otelsqlpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// database/sql's connectionOpener goroutine lives until DB.Close; every
	// DB here is closed by Cleanup, and the SDK is used with synchronous
	// processors and a manual reader, which start none.
	goleak.VerifyTestMain(m)
}

// traced returns a DB over a fake driver whose Connector is instrumented
// with opts and a TracerProvider exporting to the returned exporter.
func traced(t *testing.T, cfg sqlpool.Config, opts ...otelsqlpool.Option) (*sql.DB, *sqlpool.Connector, *tracetest.InMemoryExporter, trace.Tracer) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	otelsqlpool.Instrument(&cfg, append([]otelsqlpool.Option{otelsqlpool.WithTracerProvider(tp)}, opts...)...)
	c, err := sqlpool.Wrap(drivertest.New(drivertest.Options{}).Connector("test"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sqlpool.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db, c, exp, tp.Tracer("test")
}

// spansNamed returns the exported spans named name.
func spansNamed(exp *tracetest.InMemoryExporter, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// attrs returns a span's attributes by key.
func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value)
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestEachQueryHasAClientSpanUnderTheCallersSpan(t *testing.T) {
	db, _, exp, tr := traced(t, sqlpool.Config{}, otelsqlpool.WithSystem("postgresql"), otelsqlpool.WithPoolName("main"), otelsqlpool.WithQueryText())
	ctx, parent := tr.Start(context.Background(), "handler")
	if _, err := db.ExecContext(ctx, "SET k 42"); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := db.QueryRowContext(ctx, "SELECT 'secret'").Scan(&got); err != nil {
		t.Fatal(err)
	}
	parent.End()

	for _, tc := range []struct{ name, text string }{
		{"sqlpool.exec", "SET k ?"},
		{"sqlpool.query", "SELECT ?"},
	} {
		spans := spansNamed(exp, tc.name)
		if len(spans) != 1 {
			t.Fatalf("%d spans named %s, want 1; all: %v", len(spans), tc.name, exp.GetSpans().Snapshots())
		}
		s := spans[0]
		if s.Parent.SpanID() != parent.SpanContext().SpanID() || s.SpanContext.TraceID() != parent.SpanContext().TraceID() {
			t.Errorf("%s: parent %v, want the caller's span %v", tc.name, s.Parent.SpanID(), parent.SpanContext().SpanID())
		}
		if s.SpanKind != trace.SpanKindClient {
			t.Errorf("%s: kind %v, want client", tc.name, s.SpanKind)
		}
		if s.Status.Code != codes.Unset {
			t.Errorf("%s: status %v, want unset", tc.name, s.Status)
		}
		a := attrs(s)
		for k, want := range map[attribute.Key]string{
			"db.system.name":                 "postgresql",
			"db.client.connection.pool.name": "main",
			"sqlpool.partition":              "default",
			"db.query.text":                  tc.text,
		} {
			if got := a[k].AsString(); got != want {
				t.Errorf("%s: %s = %q, want %q", tc.name, k, got, want)
			}
		}
		if a[otelsqlpool.ConnIDKey].AsInt64() <= 0 {
			t.Errorf("%s: sqlpool.conn.id = %v, want a connection's ID", tc.name, a[otelsqlpool.ConnIDKey])
		}
		if v, ok := a[otelsqlpool.AcquireWaitKey]; !ok || v.AsFloat64() < 0 {
			t.Errorf("%s: sqlpool.acquire.wait = %v (present %v), want the borrowing's wait", tc.name, v, ok)
		}
	}
}

func TestQueryTextIsNotRecordedByDefault(t *testing.T) {
	db, _, exp, _ := traced(t, sqlpool.Config{})
	if _, err := db.ExecContext(context.Background(), "SET password hunter2"); err != nil {
		t.Fatal(err)
	}
	spans := spansNamed(exp, "sqlpool.exec")
	if len(spans) != 1 {
		t.Fatalf("%d exec spans, want 1", len(spans))
	}
	if v, ok := attrs(spans[0])["db.query.text"]; ok {
		t.Errorf("db.query.text = %q without WithQueryText, want none", v.AsString())
	}
	if got := attrs(spans[0])["db.system.name"].AsString(); got != "other_sql" {
		t.Errorf("db.system.name = %q, want the default other_sql", got)
	}
}

func TestFailedQuerySpanHasErrorStatus(t *testing.T) {
	db, _, exp, _ := traced(t, sqlpool.Config{})
	_, err := db.ExecContext(context.Background(), "FAIL boom")
	if err == nil {
		t.Fatal("FAIL succeeded")
	}
	spans := spansNamed(exp, "sqlpool.exec")
	if len(spans) != 1 {
		t.Fatalf("%d exec spans, want 1", len(spans))
	}
	s := spans[0]
	if s.Status.Code != codes.Error || !strings.Contains(s.Status.Description, "boom") {
		t.Errorf("status %v, want Error with the driver's message", s.Status)
	}
	if attrs(s)["error.type"].AsString() == "" {
		t.Error("no error.type attribute")
	}
	if len(s.Events) != 1 || s.Events[0].Name != "exception" {
		t.Errorf("events %v, want the recorded error", s.Events)
	}
}

func TestCommitSpanIsAChildOfTheBeginContextsSpan(t *testing.T) {
	db, _, exp, tr := traced(t, sqlpool.Config{})
	ctx, parent := tr.Start(context.Background(), "handler")
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "SET k v"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	parent.End()
	for _, name := range []string{"sqlpool.begin", "sqlpool.exec", "sqlpool.commit"} {
		spans := spansNamed(exp, name)
		if len(spans) != 1 {
			t.Fatalf("%d spans named %s, want 1", len(spans), name)
		}
		if got := spans[0].Parent.SpanID(); got != parent.SpanContext().SpanID() {
			t.Errorf("%s: parent %v, want the BeginTx context's span %v", name, got, parent.SpanContext().SpanID())
		}
	}
	// The wait belongs to the borrowing: on begin, not again on exec.
	if _, ok := attrs(spansNamed(exp, "sqlpool.begin")[0])[otelsqlpool.AcquireWaitKey]; !ok {
		t.Error("begin has no sqlpool.acquire.wait")
	}
	if _, ok := attrs(spansNamed(exp, "sqlpool.exec")[0])[otelsqlpool.AcquireWaitKey]; ok {
		t.Error("exec inside the transaction repeats sqlpool.acquire.wait")
	}
}

func TestFailedAcquisitionHasAnErrorSpan(t *testing.T) {
	db, _, exp, _ := traced(t, sqlpool.Config{MaxSize: 1, AcquireTimeout: 10 * time.Millisecond})
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil) // holds the only connection
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	_, err = db.ExecContext(ctx, "SET k v")
	if !errors.Is(err, sqlpool.ErrAcquireTimeout) {
		t.Fatalf("exec: %v, want ErrAcquireTimeout", err)
	}
	spans := spansNamed(exp, "sqlpool.acquire")
	if len(spans) != 1 {
		t.Fatalf("%d acquire spans, want 1", len(spans))
	}
	s := spans[0]
	if s.Status.Code != codes.Error {
		t.Errorf("status %v, want Error", s.Status)
	}
	if d := s.EndTime.Sub(s.StartTime); d < 10*time.Millisecond {
		t.Errorf("acquire span lasts %v, want the wait (>= AcquireTimeout 10ms)", d)
	}
	if n := len(spansNamed(exp, "sqlpool.exec")); n != 0 {
		t.Errorf("%d exec spans for an exec that never ran, want 0", n)
	}
}

// counter is a SpanProcessor that counts the spans started and ended.
type counter struct {
	started, ended atomic.Int64
}

func (c *counter) OnStart(context.Context, sdktrace.ReadWriteSpan) { c.started.Add(1) }
func (c *counter) OnEnd(sdktrace.ReadOnlySpan)                     { c.ended.Add(1) }
func (c *counter) Shutdown(context.Context) error                  { return nil }
func (c *counter) ForceFlush(context.Context) error                { return nil }

func TestEverySpanEndsUnderConcurrentLoad(t *testing.T) {
	var n counter
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(&n))
	defer tp.Shutdown(context.Background())
	cfg := sqlpool.Config{MaxSize: 3}
	otelsqlpool.Instrument(&cfg, otelsqlpool.WithTracerProvider(tp))
	c, err := sqlpool.Wrap(drivertest.New(drivertest.Options{}).Connector("test"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sqlpool.OpenDB(c)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			ctx := context.Background()
			for i := range 50 {
				switch i % 3 {
				case 0:
					db.ExecContext(ctx, "SET k v")
				case 1:
					db.ExecContext(ctx, "FAIL x")
				default:
					tx, err := db.BeginTx(ctx, nil)
					if err != nil {
						t.Error(g, err)
						return
					}
					tx.ExecContext(ctx, "SET k v")
					tx.Rollback()
				}
			}
		})
	}
	wg.Wait()
	db.Close()
	if s, e := n.started.Load(), n.ended.Load(); s == 0 || s != e {
		t.Errorf("%d spans started, %d ended: want all ended", s, e)
	}
}

func TestASpanWhoseEndNeverCameIsEndedByTheNextEvent(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	h := otelsqlpool.Hooks(otelsqlpool.WithTracerProvider(tp))
	ctx := context.Background()
	h.OnAcquire(sqlpool.AcquireEvent{Ctx: ctx, ConnID: 1})
	h.OnQueryStart(sqlpool.QueryEvent{Ctx: ctx, ConnID: 1, Op: "query"})
	h.OnQueryStart(sqlpool.QueryEvent{Ctx: ctx, ConnID: 1, Op: "exec"}) // no OnQueryEnd before
	if got := len(exp.GetSpans()); got != 1 {
		t.Fatalf("after a second start on one connection: %d spans ended, want the first", got)
	}
	h.OnRelease(sqlpool.ReleaseEvent{ConnID: 1})
	if got := len(exp.GetSpans()); got != 2 {
		t.Fatalf("after the release: %d spans ended, want 2", got)
	}
	h.OnQueryStart(sqlpool.QueryEvent{Ctx: ctx, ConnID: 2, Op: "ping"})
	h.OnClose(sqlpool.CloseEvent{ConnID: 2, Reason: "reclaimed"})
	if got := len(exp.GetSpans()); got != 3 {
		t.Fatalf("after the close: %d spans ended, want 3", got)
	}
	h.OnQueryEnd(sqlpool.QueryEvent{Ctx: ctx, ConnID: 2, Op: "ping"}) // late: nothing left to end
	if got := len(exp.GetSpans()); got != 3 {
		t.Fatalf("a late OnQueryEnd: %d spans, want 3", got)
	}
}

func TestInstrumentKeepsTheHooksAlreadySet(t *testing.T) {
	var ends atomic.Int64
	cfg := sqlpool.Config{Hooks: sqlpool.Hooks{OnQueryEnd: func(sqlpool.QueryEvent) { ends.Add(1) }}}
	db, _, exp, _ := traced(t, cfg)
	if _, err := db.ExecContext(context.Background(), "SET k v"); err != nil {
		t.Fatal(err)
	}
	if ends.Load() != 1 {
		t.Errorf("the user's OnQueryEnd ran %d times, want 1", ends.Load())
	}
	if n := len(spansNamed(exp, "sqlpool.exec")); n != 1 {
		t.Errorf("%d exec spans, want 1", n)
	}
}

// A query whose prepared statement came from the connection's statement
// cache says so on its span.
func TestQuerySpansSayWhetherTheCacheServedThem(t *testing.T) {
	db, _, exp, _ := traced(t, sqlpool.Config{MaxSize: 1, StatementCacheMode: sqlpool.CacheAll})
	for range 2 {
		if _, err := db.Exec("SELECT ?", 1); err != nil {
			t.Fatal(err)
		}
	}
	spans := spansNamed(exp, "sqlpool.exec")
	if len(spans) != 2 {
		t.Fatalf("%d exec spans, want 2", len(spans))
	}
	for i, want := range []bool{false, true} {
		if got := attrs(spans[i])[otelsqlpool.CacheHitKey].AsBool(); got != want {
			t.Errorf("exec %d: %s = %v, want %v", i+1, otelsqlpool.CacheHitKey, got, want)
		}
	}
}
