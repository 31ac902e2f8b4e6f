//go:build sqlpool_noprometheus

package monitor_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sqlpool/sqlpool/monitor"
)

// checkPrometheus fails unless h's /metrics and Prometheus export answer
// 501 with a JSON error that names the build tag, as a binary built with
// -tags sqlpool_noprometheus must; prometheus_test.go has the default
// build's.
func checkPrometheus(t *testing.T, h http.Handler, _ func() monitor.Report) {
	t.Helper()
	for _, path := range []string{"/metrics", "/api/export?format=prometheus"} {
		w := serve(t, h, "GET", path, "")
		if w.Code != http.StatusNotImplemented {
			t.Errorf("%s: %d, want 501: %s", path, w.Code, w.Body)
			continue
		}
		if msg := errorOf(t, w); !strings.Contains(msg, "-tags sqlpool_noprometheus") {
			t.Errorf("%s: error %q does not say the binary was built with -tags sqlpool_noprometheus", path, msg)
		}
	}
}

func TestWithoutPrometheusItsPathsAnswer501AndTheOthersServe(t *testing.T) {
	h := monitor.NewHandler(monitor.HandlerConfig{Report: sampleReport})
	checkPrometheus(t, h, sampleReport)
	for _, p := range []readPath{
		{"/api/export?format=json", "application/json", `"pool"`},
		{"/api/export?format=csv", "text/csv; charset=utf-8", "metric,partition,key,value"},
	} {
		t.Run(p.path, func(t *testing.T) { p.check(t, h) })
	}
}
