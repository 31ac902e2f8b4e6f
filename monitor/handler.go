package monitor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/sqlpool/sqlpool/internal/httpjson"
)

// Errors an Actions func may wrap to choose the HTTP status of its failure;
// any other error is a 500.
var (
	ErrNotFound = errors.New("sqlpool: not found")       // 404: no such partition
	ErrInvalid  = errors.New("sqlpool: invalid request") // 400: the request makes no sense for this pool
)

// errNoPrometheus is the 501 answer of /metrics and of the Prometheus export
// in a binary built with -tags sqlpool_noprometheus (noprometheus.go).
var errNoPrometheus = errors.New("sqlpool: no Prometheus in this binary, built with -tags sqlpool_noprometheus: " +
	"rebuild without that tag to serve /metrics and format=prometheus, or use format=json or csv")

// Actions change the pool; the handler serves each as a POST, authenticated
// by HandlerConfig.Token. A nil func answers 501 Not Implemented. The
// context is the request's.
type Actions struct {
	// Resize sets the pool's MaxSize (at least 1). POST /api/resize
	// {"max_size": n}.
	Resize func(ctx context.Context, maxSize int) error
	// Suspend stops lending connections from a partition, or from the whole
	// pool when partition is empty: acquisitions wait (and time out) until
	// Resume. POST /api/suspend {"partition": "name"}.
	Suspend func(ctx context.Context, partition string) error
	// Resume undoes Suspend. POST /api/resume {"partition": "name"}.
	Resume func(ctx context.Context, partition string) error
	// Drain closes a partition's connections: its idle ones now, its
	// borrowed ones as they are released. POST /api/drain
	// {"partition": "name"}; the partition is required.
	Drain func(ctx context.Context, partition string) error
	// EvictIdle closes the idle connections of a partition, or of the whole
	// pool when partition is empty, and returns how many it closed.
	// POST /api/evict {"partition": "name"}.
	EvictIdle func(ctx context.Context, partition string) (int, error)
	// ResetStats zeroes the statistics (typically Recorder.Reset).
	// POST /api/reset.
	ResetStats func(ctx context.Context) error
}

// HandlerConfig configures NewHandler.
type HandlerConfig struct {
	// Report returns the pool's current Report; it is called once per
	// request (and per dashboard refresh, one a second per open page).
	// The charts show its Metrics.History, which the owner keeps filled by
	// running Recorder.Run for as long as the pool lives. Required.
	Report func() Report
	// Actions are the POST actions; nil funcs are not supported.
	Actions Actions
	// Token is the bearer token that POST actions require, compared in
	// constant time. Empty: the API is read-only and every POST is refused
	// with 403.
	Token string
	// TopPartitions bounds the partitions that every list of the API, the
	// dashboard, the exports and /metrics show apart: the most active
	// ones, as CollectorConfig.TopPartitions; the others are added up under
	// OverflowPartition and counted (omitted_partitions). Zero or
	// negative: DefaultTopPartitions (50).
	TopPartitions int
	// MaxLeaks bounds the leaks listed (/api/leaks, /api/stats, the
	// dashboard, the exports): the longest held; the others are counted
	// (omitted_leaks). Zero or negative: DefaultMaxLeaks (100).
	MaxLeaks int
}

// The dashboard page's files.
//
//go:embed dashboard
var dashboardFS embed.FS

// NewHandler returns the management API and dashboard. Paths, all JSON
// unless said:
//
//	GET  /                 the dashboard (HTML), refreshing itself from /api/dashboard
//	GET  /api/config       PoolState.Config
//	GET  /api/stats        the whole Report, with its Efficiency
//	GET  /api/size         size, limits and utilization
//	GET  /api/queue        waiting acquisitions, per partition, and wait statistics
//	GET  /api/partitions   each partition's pool state and metrics
//	GET  /api/leaks        current leaks and the count detected
//	GET  /api/dashboard    the Dashboard the page shows
//	GET  /metrics          Prometheus metrics (NewCollector), text format
//	GET  /api/export       ?format=json (default), csv or prometheus, as a download
//	POST /api/resize, /api/suspend, /api/resume, /api/drain, /api/evict, /api/reset
//	                       the Actions, with Authorization: Bearer <Token>
//
// In a binary built with -tags sqlpool_noprometheus, which links no
// Prometheus package, /metrics and format=prometheus answer 501 Not
// Implemented, saying so; the other paths are the same.
//
// Every list is bounded (HandlerConfig.TopPartitions, MaxLeaks) and every
// partition name made safe (see NewCollector), however many and whatever
// names the pool was given.
//
// Reads need no token: mount the handler behind your own authentication
// where the statistics are sensitive. Mount it at a path with a trailing
// slash (http.StripPrefix("/debug/sqlpool", h) on "/debug/sqlpool/"): the
// page uses relative URLs. Errors are {"error": "..."} with a 4xx or 5xx
// status: 404 for an unknown path, 405 for a wrong method, 400 for bad
// input, 401 for a missing or wrong token, 403 when no token is configured,
// 501 for an action the pool does not support (or Prometheus left out).
//
// NewHandler panics if cfg.Report is nil.
func NewHandler(cfg HandlerConfig) http.Handler {
	if cfg.Report == nil {
		panic("monitor: NewHandler: HandlerConfig.Report is nil")
	}
	if cfg.TopPartitions <= 0 {
		cfg.TopPartitions = DefaultTopPartitions
	}
	if cfg.MaxLeaks <= 0 {
		cfg.MaxLeaks = DefaultMaxLeaks
	}
	h := &handler{report: cfg.Report, actions: cfg.Actions, top: cfg.TopPartitions, maxLeaks: cfg.MaxLeaks}
	if cfg.Token != "" {
		h.token = sha256.Sum256([]byte(cfg.Token))
		h.hasToken = true
	}
	h.metrics = newMetricsHandler(cfg.Report, h.top)

	get := func(f http.HandlerFunc) route { return route{method: http.MethodGet, serve: f} }
	post := func(f http.HandlerFunc) route { return route{method: http.MethodPost, serve: f} }
	h.routes = map[string]route{
		"/":                 get(staticFile("dashboard/index.html", "text/html; charset=utf-8")),
		"/assets/app.js":    get(staticFile("dashboard/app.js", "text/javascript; charset=utf-8")),
		"/assets/style.css": get(staticFile("dashboard/style.css", "text/css; charset=utf-8")),
		"/api/config":       get(h.config),
		"/api/stats":        get(h.stats),
		"/api/size":         get(h.size),
		"/api/queue":        get(h.queue),
		"/api/partitions":   get(h.partitions),
		"/api/leaks":        get(h.leaks),
		"/api/dashboard":    get(h.dashboard),
		"/metrics":          get(h.metrics.ServeHTTP),
		"/api/export":       get(h.export),
		"/api/resize":       post(h.resize),
		"/api/suspend":      post(h.partitionAction(cfg.Actions.Suspend, false)),
		"/api/resume":       post(h.partitionAction(cfg.Actions.Resume, false)),
		"/api/drain":        post(h.partitionAction(cfg.Actions.Drain, true)),
		"/api/evict":        post(h.evict),
		"/api/reset":        post(h.reset),
	}
	return h
}

type handler struct {
	report   func() Report
	actions  Actions
	token    [32]byte // SHA-256 of the token: equal lengths for the compare
	hasToken bool
	top      int // partitions shown apart
	maxLeaks int // leaks listed
	metrics  http.Handler
	routes   map[string]route
}

type route struct {
	method string
	serve  http.HandlerFunc
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.URL.Path == "" {
		// Mounted with StripPrefix and asked without the trailing slash:
		// redirect relatively (http.Redirect would resolve against the
		// stripped path), so that the page's relative URLs work.
		target := "./"
		if u, err := url.ParseRequestURI(r.RequestURI); err == nil && strings.Trim(u.Path, "/") != "" {
			target = path.Base(u.Path) + "/"
		}
		w.Header().Set("Location", target)
		w.WriteHeader(http.StatusMovedPermanently)
		return
	}
	rt, ok := h.routes[r.URL.Path]
	if !ok {
		httpjson.Error(w, http.StatusNotFound, fmt.Sprintf("no such path: %s", r.URL.Path))
		return
	}
	if r.Method != rt.method && !(rt.method == http.MethodGet && r.Method == http.MethodHead) {
		allow := rt.method
		if rt.method == http.MethodGet {
			allow = "GET, HEAD"
		}
		w.Header().Set("Allow", allow)
		httpjson.Error(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow))
		return
	}
	if rt.method == http.MethodPost && !h.authorized(w, r) {
		return
	}
	rt.serve(w, r)
}

// authorized checks a POST's bearer token, answering the refusal itself.
func (h *handler) authorized(w http.ResponseWriter, r *http.Request) bool {
	if !h.hasToken {
		httpjson.Error(w, http.StatusForbidden, "read-only: no management token is configured")
		return false
	}
	auth := r.Header.Get("Authorization")
	const scheme = "bearer "
	if len(auth) > len(scheme) && strings.EqualFold(auth[:len(scheme)], scheme) {
		sum := sha256.Sum256([]byte(auth[len(scheme):]))
		if subtle.ConstantTimeCompare(sum[:], h.token[:]) == 1 {
			return true
		}
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="sqlpool"`)
	httpjson.Error(w, http.StatusUnauthorized, "missing or wrong bearer token")
	return false
}

// staticFile serves an embedded file of the page, under a strict
// Content-Security-Policy: no inline script or style, no other origin.
func staticFile(name, contentType string) http.HandlerFunc {
	body, err := dashboardFS.ReadFile(name)
	if err != nil {
		panic(err) // embedded: cannot happen
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Content-Security-Policy",
			"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "+
				"base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Write(body)
	}
}

// current returns the report bounded (boundReport), with nil slices and
// maps made empty, so that JSON clients see [] and {} rather than null.
func (h *handler) current() Report {
	r := boundReport(h.report(), h.top, h.maxLeaks)
	if r.Leaks == nil {
		r.Leaks = []Leak{}
	}
	if r.Pool.Partitions == nil {
		r.Pool.Partitions = []PartitionState{}
	}
	if r.Pool.Closed == nil {
		r.Pool.Closed = map[string]int64{}
	}
	if r.Pool.Config == nil {
		r.Pool.Config = map[string]any{}
	}
	if r.Metrics.Partitions == nil {
		r.Metrics.Partitions = []Metrics{}
	}
	if r.Metrics.History == nil {
		r.Metrics.History = []Sample{}
	}
	return r
}

func (h *handler) config(w http.ResponseWriter, r *http.Request) {
	httpjson.Write(w, http.StatusOK, h.current().Pool.Config)
}

func (h *handler) stats(w http.ResponseWriter, r *http.Request) {
	rep := h.current()
	httpjson.Write(w, http.StatusOK, stats{Report: rep, Efficiency: rep.Efficiency()})
}

// sizeBody is the body of /api/size.
type sizeBody struct {
	Size        int     `json:"size"`
	MinSize     int     `json:"min_size"`
	MaxSize     int     `json:"max_size"`
	Idle        int     `json:"idle"`
	InUse       int     `json:"in_use"`
	Dialing     int     `json:"dialing"`
	Utilization float64 `json:"utilization"`
}

func (h *handler) size(w http.ResponseWriter, r *http.Request) {
	rep := h.current()
	p := rep.Pool
	httpjson.Write(w, http.StatusOK, sizeBody{
		Size: p.Size, MinSize: p.MinSize, MaxSize: p.MaxSize, Idle: p.Idle, InUse: p.InUse,
		Dialing: p.Dialing, Utilization: rep.Efficiency().Utilization,
	})
}

// queueBody is the body of /api/queue.
type queueBody struct {
	Waiting    int           `json:"waiting"` // PoolState.Waiting: the sum of Partitions'
	Queued     int           `json:"queued"`  // PoolState.Queued: of them, in the pool's own queue
	Partitions []queueLength `json:"partitions"`
	Attempts   int64         `json:"acquire_attempts"`
	Timeouts   int64         `json:"acquire_timeouts"`
	QueueFull  int64         `json:"acquire_queue_full"`
	Canceled   int64         `json:"acquire_canceled"`
	Wait       Latency       `json:"wait"`
	// OmittedPartitions are the partitions added up in Partitions'
	// OverflowPartition.
	OmittedPartitions int `json:"omitted_partitions"`
}

// queueLength is one partition's waiting acquisitions.
type queueLength struct {
	Partition string `json:"partition"`
	Waiting   int    `json:"waiting"`
}

func (h *handler) queue(w http.ResponseWriter, r *http.Request) {
	rep := h.current()
	t := rep.Metrics.Total
	q := queueBody{
		Waiting: rep.Pool.Waiting, Queued: rep.Pool.Queued, Partitions: []queueLength{}, OmittedPartitions: rep.OmittedPartitions,
		Attempts: t.Attempts, Timeouts: t.Timeouts, QueueFull: t.QueueFull, Canceled: t.Canceled, Wait: t.Wait,
	}
	for _, p := range rep.Pool.partitionStates() {
		q.Partitions = append(q.Partitions, queueLength{Partition: p.Name, Waiting: p.Waiting})
	}
	httpjson.Write(w, http.StatusOK, q)
}

// partitionReport is one partition's pool state and metrics, an element of
// /api/partitions.
type partitionReport struct {
	PartitionState
	Metrics Metrics `json:"metrics"`
	// Omitted, on the OverflowPartition row, is the number of partitions
	// it adds up beside its own (Report.OmittedPartitions).
	Omitted int `json:"omitted_partitions,omitempty"`
}

// partitionReports joins the pool's partitions and the recorder's by name.
// Bound rep first.
func partitionReports(rep Report) []partitionReport {
	byName := map[string]*partitionReport{}
	var out []*partitionReport
	get := func(name string) *partitionReport {
		p := byName[name]
		if p == nil {
			p = &partitionReport{PartitionState: PartitionState{Name: name}}
			p.Metrics = Metrics{Partition: name, PeakHour: -1}
			byName[name] = p
			out = append(out, p)
		}
		return p
	}
	for _, s := range rep.Pool.partitionStates() {
		get(s.Name).PartitionState = s
	}
	for _, m := range rep.Metrics.Partitions {
		get(m.Partition).Metrics = m
	}
	slices.SortFunc(out, func(a, b *partitionReport) int { return strings.Compare(a.Name, b.Name) })
	reports := make([]partitionReport, len(out))
	for i, p := range out {
		if p.Name == OverflowPartition {
			p.Omitted = rep.OmittedPartitions
		}
		reports[i] = *p
	}
	return reports
}

func (h *handler) partitions(w http.ResponseWriter, r *http.Request) {
	httpjson.Write(w, http.StatusOK, partitionReports(h.current()))
}

// leaksBody is the body of /api/leaks.
type leaksBody struct {
	Detected int64  `json:"detected_total"` // since recording started or was reset
	Leaks    []Leak `json:"leaks"`          // held past the threshold now, the longest held first
	Omitted  int    `json:"omitted"`        // held past the threshold now, beyond HandlerConfig.MaxLeaks
}

func (h *handler) leaks(w http.ResponseWriter, r *http.Request) {
	rep := h.current()
	httpjson.Write(w, http.StatusOK, leaksBody{Detected: rep.Metrics.Total.LeaksDetected, Leaks: rep.Leaks, Omitted: rep.OmittedLeaks})
}

// dashboardData is the body of /api/dashboard: what the page shows.
type dashboardData struct {
	Time    time.Time `json:"time"`
	Size    int       `json:"size"`
	MaxSize int       `json:"max_size"`
	Idle    int       `json:"idle"`
	InUse   int       `json:"in_use"`
	// Waiting is PoolState.Waiting: the sum of the partitions' Waiting.
	Waiting int `json:"waiting"`
	// Queued is PoolState.Queued: those of them in the pool's own queue.
	Queued    int  `json:"queued"`
	Suspended bool `json:"suspended"`

	Efficiency        Efficiency `json:"efficiency"`
	AcquiresPerSecond float64    `json:"acquires_per_second"`
	Attempts          int64      `json:"acquire_attempts"`
	Failures          int64      `json:"acquire_failures"`
	Timeouts          int64      `json:"acquire_timeouts"`
	Wait              Latency    `json:"wait"`
	Hold              Latency    `json:"hold"`
	// StatementCacheHits and StatementCacheMisses are the totals'
	// (Metrics): the sums of the partitions' lookups.
	StatementCacheHits   int64 `json:"statement_cache_hits"`
	StatementCacheMisses int64 `json:"statement_cache_misses"`

	LeaksDetected int64                `json:"leaks_detected"`
	Leaks         []Leak               `json:"leaks"`
	Partitions    []dashboardPartition `json:"partitions"`
	History       []Sample             `json:"history"`

	// OmittedPartitions and OmittedLeaks are Report's: what the bounds
	// left out of Partitions (added up under OverflowPartition) and Leaks.
	OmittedPartitions int `json:"omitted_partitions"`
	OmittedLeaks      int `json:"omitted_leaks"`
}

// dashboardPartition is one row of the dashboard's partition table.
type dashboardPartition struct {
	Name                  string   `json:"name"`
	Idle                  int      `json:"idle"`
	InUse                 int      `json:"in_use"`
	Waiting               int      `json:"waiting"`
	Suspended             bool     `json:"suspended"`
	Acquires              int64    `json:"acquire_successes"`
	Failures              int64    `json:"acquire_failures"`
	AcquiresPerSecond     float64  `json:"acquires_per_second"`
	WaitP95               Duration `json:"wait_p95_seconds"`
	HoldP95               Duration `json:"hold_p95_seconds"`
	StatementCacheHits    int64    `json:"statement_cache_hits"`
	StatementCacheMisses  int64    `json:"statement_cache_misses"`
	StatementCacheHitRate float64  `json:"statement_cache_hit_rate"`
	LeaksDetected         int64    `json:"leaks_detected"`
}

// newDashboard derives the dashboard's data from a report. The header's
// waiting and statement-cache figures are the report's totals, which the
// rows add up to (PoolState.Waiting, Snapshot.Total), "other" included.
func newDashboard(rep Report) dashboardData {
	t := rep.Metrics.Total
	d := dashboardData{
		Time: rep.Metrics.Time, Size: rep.Pool.Size, MaxSize: rep.Pool.MaxSize, Idle: rep.Pool.Idle,
		InUse: rep.Pool.InUse, Waiting: rep.Pool.Waiting, Queued: rep.Pool.Queued, Suspended: rep.Pool.Suspended,
		Efficiency: rep.Efficiency(), AcquiresPerSecond: t.AcquiresPerSecond,
		Attempts: t.Attempts, Failures: t.Failures, Timeouts: t.Timeouts,
		Wait: t.Wait, Hold: t.Hold, LeaksDetected: t.LeaksDetected,
		StatementCacheHits: t.StatementCacheHits, StatementCacheMisses: t.StatementCacheMisses,
		Leaks: rep.Leaks, History: rep.Metrics.History, Partitions: []dashboardPartition{},
		OmittedPartitions: rep.OmittedPartitions, OmittedLeaks: rep.OmittedLeaks,
	}
	d.Wait.Buckets, d.Hold.Buckets = nil, nil
	for _, p := range partitionReports(rep) {
		m := p.Metrics
		d.Partitions = append(d.Partitions, dashboardPartition{
			Name: p.Name, Idle: p.Idle, InUse: p.InUse, Waiting: p.Waiting, Suspended: p.Suspended,
			Acquires: m.Successes, Failures: m.Failures, AcquiresPerSecond: m.AcquiresPerSecond,
			WaitP95: m.Wait.P95, HoldP95: m.Hold.P95, StatementCacheHits: m.StatementCacheHits,
			StatementCacheMisses: m.StatementCacheMisses, StatementCacheHitRate: m.StatementCacheHitRate,
			LeaksDetected: m.LeaksDetected,
		})
	}
	return d
}

func (h *handler) dashboard(w http.ResponseWriter, r *http.Request) {
	httpjson.Write(w, http.StatusOK, newDashboard(h.current()))
}

func (h *handler) export(w http.ResponseWriter, r *http.Request) {
	var (
		write       func(io.Writer, Report) error
		contentType string
		ext         string
	)
	switch f := r.URL.Query().Get("format"); f {
	case "", "json":
		write, contentType, ext = WriteJSON, "application/json", "json"
	case "csv":
		write, contentType, ext = WriteCSV, "text/csv; charset=utf-8", "csv"
	case "prometheus":
		write, contentType, ext = writePrometheus, "text/plain; version=0.0.4; charset=utf-8", "txt"
	default:
		httpjson.Error(w, http.StatusBadRequest, fmt.Sprintf("format: unknown format %q, want json, csv or prometheus", f))
		return
	}
	var buf bytes.Buffer
	if err := write(&buf, h.current()); errors.Is(err, errNoPrometheus) {
		httpjson.Error(w, http.StatusNotImplemented, "format=prometheus: "+err.Error())
		return
	} else if err != nil {
		httpjson.Error(w, http.StatusInternalServerError, "export: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="sqlpool-stats.%s"`, ext))
	w.Write(buf.Bytes())
}

func (h *handler) resize(w http.ResponseWriter, r *http.Request) {
	if h.actions.Resize == nil {
		notSupported(w, "resize")
		return
	}
	var req struct {
		MaxSize int `json:"max_size"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if req.MaxSize < 1 {
		httpjson.Error(w, http.StatusBadRequest, fmt.Sprintf("max_size: required, at least 1 (got %d)", req.MaxSize))
		return
	}
	h.finish(w, h.actions.Resize(r.Context(), req.MaxSize), nil)
}

// partitionRequest is the body of the partition actions.
type partitionRequest struct {
	Partition string `json:"partition"`
}

func (h *handler) partitionAction(f func(context.Context, string) error, required bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if f == nil {
			notSupported(w, strings.TrimPrefix(r.URL.Path, "/api/"))
			return
		}
		var req partitionRequest
		if !decodeBody(w, r, &req) {
			return
		}
		if required && req.Partition == "" {
			httpjson.Error(w, http.StatusBadRequest, "partition: required")
			return
		}
		h.finish(w, f(r.Context(), req.Partition), nil)
	}
}

func (h *handler) evict(w http.ResponseWriter, r *http.Request) {
	if h.actions.EvictIdle == nil {
		notSupported(w, "evict")
		return
	}
	var req partitionRequest
	if !decodeBody(w, r, &req) {
		return
	}
	n, err := h.actions.EvictIdle(r.Context(), req.Partition)
	h.finish(w, err, map[string]any{"ok": true, "evicted": n})
}

func (h *handler) reset(w http.ResponseWriter, r *http.Request) {
	if h.actions.ResetStats == nil {
		notSupported(w, "reset")
		return
	}
	var req struct{}
	if !decodeBody(w, r, &req) {
		return
	}
	h.finish(w, h.actions.ResetStats(r.Context()), nil)
}

// finish answers an action's outcome: body, or {"ok": true} when nil, on
// success.
func (h *handler) finish(w http.ResponseWriter, err error, body any) {
	switch {
	case err == nil:
		if body == nil {
			body = map[string]bool{"ok": true}
		}
		httpjson.Write(w, http.StatusOK, body)
	case errors.Is(err, ErrNotFound):
		httpjson.Error(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrInvalid):
		httpjson.Error(w, http.StatusBadRequest, err.Error())
	default:
		httpjson.Error(w, http.StatusInternalServerError, err.Error())
	}
}

func notSupported(w http.ResponseWriter, action string) {
	httpjson.Error(w, http.StatusNotImplemented, action+": not supported by this pool")
}

// maxBody bounds an action's request body.
const maxBody = 64 << 10

// decodeBody decodes an action's JSON body into v; an empty body leaves v
// as it is. It answers 400 itself, naming what was wrong.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("unexpected data after the JSON object")
	}
	if err != nil && err != io.EOF {
		httpjson.Error(w, http.StatusBadRequest, "body: "+strings.TrimPrefix(err.Error(), "json: "))
		return false
	}
	return true
}
