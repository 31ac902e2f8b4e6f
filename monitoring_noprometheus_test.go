//go:build sqlpool_noprometheus

package sqlpool_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
)

// Built with -tags sqlpool_noprometheus: the Prometheus paths of Handler
// answer 501 and say why; monitoring_prometheus_test.go has the default
// build's tests.

func TestWithoutPrometheusTheHandlerAnswers501NamingTheTag(t *testing.T) {
	_, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{})
	h := c.Handler()
	for _, path := range []string{"/metrics", "/api/export?format=prometheus"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 501 || !strings.Contains(rec.Body.String(), "-tags sqlpool_noprometheus") {
			t.Errorf("%s: %d %s, want 501 naming -tags sqlpool_noprometheus", path, rec.Code, rec.Body)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/export?format=csv", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "connections_created_total") || !strings.Contains(rec.Body.String(), "circuit_refused_total") {
		t.Errorf("CSV export without Prometheus: %d %.200s", rec.Code, rec.Body)
	}
}
