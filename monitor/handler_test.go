package monitor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sqlpool/sqlpool/monitor"
)

// actionLog records the actions a handler called.
type actionLog struct{ calls []string }

func (l *actionLog) actions() monitor.Actions {
	return monitor.Actions{
		Resize: func(_ context.Context, n int) error {
			l.calls = append(l.calls, fmt.Sprintf("resize %d", n))
			return nil
		},
		Suspend: func(_ context.Context, p string) error {
			l.calls = append(l.calls, "suspend "+p)
			return nil
		},
		Resume: func(_ context.Context, p string) error {
			l.calls = append(l.calls, "resume "+p)
			return nil
		},
		Drain: func(_ context.Context, p string) error {
			l.calls = append(l.calls, "drain "+p)
			if p == "nosuch" {
				return fmt.Errorf("drain: partition %q: %w", p, monitor.ErrNotFound)
			}
			return nil
		},
		EvictIdle: func(_ context.Context, p string) (int, error) {
			l.calls = append(l.calls, "evict "+p)
			return 3, nil
		},
		ResetStats: func(context.Context) error {
			l.calls = append(l.calls, "reset")
			return nil
		},
	}
}

const token = "s3cret-token"

func serve(t *testing.T, h http.Handler, method, path, body string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// errorOf decodes a JSON error body.
func errorOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("error content type %q, want application/json", ct)
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
		t.Errorf("error body %q is not {\"error\": ...}: %v", w.Body, err)
	}
	return e.Error
}

// readPath is a GET path, the content type it answers with and a
// substring of its body; /metrics and format=prometheus are in
// TestPrometheusPathsAnswerWithTheirContentTypes.
type readPath struct {
	path, contentType, contains string
}

// check GETs p.path from h and fails unless it answers 200 as p says, with
// nosniff, and valid JSON under /api/ (but for exports).
func (p readPath) check(t *testing.T, h http.Handler) {
	t.Helper()
	w := serve(t, h, http.MethodGet, p.path, "")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != p.contentType {
		t.Errorf("content type %q, want %q", ct, p.contentType)
	}
	if !strings.Contains(w.Body.String(), p.contains) {
		t.Errorf("body lacks %q:\n%.2000s", p.contains, w.Body)
	}
	if w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no X-Content-Type-Options: nosniff")
	}
	if strings.HasPrefix(p.path, "/api/") && !json.Valid(w.Body.Bytes()) && !strings.Contains(p.path, "format=") {
		t.Errorf("invalid JSON: %s", w.Body)
	}
}

func TestReadPathsAnswerWithTheirContentTypes(t *testing.T) {
	h := monitor.NewHandler(monitor.HandlerConfig{Report: sampleReport})
	tests := []readPath{
		{"/", "text/html; charset=utf-8", "<title>sqlpool</title>"},
		{"/assets/app.js", "text/javascript; charset=utf-8", "api/dashboard"},
		{"/assets/style.css", "text/css; charset=utf-8", ".cards"},
		{"/api/config", "application/json", `"AcquireTimeout": "1s"`},
		{"/api/stats", "application/json", `"efficiency"`},
		{"/api/size", "application/json", `"max_size": 10`},
		{"/api/queue", "application/json", `"waiting": 1`},
		{"/api/partitions", "application/json", `"name": "globex"`},
		{"/api/leaks", "application/json", `"kind": "tx"`},
		{"/api/dashboard", "application/json", `"history"`},
		{"/api/export", "application/json", `"pool"`},
		{"/api/export?format=json", "application/json", `"pool"`},
		{"/api/export?format=csv", "text/csv; charset=utf-8", "metric,partition,key,value"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) { tt.check(t, h) })
	}
	if head := serve(t, h, http.MethodHead, "/api/stats", ""); head.Code != http.StatusOK {
		t.Errorf("HEAD /api/stats: %d", head.Code)
	}
}

func TestTheDashboardPageForbidsInlineScript(t *testing.T) {
	w := serve(t, monitor.NewHandler(monitor.HandlerConfig{Report: sampleReport}), http.MethodGet, "/", "")
	csp := w.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
}

func TestExportsAreDownloads(t *testing.T) {
	h := monitor.NewHandler(monitor.HandlerConfig{Report: sampleReport})
	w := serve(t, h, http.MethodGet, "/api/export?format=csv", "")
	if cd := w.Header().Get("Content-Disposition"); cd != `attachment; filename="sqlpool-stats.csv"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	csvRows(t, w.Body.Bytes())
}

func TestErrorsAreJSONWithTheirStatus(t *testing.T) {
	h := monitor.NewHandler(monitor.HandlerConfig{Report: sampleReport, Token: token, Actions: (&actionLog{}).actions()})
	auth := []string{"Authorization", "Bearer " + token}
	tests := []struct {
		name, method, path, body string
		status                   int
		allow, mentions          string
	}{
		{"unknown path", "GET", "/api/nosuch", "", 404, "", "/api/nosuch"},
		{"trailing slash", "GET", "/api/stats/", "", 404, "", "/api/stats/"},
		{"POST to a read path", "POST", "/api/stats", "", 405, "GET, HEAD", "POST"},
		{"DELETE on the page", "DELETE", "/", "", 405, "GET, HEAD", "DELETE"},
		{"GET an action", "GET", "/api/resize", "", 405, "POST", "GET"},
		{"unknown export format", "GET", "/api/export?format=xml", "", 400, "", "format"},
		{"resize without a size", "POST", "/api/resize", "{}", 400, "", "max_size"},
		{"resize to zero", "POST", "/api/resize", `{"max_size": 0}`, 400, "", "max_size"},
		{"resize with a string", "POST", "/api/resize", `{"max_size": "ten"}`, 400, "", "max_size"},
		{"an unknown field", "POST", "/api/suspend", `{"partiton": "acme"}`, 400, "", "partiton"},
		{"malformed JSON", "POST", "/api/evict", `{"partition":`, 400, "", "body"},
		{"two JSON values", "POST", "/api/reset", `{} {}`, 400, "", "after"},
		{"drain without a partition", "POST", "/api/drain", `{}`, 400, "", "partition"},
		{"drain an unknown partition", "POST", "/api/drain", `{"partition": "nosuch"}`, 404, "", "nosuch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(t, h, tt.method, tt.path, tt.body, auth...)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if msg := errorOf(t, w); !strings.Contains(msg, tt.mentions) {
				t.Errorf("error %q does not mention %q", msg, tt.mentions)
			}
			if got := w.Header().Get("Allow"); got != tt.allow {
				t.Errorf("Allow %q, want %q", got, tt.allow)
			}
		})
	}
}

func TestActionErrorsChooseTheirStatus(t *testing.T) {
	for _, tt := range []struct {
		err    error
		status int
	}{
		{fmt.Errorf("max_size below min_size: %w", monitor.ErrInvalid), 400},
		{fmt.Errorf("no partition x: %w", monitor.ErrNotFound), 404},
		{errors.New("boom"), 500},
	} {
		h := monitor.NewHandler(monitor.HandlerConfig{Report: sampleReport, Token: token, Actions: monitor.Actions{
			Resize: func(context.Context, int) error { return tt.err },
		}})
		w := serve(t, h, "POST", "/api/resize", `{"max_size": 5}`, "Authorization", "Bearer "+token)
		if w.Code != tt.status || errorOf(t, w) != tt.err.Error() {
			t.Errorf("error %v: status %d, body %s; want %d", tt.err, w.Code, w.Body, tt.status)
		}
	}
}

var actionRequests = []struct {
	path, body, call string
}{
	{"/api/resize", `{"max_size": 20}`, "resize 20"},
	{"/api/suspend", `{"partition": "acme"}`, "suspend acme"},
	{"/api/suspend", ``, "suspend "},
	{"/api/resume", `{"partition": "acme"}`, "resume acme"},
	{"/api/drain", `{"partition": "acme"}`, "drain acme"},
	{"/api/evict", `{}`, "evict "},
	{"/api/reset", ``, "reset"},
}

func TestWithoutATokenEveryActionIsForbidden(t *testing.T) {
	var log actionLog
	h := monitor.NewHandler(monitor.HandlerConfig{Report: sampleReport, Actions: log.actions()})
	for _, a := range actionRequests {
		w := serve(t, h, "POST", a.path, a.body, "Authorization", "Bearer anything")
		if w.Code != http.StatusForbidden {
			t.Errorf("%s without a configured token: %d, want 403", a.path, w.Code)
		}
		errorOf(t, w)
	}
	if len(log.calls) != 0 {
		t.Errorf("actions called on a read-only API: %v", log.calls)
	}
}

func TestAWrongOrMissingTokenIsUnauthorized(t *testing.T) {
	var log actionLog
	h := monitor.NewHandler(monitor.HandlerConfig{Report: sampleReport, Token: token, Actions: log.actions()})
	for _, header := range [][]string{
		nil,
		{"Authorization", "Bearer wrong"},
		{"Authorization", "Bearer " + token + "x"},
		{"Authorization", "Bearer " + token[:len(token)-1]},
		{"Authorization", "Basic " + token},
		{"Authorization", token},
		{"Authorization", "Bearer "},
	} {
		for _, a := range actionRequests {
			w := serve(t, h, "POST", a.path, a.body, header...)
			if w.Code != http.StatusUnauthorized {
				t.Errorf("%s with %q: %d, want 401", a.path, header, w.Code)
			}
			if w.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("%s: 401 without WWW-Authenticate", a.path)
			}
			errorOf(t, w)
		}
	}
	if len(log.calls) != 0 {
		t.Errorf("actions called without the token: %v", log.calls)
	}
}

func TestTheRightTokenCallsTheAction(t *testing.T) {
	for _, a := range actionRequests {
		t.Run(a.call, func(t *testing.T) {
			var log actionLog
			h := monitor.NewHandler(monitor.HandlerConfig{Report: sampleReport, Token: token, Actions: log.actions()})
			w := serve(t, h, "POST", a.path, a.body, "Authorization", "bearer "+token) // the scheme is case-insensitive
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if len(log.calls) != 1 || log.calls[0] != a.call {
				t.Errorf("calls %q, want [%q]", log.calls, a.call)
			}
			var body map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body["ok"] != true {
				t.Errorf("body %s", w.Body)
			}
			if a.path == "/api/evict" && body["evicted"] != 3.0 {
				t.Errorf("evict body %s, want evicted 3", w.Body)
			}
		})
	}
}

func TestUnsupportedActionsAreNotImplemented(t *testing.T) {
	h := monitor.NewHandler(monitor.HandlerConfig{Report: sampleReport, Token: token})
	for _, a := range actionRequests {
		w := serve(t, h, "POST", a.path, a.body, "Authorization", "Bearer "+token)
		if w.Code != http.StatusNotImplemented {
			t.Errorf("%s with no action: %d, want 501", a.path, w.Code)
		}
		if msg := errorOf(t, w); !strings.Contains(msg, "not supported") {
			t.Errorf("%s: %q", a.path, msg)
		}
	}
}

func TestAnOversizedBodyIsRefused(t *testing.T) {
	var log actionLog
	h := monitor.NewHandler(monitor.HandlerConfig{Report: sampleReport, Token: token, Actions: log.actions()})
	body := `{"partition": "` + strings.Repeat("x", 1<<20) + `"}`
	if w := serve(t, h, "POST", "/api/suspend", body, "Authorization", "Bearer "+token); w.Code != http.StatusBadRequest {
		t.Errorf("1 MB body: %d, want 400", w.Code)
	}
	if len(log.calls) != 0 {
		t.Errorf("calls %v", log.calls)
	}
}

func TestEmptyReportsServeEmptyListsNotNull(t *testing.T) {
	h := monitor.NewHandler(monitor.HandlerConfig{Report: func() monitor.Report { return monitor.Report{} }})
	for _, path := range []string{"/api/stats", "/api/leaks", "/api/dashboard", "/api/partitions", "/api/config"} {
		w := serve(t, h, "GET", path, "")
		if w.Code != http.StatusOK || strings.Contains(w.Body.String(), "null") {
			t.Errorf("%s: %d\n%s", path, w.Code, w.Body)
		}
	}
}

func TestTheDashboardJoinsPoolAndRecorderPartitions(t *testing.T) {
	rep := sampleReport()
	rep.Pool.Partitions = append(rep.Pool.Partitions, monitor.PartitionState{Name: "idle-only", Idle: 2})
	h := monitor.NewHandler(monitor.HandlerConfig{Report: func() monitor.Report { return rep }})
	w := serve(t, h, "GET", "/api/dashboard", "")
	var d struct {
		Size       int   `json:"size"`
		InUse      int   `json:"in_use"`
		Attempts   int64 `json:"acquire_attempts"`
		Leaks      []monitor.Leak
		Wait       map[string]any `json:"wait"`
		Partitions []struct {
			Name     string           `json:"name"`
			Idle     int              `json:"idle"`
			InUse    int              `json:"in_use"`
			Waiting  int              `json:"waiting"`
			Acquires int64            `json:"acquire_successes"`
			Failures int64            `json:"acquire_failures"`
			HitRate  float64          `json:"statement_cache_hit_rate"`
			Leaks    int64            `json:"leaks_detected"`
			HoldP95  monitor.Duration `json:"hold_p95_seconds"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range d.Partitions {
		names = append(names, p.Name)
	}
	if strings.Join(names, ",") != "acme,globex,idle-only" {
		t.Fatalf("partitions %v", names)
	}
	acme := d.Partitions[0]
	if acme.InUse != 2 || acme.Idle != 1 || acme.Waiting != 1 || acme.Acquires != 3 || acme.Failures != 1 ||
		acme.HitRate != 0.75 || acme.Leaks != 1 || acme.HoldP95 != monitor.Duration(30e6) {
		t.Errorf("acme row %+v", acme)
	}
	if d.Size != 4 || d.InUse != 3 || d.Attempts != 6 || len(d.Leaks) != 1 || d.Wait["buckets"] != nil {
		t.Errorf("dashboard %s", w.Body)
	}
}

func TestMountedUnderAPrefixTheBarePathRedirectsToTheSlash(t *testing.T) {
	h := monitor.NewHandler(monitor.HandlerConfig{Report: sampleReport})
	mux := http.NewServeMux()
	mux.Handle("/debug/sqlpool/", http.StripPrefix("/debug/sqlpool", h))
	mux.Handle("/debug/sqlpool", http.StripPrefix("/debug/sqlpool", h))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	res, err := srv.Client().Get(srv.URL + "/debug/sqlpool")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/debug/sqlpool/" || !strings.Contains(string(body), "<title>sqlpool") {
		t.Errorf("GET /debug/sqlpool ended at %s with %d", res.Request.URL.Path, res.StatusCode)
	}
	res, err = srv.Client().Get(srv.URL + "/debug/sqlpool/api/size")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET /debug/sqlpool/api/size: %d", res.StatusCode)
	}
}

func TestNewHandlerPanicsWithoutAReport(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	monitor.NewHandler(monitor.HandlerConfig{})
}
