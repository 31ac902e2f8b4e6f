//go:build !sqlpool_noprometheus

package monitor_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sqlpool/sqlpool/monitor"
)

// The handler's Prometheus paths, in the default build; noprometheus_test.go
// has their answers in a build with -tags sqlpool_noprometheus.

// checkPrometheus fails unless report's collector passes a pedantic
// registry with safe label values, and h's /metrics and Prometheus export
// answer 200 with text that parses.
func checkPrometheus(t *testing.T, h http.Handler, report func() monitor.Report) {
	t.Helper()
	got := gather(t, monitor.NewCollector(report))
	for _, p := range got["sqlpool_connections"].partitions() {
		checkSafeName(t, "label", p)
	}
	for _, path := range []string{"/metrics", "/api/export?format=prometheus"} {
		w := serve(t, h, "GET", path, "")
		if w.Code != http.StatusOK {
			t.Errorf("%s: %d %s", path, w.Code, w.Body)
			continue
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		if _, err := parser.TextToMetricFamilies(w.Body); err != nil {
			t.Errorf("%s does not parse: %v", path, err)
		}
	}
}

func TestPrometheusPathsAnswerWithTheirContentTypes(t *testing.T) {
	h := monitor.NewHandler(monitor.HandlerConfig{Report: sampleReport})
	for _, p := range []readPath{
		{"/metrics", "text/plain; version=0.0.4; charset=utf-8; escaping=underscores", "sqlpool_acquires_total{"},
		{"/api/export?format=prometheus", "text/plain; version=0.0.4; charset=utf-8", "# TYPE sqlpool_connections gauge"},
	} {
		t.Run(p.path, func(t *testing.T) { p.check(t, h) })
	}
}

func TestHostilePartitionNamesMakeValidPrometheusText(t *testing.T) {
	rep := hostileReport()
	report := func() monitor.Report { return rep }
	checkPrometheus(t, monitor.NewHandler(monitor.HandlerConfig{Report: report}), report)
}

func TestMetricsLabelsOnlyTheTopPartitionsAndTheOverflow(t *testing.T) {
	rep := tenantsReport(100, 10)
	h := monitor.NewHandler(monitor.HandlerConfig{
		Report: func() monitor.Report { return rep }, TopPartitions: 5, MaxLeaks: 3,
	})
	w := serve(t, h, "GET", "/metrics", "")
	labels := map[string]bool{}
	for line := range strings.Lines(w.Body.String()) {
		if _, rest, ok := strings.Cut(line, `partition="`); ok {
			name, _, _ := strings.Cut(rest, `"`)
			labels[name] = true
		}
	}
	if len(labels) != 6 {
		t.Errorf("/metrics: %d partition label values, want 6", len(labels))
	}
}

func TestPrometheusExportParses(t *testing.T) {
	var buf bytes.Buffer
	if err := monitor.WritePrometheus(&buf, sampleReport()); err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		"sqlpool_connections", "sqlpool_acquires_total", "sqlpool_acquire_wait_seconds",
		"sqlpool_connections_created_total", "sqlpool_connections_closed_total",
		"sqlpool_statement_cache_hits_total", "sqlpool_statement_cache_misses_total",
		"sqlpool_wait_queue_length", "sqlpool_leaks_detected_total",
		"sqlpool_circuit_open", "sqlpool_circuit_opens_total", "sqlpool_circuit_refused_total",
	} {
		if mfs[name] == nil {
			t.Errorf("no %s in the Prometheus export", name)
		}
	}
}
