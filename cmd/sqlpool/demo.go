package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/go-sql-driver/mysql"
	"github.com/lib/pq"
	"github.com/mattn/go-sqlite3"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/pool"
)

// demoConfig configures runDemo.
type demoConfig struct {
	Driver   string        // sqlite (default), postgres or mysql
	DSN      string        // required for postgres and mysql; sqlite: a temporary file when empty
	Duration time.Duration // how long the workload runs
	Tenants  int           // number of tenants
	Workers  int           // concurrent workers
	MaxSize  int           // the pool's MaxSize
	// Serve is an address to serve the dashboard and management API on,
	// from the end of the setup until ctx ends: during the workload and
	// after it, with the pool kept open, so that the POST actions can be
	// tried. "" for none: the demo ends with the workload.
	Serve string
	// Token is the management API's bearer token (Config.ManagementToken);
	// "" leaves the API read-only. Only with Serve.
	Token string

	// Progress receives progress reports while the workload runs; nil for
	// none. With Interactive, a redrawn progress bar; without, one line at
	// the start, so that logs are not spammed.
	Progress    io.Writer
	Interactive bool
}

// Workload mix, in percent of operations; the rest are transactions.
const (
	readPercent   = 70
	insertPercent = 20

	seedRowsPerTenant = 16
	reservoirSize     = 4096 // row ids remembered per tenant for reads
)

// errUsageShown: the FlagSet has already printed the problem and the usage.
var errUsageShown = errors.New("usage shown")

func runDemoCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := demoConfig{}
	fs := flag.NewFlagSet("sqlpool demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Driver, "driver", "sqlite", "database driver: sqlite, postgres or mysql")
	fs.StringVar(&cfg.DSN, "dsn", "", "data source name (required for postgres and mysql; sqlite: a temporary file, removed at the end)")
	fs.DurationVar(&cfg.Duration, "duration", 5*time.Second, "how long the workload runs")
	fs.IntVar(&cfg.Tenants, "tenants", 4, "number of tenants (load is skewed: the first tenant is the busiest)")
	fs.IntVar(&cfg.Workers, "workers", 16, "number of concurrent workers")
	fs.IntVar(&cfg.MaxSize, "max", 8, "the pool's MaxSize: physical connections open at most")
	fs.StringVar(&cfg.Serve, "serve", "", "serve the dashboard and management API on this address (e.g. 127.0.0.1:8080) during the workload\nand after it, with the pool kept open, until interrupted (Ctrl-C)")
	fs.StringVar(&cfg.Token, "token", "", "with -serve, the bearer token the management API's POST actions require (default: read-only API);\nother local users can see it in the process list")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprint(w, "Usage: sqlpool demo [flags]\n\n")
		fmt.Fprint(w, "Runs a concurrent multi-tenant workload (reads by primary key, inserts and short\n")
		fmt.Fprint(w, "transactions, each routed with sqlpool.WithTenant) through a sqlpool Connector,\n")
		fmt.Fprint(w, "then prints the pool's statistics and per-tenant latencies to stdout.\n")
		fmt.Fprint(w, "The table it creates is dropped at the end.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// A progress bar on a terminal; on anything else (a log, a pipe), one line.
	cfg.Progress = stderr
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		cfg.Interactive = true
	}
	return runDemo(ctx, stdout, cfg)
}

// dialect is what the demo needs to know of one database.
type dialect struct {
	name      string
	driver    func() driver.Driver
	returning bool                    // INSERT ... RETURNING id instead of LastInsertId
	ph        func(i int) string      // the i-th placeholder, from 1
	create    string                  // CREATE TABLE; %s is the table name
	drop      string                  // DROP TABLE; %s is the table name
	display   func(dsn string) string // a DSN without secrets
}

var dialects = map[string]*dialect{
	"sqlite": {
		name:   "sqlite",
		driver: func() driver.Driver { return &sqlite3.SQLiteDriver{} },
		ph:     func(int) string { return "?" },
		create: `CREATE TABLE %s (
			id      INTEGER PRIMARY KEY AUTOINCREMENT,
			tenant  TEXT    NOT NULL,
			payload TEXT    NOT NULL,
			hits    INTEGER NOT NULL DEFAULT 0)`,
		drop:    `DROP TABLE IF EXISTS %s`,
		display: func(dsn string) string { return dsn },
	},
	"postgres": {
		name:      "postgres",
		driver:    func() driver.Driver { return &pq.Driver{} },
		returning: true,
		ph:        func(i int) string { return "$" + strconv.Itoa(i) },
		create: `CREATE TABLE %s (
			id      BIGSERIAL PRIMARY KEY,
			tenant  TEXT   NOT NULL,
			payload TEXT   NOT NULL,
			hits    BIGINT NOT NULL DEFAULT 0)`,
		drop:    `DROP TABLE IF EXISTS %s`,
		display: redactURL,
	},
	"mysql": {
		name:   "mysql",
		driver: func() driver.Driver { return &mysql.MySQLDriver{} },
		ph:     func(int) string { return "?" },
		create: `CREATE TABLE %s (
			id      BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
			tenant  VARCHAR(64)  NOT NULL,
			payload VARCHAR(200) NOT NULL,
			hits    BIGINT       NOT NULL DEFAULT 0) ENGINE=InnoDB`,
		drop: `DROP TABLE IF EXISTS %s`,
		display: func(dsn string) string {
			if c, err := mysql.ParseDSN(dsn); err == nil && c.Passwd != "" {
				c.Passwd = "xxxxx"
				return c.FormatDSN()
			}
			return dsn
		},
	},
}

// driverAliases maps accepted -driver values to dialects.
var driverAliases = map[string]string{
	"sqlite": "sqlite", "sqlite3": "sqlite",
	"postgres": "postgres", "postgresql": "postgres", "pq": "postgres",
	"mysql": "mysql", "mariadb": "mysql",
}

// redactURL hides a password in a URL-style DSN.
func redactURL(dsn string) string {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return dsn
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok {
		return dsn
	}
	if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
		return scheme + "://" + user + ":xxxxx@" + host
	}
	return dsn
}

// queries are the demo's statements for one table and dialect.
type queries struct {
	read, insert, bump, hits string
}

func newQueries(d *dialect, table string) queries {
	q := queries{
		read:   fmt.Sprintf("SELECT payload, hits FROM %s WHERE id = %s AND tenant = %s", table, d.ph(1), d.ph(2)),
		insert: fmt.Sprintf("INSERT INTO %s (tenant, payload) VALUES (%s, %s)", table, d.ph(1), d.ph(2)),
		bump:   fmt.Sprintf("UPDATE %s SET hits = hits + 1 WHERE id = %s AND tenant = %s", table, d.ph(1), d.ph(2)),
		hits:   fmt.Sprintf("SELECT hits FROM %s WHERE id = %s", table, d.ph(1)),
	}
	if d.returning {
		q.insert += " RETURNING id"
	}
	return q
}

// opKind is a kind of operation of the workload.
type opKind int

const (
	opRead opKind = iota
	opInsert
	opTx
	numOpKinds
)

var opNames = [numOpKinds]string{"reads", "inserts", "transactions"}

// tenant is one tenant's routing context, row ids and statistics.
type tenant struct {
	name   string
	ctx    context.Context // the run's context, WithTenant
	weight float64         // cumulative share of the load, up to 1

	ops  [numOpKinds]atomic.Int64 // successful operations, by kind
	errs atomic.Int64

	mu   sync.Mutex
	hist *hdrhistogram.Histogram // latency of every operation, µs; guarded by mu
	ids  []int64                 // a reservoir of row ids; guarded by mu
}

func (t *tenant) record(kind opKind, d time.Duration, err error) {
	if err != nil {
		t.errs.Add(1)
	} else {
		t.ops[kind].Add(1)
	}
	us := min(max(d.Microseconds(), 1), t.hist.HighestTrackableValue())
	t.mu.Lock()
	_ = t.hist.RecordValue(us)
	t.mu.Unlock()
}

// addID remembers a row id of the tenant, replacing a random one once the
// reservoir is full.
func (t *tenant) addID(r *mrand.Rand, id int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.ids) < reservoirSize {
		t.ids = append(t.ids, id)
	} else {
		t.ids[r.IntN(len(t.ids))] = id
	}
}

func (t *tenant) randomID(r *mrand.Rand) (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.ids) == 0 {
		return 0, false
	}
	return t.ids[r.IntN(len(t.ids))], true
}

// tenantNames are the first tenants' names; later ones are tenant-N.
var tenantNames = []string{"acme", "globex", "initech", "umbrella", "hooli", "wonka", "stark", "wayne"}

func tenantName(i int) string {
	if i < len(tenantNames) {
		return tenantNames[i]
	}
	return "tenant-" + strconv.Itoa(i+1)
}

// demo is one run of the workload.
type demo struct {
	cfg     demoConfig
	dialect *dialect
	q       queries
	db      *sql.DB
	tenants []*tenant
	ops     atomic.Int64 // operations finished, failed or not, for progress

	errMu   sync.Mutex
	errSeen map[string]int64 // error text → count; guarded by errMu
}

func (cfg *demoConfig) validate() (*dialect, error) {
	name, ok := driverAliases[strings.ToLower(cfg.Driver)]
	if !ok {
		return nil, usageError{fmt.Sprintf("unknown -driver %q: want sqlite, postgres or mysql", cfg.Driver)}
	}
	d := dialects[name]
	switch {
	case d.name != "sqlite" && cfg.DSN == "":
		return nil, usageError{fmt.Sprintf("-driver %s needs -dsn", d.name)}
	case cfg.Duration <= 0:
		return nil, usageError{fmt.Sprintf("-duration must be positive, not %v", cfg.Duration)}
	case cfg.Tenants < 1 || cfg.Tenants > 1000:
		return nil, usageError{fmt.Sprintf("-tenants must be between 1 and 1000, not %d", cfg.Tenants)}
	case cfg.Workers < 1 || cfg.Workers > 10000:
		return nil, usageError{fmt.Sprintf("-workers must be between 1 and 10000, not %d", cfg.Workers)}
	case cfg.MaxSize < 1:
		return nil, usageError{fmt.Sprintf("-max must be at least 1, not %d", cfg.MaxSize)}
	case cfg.Token != "" && cfg.Serve == "":
		return nil, usageError{"-token needs -serve: it protects the management API that -serve starts"}
	}
	return d, nil
}

// runDemo creates a table, runs the workload for cfg.Duration (or until ctx
// ends), drops the table, closes the pool and writes a summary to out. With
// cfg.Serve, it serves the dashboard from the end of the setup, writes the
// summary when the workload ends and keeps the pool open and served until
// ctx ends. An end of ctx during the setup is a clean stop, not an error.
func runDemo(ctx context.Context, out io.Writer, cfg demoConfig) (err error) {
	d, err := cfg.validate()
	if err != nil {
		return err
	}
	dsn := cfg.DSN
	if d.name == "sqlite" && dsn == "" {
		dir, err := os.MkdirTemp("", "sqlpool-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		// WAL lets readers run beside the writer; busy_timeout makes writers
		// wait for the lock instead of failing; an immediate BEGIN takes the
		// write lock up front, so a transaction never fails upgrading to it.
		dsn = "file:" + filepath.Join(dir, "demo.db") +
			"?_journal_mode=WAL&_busy_timeout=10000&_txlock=immediate&_synchronous=NORMAL"
	}

	c, err := sqlpool.NewConnector(d.driver(), dsn, sqlpool.Config{
		MaxSize:         cfg.MaxSize,
		ConnectTimeout:  10 * time.Second,
		AcquireTimeout:  10 * time.Second,
		ManagementToken: cfg.Token,
	})
	if err != nil {
		return fmt.Errorf("%s DSN: %w", d.name, err)
	}
	db := sqlpool.OpenDB(c)
	closed := false
	defer func() {
		if !closed {
			db.Close()
		}
	}()
	// The caller's interrupt during the setup is a stop, not a failure;
	// the setup's own timeout is a failure.
	setupFailed := func(err error) error {
		if ctx.Err() != nil {
			fmt.Fprintln(out, "sqlpool demo: interrupted during the setup; no workload ran")
			return nil
		}
		return err
	}
	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := db.PingContext(setupCtx); err != nil {
		return setupFailed(fmt.Errorf("cannot connect to %s (%s): %w", d.name, d.display(dsn), err))
	}

	table := "sqlpool_demo_" + randomHex(4)
	if _, err := db.ExecContext(setupCtx, fmt.Sprintf(d.create, table)); err != nil {
		return setupFailed(fmt.Errorf("creating table %s: %w", table, err))
	}
	dropped := false
	drop := func() error {
		if dropped {
			return nil
		}
		dropped = true
		// Not the run's context: an interrupted demo still cleans up.
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(dctx, fmt.Sprintf(d.drop, table)); err != nil {
			return fmt.Errorf("dropping table %s: %w", table, err)
		}
		return nil
	}
	defer func() {
		if derr := drop(); err == nil {
			err = derr
		}
	}()

	dm := &demo{cfg: cfg, dialect: d, q: newQueries(d, table), db: db, errSeen: make(map[string]int64)}
	dm.makeTenants(ctx)
	if err := dm.seed(setupCtx); err != nil {
		return setupFailed(fmt.Errorf("seeding table %s: %w", table, err))
	}
	cancel()

	// Served only now, so that what the dashboard shows is the workload's
	// pool, and an interrupt once it is announced stops a workload.
	var url string
	if cfg.Serve != "" {
		var stop func()
		url, stop, err = serveDashboard(cfg.Serve, c)
		if err != nil {
			return err
		}
		defer stop()
		dm.announce(url)
	}

	elapsed := dm.run(ctx)
	live := c.Stats()
	if cfg.Serve != "" {
		// The pool stays open for the dashboard and the POST actions: the
		// summary comes now, from the live pool.
		dm.summary(out, dsn, elapsed, ctx.Err() != nil, live, live)
		if ctx.Err() == nil && cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "sqlpool demo: the workload is over; the pool stays open, served on %s until interrupted (Ctrl-C)\n", url)
		}
		<-ctx.Done()
	}

	// Drop the table and close the pool before the final snapshot, so that
	// every connection appears as closed, with its reason.
	derr := drop()
	cerr := db.Close()
	closed = true
	final := c.Stats()

	if cfg.Serve == "" {
		dm.summary(out, dsn, elapsed, ctx.Err() != nil, live, final)
	}
	if dm.ops.Load() > 0 && dm.succeeded() == 0 {
		return errors.New("every operation failed (see ERRORS above)")
	}
	if derr != nil {
		return derr
	}
	if cerr != nil {
		return fmt.Errorf("closing the pool: %w", cerr)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// makeTenants makes the tenants, with a skewed share of the load: tenant i
// (from 1) weighs 1/i.
func (dm *demo) makeTenants(ctx context.Context) {
	var total float64
	for i := range dm.cfg.Tenants {
		total += 1 / float64(i+1)
	}
	var cum float64
	for i := range dm.cfg.Tenants {
		cum += 1 / float64(i+1) / total
		name := tenantName(i)
		dm.tenants = append(dm.tenants, &tenant{
			name:   name,
			ctx:    sqlpool.WithTenant(ctx, name),
			weight: cum,
			hist:   hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3),
		})
	}
	dm.tenants[len(dm.tenants)-1].weight = 1
}

func (dm *demo) pickTenant(r *mrand.Rand) *tenant {
	x := r.Float64()
	i := sort.Search(len(dm.tenants), func(i int) bool { return dm.tenants[i].weight > x })
	return dm.tenants[min(i, len(dm.tenants)-1)]
}

// seed inserts a few rows per tenant, in one untagged transaction.
func (dm *demo) seed(ctx context.Context) error {
	r := mrand.New(mrand.NewPCG(1, 2))
	tx, err := dm.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var ids [][]int64
	for _, t := range dm.tenants {
		var tids []int64
		for range seedRowsPerTenant {
			id, err := dm.insert(ctx, tx, t, r)
			if err != nil {
				return err
			}
			tids = append(tids, id)
		}
		ids = append(ids, tids)
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	for i, t := range dm.tenants {
		for _, id := range ids[i] {
			t.addID(r, id)
		}
	}
	return nil
}

// execQuerier is what *sql.DB and *sql.Tx have in common here.
type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (dm *demo) insert(ctx context.Context, q execQuerier, t *tenant, r *mrand.Rand) (int64, error) {
	payload := t.name + "-" + strconv.FormatUint(r.Uint64(), 36)
	if dm.dialect.returning {
		var id int64
		err := q.QueryRowContext(ctx, dm.q.insert, t.name, payload).Scan(&id)
		return id, err
	}
	res, err := q.ExecContext(ctx, dm.q.insert, t.name, payload)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// run runs the workers until the duration has passed or ctx ends, with the
// progress report, and returns how long they ran.
func (dm *demo) run(ctx context.Context) time.Duration {
	start := time.Now()
	end := start.Add(dm.cfg.Duration)
	var wg sync.WaitGroup
	for i := range dm.cfg.Workers {
		r := mrand.New(mrand.NewPCG(uint64(start.UnixNano()), uint64(i)))
		wg.Go(func() { dm.worker(ctx, r, end) })
	}
	done := make(chan struct{})
	var pwg sync.WaitGroup
	if dm.cfg.Progress != nil {
		pwg.Go(func() { dm.progress(ctx, start, done) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(done)
	pwg.Wait()
	return elapsed
}

func (dm *demo) worker(ctx context.Context, r *mrand.Rand, end time.Time) {
	for ctx.Err() == nil && time.Now().Before(end) {
		t := dm.pickTenant(r)
		var kind opKind
		switch p := r.IntN(100); {
		case p < readPercent:
			kind = opRead
		case p < readPercent+insertPercent:
			kind = opInsert
		default:
			kind = opTx
		}
		start := time.Now()
		err := dm.op(t, kind, r)
		d := time.Since(start)
		if err != nil && ctx.Err() != nil {
			return // interrupted: not the database's fault
		}
		if err != nil {
			dm.noteError(err)
		}
		t.record(kind, d, err)
		dm.ops.Add(1)
	}
}

// op runs one operation for tenant t, routed by its context.
func (dm *demo) op(t *tenant, kind opKind, r *mrand.Rand) error {
	ctx := t.ctx
	switch kind {
	case opRead:
		id, ok := t.randomID(r)
		if !ok {
			return errors.New("no rows to read")
		}
		var payload string
		var hits int64
		return dm.db.QueryRowContext(ctx, dm.q.read, id, t.name).Scan(&payload, &hits)

	case opInsert:
		id, err := dm.insert(ctx, dm.db, t, r)
		if err == nil {
			t.addID(r, id)
		}
		return err

	default:
		// A short transaction: bump a row's counter, read it back, add a row.
		id, ok := t.randomID(r)
		if !ok {
			return errors.New("no rows to update")
		}
		tx, err := dm.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		res, err := tx.ExecContext(ctx, dm.q.bump, id, t.name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return fmt.Errorf("update of row %d touched %d rows", id, n)
		}
		var hits int64
		if err := tx.QueryRowContext(ctx, dm.q.hits, id).Scan(&hits); err != nil {
			return err
		}
		newID, err := dm.insert(ctx, tx, t, r)
		if err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		t.addID(r, newID)
		return nil
	}
}

func (dm *demo) noteError(err error) {
	dm.errMu.Lock()
	defer dm.errMu.Unlock()
	msg := err.Error()
	if _, ok := dm.errSeen[msg]; ok || len(dm.errSeen) < 10 {
		dm.errSeen[msg]++
	} else {
		dm.errSeen["(other errors)"]++
	}
}

// progress shows a time-based progress bar with the recent rate of
// operations until done is closed; when not interactive, it writes one line.
func (dm *demo) progress(ctx context.Context, start time.Time, done <-chan struct{}) {
	w := dm.cfg.Progress
	if !dm.cfg.Interactive {
		fmt.Fprintf(w, "sqlpool demo: running %v on %s with %d workers, %d tenants, MaxSize %d...\n",
			dm.cfg.Duration, dm.dialect.name, dm.cfg.Workers, dm.cfg.Tenants, dm.cfg.MaxSize)
		<-done
		return
	}
	total := dm.cfg.Duration.Milliseconds()
	bar := progressbar.NewOptions64(max(total, 1),
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(dm.dialect.name+" demo: starting"),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionSetTheme(progressbar.ThemeASCII),
		// One redraw per tick: Set64 draws, the Describe right after is
		// throttled and shows on the next one.
		progressbar.OptionThrottle(50*time.Millisecond),
	)
	// The rate over the last second or so, from samples every 100ms.
	type sample struct {
		at  time.Time
		ops int64
	}
	samples := []sample{{start, 0}}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			_ = bar.Finish()
			return
		case now := <-tick.C:
			n := dm.ops.Load()
			samples = append(samples, sample{now, n})
			if len(samples) > 11 {
				samples = samples[len(samples)-11:]
			}
			first := samples[0]
			rate := 0.0
			if dt := now.Sub(first.at).Seconds(); dt > 0 {
				rate = float64(n-first.ops) / dt
			}
			el := now.Sub(start)
			state := ""
			if ctx.Err() != nil {
				state = ", stopping"
			}
			_ = bar.Set64(min(el.Milliseconds(), total-1))
			bar.Describe(fmt.Sprintf("%s/%v  %s ops/s  %s ops  (%s%s)",
				el.Truncate(100*time.Millisecond), dm.cfg.Duration,
				group(int64(math.Round(rate))), group(n), dm.dialect.name, state))
		}
	}
}

// summary writes the report.
func (dm *demo) summary(out io.Writer, dsn string, elapsed time.Duration, interrupted bool, live, final sqlpool.Stats) {
	var totalOps, totalErrs int64
	var byKind [numOpKinds]int64
	all := hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
	for _, t := range dm.tenants {
		for k := range byKind {
			n := t.ops[k].Load()
			byKind[k] += n
			totalOps += n
		}
		totalErrs += t.errs.Load()
		all.Merge(t.hist)
	}
	secs := elapsed.Seconds()

	where := dm.dialect.display(dsn)
	if dm.cfg.DSN == "" {
		where = "temporary file " + strings.TrimPrefix(strings.SplitN(dsn, "?", 2)[0], "file:") + ", WAL, busy_timeout 10s, removed at the end"
	}
	fmt.Fprintf(out, "sqlpool demo on %s (%s)\n", dm.dialect.name, where)
	how := "ran"
	if interrupted {
		how = "interrupted after"
	}
	fmt.Fprintf(out, "%d workers, %d tenants, MaxSize %d; %s %s\n\n",
		dm.cfg.Workers, dm.cfg.Tenants, dm.cfg.MaxSize, how, elapsed.Round(time.Millisecond))

	var buf strings.Builder
	defer func(w io.Writer) { io.WriteString(w, trimLines(buf.String())) }(out)
	out = &buf
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "WORKLOAD\t\n")
	fmt.Fprintf(tw, "  operations\t%s (%s/s)\n", group(totalOps), group(int64(math.Round(float64(totalOps)/secs))))
	mix := make([]string, 0, numOpKinds)
	for k, n := range byKind {
		mix = append(mix, group(n)+" "+opNames[k])
	}
	fmt.Fprintf(tw, "  mix\t%s\n", strings.Join(mix, ", "))
	fmt.Fprintf(tw, "  errors\t%s\n", group(totalErrs))
	fmt.Fprintf(tw, "  operation latency\tp50 %s, p99 %s, max %s\n",
		fmtMicros(all.ValueAtQuantile(50)), fmtMicros(all.ValueAtQuantile(99)), fmtMicros(all.Max()))
	fmt.Fprintf(tw, "\t\n")

	fmt.Fprintf(tw, "POOL (sqlpool.Connector.Stats)\t\n")
	fmt.Fprintf(tw, "  connections created\t%s\n", group(final.Created))
	var closedN int64
	var reasons []pool.CloseReason
	for r, n := range final.Closed {
		closedN += n
		if n > 0 {
			reasons = append(reasons, r)
		}
	}
	slices.Sort(reasons)
	byReason := make([]string, 0, len(reasons))
	for _, r := range reasons {
		byReason = append(byReason, fmt.Sprintf("%s %s", r, group(final.Closed[r])))
	}
	closedLine := group(closedN)
	if len(byReason) > 0 {
		closedLine += " (" + strings.Join(byReason, ", ") + ")"
	}
	fmt.Fprintf(tw, "  connections closed\t%s\n", closedLine)
	if final.ConnectErrors > 0 {
		fmt.Fprintf(tw, "  failed dials\t%s (last: %v)\n", group(final.ConnectErrors), final.LastConnectError)
	}
	fmt.Fprintf(tw, "  open when the workload ended\t%d of %d (%d idle, %d in use, %d waiting)\n",
		live.Size, live.MaxSize, live.Idle, live.InUse, live.Waiting)
	fmt.Fprintf(tw, "  acquisitions\t%s\n", group(final.Acquires))
	waitPct := 0.0
	if final.Acquires > 0 {
		waitPct = 100 * float64(final.Waits) / float64(final.Acquires)
	}
	fmt.Fprintf(tw, "  waits\t%s (%.1f%% of acquisitions)\n", group(final.Waits), waitPct)
	meanWait := time.Duration(0)
	if final.Waits > 0 {
		meanWait = final.WaitTime / time.Duration(final.Waits)
	}
	fmt.Fprintf(tw, "  wait time\t%s total, %s mean per wait\n", fmtDuration(final.WaitTime), fmtDuration(meanWait))
	fmt.Fprintf(tw, "  timeouts\t%s\n", group(final.Timeouts))
	if final.QueueFull > 0 || final.Canceled > 0 {
		fmt.Fprintf(tw, "  refused (queue full), canceled\t%s, %s\n", group(final.QueueFull), group(final.Canceled))
	}
	tw.Flush()

	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "TENANT\tOPS\tOPS/S\tERRORS\tACQUISITIONS\tLAT-P50\tLAT-P99\t\n")
	var tenantAcq int64
	for _, t := range dm.tenants {
		var ops int64
		for k := range t.ops {
			ops += t.ops[k].Load()
		}
		acq := final.Partitions[t.name].Acquires
		tenantAcq += acq
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", t.name, group(ops),
			group(int64(math.Round(float64(ops)/secs))), group(t.errs.Load()), group(acq),
			fmtMicros(t.hist.ValueAtQuantile(50)), fmtMicros(t.hist.ValueAtQuantile(99)))
	}
	// Acquisitions outside the tenants' partitions: setup and cleanup.
	var others []string
	for name := range final.Partitions {
		if !dm.hasTenant(name) {
			others = append(others, name)
		}
	}
	slices.Sort(others)
	for _, name := range others {
		acq := final.Partitions[name].Acquires
		tenantAcq += acq
		fmt.Fprintf(tw, "(%s)\t-\t-\t-\t%s\t-\t-\t\n", name, group(acq))
	}
	fmt.Fprintf(tw, "total\t%s\t%s\t%s\t%s\t%s\t%s\t\n", group(totalOps),
		group(int64(math.Round(float64(totalOps)/secs))), group(totalErrs), group(final.Acquires),
		fmtMicros(all.ValueAtQuantile(50)), fmtMicros(all.ValueAtQuantile(99)))
	tw.Flush()

	fmt.Fprintln(out)
	fmt.Fprintln(out, "LAT-P50/LAT-P99: latency of each operation as the demo measured it, including the")
	fmt.Fprintln(out, "wait for a connection (sqlpool reports only total wait time, not per-acquisition")
	fmt.Fprintln(out, "waits). OPS count successful operations; a transaction is one operation and one")
	fmt.Fprintln(out, "acquisition. (default) is the untagged setup and cleanup.")

	if len(dm.errSeen) > 0 {
		fmt.Fprintln(out)
		fmt.Fprintln(out, "ERRORS")
		msgs := make([]string, 0, len(dm.errSeen))
		for m := range dm.errSeen {
			msgs = append(msgs, m)
		}
		slices.SortFunc(msgs, func(a, b string) int { return cmp.Compare(dm.errSeen[b], dm.errSeen[a]) })
		for _, m := range msgs {
			fmt.Fprintf(out, "  %8s  %s\n", group(dm.errSeen[m]), m)
		}
	}
}

// succeeded returns the number of successful operations.
func (dm *demo) succeeded() int64 {
	var n int64
	for _, t := range dm.tenants {
		for k := range t.ops {
			n += t.ops[k].Load()
		}
	}
	return n
}

func (dm *demo) hasTenant(name string) bool {
	for _, t := range dm.tenants {
		if t.name == name {
			return true
		}
	}
	return false
}

// trimLines removes the spaces tabwriter leaves at the ends of lines.
func trimLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

// group formats n with thousands separators.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func fmtMicros(us int64) string { return fmtDuration(time.Duration(us) * time.Microsecond) }

// fmtDuration formats d with three significant digits or so.
func fmtDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

// announce tells where the dashboard is and how to use the POST actions.
func (dm *demo) announce(url string) {
	w := dm.cfg.Progress
	if w == nil {
		return
	}
	fmt.Fprintf(w, "sqlpool demo: dashboard on %s\n", url)
	if dm.cfg.Token == "" {
		fmt.Fprintln(w, "sqlpool demo: the management API is read-only; -token TOKEN enables its POST actions")
		return
	}
	fmt.Fprintf(w, "sqlpool demo: POST actions take the -token as a bearer token, e.g.\n"+
		"\tcurl -X POST -H \"Authorization: Bearer $TOKEN\" -d '{\"max_size\": 4}' %sapi/resize\n", url)
}

// serveDashboard serves c's dashboard and management API on addr until stop
// is called, and returns its URL.
func serveDashboard(addr string, c *sqlpool.Connector) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("-serve: %w", err)
	}
	srv := &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	return "http://" + ln.Addr().String() + "/", func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	}, nil
}
