package monitor_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sqlpool/sqlpool/monitor"
)

// csvRows parses CSV and indexes its rows by metric, partition and key.
func csvRows(t *testing.T, data []byte) map[[3]string]string {
	t.Helper()
	records, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatalf("CSV does not parse: %v\n%s", err, data)
	}
	if len(records) < 2 || strings.Join(records[0], ",") != "metric,partition,key,value" {
		t.Fatalf("CSV header %v", records[0])
	}
	rows := make(map[[3]string]string)
	for _, r := range records[1:] {
		k := [3]string{r[0], r[1], r[2]}
		if _, dup := rows[k]; dup {
			t.Errorf("duplicate CSV row %v", k)
		}
		rows[k] = r[3]
	}
	return rows
}

func TestCSVHasOneRowPerMetricAndPartition(t *testing.T) {
	rep := sampleReport()
	var buf bytes.Buffer
	if err := monitor.WriteCSV(&buf, rep); err != nil {
		t.Fatal(err)
	}
	rows := csvRows(t, buf.Bytes())
	want := map[[3]string]string{
		{"size", "", ""}:                               "4",
		{"max_size", "", ""}:                           "10",
		{"connections_closed_total", "", "idle"}:       "1",
		{"in_use", "acme", ""}:                         "2",
		{"acquires_total", "acme", "success"}:          "3",
		{"acquires_total", "acme", "timeout"}:          "1",
		{"acquires_total", "", "success"}:              "4",
		{"acquires_total", "globex", "queue_full"}:     "1",
		{"acquire_wait_seconds", "acme", "max"}:        "1",
		{"acquire_wait_seconds", "acme", "count"}:      "4",
		{"hold_seconds", "acme", "max"}:                "0.03",
		{"acquisitions_by_hour", "acme", "14"}:         "3",
		{"peak_hour", "acme", ""}:                      "14",
		{"statement_cache_hit_rate", "acme", ""}:       "0.75",
		{"leaks_detected_total", "", ""}:               "1",
		{"leaked_connections", "", ""}:                 "1",
		{"utilization", "", ""}:                        "0.3",
		{"success_rate", "globex", ""}:                 "0.5",
		{"releases_total", "acme", ""}:                 "2",
		{"borrowed", "", ""}:                           "2",
		{"statement_cache_misses_total", "globex", ""}: "0",
		{"acquire_wait_seconds", "globex", "p99"}:      "0",
		{"acquisitions_by_hour", "globex", "03"}:       "0",
		{"connections_created_total", "", ""}:          "5",
		{"acquires_per_second", "", ""}:                "2",
		{"statement_cache_hits_total", "acme", ""}:     "3",
		{"reuse_rate", "", ""}:                         "0",
		{"connect_errors_total", "", ""}:               "1",
		{"circuit_open", "", ""}:                       "1",
		{"circuit_opens_total", "", ""}:                "2",
		{"circuit_refused_total", "", ""}:              "7",
		{"acquire_wait_seconds", "acme", "mean"}:       "0.2515",
		{"hold_seconds", "acme", "count"}:              "2",
	}
	for k, v := range want {
		if got, ok := rows[k]; !ok || got != v {
			t.Errorf("row %v = %q (present %v), want %q", k, got, ok, v)
		}
	}
}

func TestCSVDefusesFormulasInPartitionNames(t *testing.T) {
	r := monitor.NewRecorder(monitor.RecorderConfig{})
	r.RecordAcquire("=HYPERLINK(\"http://x\")", 0, monitor.ResultSuccess)
	r.RecordAcquire("a,b\"c d", 0, monitor.ResultSuccess)
	var buf bytes.Buffer
	if err := monitor.WriteCSV(&buf, monitor.Report{Metrics: r.Snapshot()}); err != nil {
		t.Fatal(err)
	}
	rows := csvRows(t, buf.Bytes())
	if rows[[3]string{"acquires_total", "'=HYPERLINK(\"http://x\")", "success"}] != "1" {
		t.Error("a formula partition name was not prefixed with a quote")
	}
	if rows[[3]string{"acquires_total", "a,b\"c d", "success"}] != "1" {
		t.Error("a partition name with commas and quotes did not round-trip")
	}
}

func TestJSONExportRoundTrips(t *testing.T) {
	rep := sampleReport()
	var buf bytes.Buffer
	if err := monitor.WriteJSON(&buf, rep); err != nil {
		t.Fatal(err)
	}
	var got struct {
		monitor.Report
		Efficiency monitor.Efficiency `json:"efficiency"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	acme, _ := got.Metrics.Partition("acme")
	if got.Pool.Size != 4 || got.Pool.Closed["idle"] != 1 || acme.Wait.Max != monitor.Duration(time.Second) ||
		acme.Successes != 3 || got.Leaks[0].Held != monitor.Duration(6*time.Minute) || got.Leaks[0].Kind != monitor.LeakTx ||
		got.Efficiency.Utilization != 0.3 || got.Pool.Config["AcquireTimeout"] != "1s" {
		t.Errorf("round trip lost data:\n%s", buf.Bytes())
	}
	if !got.Pool.CircuitOpen || got.Pool.CircuitOpens != 2 || got.Pool.CircuitRefused != 7 ||
		!bytes.Contains(buf.Bytes(), []byte(`"circuit_refused": 7`)) {
		t.Errorf("the circuit breaker's state is lost:\n%s", buf.Bytes())
	}
	// Durations are seconds on the wire.
	if !bytes.Contains(buf.Bytes(), []byte(`"held_seconds": 360`)) || !bytes.Contains(buf.Bytes(), []byte(`"max_seconds": 1,`)) {
		t.Errorf("durations are not seconds:\n%s", buf.Bytes())
	}
}

func TestEfficiencyRatios(t *testing.T) {
	rep := sampleReport()
	e := rep.Efficiency()
	// 3 in use of 10; 5 dials for 4 successes: no reuse; 4 of 6 attempts; 3 of 4 lookups.
	if e.Utilization != 0.3 || e.ReuseRate != 0 || e.SuccessRate != 4.0/6 || e.StatementCacheHitRate != 0.75 {
		t.Errorf("efficiency %+v", e)
	}
	rep.Pool.Created = 1
	if e := rep.Efficiency(); e.ReuseRate != 0.75 {
		t.Errorf("reuse rate with 1 dial for 4 acquisitions: %v, want 0.75", e.ReuseRate)
	}
	if e := (monitor.Report{}).Efficiency(); e != (monitor.Efficiency{}) {
		t.Errorf("efficiency of nothing: %+v", e)
	}
}
