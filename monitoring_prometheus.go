//go:build !sqlpool_noprometheus

package sqlpool

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sqlpool/sqlpool/monitor"
)

// Collector returns a Prometheus collector of the pool's metrics (names in
// the README). It registers nothing: register it yourself, once.
//
// It does not exist in a binary built with -tags sqlpool_noprometheus,
// which links no Prometheus package.
func (c *Connector) Collector() prometheus.Collector {
	return monitor.NewCollector(c.report)
}
