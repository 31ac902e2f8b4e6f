//go:build !sqlpool_noprometheus

package sqlpool_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
	"github.com/sqlpool/sqlpool/pool"
)

// The tests that need Prometheus: a build with -tags sqlpool_noprometheus
// runs monitoring_noprometheus_test.go instead.

// getMetrics returns c's /metrics, failing the test unless it answers 200.
func getMetrics(t *testing.T, c *sqlpool.Connector) string {
	t.Helper()
	rec := httptest.NewRecorder()
	c.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics answers %d: %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func TestMetricsServeThePoolsState(t *testing.T) {
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 3})
	ctx := sqlpool.WithTenant(context.Background(), "acme")
	for range 5 {
		queryInt(t, ctx, db, "SELECT ?", 1)
	}
	body := getMetrics(t, c)
	for _, want := range []string{`sqlpool_connections{partition="acme",state="idle"} 1`, `sqlpool_acquires_total{partition="acme",result="success"}`,
		"sqlpool_statement_cache_hits_total", "sqlpool_connections_created_total 1"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestMetricsAnswerAfterHostileTenants(t *testing.T) {
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{})
	queryInt(t, context.Background(), db, "SELECT 1")
	for _, name := range []string{"nul\x00byte", "bad\xffutf8", strings.Repeat("x", 10_000)} {
		_, err := db.ExecContext(sqlpool.WithTenant(context.Background(), name), "SELECT 1")
		if !errors.Is(err, sqlpool.ErrInvalidPartitionName) {
			t.Errorf("tenant %.20q: %v, want ErrInvalidPartitionName", name, err)
		}
	}
	if body := getMetrics(t, c); strings.Contains(body, "xxxxxxxx") || strings.Contains(body, "nul") {
		t.Errorf("/metrics labels a refused tenant:\n%s", body)
	}
}

func TestNewCloseReasonsReachTheMetrics(t *testing.T) {
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 1, MaxUses: 1})
	queryInt(t, context.Background(), db, "SELECT 1")
	if n := c.Stats().Closed[pool.CloseUsage]; n != 1 {
		t.Fatalf("closed by usage %d, want 1", n)
	}
	if body := getMetrics(t, c); !strings.Contains(body, `sqlpool_connections_closed_total{reason="usage"} 1`) {
		t.Errorf("metrics lack the usage close:\n%s", body)
	}
}

func TestCircuitBreakerReachesTheMetrics(t *testing.T) {
	db, c, d := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 2, BreakAfter: 1, BreakFor: time.Hour})
	queryInt(t, context.Background(), db, "SELECT 1")
	if body := getMetrics(t, c); !strings.Contains(body, "sqlpool_circuit_open 0\n") || !strings.Contains(body, "sqlpool_circuit_opens_total 0\n") {
		t.Errorf("/metrics lacks the closed circuit:\n%s", body)
	}
	openCircuit(t, db, d)
	body := getMetrics(t, c)
	for _, want := range []string{"sqlpool_circuit_open 1\n", "sqlpool_circuit_opens_total 1\n",
		fmt.Sprintf("sqlpool_circuit_refused_total %d\n", c.Stats().CircuitRefused)} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if problems, err := testutil.CollectAndLint(c.Collector()); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

func TestCollectorIsLintCleanAndCountsAcquisitions(t *testing.T) {
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{})
	ctx := sqlpool.WithTenant(context.Background(), "acme")
	for range 3 {
		queryInt(t, ctx, db, "SELECT 1")
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c.Collector()); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.CollectAndLint(c.Collector())
	if err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sqlpool_acquires_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["partition"] == "acme" && labels["result"] == "success" && m.GetCounter().GetValue() != 3 {
				t.Errorf("acme successes = %v, want 3", m.GetCounter().GetValue())
			}
		}
	}
}
