package sqlpool_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
	"github.com/sqlpool/sqlpool/partition"
)

func TestHandlerServesThePoolsState(t *testing.T) {
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 3, ManagementToken: "s3cret"})
	ctx := sqlpool.WithTenant(context.Background(), "acme")
	for range 5 {
		queryInt(t, ctx, db, "SELECT ?", 1)
	}
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()

	var stats struct {
		Pool struct {
			MaxSize    int `json:"max_size"`
			Size       int `json:"size"`
			Partitions []struct {
				Name string `json:"name"`
			} `json:"partitions"`
		} `json:"pool"`
		Metrics struct {
			Total struct {
				Successes int64 `json:"successes"`
			} `json:"total"`
		} `json:"metrics"`
	}
	getJSON(t, srv.URL+"/api/stats", &stats)
	if stats.Pool.MaxSize != 3 || stats.Pool.Size != 1 {
		t.Errorf("/api/stats pool = %+v, want max 3, size 1", stats.Pool)
	}
	names := ""
	for _, p := range stats.Pool.Partitions {
		names += p.Name + " "
	}
	if !strings.Contains(names, "acme") {
		t.Errorf("/api/stats partitions %q lack acme", names)
	}

	resp, err := http.Post(srv.URL+"/api/reset", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /api/reset without the token: %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/api/reset", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("POST /api/reset with the token: %d, want 200", resp.StatusCode)
	}
}

func TestReadOnlyWithoutAToken(t *testing.T) {
	_, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{})
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/api/reset", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST with no token configured: %d, want 403", resp.StatusCode)
	}
}

func TestDisableMetricsRecordsNothing(t *testing.T) {
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{DisableMetrics: true})
	queryInt(t, context.Background(), db, "SELECT 1")
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	var stats struct {
		Metrics struct {
			Total struct {
				Attempts int64 `json:"attempts"`
			} `json:"total"`
		} `json:"metrics"`
	}
	getJSON(t, srv.URL+"/api/stats", &stats)
	if stats.Metrics.Total.Attempts != 0 {
		t.Errorf("attempts recorded with DisableMetrics: %d", stats.Metrics.Total.Attempts)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func TestManagementActionsChangeThePool(t *testing.T) {
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 3, ManagementToken: "t"})
	queryInt(t, sqlpool.WithTenant(context.Background(), "acme"), db, "SELECT 1")
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	post := func(path, body string) int {
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer t")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("/api/resize", `{"max_size": 5}`); code != 200 || c.Stats().MaxSize != 5 {
		t.Errorf("resize: %d, MaxSize %d; want 200 and 5", code, c.Stats().MaxSize)
	}
	if code := post("/api/resize", `{"max_size": 0}`); code != 400 {
		t.Errorf("resize to 0: %d, want 400", code)
	}
	if code := post("/api/drain", `{"partition": "nobody"}`); code != 404 {
		t.Errorf("drain of an unknown partition: %d, want 404", code)
	}
	if code := post("/api/drain", `{"partition": "acme"}`); code != 200 || c.Stats().Idle != 0 {
		t.Errorf("drain acme: %d, idle %d; want 200 and 0", code, c.Stats().Idle)
	}
}

func TestSuspendAndResumeThroughTheAPI(t *testing.T) {
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{ManagementToken: "t", AcquireTimeout: 20 * time.Millisecond, FailFastBelow: -1})
	queryInt(t, context.Background(), db, "SELECT 1")
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	post := func(path string) int {
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer t")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("/api/suspend"); code != 200 {
		t.Fatalf("suspend: %d", code)
	}
	if _, err := db.Exec("SELECT 1"); !errors.Is(err, sqlpool.ErrAcquireTimeout) {
		t.Errorf("while suspended: err = %v, want ErrAcquireTimeout", err)
	}
	if code := post("/api/resume"); code != 200 {
		t.Fatalf("resume: %d", code)
	}
	queryInt(t, context.Background(), db, "SELECT 1")
}

func TestDashboardHistoryFillsWithNoPageOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 2})
		ctx := context.Background()
		// 90 seconds of three queries a second, half-way between the
		// sampler's ticks, with nobody polling the handler.
		advance(time.Second / 2)
		for range 90 {
			for range 3 {
				queryInt(t, ctx, db, "SELECT 1")
			}
			advance(time.Second)
		}
		w := httptest.NewRecorder()
		c.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/api/dashboard", nil))
		var d struct {
			History []struct {
				Acquires float64 `json:"acquires_per_second"`
			} `json:"history"`
		}
		if err := json.NewDecoder(w.Body).Decode(&d); err != nil {
			t.Fatal(err)
		}
		if len(d.History) != 90 {
			t.Fatalf("the first page load gets %d samples, want 90: one a second since the Connector opened "+
				"(newConnector starts the sampler with c.startHistory())", len(d.History))
		}
		for i, s := range d.History[1:] { // the first second also holds the probe's acquisition
			if s.Acquires != 3 {
				t.Fatalf("sample %d: %v acquisitions a second, want 3", i+1, s.Acquires)
			}
		}
	})
}

func TestDashboardRowsAddUpToTheHeader(t *testing.T) {
	// Every tenant's partition holds at most one connection; the pool four.
	routing := partition.RouterConfig{Template: partition.Config{MaxSize: 1}}
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 4, Routing: routing, StatementCacheMode: sqlpool.CacheAll})
	tenant := func(i int) context.Context {
		return sqlpool.WithTenant(context.Background(), fmt.Sprintf("t%02d", i))
	}
	// More tenants than the dashboard shows apart (50): the rest are
	// added up under "other". Each repeats statements: cache hits.
	const tenants = 60
	for i := range tenants {
		for j := range 1 + i%3 {
			queryInt(t, tenant(i), db, "SELECT ?", j)
		}
	}
	// Four borrowings fill the pool; two callers wait for t00's only slot,
	// two more (t10, t11) in the pool's queue.
	var txs []*sql.Tx
	for _, i := range []int{0, 1, 2, 3} {
		tx, err := db.BeginTx(tenant(i), nil)
		if err != nil {
			t.Fatal(err)
		}
		queryInt(t, tenant(i), tx, "SELECT 1")
		txs = append(txs, tx)
	}
	var waiters sync.WaitGroup
	for _, i := range []int{0, 0, 10, 11} {
		waiters.Go(func() {
			ctx, cancel := context.WithTimeout(tenant(i), time.Minute)
			defer cancel()
			var n int
			if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&n); err != nil {
				t.Errorf("tenant t%02d: %v", i, err)
			}
		})
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		s := c.Stats()
		if s.Partitions["t00"].Waiting == 2 && s.Waiting == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiters never settled: %d for t00's slot, %d in the pool's queue, want 2 and 2", s.Partitions["t00"].Waiting, s.Waiting)
		}
		runtime.Gosched()
	}

	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	type figures struct {
		Name    string `json:"name"`
		Waiting int    `json:"waiting"`
		Hits    int64  `json:"statement_cache_hits"`
		Misses  int64  `json:"statement_cache_misses"`
	}
	var d struct {
		figures
		Queued     int       `json:"queued"`
		Omitted    int       `json:"omitted_partitions"`
		Partitions []figures `json:"partitions"`
	}
	getJSON(t, srv.URL+"/api/dashboard", &d)
	stats := c.Stats()

	var sum figures
	other := false
	for _, p := range d.Partitions {
		sum.Waiting += p.Waiting
		sum.Hits += p.Hits
		sum.Misses += p.Misses
		other = other || p.Name == "other"
	}
	if !other || d.Omitted == 0 {
		t.Errorf("no \"other\" row (%d omitted) among %d rows: the bound was not exercised", d.Omitted, len(d.Partitions))
	}
	if sum.Waiting != d.Waiting || sum.Hits != d.Hits || sum.Misses != d.Misses {
		t.Errorf("rows add up to waiting %d, cache hits %d, misses %d; the header says %d, %d, %d",
			sum.Waiting, sum.Hits, sum.Misses, d.Waiting, d.Hits, d.Misses)
	}
	if d.Waiting != 4 || d.Queued != 2 {
		t.Errorf("header: %d waiting, %d of them in the pool's queue; want 4 (2 for t00's slot, 2 in the queue) and 2 "+
			"(partState.waitingNow counts every pending acquisition)", d.Waiting, d.Queued)
	}
	if d.Hits == 0 || d.Hits != stats.StatementCache.Hits || d.Misses != stats.StatementCache.Misses {
		t.Errorf("header: %d cache hits, %d misses; the connections counted %d and %d: every lookup belongs to a partition "+
			"(physConn.stmt calls recordStatementCache)",
			d.Hits, d.Misses, stats.StatementCache.Hits, stats.StatementCache.Misses)
	}

	for _, tx := range txs {
		tx.Rollback()
	}
	waiters.Wait()
}
