//go:build sqlpool_noprometheus

package monitor

import (
	"io"
	"net/http"

	"github.com/sqlpool/sqlpool/internal/httpjson"
)

// Built with -tags sqlpool_noprometheus: no Prometheus package is linked,
// NewCollector, NewCollectorWithConfig, CollectorConfig and WritePrometheus
// do not exist, and the handler's /metrics and format=prometheus answer 501.

// newMetricsHandler returns the /metrics endpoint, which answers 501 Not
// Implemented and why.
func newMetricsHandler(func() Report, int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpjson.Error(w, http.StatusNotImplemented, "/metrics: "+errNoPrometheus.Error())
	})
}

// writePrometheus is the handler's Prometheus export: errNoPrometheus.
func writePrometheus(io.Writer, Report) error { return errNoPrometheus }
