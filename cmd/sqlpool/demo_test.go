package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// tenantAcquisitions parses the tenant table of a summary: tenant name →
// ACQUISITIONS column.
func tenantAcquisitions(t *testing.T, summary string) map[string]int64 {
	t.Helper()
	col := -1
	acq := make(map[string]int64)
	for _, line := range strings.Split(summary, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			col = -1
			continue
		}
		if f[0] == "TENANT" {
			for i, h := range f {
				if h == "ACQUISITIONS" {
					col = i
				}
			}
			continue
		}
		if col < 0 || len(f) <= col {
			continue
		}
		n, err := strconv.ParseInt(strings.ReplaceAll(f[col], ",", ""), 10, 64)
		if err != nil {
			t.Fatalf("bad ACQUISITIONS %q in line %q", f[col], line)
		}
		acq[f[0]] = n
	}
	if len(acq) == 0 {
		t.Fatalf("no tenant table in the summary:\n%s", summary)
	}
	return acq
}

func TestDemoSQLite(t *testing.T) {
	defer goleak.VerifyNone(t)

	var out, progress bytes.Buffer
	cfg := demoConfig{
		Driver:   "sqlite",
		Duration: time.Second,
		Tenants:  3,
		Workers:  6,
		MaxSize:  3,
		// Exercise the progress bar too: its goroutine must be gone at the end.
		Progress:    &progress,
		Interactive: true,
	}
	if err := runDemo(context.Background(), &out, cfg); err != nil {
		t.Fatalf("runDemo: %v\n%s", err, out.String())
	}
	summary := out.String()
	t.Logf("summary:\n%s", summary)

	acq := tenantAcquisitions(t, summary)
	for i := range cfg.Tenants {
		name := tenantName(i)
		if !strings.Contains(summary, name) {
			t.Errorf("summary does not mention tenant %q", name)
		}
		if acq[name] <= 0 {
			t.Errorf("tenant %q: %d acquisitions, want > 0", name, acq[name])
		}
	}
	if acq["total"] <= 0 {
		t.Errorf("total acquisitions %d, want > 0", acq["total"])
	}
	for _, want := range []string{"connections created", "connections closed", "pool_closed", "waits", "LAT-P99"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	if !strings.Contains(progress.String(), "ops/s") {
		t.Errorf("progress output lacks ops/s: %q", progress.String())
	}
}

func TestDemoInterrupted(t *testing.T) {
	defer goleak.VerifyNone(t)

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	var out bytes.Buffer
	start := time.Now()
	err := runDemo(ctx, &out, demoConfig{Driver: "sqlite", Duration: time.Minute, Tenants: 2, Workers: 4, MaxSize: 2})
	if err != nil {
		t.Fatalf("runDemo: %v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("interrupted demo took %v", d)
	}
	if !strings.Contains(out.String(), "interrupted after") {
		t.Errorf("summary does not say it was interrupted:\n%s", out.String())
	}
}

func TestDemoBadConfig(t *testing.T) {
	defer goleak.VerifyNone(t)

	for _, cfg := range []demoConfig{
		{Driver: "oracle", Duration: time.Second, Tenants: 1, Workers: 1, MaxSize: 1},
		{Driver: "postgres", Duration: time.Second, Tenants: 1, Workers: 1, MaxSize: 1}, // no DSN
		{Driver: "sqlite", Duration: 0, Tenants: 1, Workers: 1, MaxSize: 1},
		{Driver: "sqlite", Duration: time.Second, Tenants: 0, Workers: 1, MaxSize: 1},
		{Driver: "sqlite", Duration: time.Second, Tenants: 1, Workers: 1, MaxSize: 1, Token: "t"}, // no -serve
	} {
		var ue usageError
		if err := runDemo(context.Background(), io.Discard, cfg); !errors.As(err, &ue) {
			t.Errorf("%+v: got %v, want a usage error", cfg, err)
		}
	}
	// A private in-memory SQLite database is refused by NewConnector.
	err := runDemo(context.Background(), io.Discard,
		demoConfig{Driver: "sqlite", DSN: ":memory:", Duration: time.Second, Tenants: 1, Workers: 1, MaxSize: 1})
	if err == nil || !strings.Contains(err.Error(), "in-memory") {
		t.Errorf("in-memory DSN: got %v", err)
	}
}

func TestDispatch(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string // expected in stdout+stderr
	}{
		{nil, 2, "Usage:"},
		{[]string{"help"}, 0, "demo"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"demo", "-driver", "oracle"}, 2, `unknown -driver "oracle"`},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, &stdout, &stderr); code != tc.code {
			t.Errorf("run(%q) = %d, want %d", tc.args, code, tc.code)
		}
		if got := stdout.String() + stderr.String(); !strings.Contains(got, tc.out) {
			t.Errorf("run(%q) printed %q, want it to contain %q", tc.args, got, tc.out)
		}
	}
}

func TestDemoServesTheDashboard(t *testing.T) {
	defer goleak.VerifyNone(t)
	progress := &lockedWriter{w: new(bytes.Buffer)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() {
		done <- runDemo(ctx, io.Discard, demoConfig{Driver: "sqlite", Duration: time.Minute, Tenants: 2, Workers: 2, MaxSize: 2,
			Serve: "127.0.0.1:0", Progress: progress})
	}()
	url := dashboardURL(t, progress)
	if resp := request(t, http.MethodGet, url+"api/stats", "", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /api/stats: %s", resp.Status)
	}
	// Without -token the management API is read-only.
	if resp := request(t, http.MethodPost, url+"api/reset", "", ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST /api/reset with no token configured: %s, want 403", resp.Status)
	}
	if !strings.Contains(progress.String(), "read-only") {
		t.Errorf("the demo does not say the API is read-only:\n%s", progress)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestDemoServeKeepsThePoolServedAfterTheRunWithToken(t *testing.T) {
	defer goleak.VerifyNone(t)
	stdout := &lockedWriter{w: new(bytes.Buffer)}
	stderr := &lockedWriter{w: new(bytes.Buffer)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() {
		done <- runDemoCommand(ctx, []string{"-duration", "100ms", "-tenants", "1", "-workers", "1", "-max", "1",
			"-serve", "127.0.0.1:0", "-token", "s3cret"}, stdout, stderr)
	}()
	url := dashboardURL(t, stderr)
	waitFor(t, stderr, "the workload is over")
	if !strings.Contains(stdout.String(), "sqlpool demo on sqlite") {
		t.Errorf("no summary when the workload ended:\n%s", stdout)
	}

	if resp := request(t, http.MethodGet, url+"api/stats", "", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /api/stats after the run: %s", resp.Status)
	}
	for _, tc := range []struct {
		token string
		want  int
	}{
		{"", http.StatusUnauthorized},
		{"wrong", http.StatusUnauthorized},
		{"s3cret", http.StatusOK},
	} {
		if resp := request(t, http.MethodPost, url+"api/resize", tc.token, `{"max_size": 3}`); resp.StatusCode != tc.want {
			t.Errorf("POST /api/resize with token %q: %s, want %d", tc.token, resp.Status, tc.want)
		}
	}
	// The resize acted on the pool, still open after the run.
	if resp := request(t, http.MethodGet, url+"api/size", "", ""); !strings.Contains(resp.body, `"max_size": 3`) {
		t.Errorf("GET /api/size after the resize: %s", resp.body)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stdout.String(), "interrupted") {
		t.Errorf("a run that ended before the interrupt is reported as interrupted:\n%s", stdout)
	}
}

func TestDemoInterruptedDuringSetupIsACleanStop(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out bytes.Buffer
	err := runDemo(ctx, &out, demoConfig{Driver: "sqlite", Duration: time.Minute, Tenants: 1, Workers: 1, MaxSize: 1})
	if err != nil {
		t.Fatalf("runDemo with its context ended during the setup: %v", err)
	}
	if !strings.Contains(out.String(), "interrupted during the setup") {
		t.Errorf("the demo does not say it stopped during the setup: %q", out.String())
	}
}

// waitFor polls w until it contains s and returns what follows s.
func waitFor(t *testing.T, w *lockedWriter, s string) string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, rest, ok := strings.Cut(w.String(), s); ok {
			return rest
		}
	}
	t.Fatalf("%q never written; got:\n%s", s, w)
	return ""
}

// dashboardURL waits for the demo to announce its dashboard and returns the
// URL.
func dashboardURL(t *testing.T, progress *lockedWriter) string {
	t.Helper()
	url, _, _ := strings.Cut(waitFor(t, progress, "dashboard on "), "\n")
	return url
}

// response is what request read.
type response struct {
	*http.Response
	body string
}

// request sends a request with token as its bearer token, unless empty.
func request(t *testing.T, method, url, token, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp, string(b)}
}

// lockedWriter is a writer safe for the demo's and the test's goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}
