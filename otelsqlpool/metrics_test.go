package otelsqlpool_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
	"github.com/sqlpool/sqlpool/otelsqlpool"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// collect returns the metrics r reads, by name.
func collect(t *testing.T, r sdkmetric.Reader) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	m := make(map[string]metricdata.Aggregation)
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			m[mt.Name] = mt.Data
		}
	}
	return m
}

// point returns the value of the int64 data point of a whose attributes
// include want, and fails if there is none.
func point(t *testing.T, name string, a metricdata.Aggregation, want ...attribute.KeyValue) int64 {
	t.Helper()
	var pts []metricdata.DataPoint[int64]
	switch d := a.(type) {
	case metricdata.Sum[int64]:
		pts = d.DataPoints
	case metricdata.Gauge[int64]:
		pts = d.DataPoints
	default:
		t.Fatalf("%s: %T, want int64 points", name, a)
	}
next:
	for _, p := range pts {
		for _, kv := range want {
			if v, ok := p.Attributes.Value(kv.Key); !ok || v != kv.Value {
				continue next
			}
		}
		return p.Value
	}
	t.Fatalf("%s: no point with %v in %v", name, want, pts)
	return 0
}

// histCount returns the count of the histogram a's only data point.
func histCount(t *testing.T, name string, a metricdata.Aggregation) uint64 {
	t.Helper()
	h, ok := a.(metricdata.Histogram[float64])
	if !ok || len(h.DataPoints) != 1 {
		t.Fatalf("%s: %#v, want a histogram with one point", name, a)
	}
	if v, _ := h.DataPoints[0].Attributes.Value("db.client.connection.pool.name"); v.AsString() != "orders" {
		t.Errorf("%s: pool name %q, want orders", name, v.AsString())
	}
	return h.DataPoints[0].Count
}

func TestRegisterMetricsMatchesStats(t *testing.T) {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	defer mp.Shutdown(context.Background())
	var acquired atomic.Int64 // successful borrowings, told to the user's hook
	cfg := sqlpool.Config{MaxSize: 2, AcquireTimeout: 10 * time.Millisecond, Hooks: sqlpool.Hooks{
		OnAcquire: func(e sqlpool.AcquireEvent) {
			if e.Err == nil {
				acquired.Add(1)
			}
		},
	}}
	otelsqlpool.Instrument(&cfg, otelsqlpool.WithMeterProvider(mp), otelsqlpool.WithPoolName("orders"))
	c, err := sqlpool.Wrap(drivertest.New(drivertest.Options{}).Connector("test"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sqlpool.OpenDB(c)
	defer db.Close()
	reg, err := otelsqlpool.RegisterMetrics(c, otelsqlpool.WithMeterProvider(mp), otelsqlpool.WithPoolName("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()

	ctx := context.Background()
	// Two borrowings held: the pool is full, then one acquisition times out.
	tx1, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx1.Rollback()
	tx2, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "SET k v"); !errors.Is(err, sqlpool.ErrAcquireTimeout) {
		t.Fatalf("exec on a full pool: %v, want ErrAcquireTimeout", err)
	}
	// One caller waiting, then one idle connection and one in use.
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	waited := make(chan error, 1)
	go func() {
		_, err := db.ExecContext(waitCtx, "SET k v")
		waited <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); c.Stats().Waiting != 1; {
		if time.Now().After(deadline) {
			t.Fatal("the third caller never waited")
		}
		time.Sleep(time.Millisecond) // polling with a deadline
	}
	_ = waited // its wait ends below, when tx2 gives its connection back

	pool := attribute.String("db.client.connection.pool.name", "orders")
	m := collect(t, r)
	s := c.Stats()
	if got := point(t, "pending_requests", m["db.client.connection.pending_requests"], pool); got != 1 || int(got) != s.Waiting {
		t.Errorf("pending_requests = %d, want 1 (Stats.Waiting %d)", got, s.Waiting)
	}
	if got := point(t, "used", m["db.client.connection.count"], pool, attribute.String("db.client.connection.state", "used")); got != int64(s.InUse) || got != 2 {
		t.Errorf("count{state=used} = %d, want Stats.InUse %d (2)", got, s.InUse)
	}
	if got := point(t, "idle", m["db.client.connection.count"], pool, attribute.String("db.client.connection.state", "idle")); got != int64(s.Idle) || got != 0 {
		t.Errorf("count{state=idle} = %d, want Stats.Idle %d (0)", got, s.Idle)
	}
	if got := point(t, "max", m["db.client.connection.max"], pool); got != int64(s.MaxSize) || got != 2 {
		t.Errorf("max = %d, want Stats.MaxSize %d (2)", got, s.MaxSize)
	}
	if got := point(t, "timeouts", m["db.client.connection.timeouts"], pool); got != s.Timeouts || got != 1 {
		t.Errorf("timeouts = %d, want Stats.Timeouts %d (1)", got, s.Timeouts)
	}

	tx2.Rollback() // the waiter gets the connection
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	m = collect(t, r)
	s = c.Stats()
	if got := point(t, "idle", m["db.client.connection.count"], pool, attribute.String("db.client.connection.state", "idle")); got != int64(s.Idle) || got != 1 {
		t.Errorf("after release: count{state=idle} = %d, want Stats.Idle %d (1)", got, s.Idle)
	}
	if got := point(t, "used", m["db.client.connection.count"], pool, attribute.String("db.client.connection.state", "used")); got != int64(s.InUse) || got != 1 {
		t.Errorf("after release: count{state=used} = %d, want Stats.InUse %d (1)", got, s.InUse)
	}
	if got := histCount(t, "wait_time", m["db.client.connection.wait_time"]); got != uint64(acquired.Load()) || got != 3 {
		t.Errorf("wait_time count = %d, want one per borrowing: %d (3)", got, acquired.Load())
	}
	if got := histCount(t, "create_time", m["db.client.connection.create_time"]); got != uint64(s.Created) {
		t.Errorf("create_time count = %d, want Stats.Created %d", got, s.Created)
	}
	if got := histCount(t, "use_time", m["db.client.connection.use_time"]); got != 2 {
		t.Errorf("use_time count = %d, want 2 (tx2 and the waiter's exec)", got)
	}
}

func TestUnregisterStopsTheMetrics(t *testing.T) {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	defer mp.Shutdown(context.Background())
	c, err := sqlpool.Wrap(drivertest.New(drivertest.Options{}).Connector("test"), sqlpool.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reg, err := otelsqlpool.RegisterMetrics(c, otelsqlpool.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := collect(t, r)["db.client.connection.count"]; !ok {
		t.Fatal("no db.client.connection.count while registered")
	}
	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
	if a, ok := collect(t, r)["db.client.connection.count"]; ok {
		if s, _ := a.(metricdata.Sum[int64]); len(s.DataPoints) > 0 {
			t.Errorf("db.client.connection.count still observed after Unregister: %v", s.DataPoints)
		}
	}
}

func TestRegisterMetricsRefusesANilConnector(t *testing.T) {
	if _, err := otelsqlpool.RegisterMetrics(nil); !errors.Is(err, otelsqlpool.ErrNilConnector) {
		t.Errorf("RegisterMetrics(nil): %v, want ErrNilConnector", err)
	}
}
