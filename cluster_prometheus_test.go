//go:build !sqlpool_noprometheus

package sqlpool_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
)

// gather registers c in a pedantic registry (which checks each metric
// against the Descs) and returns its samples by name{labels}, the labels
// in order: `sqlpool_host_up{host="h0"}`. Histograms give their count.
func gather(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatalf("register: %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			key := mf.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.GetGauge() != nil:
				got[key] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				got[key] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				got[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return got
}

// wantSamples fails the test for each sample of want that got lacks or
// holds with another value.
func wantSamples(t *testing.T, got map[string]float64, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("no sample %s", k)
		case g != v:
			t.Errorf("%s = %v, want %v", k, g, v)
		}
	}
}

func TestClusterCollectorIsLintCleanAndPedanticallyConsistent(t *testing.T) {
	th := newTestHosts(t, 3, sqlpool.ClusterConfig{})
	who(t, sqlpool.WithReadOnly(context.Background()), th.db)
	problems, err := testutil.CollectAndLint(th.cl.Collector())
	if err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	gather(t, th.cl.Collector()) // fails on an inconsistent Desc or label
	// Every host's pool metrics, plus 11 families of cluster metrics:
	// registering the hosts' own collectors beside it would clash.
	reg := prometheus.NewRegistry()
	reg.MustRegister(th.cl.Collector())
	if err := reg.Register(th.cl.Host("h1").Collector()); err == nil {
		t.Error("registering a host's own Collector beside the Cluster's succeeded: the doc says it exports the same pool twice")
	}
}

func TestClusterCollectorLabelsEachHostsPoolMetricsWithItsHost(t *testing.T) {
	th := newTestHosts(t, 3, sqlpool.ClusterConfig{Balance: sqlpool.RoundRobin})
	ro := sqlpool.WithReadOnly(sqlpool.WithTenant(context.Background(), "acme"))
	th.reads(t, ro, 4) // 2 on h1, 2 on h2
	th.execHost(t, sqlpool.WithTenant(context.Background(), "acme"))
	got := gather(t, th.cl.Collector())
	wantSamples(t, got, map[string]float64{
		`sqlpool_max_connections{host="h0"}`:                                  4,
		`sqlpool_max_connections{host="h1"}`:                                  4,
		`sqlpool_max_connections{host="h2"}`:                                  4,
		`sqlpool_acquires_total{host="h0",partition="acme",result="success"}`: 1,
		`sqlpool_acquires_total{host="h1",partition="acme",result="success"}`: 2,
		`sqlpool_acquires_total{host="h2",partition="acme",result="success"}`: 2,
		`sqlpool_hold_seconds{host="h1",partition="acme"}`:                    2,
		`sqlpool_connections{host="h1",partition="acme",state="idle"}`:        1,
		`sqlpool_connections{host="h1",partition="acme",state="in_use"}`:      0,
		`sqlpool_connections_created_total{host="h2"}`:                        1,
		`sqlpool_acquires_total{host="h2",partition="acme",result="timeout"}`: 0,
		`sqlpool_wait_queue_length{host="h0",partition="acme"}`:               0,
		`sqlpool_host_routed_total{host="h1",kind="read"}`:                    2,
		`sqlpool_host_routed_total{host="h0",kind="write"}`:                   1,
		`sqlpool_statement_cache_hits_total{host="h0"}`:                       got[`sqlpool_statement_cache_hits_total{host="h0"}`],
	})
	for k := range got {
		if strings.HasPrefix(k, "sqlpool_") && !strings.Contains(k, `host="`) {
			t.Errorf("%s carries no host label", k)
		}
	}
	if _, ok := got[`sqlpool_statement_cache_hits_total{host="h0"}`]; !ok {
		t.Error(`no sqlpool_statement_cache_hits_total{host="h0"}`)
	}
}

func TestClusterMetricsCountRoutedReadsWritesAndFallbacks(t *testing.T) {
	th := newTestHosts(t, 3, sqlpool.ClusterConfig{Balance: sqlpool.RoundRobin, MaxReplicaLag: time.Second})
	ctx := context.Background()
	ro := sqlpool.WithReadOnly(ctx)
	who(t, ctx, th.db) // a read without WithReadOnly: the primary's
	th.reads(t, ro, 10)
	th.execHost(t, ctx)
	th.execHost(t, ro)
	c := th.cl.Collector()
	wantSamples(t, gather(t, c), map[string]float64{
		`sqlpool_host_routed_total{host="h0",kind="read"}`:  1,
		`sqlpool_host_routed_total{host="h0",kind="write"}`: 2,
		`sqlpool_host_routed_total{host="h1",kind="read"}`:  5,
		`sqlpool_host_routed_total{host="h1",kind="write"}`: 0,
		`sqlpool_host_routed_total{host="h2",kind="read"}`:  5,
		`sqlpool_host_routed_total{host="h2",kind="write"}`: 0,
		`sqlpool_host_fallback_reads_total{host="h0"}`:      0,
		`sqlpool_host_serves_reads{host="h1"}`:              1,
	})

	// Both replicas past MaxReplicaLag: reads fall back to the primary.
	th.set("h1", sqlpool.HostStatus{ReadOnly: true, Lag: 5 * time.Second}, nil)
	th.set("h2", sqlpool.HostStatus{ReadOnly: true, Lag: 2500 * time.Millisecond}, nil)
	if got := th.reads(t, ro, 3); got["h0"] != 3 {
		t.Fatalf("reads with both replicas behind: %v, want all on h0", got)
	}
	wantSamples(t, gather(t, c), map[string]float64{
		`sqlpool_host_fallback_reads_total{host="h0"}`:     3,
		`sqlpool_host_fallback_reads_total{host="h1"}`:     0,
		`sqlpool_host_routed_total{host="h0",kind="read"}`: 4,
		`sqlpool_host_replica_lag_seconds{host="h1"}`:      5,
		`sqlpool_host_replica_lag_seconds{host="h2"}`:      2.5,
		`sqlpool_host_replica_lag_seconds{host="h0"}`:      0,
		`sqlpool_host_serves_reads{host="h1"}`:             0,
		`sqlpool_host_serves_reads{host="h2"}`:             0,
		`sqlpool_host_up{host="h1"}`:                       1,
		`sqlpool_host_healthy{host="h1"}`:                  1,
	})
	// The metrics and Stats count the same.
	for _, h := range th.cl.Stats().Hosts {
		got := gather(t, c)
		if r := got[`sqlpool_host_routed_total{host="`+h.Name+`",kind="read"}`]; r != float64(h.Reads) {
			t.Errorf("%s: routed reads %v, Stats().Reads %d", h.Name, r, h.Reads)
		}
	}
}

func TestClusterMetricsFollowAHostDownAndADemotion(t *testing.T) {
	th := newTestHosts(t, 3, sqlpool.ClusterConfig{})
	c := th.cl.Collector()
	wantSamples(t, gather(t, c), map[string]float64{
		`sqlpool_host_up{host="h0"}`:                  1,
		`sqlpool_host_primary{host="h0"}`:             1,
		`sqlpool_host_primary{host="h1"}`:             0,
		`sqlpool_host_role{host="h0",role="primary"}`: 1,
		`sqlpool_host_role{host="h0",role="replica"}`: 0,
		`sqlpool_host_role{host="h0",role="unknown"}`: 0,
		`sqlpool_host_role{host="h1",role="replica"}`: 1,
		`sqlpool_host_circuit_open{host="h1"}`:        0,
		`sqlpool_host_error_rate{host="h2"}`:          0,
		`sqlpool_host_healthy{host="h2"}`:             1,
	})

	th.set("h2", sqlpool.HostStatus{ReadOnly: true}, errors.New("check failed"))
	got := gather(t, c)
	h2 := th.host("h2")
	wantSamples(t, got, map[string]float64{
		`sqlpool_host_up{host="h2"}`:                  0,
		`sqlpool_host_up{host="h1"}`:                  1,
		`sqlpool_host_serves_reads{host="h2"}`:        0,
		`sqlpool_host_serves_reads{host="h1"}`:        1,
		`sqlpool_host_role{host="h2",role="replica"}`: 1, // as its last successful check said
		`sqlpool_host_error_rate{host="h2"}`:          h2.ErrorRate,
	})
	if got[`sqlpool_host_error_rate{host="h2"}`] <= 0 {
		t.Errorf("h2's error rate after a failed check: %v, want above 0", got[`sqlpool_host_error_rate{host="h2"}`])
	}
	for _, name := range []string{"h0", "h1"} {
		h := th.host(name)
		l := got[`sqlpool_host_check_latency_seconds{host="`+name+`"}`]
		if l <= 0 || math.Abs(l-h.Latency.Seconds()) > 1e-6 {
			t.Errorf("%s: check latency %v s, Stats().Latency %v", name, l, h.Latency)
		}
	}

	// The primary demoted, none promoted: no host has primary 1.
	th.set("h0", sqlpool.HostStatus{ReadOnly: true}, nil)
	wantSamples(t, gather(t, c), map[string]float64{
		`sqlpool_host_primary{host="h0"}`:             0,
		`sqlpool_host_primary{host="h1"}`:             0,
		`sqlpool_host_primary{host="h2"}`:             0,
		`sqlpool_host_role{host="h0",role="primary"}`: 0,
		`sqlpool_host_role{host="h0",role="replica"}`: 1,
	})
	// h1 promoted.
	th.set("h1", sqlpool.HostStatus{}, nil)
	wantSamples(t, gather(t, c), map[string]float64{
		`sqlpool_host_primary{host="h1"}`:             1,
		`sqlpool_host_role{host="h1",role="primary"}`: 1,
		`sqlpool_host_role{host="h1",role="replica"}`: 0,
	})
	// h0 writable again beside h1: both report primary, writes stay on h1.
	th.set("h0", sqlpool.HostStatus{}, nil)
	wantSamples(t, gather(t, c), map[string]float64{
		`sqlpool_host_primary{host="h1"}`:             1,
		`sqlpool_host_primary{host="h0"}`:             0,
		`sqlpool_host_role{host="h0",role="primary"}`: 1,
		`sqlpool_host_role{host="h1",role="primary"}`: 1,
	})
}

func TestClusterMetricsMarkADrainedSlowHostUnhealthy(t *testing.T) {
	th := newTestHosts(t, 3, sqlpool.ClusterConfig{}, drivertest.Options{}, drivertest.Options{}, drivertest.Options{Latency: 30 * time.Millisecond})
	th.cl.CheckHosts(context.Background())
	got := gather(t, th.cl.Collector())
	wantSamples(t, got, map[string]float64{
		`sqlpool_host_healthy{host="h2"}`:      0,
		`sqlpool_host_serves_reads{host="h2"}`: 0,
		`sqlpool_host_up{host="h2"}`:           1,
		`sqlpool_host_healthy{host="h1"}`:      1,
	})
	if l := got[`sqlpool_host_check_latency_seconds{host="h2"}`]; l < 0.030 {
		t.Errorf("h2's check latency %v s, want at least its 30ms", l)
	}
}

func TestClusterHandlerServesTheCollectorAtMetrics(t *testing.T) {
	th := newTestHosts(t, 2, sqlpool.ClusterConfig{})
	who(t, sqlpool.WithReadOnly(context.Background()), th.db)
	rec := httptest.NewRecorder()
	th.cl.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	for _, want := range []string{`sqlpool_host_routed_total{host="h1",kind="read"} 1`, `sqlpool_host_primary{host="h0"} 1`,
		`sqlpool_max_connections{host="h1"} 4`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %s:\n%s", want, rec.Body)
		}
	}
}
