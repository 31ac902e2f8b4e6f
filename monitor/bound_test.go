package monitor_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sqlpool/sqlpool/monitor"
)

// tenantsReport is n partitions t000, t001, ...: partition i made i+1
// acquisition attempts (so the last ones are the most active), has i%3
// connections in use, one idle and i%2 acquisitions waiting; and leaks
// leaks, the i-th held i minutes.
func tenantsReport(n, leaks int) monitor.Report {
	r := monitor.NewRecorder(monitor.RecorderConfig{MaxPartitions: n + 1})
	var rep monitor.Report
	for i := range n {
		name := fmt.Sprintf("t%03d", i)
		p := r.Partition(name)
		for j := range i + 1 {
			res := monitor.ResultSuccess
			if j%4 == 3 {
				res = monitor.ResultTimeout
			}
			p.RecordAcquire(time.Duration(j)*time.Millisecond, res)
			p.RecordRelease(time.Duration(j) * time.Microsecond)
		}
		s := monitor.PartitionState{Name: name, Idle: 1, InUse: i % 3, Waiting: i % 2}
		rep.Pool.Partitions = append(rep.Pool.Partitions, s)
		rep.Pool.Idle += s.Idle
		rep.Pool.InUse += s.InUse
		rep.Pool.Waiting += s.Waiting
	}
	rep.Pool.Size, rep.Pool.MaxSize = rep.Pool.Idle+rep.Pool.InUse, 10*n
	rep.Metrics = r.Snapshot()
	for i := range leaks {
		rep.Leaks = append(rep.Leaks, monitor.Leak{
			Partition: fmt.Sprintf("t%03d", i%max(n, 1)), Kind: monitor.LeakTx, Held: monitor.Duration(time.Duration(i) * time.Minute),
		})
	}
	return rep
}

// gather collects c in a pedantic registry, failing the test on any error,
// and indexes the families by name.
func gather(t *testing.T, c prometheus.Collector) map[string]familySeries {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := map[string]familySeries{}
	for _, mf := range mfs {
		var fs familySeries
		for _, m := range mf.GetMetric() {
			s := series{labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.GetGauge() != nil:
				s.value = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				s.value = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				s.value = float64(m.GetHistogram().GetSampleCount())
			}
			fs = append(fs, s)
		}
		out[mf.GetName()] = fs
	}
	return out
}

// series is one metric: its labels, and its value (a histogram's count).
type series struct {
	labels map[string]string
	value  float64
}

type familySeries []series

// sum adds up the values of the series whose labels include the pairs
// given (name, value, name, value...).
func (fs familySeries) sum(match ...string) float64 {
	var total float64
next:
	for _, s := range fs {
		for i := 0; i+1 < len(match); i += 2 {
			if s.labels[match[i]] != match[i+1] {
				continue next
			}
		}
		total += s.value
	}
	return total
}

// partitions returns the distinct values of the partition label, sorted.
func (fs familySeries) partitions() []string {
	var names []string
	for _, s := range fs {
		if !slices.Contains(names, s.labels["partition"]) {
			names = append(names, s.labels["partition"])
		}
	}
	slices.Sort(names)
	return names
}

func TestCollectorLabelsTheMostActivePartitionsAndAddsUpTheRestAsOther(t *testing.T) {
	rep := tenantsReport(200, 0)
	c := monitor.NewCollectorWithConfig(monitor.CollectorConfig{
		Report: func() monitor.Report { return rep }, TopPartitions: 10,
	})
	got := gather(t, c)
	want := []string{monitor.OverflowPartition}
	for i := 190; i < 200; i++ {
		want = append(want, fmt.Sprintf("t%03d", i))
	}
	slices.Sort(want)
	for _, name := range []string{
		"sqlpool_connections", "sqlpool_wait_queue_length", "sqlpool_acquires_total",
		"sqlpool_acquire_wait_seconds", "sqlpool_hold_seconds",
	} {
		if p := got[name].partitions(); !slices.Equal(p, want) {
			t.Errorf("%s: partition label values %q, want the 10 most active and %q", name, p, monitor.OverflowPartition)
		}
	}

	// The sums over partitions are the totals.
	tot := rep.Metrics.Total
	for _, c := range []struct {
		what      string
		got, want float64
	}{
		{"idle connections", got["sqlpool_connections"].sum("state", "idle"), float64(rep.Pool.Idle)},
		{"connections in use", got["sqlpool_connections"].sum("state", "in_use"), float64(rep.Pool.InUse)},
		{"waiting", got["sqlpool_wait_queue_length"].sum(), float64(rep.Pool.Waiting)},
		{"attempts", got["sqlpool_acquires_total"].sum(), float64(tot.Attempts)},
		{"timeouts", got["sqlpool_acquires_total"].sum("result", "timeout"), float64(tot.Timeouts)},
		{"waits", got["sqlpool_acquire_wait_seconds"].sum(), float64(tot.Wait.Count)},
		{"holds", got["sqlpool_hold_seconds"].sum(), float64(tot.Hold.Count)},
	} {
		if c.got != c.want {
			t.Errorf("%s: the partitions add up to %v, the total is %v", c.what, c.got, c.want)
		}
	}
	other := got["sqlpool_acquires_total"].sum("partition", monitor.OverflowPartition)
	if want := float64((190 * 191) / 2); other != want {
		t.Errorf("%q made %v attempts, want %v (those of t000...t189)", monitor.OverflowPartition, other, want)
	}
}

func TestCollectorLabelsDefaultTopPartitionsApartByDefault(t *testing.T) {
	rep := tenantsReport(200, 0)
	got := gather(t, monitor.NewCollector(func() monitor.Report { return rep }))
	for _, name := range []string{"sqlpool_connections", "sqlpool_acquires_total", "sqlpool_hold_seconds"} {
		if n := len(got[name].partitions()); n != monitor.DefaultTopPartitions+1 {
			t.Errorf("%s: %d partition label values, want %d and %q", name, n, monitor.DefaultTopPartitions, monitor.OverflowPartition)
		}
	}
}

func TestAPartitionNamedLikeTheOverflowIsAddedUpWithIt(t *testing.T) {
	rep := tenantsReport(5, 0)
	rep.Pool.Partitions = append(rep.Pool.Partitions, monitor.PartitionState{Name: monitor.OverflowPartition, InUse: 7})
	rep.Pool.InUse += 7
	c := monitor.NewCollectorWithConfig(monitor.CollectorConfig{Report: func() monitor.Report { return rep }, TopPartitions: 2})
	got := gather(t, c) // no duplicate series
	// By activity (attempts, in use, waiting): t004 6, t002 5, t003 5 (after
	// t002 by name), t001 3, t000 1.
	if p := got["sqlpool_connections"].partitions(); strings.Join(p, ",") != "other,t002,t004" {
		t.Errorf("partitions %q, want other,t002,t004", p)
	}
	if n := got["sqlpool_connections"].sum("partition", monitor.OverflowPartition, "state", "in_use"); n != 7+0+1+0 {
		t.Errorf("%q has %v connections in use, want 8: its own 7 and those of t000, t001, t003", monitor.OverflowPartition, n)
	}
}

// getJSON GETs path from h and decodes its JSON body into v.
func getJSON(t *testing.T, h http.Handler, path string, v any) {
	t.Helper()
	w := serve(t, h, "GET", path, "")
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, w.Code, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, w.Body)
	}
}

func TestTheAPIListsAreBoundedWithACountOfTheRest(t *testing.T) {
	rep := tenantsReport(100, 10)
	h := monitor.NewHandler(monitor.HandlerConfig{
		Report: func() monitor.Report { return rep }, TopPartitions: 5, MaxLeaks: 3,
	})
	const omitted = 95
	names := func(list []string) string { return strings.Join(list, ",") }
	const want = "other,t095,t096,t097,t098,t099"

	var parts []struct {
		Name    string          `json:"name"`
		InUse   int             `json:"in_use"`
		Metrics monitor.Metrics `json:"metrics"`
		Omitted int             `json:"omitted_partitions"`
	}
	getJSON(t, h, "/api/partitions", &parts)
	var list []string
	inUse, attempts := 0, int64(0)
	for _, p := range parts {
		list = append(list, p.Name)
		inUse += p.InUse
		attempts += p.Metrics.Attempts
		if p.Name == monitor.OverflowPartition && p.Omitted != omitted {
			t.Errorf("/api/partitions: the %q row counts %d partitions, want %d", p.Name, p.Omitted, omitted)
		}
	}
	if names(list) != want || inUse != rep.Pool.InUse || attempts != rep.Metrics.Total.Attempts {
		t.Errorf("/api/partitions: %s, %d in use, %d attempts; want %s, %d, %d",
			names(list), inUse, attempts, want, rep.Pool.InUse, rep.Metrics.Total.Attempts)
	}

	var stats struct{ monitor.Report }
	getJSON(t, h, "/api/stats", &stats)
	list = nil
	for _, m := range stats.Metrics.Partitions {
		list = append(list, m.Partition)
	}
	if names(list) != want || len(stats.Pool.Partitions) != 6 || stats.OmittedPartitions != omitted {
		t.Errorf("/api/stats: metrics of %s, %d pool partitions, %d omitted", names(list), len(stats.Pool.Partitions), stats.OmittedPartitions)
	}
	if len(stats.Leaks) != 3 || stats.OmittedLeaks != 7 || stats.Leaks[0].Held != monitor.Duration(9*time.Minute) {
		t.Errorf("/api/stats: leaks %+v, %d omitted; want the 3 longest held and 7 omitted", stats.Leaks, stats.OmittedLeaks)
	}

	var queue struct {
		Waiting    int `json:"waiting"`
		Partitions []struct {
			Partition string `json:"partition"`
			Waiting   int    `json:"waiting"`
		} `json:"partitions"`
		Omitted int `json:"omitted_partitions"`
	}
	getJSON(t, h, "/api/queue", &queue)
	waiting := 0
	for _, p := range queue.Partitions {
		waiting += p.Waiting
	}
	if len(queue.Partitions) != 6 || queue.Omitted != omitted || waiting != queue.Waiting {
		t.Errorf("/api/queue: %d partitions waiting %d of %d, %d omitted", len(queue.Partitions), waiting, queue.Waiting, queue.Omitted)
	}

	var leaks struct {
		Leaks   []monitor.Leak `json:"leaks"`
		Omitted int            `json:"omitted"`
	}
	getJSON(t, h, "/api/leaks", &leaks)
	if len(leaks.Leaks) != 3 || leaks.Omitted != 7 {
		t.Errorf("/api/leaks: %d leaks, %d omitted; want 3 and 7", len(leaks.Leaks), leaks.Omitted)
	}

	var dash struct {
		Partitions        []struct{ Name string } `json:"partitions"`
		Leaks             []monitor.Leak          `json:"leaks"`
		OmittedPartitions int                     `json:"omitted_partitions"`
		OmittedLeaks      int                     `json:"omitted_leaks"`
	}
	getJSON(t, h, "/api/dashboard", &dash)
	if len(dash.Partitions) != 6 || len(dash.Leaks) != 3 || dash.OmittedPartitions != omitted || dash.OmittedLeaks != 7 {
		t.Errorf("/api/dashboard: %d partitions, %d leaks, %d and %d omitted", len(dash.Partitions), len(dash.Leaks), dash.OmittedPartitions, dash.OmittedLeaks)
	}

	w := serve(t, h, "GET", "/api/export?format=csv", "")
	rows := csvRows(t, w.Body.Bytes())
	csvParts := map[string]bool{}
	for k := range rows {
		csvParts[k[1]] = true
	}
	if len(csvParts) != 7 || rows[[3]string{"omitted_partitions", "", ""}] != "95" { // six and the whole pool
		t.Errorf("CSV export: %d partitions, omitted %q", len(csvParts), rows[[3]string{"omitted_partitions", "", ""}])
	}

	w = serve(t, h, "GET", "/metrics", "")
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

// hostileNames are partition names an attacker might route requests to.
var hostileNames = []string{
	"bad\xff\xfe", "bad\xff\xff", // invalid UTF-8, equal once made safe
	"nul\x00byte", "\x00=1+1", "esc\x1b[31mred", "line\nbreak", "bidi\u202eexe.txt", "zero\u200bwidth",
	xssName, `"quoted" \ back`, strings.Repeat("long", 1<<18), strings.Repeat("long", 1<<18) + "er",
	strings.Repeat("é", 100), "", monitor.OverflowPartition, "=HYPERLINK(\"http://evil\")",
}

// hostileReport has a partition, metrics and a leak for each hostile name.
func hostileReport() monitor.Report {
	r := monitor.NewRecorder(monitor.RecorderConfig{})
	var rep monitor.Report
	for i, name := range hostileNames {
		for range i + 1 {
			r.RecordAcquire(name, time.Millisecond, monitor.ResultSuccess)
		}
		rep.Pool.Partitions = append(rep.Pool.Partitions, monitor.PartitionState{Name: name, InUse: 1})
		rep.Pool.InUse++
		rep.Leaks = append(rep.Leaks, monitor.Leak{Partition: name, Kind: monitor.LeakConn})
	}
	rep.Metrics = r.Snapshot()
	return rep
}

// checkSafeName fails unless name is what the monitor may show.
func checkSafeName(t *testing.T, where, name string) {
	t.Helper()
	ok := utf8.ValidString(name) && len(name) <= monitor.MaxNameLength && name != ""
	for _, r := range name {
		ok = ok && (unicode.IsGraphic(r))
	}
	if !ok {
		t.Errorf("%s: unsafe partition name %q", where, name)
	}
}

func TestHostilePartitionNamesNeitherFailNorInject(t *testing.T) {
	rep := hostileReport()
	report := func() monitor.Report { return rep }

	t.Run("collector", func(t *testing.T) {
		got := gather(t, monitor.NewCollector(report))
		for _, name := range got["sqlpool_acquires_total"].partitions() {
			checkSafeName(t, "label", name)
		}
		if n := got["sqlpool_acquires_total"].sum(); n != float64(rep.Metrics.Total.Attempts) {
			t.Errorf("acquires add up to %v, want %d", n, rep.Metrics.Total.Attempts)
		}
		if n := got["sqlpool_connections"].sum(); n != float64(rep.Pool.InUse) {
			t.Errorf("connections add up to %v, want %d", n, rep.Pool.InUse)
		}
		if long := got["sqlpool_connections"].partitions(); !slices.ContainsFunc(long, func(s string) bool {
			return strings.HasPrefix(s, "longlong") && strings.Contains(s, "…")
		}) {
			t.Errorf("no cut long name among %q", long)
		}
		problems, err := testutil.CollectAndLint(monitor.NewCollector(report))
		if err != nil || len(problems) > 0 {
			t.Errorf("lint: %v %v", err, problems)
		}
	})

	t.Run("two long names stay apart", func(t *testing.T) {
		got := gather(t, monitor.NewCollector(report))
		n := 0
		for _, name := range got["sqlpool_connections"].partitions() {
			if strings.HasPrefix(name, "longlong") {
				n++
			}
		}
		if n != 2 {
			t.Errorf("%d label values for the two long names, want 2", n)
		}
	})

	h := monitor.NewHandler(monitor.HandlerConfig{Report: report})
	t.Run("metrics", func(t *testing.T) {
		w := serve(t, h, "GET", "/metrics", "")
		if w.Code != http.StatusOK {
			t.Fatalf("/metrics: %d %s", w.Code, w.Body)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		if _, err := parser.TextToMetricFamilies(w.Body); err != nil {
			t.Errorf("/metrics does not parse: %v", err)
		}
	})

	t.Run("exports", func(t *testing.T) {
		for _, format := range []string{"json", "csv", "prometheus"} {
			w := serve(t, h, "GET", "/api/export?format="+format, "")
			if w.Code != http.StatusOK {
				t.Errorf("%s export: %d %s", format, w.Code, w.Body)
			}
		}
		var stats struct{ monitor.Report }
		getJSON(t, h, "/api/export?format=json", &stats)
		for _, p := range stats.Pool.Partitions {
			checkSafeName(t, "JSON export", p.Name)
		}
		for _, l := range stats.Leaks {
			checkSafeName(t, "JSON export leak", l.Partition)
		}
		records, err := csv.NewReader(bytes.NewReader(serve(t, h, "GET", "/api/export?format=csv", "").Body.Bytes())).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range records[1:] {
			if p := rec[1]; p != "" && strings.ContainsAny(p[:1], "=+-@\t\r\n\x00") {
				t.Errorf("CSV cell %q starts a formula", p)
			}
		}
	})

	t.Run("api", func(t *testing.T) {
		for _, path := range []string{"/api/stats", "/api/partitions", "/api/queue", "/api/leaks", "/api/dashboard"} {
			w := serve(t, h, "GET", path, "")
			body := w.Body.String()
			if w.Code != http.StatusOK || !json.Valid(w.Body.Bytes()) || strings.Contains(body, "<script") {
				t.Errorf("%s: %d, valid JSON %v, raw <script %v", path, w.Code, json.Valid(w.Body.Bytes()), strings.Contains(body, "<script"))
			}
		}
		var dash struct {
			Partitions []struct{ Name string } `json:"partitions"`
			Leaks      []monitor.Leak          `json:"leaks"`
		}
		getJSON(t, h, "/api/dashboard", &dash)
		for _, p := range dash.Partitions {
			checkSafeName(t, "dashboard", p.Name)
		}
		if !slices.ContainsFunc(dash.Partitions, func(p struct{ Name string }) bool { return p.Name == xssName }) {
			t.Errorf("the script-like name is not shown as text")
		}
	})
}

func TestTheRecorderKeepsHostileNamesShortAndValid(t *testing.T) {
	r := monitor.NewRecorder(monitor.RecorderConfig{})
	long := strings.Repeat("x", 1<<20)
	p := r.Partition(long)
	checkSafeName(t, "recorder", p.Name())
	if r.Partition(long) != p || r.Partition(long+"y") == p {
		t.Error("long names: the same name must find the same partition, another name another")
	}
	for _, name := range hostileNames[:8] {
		checkSafeName(t, "recorder", r.Partition(name).Name())
	}
}

// BenchmarkScrapeOfManyPartitions scrapes the collector of a pool with many
// partitions: the cost of bounding them to DefaultTopPartitions.
func BenchmarkScrapeOfManyPartitions(b *testing.B) {
	base := tenantsReport(1, 0).Metrics.Partitions[0]
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("partitions=%d", n), func(b *testing.B) {
			var rep monitor.Report
			for i := range n {
				name := fmt.Sprintf("tenant-%05d", i)
				m := base
				m.Partition, m.Attempts = name, int64(i)
				rep.Metrics.Partitions = append(rep.Metrics.Partitions, m)
				rep.Pool.Partitions = append(rep.Pool.Partitions, monitor.PartitionState{Name: name, InUse: i % 3})
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(monitor.NewCollector(func() monitor.Report { return rep }))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := reg.Gather(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
