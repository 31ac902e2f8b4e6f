package monitor_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/sqlpool/sqlpool/monitor"
)

var screenshot = flag.String("screenshot", "", "write a PNG of the dashboard, with made-up data, to this file")

// chromium returns the path of Debian's chromium, or skips the test (fails
// it when SQLPOOL_REQUIRE_SERVERS=1).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	const msg = "no chromium on this machine (apt-get install chromium): the dashboard's browser test cannot run"
	if os.Getenv("SQLPOOL_REQUIRE_SERVERS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// The page's formats (app.js), for comparing its text with the API's numbers.
func pct(f float64) string  { return fmt.Sprintf("%.1f%%", f*100) }
func rate(f float64) string { return fmt.Sprintf("%.1f", f) }
func dur(d monitor.Duration) string {
	s := d.Seconds()
	ms := s * 1000
	switch {
	case s >= 1:
		return fmt.Sprintf("%.2f s", s)
	case ms < 10:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1f ms", ms)
	}
	return fmt.Sprintf("%.0f ms", ms)
}

func TestDashboardInHeadlessChromium(t *testing.T) {
	path := chromium(t)
	rep := busyReport()
	h := monitor.NewHandler(monitor.HandlerConfig{Report: func() monitor.Report { return rep }})
	var polls atomic.Int64
	polled := make(chan struct{}, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/dashboard" {
			polls.Add(1)
			defer func() { polled <- struct{}{} }()
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	ctx, cancel = chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	defer cancel()
	ctx, cancel = chromedp.NewContext(ctx)
	defer cancel()

	// Collect every console message and dialog from the start.
	var (
		mu       sync.Mutex
		problems []string // guarded by mu
	)
	problem := func(s string) {
		mu.Lock()
		problems = append(problems, s)
		mu.Unlock()
	}
	listenCtx, stopListening := context.WithCancel(ctx)
	messages := chromedp.Console(listenCtx)
	dialogs := chromedp.Events(listenCtx, page.JavascriptDialogOpening)
	var listeners sync.WaitGroup
	listeners.Add(2)
	go func() {
		defer listeners.Done()
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.IsException() {
				problem(fmt.Sprintf("console %s (%s:%d)", m, m.URL, m.Line+1))
			}
		}
	}()
	go func() {
		defer listeners.Done()
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			problem("a dialog opened: " + ev.Message)
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{})
		}
	}()

	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitReady(chromedp.CSS(`body[data-ready="true"]`)),
	); err != nil {
		t.Fatalf("the dashboard did not render: %v", err)
	}
	// It refreshes itself: wait for two more polls.
	for n := polls.Load(); polls.Load() < n+2; {
		select {
		case <-polled:
		case <-ctx.Done():
			t.Fatalf("the page polled /api/dashboard %d times, then stopped", polls.Load())
		}
	}

	shown, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](`(() => {
		const out = {};
		for (const e of document.querySelectorAll('[id]')) out[e.id] = e.textContent.trim();
		return out;
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](
		`[...document.querySelectorAll('#partitions tbody tr')].map(tr => [...tr.cells].map(td => td.textContent))`))
	if err != nil {
		t.Fatal(err)
	}
	scripts, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.scripts.length`))
	if err != nil {
		t.Fatal(err)
	}
	lines, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#chart-rate polyline, #chart-borrowed polyline').length`))
	if err != nil {
		t.Fatal(err)
	}

	if *screenshot != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*screenshot, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", *screenshot)
	}

	stopListening()
	listeners.Wait()
	mu.Lock()
	for _, p := range problems {
		t.Error(p)
	}
	mu.Unlock()

	// The page's numbers are the API's.
	res, err := http.Get(srv.URL + "/api/stats")
	if err != nil {
		t.Fatal(err)
	}
	var stats struct {
		monitor.Report
		Efficiency monitor.Efficiency `json:"efficiency"`
	}
	err = json.NewDecoder(res.Body).Decode(&stats)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	p, tot, e := stats.Pool, stats.Metrics.Total, stats.Efficiency
	want := map[string]string{
		"size":           fmt.Sprint(p.Size),
		"max-size":       fmt.Sprint(p.MaxSize),
		"in-use":         fmt.Sprint(p.InUse),
		"idle":           fmt.Sprint(p.Idle),
		"waiting":        fmt.Sprint(p.Waiting),
		"queued":         fmt.Sprint(p.Queued),
		"cache-hits":     fmt.Sprint(tot.StatementCacheHits),
		"cache-misses":   fmt.Sprint(tot.StatementCacheMisses),
		"timeouts":       fmt.Sprint(tot.Timeouts),
		"utilization":    pct(e.Utilization),
		"reuse-rate":     pct(e.ReuseRate),
		"wait-p50":       dur(tot.Wait.P50),
		"wait-p95":       dur(tot.Wait.P95),
		"wait-p99":       dur(tot.Wait.P99),
		"wait-max":       dur(tot.Wait.Max),
		"hold-p50":       dur(tot.Hold.P50),
		"hold-p99":       dur(tot.Hold.P99),
		"acquire-rate":   rate(tot.AcquiresPerSecond),
		"success-rate":   pct(e.SuccessRate),
		"cache-hit-rate": pct(e.StatementCacheHitRate),
		"leaks":          fmt.Sprint(len(stats.Leaks) + stats.OmittedLeaks),
		"leaks-detected": fmt.Sprint(tot.LeaksDetected),
		"status":         "live",
	}
	for id, v := range want {
		if shown[id] != v {
			t.Errorf("#%s shows %q, /api/stats says %q", id, shown[id], v)
		}
	}
	if len(rows) != len(p.Partitions) {
		t.Fatalf("%d partition rows, want %d: %q", len(rows), len(p.Partitions), rows)
	}
	var (
		waiting int
		hits    int64
	)
	for i, ps := range p.Partitions { // both sorted by name
		m, _ := stats.Metrics.Partition(ps.Name)
		got := strings.Join(rows[i][:6], "|")
		if w := fmt.Sprintf("%s|%d|%d|%d|%d|%d", ps.Name, ps.InUse, ps.Idle, ps.Waiting, m.Successes, m.Failures); got != w {
			t.Errorf("partition row %d: %q, want %q", i, got, w)
		}
		if rows[i][7] != dur(m.Wait.P95) {
			t.Errorf("partition %q wait p95 %q, want %q", ps.Name, rows[i][7], dur(m.Wait.P95))
		}
		if got, w := rows[i][9]+"|"+rows[i][10], fmt.Sprintf("%d|%s", m.StatementCacheHits, pct(m.StatementCacheHitRate)); got != w {
			t.Errorf("partition %q cache hits|hit rate %q, want %q", ps.Name, got, w)
		}
		waiting += ps.Waiting
		hits += m.StatementCacheHits
	}
	// The rows add up to the header.
	if shown["waiting"] != fmt.Sprint(waiting) || shown["cache-hits"] != fmt.Sprint(hits) {
		t.Errorf("header waiting %s, cache hits %s; the rows add up to %d and %d", shown["waiting"], shown["cache-hits"], waiting, hits)
	}

	// The script-like partition name is text, in the table and the leaks.
	if rows[0][0] != xssName {
		t.Errorf("first partition shows %q, want the text %q", rows[0][0], xssName)
	}
	if scripts != 1 {
		t.Errorf("%d script elements, want 1 (app.js): a partition name became markup", scripts)
	}
	if lines < 3 {
		t.Errorf("%d chart lines, want 3", lines)
	}
}
