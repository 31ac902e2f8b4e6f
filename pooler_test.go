package sqlpool_test

// Behind a transaction pooler: a private PgBouncer (internal/pgbouncer) in
// transaction mode, 4 server connections for 16 clients, in front of a
// table with row-level security per tenant. runPoolerWorkload runs the same
// mixed workload over any client (a bare driver, sqlpool in some mode) and
// counts what goes wrong: errors by kind, wrong answers to queries whose
// answer is known, and rows of another tenant.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/lib/pq"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
	"github.com/sqlpool/sqlpool/internal/pgbouncer"
	"github.com/sqlpool/sqlpool/partition"
)

const (
	poolerClients  = 16 // goroutines, each a client of the pooler
	poolerTenants  = 8
	poolerSeedRows = 3             // rows of each tenant before the run
	poolerRole     = "sqlpool_rls" // rls_test.go's role: not a superuser, not the owner, so RLS applies
)

// poolerQueries is the number of statements of each run:
// $SQLPOOL_POOLER_QUERIES, by default 20,000 (2,000 with -short).
func poolerQueries(t testing.TB) int {
	n := 20_000
	if testing.Short() {
		n = 2_000
	}
	if s := os.Getenv("SQLPOOL_POOLER_QUERIES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			t.Fatalf("SQLPOOL_POOLER_QUERIES=%q: want a positive number of queries", s)
		}
		n = v
	}
	return n
}

// poolerEnv is a private PgBouncer in transaction mode in front of a fresh
// table with a row-level security policy on current_setting('app.tenant').
type poolerEnv struct {
	Bouncer *pgbouncer.Server
	Table   string // the RLS table: tenant text, v bigint
}

var poolerSeq, poolerRunSeq atomic.Int64

// newPoolerEnv starts the pooler and creates the table, dropped when t
// ends. It skips t (or fails it, with SQLPOOL_REQUIRE_SERVERS=1) when
// PostgreSQL or pgbouncer is missing.
func newPoolerEnv(t testing.TB) *poolerEnv {
	t.Helper()
	admin, err := sql.Open("postgres", drivertest.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	e := &poolerEnv{Table: fmt.Sprintf("sqlpool_pooler_rls_%d_%d", os.Getpid(), poolerSeq.Add(1))}
	for _, q := range []string{
		"CREATE TABLE " + e.Table + " (tenant text NOT NULL, v bigint NOT NULL)",
		"ALTER TABLE " + e.Table + " ENABLE ROW LEVEL SECURITY",
		// Without WITH CHECK, USING also checks the rows inserted.
		"CREATE POLICY by_tenant ON " + e.Table + " USING (tenant = current_setting('app.tenant', true))",
		"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '" + poolerRole + "') THEN CREATE ROLE " + poolerRole + " LOGIN; END IF; END $$",
		"GRANT SELECT, INSERT ON " + e.Table + " TO " + poolerRole,
		fmt.Sprintf("INSERT INTO %s SELECT 't' || (g %% %d), g FROM generate_series(1, %d) g", e.Table, poolerTenants, poolerTenants*poolerSeedRows),
	} {
		if _, err := admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// Registered after admin.Close, so it runs before.
	t.Cleanup(func() { admin.Exec("DROP TABLE IF EXISTS " + e.Table) })
	e.Bouncer = pgbouncer.Start(t, pgbouncer.Options{PoolSize: 4, Users: []string{poolerRole}})
	return e
}

// DSN returns a URL DSN through the pooler as the RLS role, with the query
// parameters of extra (such as "binary_parameters=yes").
func (e *poolerEnv) DSN(extra string) string { return e.Bouncer.UserDSN(poolerRole, extra) }

// poolerQueryer is where a unit of work runs: *sql.DB, *sql.Conn.
type poolerQueryer interface {
	poolerStmts
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// poolerStmts runs statements: *sql.DB, *sql.Conn, *sql.Tx.
type poolerStmts interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// poolerClient is one way of reaching the database behind the pooler: a
// driver in some mode, bare or wrapped by sqlpool, and how it tells the
// server which tenant a unit of work is for.
type poolerClient struct {
	Driver string  // for the table: "lib/pq", "pgx"
	Mode   string  // for the table: "default", "sqlpool Pooler=Transaction"...
	DB     *sql.DB // on poolerEnv.DSN; shared by the clients, closed by the caller
	// Session returns what one unit of tenant's work (a few statements, or
	// one transaction) runs on, the context to run it with, and a function
	// that ends the unit, told whether the driver panicked in it.
	// bareSession and contextSession are the two ways.
	Session func(ctx context.Context, db *sql.DB, tenant string) (context.Context, poolerQueryer, func(panicked bool), error)
	// SetLocal makes the workload itself set the tenant at the start of
	// each explicit transaction, with set_config('app.tenant', $1, true),
	// as a bare user would. sqlpool's transaction mode must do without.
	SetLocal bool
}

// bareSession is what a bare database/sql user does: take a *sql.Conn and
// set the tenant in its session before using it. Behind a transaction
// pooler the setting stays on whichever server connection ran it. A
// connection whose driver panicked is discarded.
func bareSession(ctx context.Context, db *sql.DB, tenant string) (context.Context, poolerQueryer, func(panicked bool), error) {
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	if _, err := c.ExecContext(ctx, "SELECT set_config('app.tenant', $1, false)", tenant); err != nil {
		c.Close()
		return nil, nil, nil, err
	}
	return ctx, c, func(panicked bool) {
		if panicked {
			c.Raw(func(any) error { return driver.ErrBadConn })
		}
		c.Close()
	}, nil
}

// contextSession is what a sqlpool user does: name the tenant in the
// context and run on the DB; the partition's setup does the rest.
func contextSession(ctx context.Context, db *sql.DB, tenant string) (context.Context, poolerQueryer, func(panicked bool), error) {
	return sqlpool.WithTenant(ctx, tenant), db, func(bool) {}, nil
}

// poolerResult is what a run of the workload counted.
type poolerResult struct {
	Driver, Mode string
	Queries      int64            // statements run, not counting the set_config calls of bareSession and SetLocal that succeeded
	Errors       map[string]int64 // by kind (poolerErrorKind), setup statements' too
	Wrong        int64            // answers that differ from the known one, reads that saw none of the tenant's rows
	CrossTenant  int64            // rows of another tenant seen
	Examples     []string         // the first few wrong answers
	Elapsed      time.Duration
}

// ErrorCount returns the number of errors of every kind.
func (r poolerResult) ErrorCount() int64 {
	var n int64
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// QPS returns the statements per second.
func (r poolerResult) QPS() float64 { return float64(r.Queries) / r.Elapsed.Seconds() }

// poolerRun is the shared state of one run of the workload.
type poolerRun struct {
	env    *poolerEnv
	client poolerClient

	budget                atomic.Int64 // statements left to run
	queries, wrong, cross atomic.Int64

	mu       sync.Mutex
	errs     map[string]int64 // guarded by mu
	examples []string         // guarded by mu
}

// take takes one statement from the budget, and reports whether there was
// one left.
func (r *poolerRun) take() bool {
	if r.budget.Add(-1) < 0 {
		return false
	}
	r.queries.Add(1)
	return true
}

func (r *poolerRun) fail(err error) {
	r.mu.Lock()
	r.errs[poolerErrorKind(err)]++
	r.mu.Unlock()
}

func (r *poolerRun) wrongf(format string, args ...any) {
	r.wrong.Add(1)
	r.mu.Lock()
	if len(r.examples) < 3 {
		r.examples = append(r.examples, fmt.Sprintf(format, args...))
	}
	r.mu.Unlock()
}

// runPoolerWorkload runs queries statements through c with poolerClients
// goroutines, in units of 1 to 8 statements for a random tenant, each unit
// on what c.Session returns:
//   - 30% SELECT $1::int + 1, 25% SELECT $1::text || 'x', with random
//     arguments: the answer is known;
//   - 30% reads of the tenant's rows of the RLS table: any other tenant's
//     row counts in CrossTenant, no row of its own in Wrong;
//   - 15% inserts of a row of the tenant (the policy refuses it, an error,
//     when the session's tenant is another);
//   - one unit in 20 is an explicit transaction that inserts a row with a
//     unique value, counts it back (1 is right), then runs the unit's other
//     statements, and commits.
//
// A unit stops at its first error, as a user's request would. Session setup
// statements (bareSession's, SetLocal's) count in queries only when they
// fail (so that a run where every setup fails ends); their errors count. It counts and never fails t: the caller asserts on the
// result.
func runPoolerWorkload(t testing.TB, env *poolerEnv, c poolerClient, queries int) poolerResult {
	t.Helper()
	r := &poolerRun{env: env, client: c, errs: map[string]int64{}}
	r.budget.Store(int64(queries))
	run := poolerRunSeq.Add(1) << 40 // ids unique across the runs that share a table
	var wg sync.WaitGroup
	start := time.Now()
	for g := range poolerClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), uint64(start.UnixNano())))
			for unit := 0; r.budget.Load() > 0; unit++ {
				r.unit(rng, fmt.Sprintf("t%d", rng.IntN(poolerTenants)), 1+rng.IntN(8), run|int64(g+1)<<32|int64(unit)) // above the seed rows' v
			}
		}()
	}
	wg.Wait()
	res := poolerResult{
		Driver: c.Driver, Mode: c.Mode,
		Queries: r.queries.Load(), Errors: r.errs, Wrong: r.wrong.Load(), CrossTenant: r.cross.Load(),
		Examples: r.examples, Elapsed: time.Since(start),
	}
	return res
}

// errPoolerPanic marks a panic of the driver, recovered by the workload:
// lib/pq decodes a result by the types of another statement's description
// when the pooler mixes them up.
var errPoolerPanic = errors.New("driver panic")

// unit runs n statements for tenant: in autocommit, or one time in 20 in a
// transaction. id is unique to the unit.
func (r *poolerRun) unit(rng *rand.Rand, tenant string, n int, id int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx, q, end, err := r.client.Session(ctx, r.client.DB, tenant)
	if err != nil {
		r.take()
		r.fail(fmt.Errorf("session setup: %w", err))
		return
	}
	panicked := false
	defer func() {
		if p := recover(); p != nil { // in Rollback or Commit
			r.fail(fmt.Errorf("%w: %v", errPoolerPanic, p))
			panicked = true
		}
		end(panicked)
	}()
	if rng.IntN(20) != 0 {
		for range n {
			if !r.take() {
				return
			}
			if err := r.stmt(ctx, q, rng, tenant); err != nil {
				panicked = errors.Is(err, errPoolerPanic)
				return // the session may be broken; a user would give up too
			}
		}
		return
	}
	tx, err := q.BeginTx(ctx, nil)
	if err != nil {
		r.fail(fmt.Errorf("begin: %w", err))
		return
	}
	defer tx.Rollback()
	if r.client.SetLocal {
		if _, err := tx.ExecContext(ctx, "SELECT set_config('app.tenant', $1, true)", tenant); err != nil {
			r.take()
			r.fail(fmt.Errorf("set_config in transaction: %w", err))
			return
		}
	}
	if !r.take() {
		return
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO "+r.env.Table+" (tenant, v) VALUES ($1, $2)", tenant, id); err != nil {
		r.fail(err)
		return
	}
	if !r.take() {
		return
	}
	var count int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM "+r.env.Table+" WHERE v = $1", id).Scan(&count); err != nil {
		r.fail(err)
		return
	}
	if count != 1 {
		r.wrongf("%s: the row it inserted in its transaction counted %d times, want 1", tenant, count)
	}
	for range n - 2 {
		if !r.take() {
			break // and commit
		}
		if err := r.stmt(ctx, tx, rng, tenant); err != nil {
			panicked = errors.Is(err, errPoolerPanic)
			return
		}
	}
	if err := tx.Commit(); err != nil {
		r.fail(fmt.Errorf("commit: %w", err))
	}
}

// stmt runs one random statement of the mix on q for tenant, checks its
// answer, and returns its error, already counted. A panic of the driver
// is recovered and returned as errPoolerPanic.
func (r *poolerRun) stmt(ctx context.Context, q poolerStmts, rng *rand.Rand, tenant string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", errPoolerPanic, p)
		}
		if err != nil {
			r.fail(err)
		}
	}()
	switch p := rng.IntN(100); {
	case p < 30:
		x := rng.Int32N(1 << 30)
		var got int32
		if err = q.QueryRowContext(ctx, "SELECT $1::int + 1", x).Scan(&got); err == nil && got != x+1 {
			r.wrongf("SELECT $1::int + 1 with %d = %d", x, got)
		}
	case p < 55:
		s := "s" + strconv.FormatUint(rng.Uint64(), 36)
		var got string
		if err = q.QueryRowContext(ctx, "SELECT $1::text || 'x'", s).Scan(&got); err == nil && got != s+"x" {
			r.wrongf("SELECT $1::text || 'x' with %q = %q", s, got)
		}
	case p < 85:
		err = r.read(ctx, q, tenant)
	default:
		var res sql.Result
		if res, err = q.ExecContext(ctx, "INSERT INTO "+r.env.Table+" (tenant, v) VALUES ($1, $2)", tenant, rng.Int64N(1<<31)); err == nil {
			if n, _ := res.RowsAffected(); n != 1 {
				r.wrongf("INSERT of one row of %s affected %d", tenant, n)
			}
		}
	}
	return err
}

// read reads tenant's rows and counts other tenants' rows.
func (r *poolerRun) read(ctx context.Context, q poolerStmts, tenant string) error {
	rows, err := q.QueryContext(ctx, "SELECT tenant FROM "+r.env.Table+" WHERE v >= $1", 0)
	if err != nil {
		return err
	}
	defer rows.Close()
	own, others := 0, 0
	for rows.Next() {
		var got string
		if err := rows.Scan(&got); err != nil {
			return err
		}
		if got == tenant {
			own++
		} else {
			others++
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	r.cross.Add(int64(others))
	if own < poolerSeedRows {
		r.wrongf("%s read %d of its rows (and %d of others'), want at least %d", tenant, own, others, poolerSeedRows)
	}
	return nil
}

var (
	poolerQuoted = regexp.MustCompile(`"[^"]*"`)
	poolerDigits = regexp.MustCompile(`[0-9]+`)
)

// poolerErrorKind names err's kind: its SQLSTATE and message, with names
// and numbers blanked so that the same error on other statements counts
// together.
func poolerErrorKind(err error) string {
	var prefix string
	if s, _, ok := strings.Cut(err.Error(), ": "); ok && (s == "session setup" || s == "begin" || s == "commit" || strings.HasPrefix(s, "set_config")) {
		prefix = s + ": "
	}
	var pqErr *pq.Error
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pqErr):
		return prefix + string(pqErr.Code) + " " + poolerBlank(pqErr.Message)
	case errors.As(err, &pgErr):
		return prefix + pgErr.Code + " " + poolerBlank(pgErr.Message)
	case errors.Is(err, context.DeadlineExceeded):
		return prefix + "timeout (10s per unit)"
	case errors.Is(err, driver.ErrBadConn):
		return prefix + "driver: bad connection"
	}
	return poolerBlank(err.Error())
}

func poolerBlank(s string) string {
	s = poolerQuoted.ReplaceAllString(s, `"…"`)
	s = poolerDigits.ReplaceAllString(s, "N")
	if len(s) > 90 {
		s = s[:90] + "…"
	}
	return s
}

// logPoolerTable logs the results as a table, then each one's errors by
// kind and examples of wrong answers.
func logPoolerTable(t testing.TB, results ...poolerResult) {
	t.Helper()
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "client\tmode\tqueries\terrors\twrong results\tcross-tenant rows\tq/s\t")
	for _, r := range results {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%.0f\t\n", r.Driver, r.Mode, r.Queries, r.ErrorCount(), r.Wrong, r.CrossTenant, r.QPS())
	}
	w.Flush()
	for _, r := range results {
		kinds := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			kinds = append(kinds, k)
		}
		slices.SortFunc(kinds, func(a, b string) int { return int(r.Errors[b] - r.Errors[a]) })
		for _, k := range kinds {
			fmt.Fprintf(&b, "%s %s: %d× %s\n", r.Driver, r.Mode, r.Errors[k], k)
		}
		for _, e := range r.Examples {
			fmt.Fprintf(&b, "%s %s: wrong: %s\n", r.Driver, r.Mode, e)
		}
	}
	t.Logf("behind PgBouncer (transaction mode, 4 server connections, %d clients, %d tenants):\n%s", poolerClients, poolerTenants, b.String())
}

// poolerConnector returns the connector of the driver named ("lib/pq" or
// "pgx") for dsn.
func poolerConnector(t testing.TB, drv, dsn string) driver.Connector {
	t.Helper()
	var c driver.Connector
	var err error
	switch drv {
	case "lib/pq":
		c, err = pq.NewConnector(dsn)
	case "pgx":
		c, err = stdlib.GetDefaultDriver().(driver.DriverContext).OpenConnector(dsn)
	default:
		t.Fatalf("poolerConnector: unknown driver %q", drv)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// openPooler opens a bare database/sql DB with the driver named on dsn,
// closed when t ends, that keeps its connections to the pooler idle
// instead of closing them.
func openPooler(t testing.TB, drv, dsn string) *sql.DB {
	t.Helper()
	db := sql.OpenDB(poolerConnector(t, drv, dsn))
	db.SetMaxIdleConns(poolerClients)
	t.Cleanup(func() { db.Close() })
	return db
}

// TestPoolerBaseline shows what users get behind PgBouncer in transaction
// mode today: the bare drivers, with the tenant set per session on a
// *sql.Conn (and with set_config(..., true) inside each transaction), and
// sqlpool's defaults with a session-level tenant setup, as the README routes
// tenants. It logs the counts and asserts nothing on them: wrong results
// are expected.
func TestPoolerBaseline(t *testing.T) {
	env := newPoolerEnv(t)
	queries := poolerQueries(t)
	bare := func(drv, mode, params string) func(t *testing.T) poolerClient {
		return func(t *testing.T) poolerClient {
			db := openPooler(t, drv, env.DSN(params))
			return poolerClient{Driver: drv, Mode: "bare " + mode, DB: db, Session: bareSession, SetLocal: true}
		}
	}
	wrapped := func(drv string) func(t *testing.T) poolerClient {
		return func(t *testing.T) poolerClient {
			c, err := sqlpool.Wrap(poolerConnector(t, drv, env.DSN("")), sqlpool.Config{MaxSize: 4, Routing: partition.RouterConfig{
				Template: partition.Config{SetupSQL: "SELECT set_config('app.tenant', $1, false)"},
			}})
			if err != nil {
				t.Fatal(err)
			}
			db := sqlpool.OpenDB(c)
			t.Cleanup(func() { db.Close() })
			return poolerClient{Driver: drv, Mode: "sqlpool defaults", DB: db, Session: contextSession}
		}
	}
	var results []poolerResult
	for _, c := range []struct {
		name string
		open func(t *testing.T) poolerClient
	}{
		{"bare lib/pq default", bare("lib/pq", "default", "")},
		{"bare lib/pq binary_parameters", bare("lib/pq", "binary_parameters=yes", "binary_parameters=yes")},
		{"bare pgx default", bare("pgx", "default", "")},
		{"bare pgx exec", bare("pgx", "exec", "default_query_exec_mode=exec")},
		{"sqlpool lib/pq", wrapped("lib/pq")},
		{"sqlpool pgx", wrapped("pgx")},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := runPoolerWorkload(t, env, c.open(t), queries)
			if res.Queries != int64(queries) {
				t.Errorf("ran %d statements, want %d", res.Queries, queries)
			}
			results = append(results, res)
		})
	}
	logPoolerTable(t, results...)
}
