package sqlpool_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
)

// newNamedCluster returns a Cluster over fake hosts with the given names,
// the first the primary, each host's Connector with cfg(i), and its DB,
// closed at the end of the test.
func newNamedCluster(t *testing.T, cfg func(i int) sqlpool.Config, names ...string) (*sqlpool.Cluster, *sql.DB) {
	t.Helper()
	var hosts []sqlpool.Host
	for i, name := range names {
		c, err := sqlpool.Wrap(drivertest.New(drivertest.Options{}).Connector(""), cfg(i))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() }) // closed already once the Cluster is
		hosts = append(hosts, sqlpool.Host{Name: name, Connector: c})
	}
	cl, err := sqlpool.NewCluster(hosts, sqlpool.ClusterConfig{
		CheckInterval: time.Hour,
		Check: func(_ context.Context, host string, _ *sql.DB) (sqlpool.HostStatus, error) {
			return sqlpool.HostStatus{ReadOnly: host != names[0]}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	db := sqlpool.OpenCluster(cl)
	t.Cleanup(func() { db.Close() })
	return cl, db
}

// serve runs one request on h and returns the recorder.
func serve(h http.Handler, method, target, body string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// apiHosts is the body of the Cluster handler's /api/hosts, as a client
// reads it.
type apiHosts struct {
	Primary       string  `json:"primary"`
	CheckInterval float64 `json:"check_interval_seconds"`
	MaxReplicaLag float64 `json:"max_replica_lag_seconds"`
	Hosts         []struct {
		Name          string  `json:"name"`
		Path          string  `json:"path"`
		Role          string  `json:"role"`
		Primary       bool    `json:"primary"`
		Up            bool    `json:"up"`
		CheckError    string  `json:"check_error"`
		Healthy       bool    `json:"healthy"`
		ServesReads   bool    `json:"serves_reads"`
		Lag           float64 `json:"lag_seconds"`
		Latency       float64 `json:"check_latency_seconds"`
		ErrorRate     float64 `json:"error_rate"`
		CircuitOpen   bool    `json:"circuit_open"`
		Reads         int64   `json:"reads"`
		Writes        int64   `json:"writes"`
		FallbackReads int64   `json:"fallback_reads"`
		MaxSize       int     `json:"max_size"`
		InUse         int     `json:"in_use"`
		Idle          int     `json:"idle"`
	} `json:"hosts"`
}

func getAPIHosts(t *testing.T, h http.Handler) apiHosts {
	t.Helper()
	rec := serve(h, "GET", "/api/hosts", "")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("/api/hosts: %d %s %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	var v apiHosts
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("/api/hosts does not decode: %v\n%s", err, rec.Body)
	}
	return v
}

func TestClusterHandlerServesTheHostsAsJSON(t *testing.T) {
	th := newTestHosts(t, 3, sqlpool.ClusterConfig{MaxReplicaLag: time.Second})
	ctx := context.Background()
	ro := sqlpool.WithReadOnly(ctx)
	th.set("h2", sqlpool.HostStatus{ReadOnly: true}, errors.New("check failed"))
	th.set("h1", sqlpool.HostStatus{ReadOnly: true, Lag: 1500 * time.Millisecond}, nil)
	th.reads(t, ro, 2) // fallbacks on h0
	th.execHost(t, ctx)
	th.set("h1", sqlpool.HostStatus{ReadOnly: true, Lag: 500 * time.Millisecond}, nil)
	c, err := th.db.Conn(ro) // holds a connection of h1
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := who(t, ro, c); got != "h1" {
		t.Fatalf("a read went to %s, want h1", got)
	}

	v := getAPIHosts(t, th.cl.Handler())
	if v.Primary != "h0" || v.CheckInterval != 3600 || v.MaxReplicaLag != 1 || len(v.Hosts) != 3 {
		t.Fatalf("/api/hosts: primary %q, interval %v, lag bound %v, %d hosts; want h0, 3600, 1, 3", v.Primary, v.CheckInterval, v.MaxReplicaLag, len(v.Hosts))
	}
	h0, h1, h2 := v.Hosts[0], v.Hosts[1], v.Hosts[2]
	if h0.Name != "h0" || h0.Role != "primary" || !h0.Primary || !h0.Up || h0.Reads != 2 || h0.FallbackReads != 2 || h0.Writes != 1 ||
		h0.Path != "hosts/h0/" || h0.MaxSize != 4 || h0.ServesReads || h0.Lag != 0 {
		t.Errorf("h0: %+v; want the primary, up, 2 reads (both fallbacks), 1 write, path hosts/h0/, max 4, serving no reads as a replica", h0)
	}
	if h1.Role != "replica" || h1.Primary || !h1.Up || !h1.Healthy || !h1.ServesReads || h1.Lag != 0.5 || h1.Reads != 1 || h1.InUse != 1 {
		t.Errorf("h1: %+v; want a serving replica 0.5s behind, 1 read, 1 connection in use", h1)
	}
	if h2.Up || h2.CheckError != "check failed" || h2.ServesReads || h2.ErrorRate <= 0 {
		t.Errorf("h2: %+v; want down with the check's error, an error rate, serving no reads", h2)
	}
	if h1.Latency <= 0 || h1.Latency != th.host("h1").Latency.Seconds() && h1.Latency-th.host("h1").Latency.Seconds() > 1e-6 {
		t.Errorf("h1's check latency %v s, Stats() %v", h1.Latency, th.host("h1").Latency)
	}
}

func TestClusterHandlerMountsEachHostsOwnHandler(t *testing.T) {
	th := newTestHosts(t, 3, sqlpool.ClusterConfig{})
	ro := sqlpool.WithReadOnly(context.Background())
	c, err := th.db.Conn(ro)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	busy := who(t, ro, c)

	mux := http.NewServeMux()
	mux.Handle("/debug/cluster/", http.StripPrefix("/debug/cluster", th.cl.Handler()))
	for _, name := range []string{"h0", "h1", "h2"} {
		rec := serve(mux, "GET", "/debug/cluster/hosts/"+name+"/api/size", "")
		var size struct {
			InUse   int `json:"in_use"`
			MaxSize int `json:"max_size"`
		}
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &size) != nil {
			t.Fatalf("hosts/%s/api/size: %d %s", name, rec.Code, rec.Body)
		}
		want := 0
		if name == busy {
			want = 1
		}
		if size.InUse != want || size.MaxSize != 4 {
			t.Errorf("hosts/%s/api/size: in use %d, max %d; want %d, 4 (%s holds one)", name, size.InUse, size.MaxSize, want, busy)
		}
	}
	if rec := serve(mux, "GET", "/debug/cluster/hosts/h1/", ""); rec.Code != 200 || !strings.Contains(rec.Header().Get("Content-Type"), "text/html") {
		t.Errorf("hosts/h1/ (its dashboard): %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	if rec := serve(mux, "GET", "/debug/cluster/hosts/h1", ""); rec.Code != 301 || rec.Header().Get("Location") != "h1/" {
		t.Errorf("hosts/h1 without its slash: %d Location %q, want 301 to h1/", rec.Code, rec.Header().Get("Location"))
	}
	if rec := serve(http.StripPrefix("/debug/cluster", th.cl.Handler()), "GET", "/debug/cluster", ""); rec.Code != 301 || rec.Header().Get("Location") != "cluster/" {
		t.Errorf("the cluster's page without its slash: %d Location %q, want 301 to cluster/", rec.Code, rec.Header().Get("Location"))
	}
	// The host's handler keeps its own protection: no token configured,
	// its actions are refused.
	if rec := serve(mux, "POST", "/debug/cluster/hosts/h1/api/resize", `{"max_size": 9}`); rec.Code != http.StatusForbidden {
		t.Errorf("POST hosts/h1/api/resize with no token configured: %d %s, want 403", rec.Code, rec.Body)
	}
}

func TestClusterHandlerPassesEachHostsTokenProtectedActions(t *testing.T) {
	tokens := []string{"token-a", "token-b"}
	cl, _ := newNamedCluster(t, func(i int) sqlpool.Config {
		return sqlpool.Config{MaxSize: 4, ManagementToken: tokens[i]}
	}, "a", "b")
	h := cl.Handler()
	resize := func(host, token string) int {
		return serve(h, "POST", "/hosts/"+host+"/api/resize", `{"max_size": 7}`, "Authorization", "Bearer "+token).Code
	}
	if code := resize("b", ""); code != http.StatusUnauthorized {
		t.Errorf("resize b without a token: %d, want 401", code)
	}
	if code := resize("b", "token-a"); code != http.StatusUnauthorized {
		t.Errorf("resize b with a's token: %d, want 401", code)
	}
	if code := resize("b", "token-b"); code != 200 {
		t.Errorf("resize b with b's token: %d, want 200", code)
	}
	v := getAPIHosts(t, h)
	if v.Hosts[0].MaxSize != 4 || v.Hosts[1].MaxSize != 7 {
		t.Errorf("max sizes after resizing b: a %d, b %d; want 4, 7", v.Hosts[0].MaxSize, v.Hosts[1].MaxSize)
	}
}

func TestClusterHandlerAnswers404NamingTheHosts(t *testing.T) {
	th := newTestHosts(t, 2, sqlpool.ClusterConfig{})
	h := th.cl.Handler()
	for _, path := range []string{"/hosts/nope/", "/hosts/nope/api/size", "/hosts/nope", "/hosts/"} {
		rec := serve(h, "GET", path, "")
		var body struct{ Error string }
		if rec.Code != 404 || json.Unmarshal(rec.Body.Bytes(), &body) != nil {
			t.Errorf("%s: %d %s, want a 404 JSON error", path, rec.Code, rec.Body)
			continue
		}
		if !strings.Contains(body.Error, `"h0", "h1"`) {
			t.Errorf("%s: %q does not name the hosts", path, body.Error)
		}
	}
	if rec := serve(h, "GET", "/hosts/nope/", ""); !strings.Contains(rec.Body.String(), "nope") {
		t.Errorf("the 404 does not name the host asked for: %s", rec.Body)
	}
	if rec := serve(h, "GET", "/nothing", ""); rec.Code != 404 || !strings.Contains(rec.Body.String(), "/api/hosts") {
		t.Errorf("/nothing: %d %s, want 404 listing the paths", rec.Code, rec.Body)
	}
}

func TestClusterHandlerRefusesOtherMethodsThanGetOnThePageAndAPI(t *testing.T) {
	th := newTestHosts(t, 2, sqlpool.ClusterConfig{})
	h := th.cl.Handler()
	for _, path := range []string{"/", "/api/hosts", "/metrics"} {
		for _, method := range []string{"POST", "PUT", "DELETE", "PATCH"} {
			rec := serve(h, method, path, "{}")
			if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: %d Allow %q, want 405 with Allow GET, HEAD", method, path, rec.Code, rec.Header().Get("Allow"))
			}
		}
		if rec := serve(h, "HEAD", path, ""); rec.Code == http.StatusMethodNotAllowed {
			t.Errorf("HEAD %s: 405", path)
		}
	}
	// A method the host's handler refuses is its answer.
	if rec := serve(h, "DELETE", "/hosts/h0/api/size", ""); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE hosts/h0/api/size: %d, want the host handler's 405", rec.Code)
	}
}

func TestClusterPageListsTheHostsAndEscapesTheirNames(t *testing.T) {
	evil := `<script>alert("x")</script>`
	slashed := `a/b & "c"`
	cl, db := newNamedCluster(t, func(int) sqlpool.Config { return sqlpool.Config{MaxSize: 3} }, "primary-1", evil, slashed)
	ro := sqlpool.WithReadOnly(context.Background())
	for range 4 {
		queryInt(t, ro, db, "SELECT 1")
	}
	h := cl.Handler()
	rec := serve(h, "GET", "/", "")
	page := rec.Body.String()
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	if strings.Contains(page, "<script") || strings.Contains(page, `"x"`) {
		t.Errorf("the page holds a host's name unescaped:\n%s", page)
	}
	for _, want := range []string{
		"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;", "a/b &amp; &#34;c&#34;", ">primary-1</a> (writes)",
		`href="hosts/primary-1/"`, `href="hosts/a%2Fb%20&amp;%20%22c%22/"`, `href="api/hosts"`,
		"<td>replica</td>", " / 3</td>", // in use / idle / max
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s:\n%s", want, page)
		}
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe") {
		t.Errorf("Content-Security-Policy %q, want default-src 'none' and nothing unsafe", csp)
	}
	// Each link leads to its host's handler, the slash in a name escaped.
	for _, name := range []string{"primary-1", evil, slashed} {
		if rec := serve(h, "GET", "/hosts/"+url.PathEscape(name)+"/api/size", ""); rec.Code != 200 {
			t.Errorf("the link of %q: %d %s", name, rec.Code, rec.Body)
		}
	}
	v := getAPIHosts(t, h)
	if v.Hosts[1].Name != evil || v.Hosts[2].Path != "hosts/"+url.PathEscape(slashed)+"/" || v.Hosts[1].Reads+v.Hosts[2].Reads != 4 {
		t.Errorf("/api/hosts: %+v", v.Hosts)
	}
}
