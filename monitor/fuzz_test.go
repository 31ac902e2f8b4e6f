package monitor_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
		if acted && auth != "Bearer token" {
			t.Errorf("%s %s ran an action with Authorization %q", method, path, auth)
		}
	})
}
