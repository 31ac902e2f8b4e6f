//go:build !sqlpool_noprometheus

package sqlpool

import (
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sqlpool/sqlpool/internal/httpjson"
)

// Collector returns a Prometheus collector of the whole Cluster: register
// it instead of the hosts' own Connector.Collector (registering both
// exports each host's pool twice). It registers nothing itself.
//
// It exports every host's pool metrics (Connector.Collector's, names in the
// README) with an extra label host, the host's Name, and per host:
//
//	sqlpool_host_up{host}                     gauge: 1 if its last check answered
//	sqlpool_host_primary{host}                gauge: 1 for the host writes go to (the Cluster's primary); all 0 while none is known
//	sqlpool_host_role{host,role}              gauge: 1 for the role its last successful check reported (primary, replica, unknown), 0 for the other two
//	sqlpool_host_healthy{host}                gauge: 1 unless drained (ClusterConfig.HealthFactor, MaxErrorRate)
//	sqlpool_host_serves_reads{host}           gauge: 1 if a WithReadOnly read may go to it now (an up, healthy replica within MaxReplicaLag, circuit closed)
//	sqlpool_host_replica_lag_seconds{host}    gauge: replication lag as last checked (0 on a primary or when unknown)
//	sqlpool_host_check_latency_seconds{host}  gauge: EWMA of its checks' round trip
//	sqlpool_host_error_rate{host}             gauge: EWMA of the share of its operations and checks that failed
//	sqlpool_host_circuit_open{host}           gauge: 1 while its pool's circuit breaker is open
//	sqlpool_host_routed_total{host,kind}      counter: borrowings routed to it, kind read or write
//	sqlpool_host_fallback_reads_total{host}   counter: WithReadOnly reads it served, as the primary, for want of a replica
//
// sqlpool_host_role and sqlpool_host_primary differ when a host reports
// itself writable beside the current primary (both have role="primary",
// one has primary 1) and while no host is known writable.
//
// The host label takes one value per host, fixed when NewCluster made the
// Cluster, so the series are bounded by the number of hosts (times 3 for
// role, 2 for kind, besides each pool's own bounds). A name that is not
// valid UTF-8 is labeled with its invalid bytes replaced by U+FFFD.
//
// It does not exist in a binary built with -tags sqlpool_noprometheus,
// which links no Prometheus package.
func (cl *Cluster) Collector() prometheus.Collector {
	host := []string{"host"}
	cc := &clusterCollector{
		cl: cl,
		up: prometheus.NewDesc("sqlpool_host_up",
			"1 if the host's last check answered, else 0.", host, nil),
		primary: prometheus.NewDesc("sqlpool_host_primary",
			"1 for the host the cluster sends writes to (its primary), else 0.", host, nil),
		role: prometheus.NewDesc("sqlpool_host_role",
			"1 for the role the host's last successful check reported (primary, replica, unknown), else 0.",
			[]string{"host", "role"}, nil),
		healthy: prometheus.NewDesc("sqlpool_host_healthy",
			"1 unless the host is drained for its check latency or error rate, else 0.", host, nil),
		servesReads: prometheus.NewDesc("sqlpool_host_serves_reads",
			"1 if a read-only read may go to the host now: an up, healthy replica within the lag bound whose circuit is closed.", host, nil),
		lag: prometheus.NewDesc("sqlpool_host_replica_lag_seconds",
			"The host's replication lag as last checked; 0 on a primary or when unknown.", host, nil),
		latency: prometheus.NewDesc("sqlpool_host_check_latency_seconds",
			"EWMA of the round trip of the host's checks.", host, nil),
		errorRate: prometheus.NewDesc("sqlpool_host_error_rate",
			"EWMA of the share of the host's operations and checks that failed.", host, nil),
		circuit: prometheus.NewDesc("sqlpool_host_circuit_open",
			"1 while the host's circuit breaker is open, else 0.", host, nil),
		routed: prometheus.NewDesc("sqlpool_host_routed_total",
			"Borrowings routed to the host, by kind (read or write).", []string{"host", "kind"}, nil),
		fallbacks: prometheus.NewDesc("sqlpool_host_fallback_reads_total",
			"Read-only reads the host served as the primary because no replica could.", host, nil),
	}
	for _, hs := range cl.hosts {
		cc.pools = append(cc.pools, prometheus.WrapCollectorWith(prometheus.Labels{"host": hostLabel(hs.name)}, hs.c.Collector()))
	}
	return cc
}

// hostLabel is a host's name as a label value.
func hostLabel(name string) string { return strings.ToValidUTF8(name, "\uFFFD") }

// clusterCollector is the Collector of a Cluster. Its Descs are built once.
type clusterCollector struct {
	cl    *Cluster
	pools []prometheus.Collector // each host's Connector.Collector, labeled host

	up, primary, role, healthy, servesReads *prometheus.Desc
	lag, latency, errorRate, circuit        *prometheus.Desc
	routed, fallbacks                       *prometheus.Desc
}

// Describe sends every Desc, the hosts' pools' too.
func (cc *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, p := range cc.pools {
		p.Describe(ch)
	}
	for _, d := range []*prometheus.Desc{
		cc.up, cc.primary, cc.role, cc.healthy, cc.servesReads,
		cc.lag, cc.latency, cc.errorRate, cc.circuit, cc.routed, cc.fallbacks,
	} {
		ch <- d
	}
}

// Collect sends each host's pool metrics, then one reading of the hosts.
func (cc *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range cc.pools {
		p.Collect(ch)
	}
	bit := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	for _, h := range cc.cl.view().Hosts {
		name := hostLabel(h.Name)
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{name}, labels...)...)
		}
		counter := func(d *prometheus.Desc, v int64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{name}, labels...)...)
		}
		gauge(cc.up, bit(h.Up))
		gauge(cc.primary, bit(h.Primary))
		for _, r := range []HostRole{RolePrimary, RoleReplica, RoleUnknown} {
			gauge(cc.role, bit(h.Role == r.String()), r.String())
		}
		gauge(cc.healthy, bit(h.Healthy))
		gauge(cc.servesReads, bit(h.ServesReads))
		gauge(cc.lag, h.Lag)
		gauge(cc.latency, h.Latency)
		gauge(cc.errorRate, h.ErrorRate)
		gauge(cc.circuit, bit(h.CircuitOpen))
		counter(cc.routed, h.Reads, "read")
		counter(cc.routed, h.Writes, "write")
		counter(cc.fallbacks, h.FallbackReads)
	}
}

// metricsHandler serves Collector as Prometheus text, for Handler's
// /metrics.
func (cl *Cluster) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	if err := reg.Register(cl.Collector()); err != nil {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			httpjson.Error(w, http.StatusInternalServerError, "the cluster's metrics cannot be served: "+err.Error())
		})
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
