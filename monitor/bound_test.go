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

	h := monitor.NewHandler(monitor.HandlerConfig{Report: report})
	t.Run("exports", func(t *testing.T) {
		for _, format := range []string{"json", "csv"} { // prometheus: TestHostilePartitionNamesMakeValidPrometheusText
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
