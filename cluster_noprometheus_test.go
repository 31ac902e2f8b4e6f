//go:build sqlpool_noprometheus

package sqlpool_test

import (
	"strings"
	"testing"

	"github.com/sqlpool/sqlpool"
)

func TestClusterHandlerMetricsAnswer501WithoutPrometheus(t *testing.T) {
	th := newTestHosts(t, 2, sqlpool.ClusterConfig{})
	rec := serve(th.cl.Handler(), "GET", "/metrics", "")
	if rec.Code != 501 || !strings.Contains(rec.Body.String(), "-tags sqlpool_noprometheus") {
		t.Errorf("/metrics without Prometheus: %d %s, want 501 naming the tag", rec.Code, rec.Body)
	}
}
