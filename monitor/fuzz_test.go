package monitor_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sqlpool/sqlpool/monitor"
)

// FuzzHandler sends arbitrary requests to the management API: it must never
// panic, answer with a status it documents, and run an action only with the
// right token.
func FuzzHandler(f *testing.F) {
	for _, seed := range []struct{ method, path, auth, body string }{
		{"GET", "/api/stats", "", ""},
		{"GET", "/api/export?format=csv", "", ""},
		{"POST", "/api/resize", "Bearer token", `{"max_size": 4}`},
		{"POST", "/api/drain", "Bearer token", `{"partition": "<script>"}`},
		{"POST", "/api/drain", "Bearer token", `{"partition": "\u0000=cmd|' /C calc'!A0"}`},
		{"POST", "/api/evict", "Bearer token", "{\"partition\": \"\xff\xfe\"}"},
		{"POST", "/api/evict", "Bearer wrong", `{}`},
		{"POST", "/api/resize", "Bearer token", `{"max_size": -1e309}`},
		{"DELETE", "/api/reset", "Bearer token", ""},
		{"GET", "/../../etc/passwd", "", ""},
	} {
		f.Add(seed.method, seed.path, seed.auth, seed.body)
	}
	ok := map[int]bool{200: true, 301: true, 308: true, 400: true, 401: true, 403: true, 404: true, 405: true, 501: true}
	f.Fuzz(func(t *testing.T, method, path, auth, body string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(method+path, " \r\n\t") || method == "" {
			return // not a request an HTTP server would parse
		}
		acted := false
		act := func() { acted = true }
		h := monitor.NewHandler(monitor.HandlerConfig{
			Report: sampleReport,
			Token:  "token",
			Actions: monitor.Actions{
				Resize:     func(context.Context, int) error { act(); return nil },
				Drain:      func(context.Context, string) error { act(); return nil },
				EvictIdle:  func(context.Context, string) (int, error) { act(); return 0, nil },
				ResetStats: func(context.Context) error { act(); return nil },
			},
		})
		req, err := http.NewRequest(method, "http://sqlpool"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !ok[rec.Code] {
			t.Errorf("%s %s: status %d", method, path, rec.Code)
		}
		// The scheme is case-insensitive (RFC 9110, 11.1); the token is not.
		if acted && !(len(auth) == len("Bearer token") && strings.EqualFold(auth[:7], "Bearer ") && auth[7:] == "token") {
			t.Errorf("%s %s ran an action with Authorization %q", method, path, auth)
		}
	})
}

// FuzzPartitionName gives the monitor a partition of any name, beside one
// whose name differs by an invalid byte: the Prometheus paths must answer
// as checkPrometheus says (in the default build, the collector passes a
// pedantic registry), the exports parse, the names shown be safe, and no
// CSV cell start a formula.
func FuzzPartitionName(f *testing.F) {
	for _, name := range hostileNames {
		f.Add(name)
	}
	f.Add("\x00@SUM(1)")
	f.Add(" ＝1+1")
	f.Fuzz(func(t *testing.T, name string) {
		r := monitor.NewRecorder(monitor.RecorderConfig{})
		var rep monitor.Report
		for _, n := range []string{name, name + "\xff"} {
			r.RecordAcquire(n, time.Millisecond, monitor.ResultSuccess)
			rep.Pool.Partitions = append(rep.Pool.Partitions, monitor.PartitionState{Name: n, InUse: 1})
			rep.Leaks = append(rep.Leaks, monitor.Leak{Partition: n})
		}
		rep.Metrics = r.Snapshot()
		report := func() monitor.Report { return rep }

		h := monitor.NewHandler(monitor.HandlerConfig{Report: report})
		checkPrometheus(t, h, report)
		if w := serve(t, h, "GET", "/api/export?format=json", ""); w.Code != http.StatusOK || !json.Valid(w.Body.Bytes()) {
			t.Errorf("JSON export: %d %s", w.Code, w.Body)
		}
		w := serve(t, h, "GET", "/api/export?format=csv", "")
		records, err := csv.NewReader(bytes.NewReader(w.Body.Bytes())).ReadAll()
		if err != nil {
			t.Fatalf("CSV export does not parse: %v", err)
		}
		for _, rec := range records[1:] {
			if p := strings.TrimLeft(rec[1], " "); p != "" && strings.ContainsAny(p[:1], "=+-@\t\r\n\x00") {
				t.Errorf("CSV cell %q starts a formula", rec[1])
			}
		}
	})
}
