//go:build !sqlpool_noprometheus

package monitor

import (
	"io"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

// This file and collector.go are the only ones that import Prometheus; a
// build with -tags sqlpool_noprometheus replaces them with noprometheus.go.

// newMetricsHandler returns the /metrics endpoint: report's metrics, with
// top partitions labeled apart, in a registry of their own.
func newMetricsHandler(report func() Report, top int) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(report, top))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// writePrometheus is the handler's Prometheus export.
func writePrometheus(w io.Writer, r Report) error { return WritePrometheus(w, r) }

// WritePrometheus writes r's metrics (those of NewCollector) in the
// Prometheus text format, with every partition labeled apart: bound the
// report first where it can hold too many (the handler does).
func WritePrometheus(w io.Writer, r Report) error {
	reg := prometheus.NewRegistry()
	if err := reg.Register(newCollector(func() Report { return r }, unbounded)); err != nil {
		return err
	}
	// Gather returns what it could gather beside an error (an invalid
	// label value fails only its metric): write that, then report it.
	mfs, gatherErr := reg.Gather()
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return gatherErr
}
