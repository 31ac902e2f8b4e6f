package main

import (
	"context"
	"database/sql/driver"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/lib/pq"
	"github.com/mattn/go-sqlite3"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/internal/workload"
)

// benchConfig configures runBench.
type benchConfig struct {
	Driver     string        // sqlite (default), postgres or mysql
	DSN        string        // required for postgres and mysql; sqlite: a temporary file when empty
	Duration   time.Duration // how long each client runs
	Goroutines int           // concurrent callers
	Workload   string        // select, insert or tx
	MaxSize    int           // cap on the connections of every client's pool
	Table      string        // created, filled with Rows rows and dropped by runBench
	Rows       int           // rows in Table

	// Progress receives a line as each client starts; nil for none.
	Progress io.Writer
}

// The default -table, and the limits of -rows and -goroutines.
const (
	defaultBenchTable  = "sqlpool_bench_run"
	maxBenchRows       = 10_000_000
	maxBenchGoroutines = 4096
)

func runBenchCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := benchConfig{Progress: stderr}
	fs := flag.NewFlagSet("sqlpool bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Driver, "driver", "sqlite", "database driver: sqlite, postgres or mysql")
	fs.StringVar(&cfg.DSN, "dsn", "", "data source name (required for postgres and mysql; sqlite: a temporary file, removed at the end)")
	fs.DurationVar(&cfg.Duration, "duration", 5*time.Second, "how long each client runs")
	fs.IntVar(&cfg.Goroutines, "goroutines", 8, "concurrent callers")
	fs.StringVar(&cfg.Workload, "workload", "select", "select (a row by primary key), insert (one row) or tx (a select, an insert and a select in a transaction)")
	fs.IntVar(&cfg.MaxSize, "max", 16, "cap on the connections of every client's pool")
	fs.StringVar(&cfg.Table, "table", defaultBenchTable, "name of the table bench creates, fills and drops; it must not exist")
	fs.IntVar(&cfg.Rows, "rows", 100_000, "rows the table is filled with")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprint(w, "Usage: sqlpool bench [flags]\n\n")
		fmt.Fprint(w, "Runs one workload against your database with each client in turn (the bare driver\n")
		fmt.Fprint(w, "through database/sql with and without prepared statements, the driver's other\n")
		fmt.Fprint(w, "modes, pgxpool on PostgreSQL, and sqlpool), each for -duration with -goroutines\n")
		fmt.Fprint(w, "callers and at most -max connections, then prints each client's throughput and\n")
		fmt.Fprint(w, "latency and the ratio of sqlpool's throughput to each one's.\n\n")
		fmt.Fprint(w, "It creates the table -table, fills it with -rows rows and drops it at the end, so\n")
		fmt.Fprint(w, "it works on an empty database; it never touches a table that already exists.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return runBench(ctx, stdout, cfg)
}

// benchDialect is what bench needs to know of one database, beside its
// dialect.
type benchDialect struct {
	create  string                              // CREATE TABLE; %s is the table name
	fill    func(table string, rows int) string // fills the table with ids 1 to rows, in one statement
	clients []benchClient                       // sqlpool last
}

// benchDialects maps a dialect's name to what bench needs of it.
var benchDialects = map[string]*benchDialect{
	"sqlite": {
		create: "CREATE TABLE %s (id INTEGER PRIMARY KEY, v TEXT NOT NULL)",
		fill: func(table string, rows int) string {
			return fmt.Sprintf("INSERT INTO %s (id, v) WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < %d) "+
				"SELECT n, 'value-' || n FROM g", table, rows)
		},
		clients: []benchClient{
			{"args", "mattn/go-sqlite3, query text and arguments each time", sqlOpener(&sqlite3.SQLiteDriver{}, nil, false)},
			{"prepared", "mattn/go-sqlite3, statements prepared once", sqlOpener(&sqlite3.SQLiteDriver{}, nil, true)},
			{"sqlpool", "mattn/go-sqlite3 through sqlpool, the same code as args", sqlpoolOpener(&sqlite3.SQLiteDriver{})},
		},
	},
	"postgres": {
		create: "CREATE TABLE %s (id bigint PRIMARY KEY, v text NOT NULL)",
		fill: func(table string, rows int) string {
			return fmt.Sprintf("INSERT INTO %s (id, v) SELECT g, 'value-' || g FROM generate_series(1, %d) g", table, rows)
		},
		clients: []benchClient{
			{"args", "lib/pq, query text and arguments each time", sqlOpener(&pq.Driver{}, nil, false)},
			{"prepared", "lib/pq, statements prepared once", sqlOpener(&pq.Driver{}, nil, true)},
			{"pgx", "pgx's database/sql driver (its own statement cache)", sqlOpener(stdlib.GetDefaultDriver(), nil, false)},
			{"pgxpool", "pgx's own pool and API, without database/sql", workload.Pgxpool},
			{"sqlpool", "lib/pq through sqlpool, the same code as args", sqlpoolOpener(&pq.Driver{})},
		},
	},
	"mysql": {
		create: "CREATE TABLE %s (id bigint PRIMARY KEY, v varchar(32) NOT NULL) ENGINE=InnoDB",
		fill: func(table string, rows int) string {
			// A cross join of digits: MariaDB caps recursive CTEs at 1000
			// iterations by default.
			digits := "(SELECT 0 i UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 " +
				"UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)"
			var terms, from []string
			for i, scale := 0, 1; scale < rows; i, scale = i+1, scale*10 {
				terms = append(terms, fmt.Sprintf("%d*d%d.i", scale, i))
				from = append(from, fmt.Sprintf("%s d%d", digits, i))
			}
			if len(terms) == 0 { // one row
				terms, from = []string{"0"}, []string{"(SELECT 0 i) d0"}
			}
			return fmt.Sprintf("INSERT INTO %s (id, v) SELECT n, CONCAT('value-', n) FROM (SELECT %s + 1 AS n FROM %s) g WHERE n <= %d",
				table, strings.Join(terms, " + "), strings.Join(from, ", "), rows)
		},
		clients: []benchClient{
			{"args", "go-sql-driver/mysql, interpolateParams=false (the default): prepare, execute, close", mysqlOpener(false, false)},
			{"interpolate", "go-sql-driver/mysql, interpolateParams=true: arguments quoted by the client", mysqlOpener(true, false)},
			{"prepared", "go-sql-driver/mysql, statements prepared once", mysqlOpener(false, true)},
			{"sqlpool", "go-sql-driver/mysql through sqlpool, the same code as args", sqlpoolOpener(&mysql.MySQLDriver{})},
		},
	},
}

// benchWorkloads describe the workloads for the report.
var benchWorkloads = map[string]string{
	"select": "one row by primary key",
	"insert": "one single-row insert",
	"tx":     "a transaction of a select by primary key, an insert and another select",
}

// tableName is what -table accepts: an identifier, optionally qualified by
// a schema, with no quoting needed.
var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)

func (cfg *benchConfig) validate() (*dialect, *benchDialect, error) {
	name, ok := driverAliases[strings.ToLower(cfg.Driver)]
	if !ok {
		return nil, nil, usageError{fmt.Sprintf("unknown -driver %q: want sqlite, postgres or mysql", cfg.Driver)}
	}
	d := dialects[name]
	switch {
	case d.name != "sqlite" && cfg.DSN == "":
		return nil, nil, usageError{fmt.Sprintf("-driver %s needs -dsn", d.name)}
	case cfg.Duration <= 0:
		return nil, nil, usageError{fmt.Sprintf("-duration must be positive, not %v", cfg.Duration)}
	case cfg.Goroutines < 1 || cfg.Goroutines > maxBenchGoroutines:
		return nil, nil, usageError{fmt.Sprintf("-goroutines must be between 1 and %d, not %d", maxBenchGoroutines, cfg.Goroutines)}
	case benchWorkloads[cfg.Workload] == "":
		return nil, nil, usageError{fmt.Sprintf("unknown -workload %q: want select, insert or tx", cfg.Workload)}
	case cfg.MaxSize < 1:
		return nil, nil, usageError{fmt.Sprintf("-max must be at least 1, not %d", cfg.MaxSize)}
	case !tableName.MatchString(cfg.Table):
		return nil, nil, usageError{fmt.Sprintf("-table %q is not a plain table name", cfg.Table)}
	case cfg.Rows < 1 || cfg.Rows > maxBenchRows:
		return nil, nil, usageError{fmt.Sprintf("-rows must be between 1 and %d, not %d", maxBenchRows, cfg.Rows)}
	}
	return d, benchDialects[d.name], nil
}

// runBench creates and fills the table, runs the workload with each client
// in turn for cfg.Duration (until ctx ends), drops the table and writes the
// report to out.
func runBench(ctx context.Context, out io.Writer, cfg benchConfig) (err error) {
	d, bd, err := cfg.validate()
	if err != nil {
		return err
	}
	dsn := cfg.DSN
	if d.name == "sqlite" && dsn == "" {
		dir, err := os.MkdirTemp("", "sqlpool-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		// As in the demo: WAL, writers wait for the lock, BEGIN takes it.
		dsn = "file:" + filepath.Join(dir, "bench.db") +
			"?_journal_mode=WAL&_busy_timeout=10000&_txlock=immediate&_synchronous=NORMAL"
	}

	setup, err := workload.OpenBare(d.driver(), dsn)
	if err != nil {
		return fmt.Errorf("%s DSN: %w", d.name, err)
	}
	defer setup.Close()
	setupCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := setup.PingContext(setupCtx); err != nil {
		return fmt.Errorf("cannot connect to %s (%s): %w", d.name, d.display(dsn), err)
	}
	if _, err := setup.ExecContext(setupCtx, fmt.Sprintf(bd.create, cfg.Table)); err != nil {
		return fmt.Errorf("creating table %s: %w (bench creates its own table and drops it at the end; "+
			"it never uses an existing one: choose another -table)", cfg.Table, err)
	}
	defer func() {
		// Not the run's context: an interrupted bench still cleans up.
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, derr := setup.ExecContext(dctx, fmt.Sprintf(d.drop, cfg.Table)); derr != nil && err == nil {
			err = fmt.Errorf("dropping table %s: %w", cfg.Table, derr)
		}
	}()
	if cfg.Progress != nil {
		fmt.Fprintf(cfg.Progress, "sqlpool bench: filling %s with %s rows...\n", cfg.Table, group(int64(cfg.Rows)))
	}
	if _, err := setup.ExecContext(setupCtx, bd.fill(cfg.Table, cfg.Rows)); err != nil {
		return fmt.Errorf("filling table %s: %w", cfg.Table, err)
	}
	cancel()

	q := workload.Queries{
		Select: fmt.Sprintf("SELECT v FROM %s WHERE id = %s", cfg.Table, d.ph(1)),
		Insert: fmt.Sprintf("INSERT INTO %s (id, v) VALUES (%s, %s)", cfg.Table, d.ph(1), d.ph(2)),
	}
	bn := &bench{cfg: cfg, q: q}
	bn.nextID.Store(int64(cfg.Rows))
	var results []benchResult
	for _, c := range bd.clients {
		if ctx.Err() != nil {
			break
		}
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "sqlpool bench: %s for %v...\n", c.name, cfg.Duration)
		}
		r, err := bn.run(ctx, c, dsn)
		if errors.Is(err, errInterrupted) {
			break
		}
		if err != nil {
			return fmt.Errorf("client %s: %w", c.name, err)
		}
		results = append(results, r)
	}
	bn.report(out, d, dsn, results, ctx.Err() != nil)
	for _, r := range results {
		if r.ops == 0 && r.errs > 0 && ctx.Err() == nil {
			return fmt.Errorf("every operation of client %s failed (see ERRORS above)", r.client.name)
		}
	}
	return nil
}

// bench is one run of the comparison.
type bench struct {
	cfg    benchConfig
	q      workload.Queries
	nextID atomic.Int64 // the last id inserted, or Rows
}

// benchResult is what one client achieved.
type benchResult struct {
	client   benchClient
	ops      int64 // successful operations
	errs     int64
	firstErr error
	elapsed  time.Duration
	latency  *hdrhistogram.Histogram // of successful operations, in ns
}

// rate returns the successful operations per second.
func (r benchResult) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ops) / r.elapsed.Seconds()
}

// errInterrupted: the run's context ended before the client's run started.
var errInterrupted = errors.New("interrupted")

// maxLatency is the highest latency the histograms track; longer ones
// count as this.
const maxLatency = time.Minute

// run runs the workload with client c for the configured duration.
func (bn *bench) run(ctx context.Context, c benchClient, dsn string) (benchResult, error) {
	s, err := c.open(dsn, bn.q, bn.cfg.MaxSize)
	if err != nil {
		return benchResult{}, err
	}
	defer s.Close()

	n := bn.cfg.Goroutines
	type worker struct {
		ops, errs int64
		firstErr  error
		hist      *hdrhistogram.Histogram
	}
	workers := make([]worker, n)
	for i := range workers {
		// Two significant digits: 1% resolution at about 30 KB a histogram.
		workers[i].hist = hdrhistogram.New(1, int64(maxLatency), 2)
	}
	// One operation per goroutine first, not counted: connections are dialed
	// and statements prepared before the clock starts.
	warm := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			warm[i] = bn.op(ctx, s, rand.New(rand.NewPCG(uint64(n), uint64(i))))
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return benchResult{}, errInterrupted
	}
	if err := errors.Join(warm...); err != nil {
		return benchResult{}, fmt.Errorf("warming up: %w", err)
	}

	start := time.Now()
	end := start.Add(bn.cfg.Duration)
	for i := range n {
		wg.Go(func() {
			w := &workers[i]
			r := rand.New(rand.NewPCG(uint64(n), uint64(n+i)))
			for t0 := time.Now(); t0.Before(end) && ctx.Err() == nil; {
				err := bn.op(ctx, s, r)
				t1 := time.Now()
				switch {
				case err == nil:
					w.ops++
					_ = w.hist.RecordValue(min(int64(t1.Sub(t0)), int64(maxLatency)))
				case ctx.Err() != nil:
					return // interrupted: not the database's fault
				default:
					w.errs++
					if w.firstErr == nil {
						w.firstErr = err
					}
				}
				t0 = t1
			}
		})
	}
	wg.Wait()
	res := benchResult{client: c, elapsed: time.Since(start), latency: hdrhistogram.New(1, int64(maxLatency), 2)}
	for _, w := range workers {
		res.ops += w.ops
		res.errs += w.errs
		if res.firstErr == nil {
			res.firstErr = w.firstErr
		}
		res.latency.Merge(w.hist)
	}
	return res, nil
}

// op runs one operation of the workload.
func (bn *bench) op(ctx context.Context, s workload.Session, r *rand.Rand) error {
	rows := bn.cfg.Rows
	switch bn.cfg.Workload {
	case "select":
		return s.SelectRow(ctx, 1+r.IntN(rows))
	case "insert":
		return s.InsertRow(ctx, bn.nextID.Add(1))
	default:
		id1, id2, newID := 1+r.IntN(rows), 1+r.IntN(rows), bn.nextID.Add(1)
		return s.InTx(ctx, func(s workload.Statements) error {
			if err := s.SelectRow(ctx, id1); err != nil {
				return err
			}
			if err := s.InsertRow(ctx, newID); err != nil {
				return err
			}
			return s.SelectRow(ctx, id2)
		})
	}
}

// report writes the table of results.
func (bn *bench) report(out io.Writer, d *dialect, dsn string, results []benchResult, interrupted bool) {
	cfg := bn.cfg
	where := d.display(dsn)
	if d.name == "sqlite" && cfg.DSN == "" {
		where = "a temporary file, removed at the end"
	}
	fmt.Fprintf(out, "sqlpool bench on %s (%s)\n", d.name, where)
	fmt.Fprintf(out, "workload %s: %s, on %s (%s rows, created and dropped by bench)\n",
		cfg.Workload, benchWorkloads[cfg.Workload], cfg.Table, group(int64(cfg.Rows)))
	fmt.Fprintf(out, "%d goroutines on %d CPUs, %v per client, at most %d connections per pool",
		cfg.Goroutines, runtime.GOMAXPROCS(0), cfg.Duration, cfg.MaxSize)
	if interrupted {
		fmt.Fprint(out, "; interrupted")
	}
	fmt.Fprint(out, "\n\n")

	var sqlpoolRate float64
	for _, r := range results {
		if r.client.name == "sqlpool" {
			sqlpoolRate = r.rate()
		}
	}
	var buf strings.Builder
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "CLIENT\tOPS\tOPS/S\tP50\tP99\tERRORS\tSQLPOOL/CLIENT\t\n")
	for _, r := range results {
		ratio := "-"
		if r.client.name != "sqlpool" && sqlpoolRate > 0 && r.ops > 0 {
			ratio = fmt.Sprintf("%.2f", sqlpoolRate/r.rate())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.client.name, group(r.ops), group(int64(r.rate()+0.5)),
			fmtLatency(r.latency.ValueAtQuantile(50)), fmtLatency(r.latency.ValueAtQuantile(99)), group(r.errs), ratio)
	}
	tw.Flush()
	io.WriteString(out, trimLines(buf.String()))

	fmt.Fprintln(out)
	for _, r := range results {
		fmt.Fprintf(out, "%s: %s\n", r.client.name, r.client.about)
	}
	fmt.Fprintln(out, "P50/P99: latency of one operation, including the wait for a connection.")
	fmt.Fprintln(out, "SQLPOOL/CLIENT: sqlpool's throughput divided by the client's; above 1, sqlpool is faster.")

	var failed []benchResult
	for _, r := range results {
		if r.firstErr != nil {
			failed = append(failed, r)
		}
	}
	if len(failed) > 0 {
		fmt.Fprintln(out)
		fmt.Fprintln(out, "ERRORS (the first of each client)")
		for _, r := range failed {
			fmt.Fprintf(out, "  %s: %v\n", r.client.name, r.firstErr)
		}
	}
}

// fmtLatency formats a latency in ns with three significant digits or so.
func fmtLatency(ns int64) string {
	d := time.Duration(ns)
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", ns)
	case d < 10*time.Microsecond:
		return fmt.Sprintf("%.2fµs", float64(d)/float64(time.Microsecond))
	case d < 100*time.Microsecond:
		return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
	default:
		return fmtDuration(d)
	}
}

// benchClient is one way of running the workload.
type benchClient struct {
	name, about string
	// open returns a session with at most maxSize connections.
	open func(dsn string, q workload.Queries, maxSize int) (workload.Session, error)
}

// sqlOpener opens database/sql's own pool over d, with the DSN changed by
// tune if it is set, and statements prepared once if prepare is set.
func sqlOpener(d driver.Driver, tune func(string) (string, error), prepare bool) func(string, workload.Queries, int) (workload.Session, error) {
	return func(dsn string, q workload.Queries, maxSize int) (workload.Session, error) {
		if tune != nil {
			var err error
			if dsn, err = tune(dsn); err != nil {
				return nil, err
			}
		}
		db, err := workload.OpenBare(d, dsn)
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(maxSize)
		db.SetMaxIdleConns(maxSize)
		s, err := workload.SQL(db, q, prepare)
		if err != nil {
			db.Close()
			return nil, err
		}
		return s, nil
	}
}

// mysqlOpener opens go-sql-driver/mysql with interpolateParams as given.
func mysqlOpener(interpolate, prepare bool) func(string, workload.Queries, int) (workload.Session, error) {
	return sqlOpener(&mysql.MySQLDriver{}, func(dsn string) (string, error) {
		c, err := mysql.ParseDSN(dsn)
		if err != nil {
			return "", err
		}
		c.InterpolateParams = interpolate
		return c.FormatDSN(), nil
	}, prepare)
}

// sqlpoolOpener opens d through sqlpool, with its defaults but MaxSize.
func sqlpoolOpener(d driver.Driver) func(string, workload.Queries, int) (workload.Session, error) {
	return func(dsn string, q workload.Queries, maxSize int) (workload.Session, error) {
		if _, ok := d.(*mysql.MySQLDriver); ok {
			c, err := mysql.ParseDSN(dsn)
			if err != nil {
				return nil, err
			}
			c.InterpolateParams = false // what args runs with
			dsn = c.FormatDSN()
		}
		c, err := sqlpool.NewConnector(d, dsn, sqlpool.Config{MaxSize: maxSize})
		if err != nil {
			return nil, err
		}
		return workload.SQL(sqlpool.OpenDB(c), q, false)
	}
}
