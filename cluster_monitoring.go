package sqlpool

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sqlpool/sqlpool/internal/httpjson"
)

// Handler returns the Cluster's management API and dashboard:
//
//	GET  /                  an HTML page listing the hosts: role, up, healthy,
//	                        lag, check latency, error rate, circuit, pool
//	                        (in use, idle, max), routed reads and writes
//	GET  /api/hosts         the same as JSON (see below)
//	GET  /metrics           Prometheus text of Collector (501 in a binary
//	                        built with -tags sqlpool_noprometheus)
//	     /hosts/{name}/...  that host Connector's own Handler, whole: its
//	                        dashboard, API and POST actions, each action
//	                        still refused without that Connector's
//	                        Config.ManagementToken as a bearer token
//
// /api/hosts answers {"primary", "check_interval_seconds",
// "max_replica_lag_seconds", "hosts": [...]}, each host {"name", "path" (its
// handler, relative to this one), "role" (primary, replica or unknown, as
// its last successful check said), "primary" (writes go to it), "up",
// "check_error", "healthy", "serves_reads" (a WithReadOnly read may go to
// it now), "lag_seconds", "check_latency_seconds", "error_rate",
// "circuit_open", "reads", "writes", "fallback_reads", "size", "max_size",
// "in_use", "idle", "waiting", "suspended"}: ClusterStats without each
// Connector's partitions, connections and leaks, which the host's own
// handler serves, bounded.
//
// A {name} is the host's Name, path-escaped; an unknown one answers 404
// naming the hosts. Other errors are {"error": "..."}: 404 for an unknown
// path, 405 for a method other than GET or HEAD on the page, the API or
// /metrics. Reads need no token: mount the handler behind your own
// authentication where the figures are sensitive. Mount it at a path with
// a trailing slash (http.StripPrefix("/debug/cluster", h) on
// "/debug/cluster/"): the page uses relative URLs.
func (cl *Cluster) Handler() http.Handler {
	h := &clusterHandler{cl: cl, hosts: make(map[string]http.Handler, len(cl.hosts)), metrics: cl.metricsHandler()}
	for _, hs := range cl.hosts {
		h.hosts[hs.name] = hs.c.Handler()
	}
	return h
}

// clusterHandler is the Handler of a Cluster.
type clusterHandler struct {
	cl      *Cluster
	hosts   map[string]http.Handler // each host's Connector.Handler, by name
	metrics http.Handler            // /metrics
}

func (h *clusterHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	p := r.URL.Path
	switch {
	case p == "":
		// Mounted with StripPrefix and asked without the trailing slash:
		// redirect relatively, so that the page's relative links work.
		target := "./"
		if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
			if base := u.EscapedPath(); strings.Trim(base, "/") != "" {
				target = base[strings.LastIndexByte(base, '/')+1:] + "/"
			}
		}
		w.Header().Set("Location", target)
		w.WriteHeader(http.StatusMovedPermanently)
	case strings.HasPrefix(p, "/hosts/"):
		h.host(w, r)
	case p == "/" || p == "/api/hosts" || p == "/metrics":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			httpjson.Error(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s (allowed: GET, HEAD)", r.Method, p))
			return
		}
		switch p {
		case "/":
			h.page(w, r)
		case "/api/hosts":
			httpjson.Write(w, http.StatusOK, h.cl.view())
		default:
			h.metrics.ServeHTTP(w, r)
		}
	default:
		httpjson.Error(w, http.StatusNotFound, fmt.Sprintf("no such path: %s (the cluster serves /, /api/hosts, /metrics and /hosts/{name}/)", p))
	}
}

// host passes /hosts/{name}/rest to the host's handler as /rest.
func (h *clusterHandler) host(w http.ResponseWriter, r *http.Request) {
	// The escaped path, so that a name with a slash (%2F) stays one
	// segment.
	rest := strings.TrimPrefix(r.URL.EscapedPath(), "/hosts/")
	seg, sub, slash := strings.Cut(rest, "/")
	name, err := url.PathUnescape(seg)
	next, ok := h.hosts[name]
	if err != nil || !ok {
		httpjson.Error(w, http.StatusNotFound, fmt.Sprintf("no host %q in this cluster: its hosts are %s", seg, h.cl.hostNames()))
		return
	}
	if !slash { // its page's relative URLs need the slash
		w.Header().Set("Location", seg+"/")
		w.WriteHeader(http.StatusMovedPermanently)
		return
	}
	r2 := r.Clone(r.Context())
	r2.URL.RawPath = "/" + sub
	r2.URL.Path, err = url.PathUnescape(r2.URL.RawPath)
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, fmt.Sprintf("bad path escape in %q: %v", r2.URL.RawPath, err))
		return
	}
	next.ServeHTTP(w, r2)
}

// hostNames lists the hosts' names, quoted, for an error.
func (cl *Cluster) hostNames() string {
	names := make([]string, len(cl.hosts))
	for i, hs := range cl.hosts {
		names[i] = fmt.Sprintf("%q", hs.name)
	}
	return strings.Join(names, ", ")
}

// clusterView is the body of /api/hosts and what the page shows.
type clusterView struct {
	Primary       string     `json:"primary"` // "" when none is known
	CheckInterval float64    `json:"check_interval_seconds"`
	MaxReplicaLag float64    `json:"max_replica_lag_seconds"` // 0: no bound
	Hosts         []hostView `json:"hosts"`
}

// hostView is one host's figures: its HostStats, with its pool's sizes
// rather than its Connector's whole Stats.
type hostView struct {
	Name          string  `json:"name"`
	Path          string  `json:"path"` // its handler's, relative to the Cluster's
	Role          string  `json:"role"`
	Primary       bool    `json:"primary"`
	Up            bool    `json:"up"`
	CheckError    string  `json:"check_error,omitempty"`
	Healthy       bool    `json:"healthy"`
	ServesReads   bool    `json:"serves_reads"`
	Lag           float64 `json:"lag_seconds"`
	Latency       float64 `json:"check_latency_seconds"`
	ErrorRate     float64 `json:"error_rate"`
	CircuitOpen   bool    `json:"circuit_open"`
	Reads         int64   `json:"reads"`
	Writes        int64   `json:"writes"`
	FallbackReads int64   `json:"fallback_reads"`
	Size          int     `json:"size"`
	MaxSize       int     `json:"max_size"`
	InUse         int     `json:"in_use"`
	Idle          int     `json:"idle"`
	Waiting       int     `json:"waiting"`
	Suspended     bool    `json:"suspended"`
}

// view reads every host's state, counters and pool sizes: cheaper than
// Stats, which copies each Connector's partitions, connections and leaks.
func (cl *Cluster) view() clusterView {
	p := cl.primary.Load()
	v := clusterView{
		CheckInterval: cl.cfg.CheckInterval.Seconds(), MaxReplicaLag: cl.cfg.MaxReplicaLag.Seconds(),
		Hosts: make([]hostView, 0, len(cl.hosts)),
	}
	if p != nil {
		v.Primary = p.name
	}
	for _, hs := range cl.hosts {
		s := hs.state.Load()
		ps := hs.c.pool.Stats()
		v.Hosts = append(v.Hosts, hostView{
			Name: hs.name, Path: "hosts/" + url.PathEscape(hs.name) + "/",
			Role: s.role.String(), Primary: hs == p, Up: s.up, CheckError: s.err, Healthy: s.healthy,
			ServesReads: cl.readable(hs), Lag: s.lag.Seconds(), Latency: s.latency, ErrorRate: s.errorRate,
			CircuitOpen: hs.c.pool.CircuitOpen(),
			Reads:       hs.reads.Load(), Writes: hs.writes.Load(), FallbackReads: hs.fallbacks.Load(),
			Size: ps.Size, MaxSize: ps.MaxSize, InUse: ps.InUse, Idle: ps.Idle, Waiting: ps.Waiting, Suspended: ps.Suspended,
		})
	}
	return v
}

// The page: rendered on the server, no script, refreshed by the browser
// every 5 s; html/template escapes every name.

const clusterStyle = `body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}` +
	`table{border-collapse:collapse}th,td{padding:.3em .7em;border-bottom:1px solid #ddd;text-align:right}` +
	`th:first-child,td:first-child{text-align:left}.bad{color:#b00;font-weight:bold}.ok{color:#070}`

// clusterCSP allows the page's one inline style (by its hash) and nothing
// else: no script, no other origin.
var clusterCSP = func() string {
	sum := sha256.Sum256([]byte(clusterStyle))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}()

var clusterPage = template.Must(template.New("cluster").Funcs(template.FuncMap{
	"seconds": func(s float64) string {
		d := time.Duration(s * float64(time.Second))
		if d >= time.Millisecond {
			d = d.Round(time.Microsecond)
		}
		return d.String()
	},
	"percent": func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>sqlpool cluster</title><style>` + clusterStyle + `</style></head>
<body><h1>sqlpool cluster</h1>
<p>Primary: {{if .Primary}}<strong>{{.Primary}}</strong>{{else}}<span class="bad">none known: writes fail with ErrNoPrimary</span>{{end}}.
Checked every {{seconds .CheckInterval}}{{if .MaxReplicaLag}}; replicas serve reads within {{seconds .MaxReplicaLag}} of lag{{end}}.
<a href="api/hosts">JSON</a> · <a href="metrics">metrics</a></p>
<table>
<thead><tr><th>host</th><th>role</th><th>up</th><th>healthy</th><th>serves reads</th><th>lag</th><th>check latency</th><th>error rate</th><th>circuit</th><th>in use / idle / max</th><th>reads</th><th>writes</th><th>fallback reads</th></tr></thead>
<tbody>{{range .Hosts}}
<tr><td><a href="{{.Path}}">{{.Name}}</a>{{if .Primary}} (writes){{end}}</td><td>{{.Role}}</td>
<td>{{if .Up}}<span class="ok">up</span>{{else}}<span class="bad" title="{{.CheckError}}">down</span>{{end}}</td>
<td>{{if .Healthy}}<span class="ok">yes</span>{{else}}<span class="bad">drained</span>{{end}}</td>
<td>{{if .ServesReads}}yes{{else}}no{{end}}</td>
<td>{{seconds .Lag}}</td><td>{{seconds .Latency}}</td><td>{{percent .ErrorRate}}</td>
<td>{{if .CircuitOpen}}<span class="bad">open</span>{{else}}closed{{end}}</td>
<td>{{.InUse}} / {{.Idle}} / {{.MaxSize}}{{if .Suspended}} (suspended){{end}}</td>
<td>{{.Reads}}</td><td>{{.Writes}}</td><td>{{.FallbackReads}}</td></tr>{{end}}
</tbody></table>
{{range .Hosts}}{{if not .Up}}<p><a href="{{.Path}}">{{.Name}}</a> is down: {{.CheckError}}</p>{{end}}{{end}}
</body></html>
`))

func (h *clusterHandler) page(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	if err := clusterPage.Execute(&buf, h.cl.view()); err != nil {
		httpjson.Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Security-Policy", clusterCSP)
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Write(buf.Bytes())
}
