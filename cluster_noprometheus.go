//go:build sqlpool_noprometheus

package sqlpool

import (
	"net/http"

	"github.com/sqlpool/sqlpool/internal/httpjson"
)

// metricsHandler answers 501: this binary links no Prometheus package.
func (cl *Cluster) metricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpjson.Error(w, http.StatusNotImplemented, "sqlpool: no Prometheus in this binary, built with -tags sqlpool_noprometheus: "+
			"rebuild without that tag to serve /metrics, or read /api/hosts")
	})
}
