package monitor

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// stats is the document of /api/stats and of the JSON export.
type stats struct {
	Report
	Efficiency Efficiency `json:"efficiency"`
}

// WriteJSON writes r, with its Efficiency, as one JSON document (the body
// of /api/stats). Partition names are made safe as the collector's labels
// are (see NewCollector); every partition is written: bound the report
// first where it can hold too many (the handler does).
func WriteJSON(w io.Writer, r Report) error {
	r = boundReport(r, unbounded, unbounded)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(stats{Report: r, Efficiency: r.Efficiency()})
}

// WriteCSV writes r as CSV: a header row (metric, partition, key, value),
// then one row per
// metric and partition. An empty partition is the whole pool; key holds the
// extra dimension of the few metrics that have one (the result of
// acquires_total, the reason of connections_closed_total, the statistic of
// a latency: mean, p50, p95, p99, max, the hour of acquisitions_by_hour).
// circuit_open is 1 while the circuit breaker is open, else 0.
// Durations are in seconds. Partition names are made safe as the
// collector's labels are (see NewCollector), and every partition is
// written: bound the report first where it can hold too many (the handler
// does). A partition name or key that a spreadsheet would take for a formula
// is prefixed with a single quote (see csvSafe).
func WriteCSV(w io.Writer, r Report) error {
	r = boundReport(r, unbounded, unbounded)
	cw := csv.NewWriter(w)
	row := func(metric, partition, key, value string) {
		cw.Write([]string{metric, csvSafe(partition), csvSafe(key), value}) // errors are sticky: checked by Error
	}
	num := func(metric, partition, key string, v int64) {
		row(metric, partition, key, strconv.FormatInt(v, 10))
	}
	float := func(metric, partition, key string, v float64) {
		row(metric, partition, key, strconv.FormatFloat(v, 'g', -1, 64))
	}

	row("metric", "partition", "key", "value")
	p := r.Pool
	for _, m := range []struct {
		name string
		v    int
	}{{"min_size", p.MinSize}, {"max_size", p.MaxSize}, {"size", p.Size}, {"idle", p.Idle},
		{"in_use", p.InUse}, {"dialing", p.Dialing}, {"waiting", p.Waiting}} {
		num(m.name, "", "", int64(m.v))
	}
	num("connections_created_total", "", "", p.Created)
	num("connect_errors_total", "", "", p.ConnectErrors)
	num("circuit_open", "", "", int64(p.circuitOpen()))
	num("circuit_opens_total", "", "", p.CircuitOpens)
	num("circuit_refused_total", "", "", p.CircuitRefused)
	reasons := make([]string, 0, len(p.Closed))
	for reason := range p.Closed {
		reasons = append(reasons, reason)
	}
	slices.Sort(reasons)
	for _, reason := range reasons {
		num("connections_closed_total", "", reason, p.Closed[reason])
	}
	e := r.Efficiency()
	float("utilization", "", "", e.Utilization)
	float("reuse_rate", "", "", e.ReuseRate)
	num("leaked_connections", "", "", int64(len(r.Leaks)+r.OmittedLeaks))
	num("omitted_partitions", "", "", int64(r.OmittedPartitions))
	for _, ps := range p.Partitions {
		num("idle", ps.Name, "", int64(ps.Idle))
		num("in_use", ps.Name, "", int64(ps.InUse))
		num("waiting", ps.Name, "", int64(ps.Waiting))
	}

	for _, m := range append([]Metrics{r.Metrics.Total}, r.Metrics.Partitions...) {
		part := m.Partition
		for res := range numResults {
			num("acquires_total", part, res.String(), m.Count(res))
		}
		float("success_rate", part, "", m.SuccessRate)
		num("releases_total", part, "", m.Releases)
		num("borrowed", part, "", m.Borrowed)
		float("acquires_per_second", part, "", m.AcquiresPerSecond)
		float("releases_per_second", part, "", m.ReleasesPerSecond)
		for _, l := range []struct {
			name string
			l    Latency
		}{{"acquire_wait_seconds", m.Wait}, {"hold_seconds", m.Hold}} {
			num(l.name, part, "count", l.l.Count)
			float(l.name, part, "mean", l.l.Mean.Seconds())
			float(l.name, part, "p50", l.l.P50.Seconds())
			float(l.name, part, "p95", l.l.P95.Seconds())
			float(l.name, part, "p99", l.l.P99.Seconds())
			float(l.name, part, "max", l.l.Max.Seconds())
		}
		for h, n := range m.AcquisitionsByHour {
			num("acquisitions_by_hour", part, fmt.Sprintf("%02d", h), n)
		}
		num("peak_hour", part, "", int64(m.PeakHour))
		num("statement_cache_hits_total", part, "", m.StatementCacheHits)
		num("statement_cache_misses_total", part, "", m.StatementCacheMisses)
		float("statement_cache_hit_rate", part, "", m.StatementCacheHitRate)
		num("leaks_detected_total", part, "", m.LeaksDetected)
	}
	cw.Flush()
	return cw.Error()
}

// csvSafe defuses a cell that a spreadsheet would evaluate as a formula,
// after OWASP's CSV injection guidance and ASVS 1.2.10: a cell whose first
// character is =, +, -, @, a tab, a carriage return, a line feed or NUL, or
// their full-width forms (＝＋－＠), or any of those after leading spaces and
// control characters, is prefixed with a single quote.
func csvSafe(s string) string {
	for i, r := range s {
		switch {
		case strings.ContainsRune("=+-@\t\r\n\x00＝＋－＠", r):
			return "'" + s
		case i == 0 && (unicode.IsControl(r) || r == utf8.RuneError):
			return "'" + s // whatever follows: a reader may drop it
		case unicode.IsSpace(r):
			continue
		}
		return s
	}
	return s
}
