package sqlpool_test

// Reliability: network cuts through a fault-injecting proxy, killed server
// connections, lost and doubled writes, exclusivity, overload, Close and bad
// input. The database tests run against the PostgreSQL and MariaDB servers
// of drivertest.PostgresDSN and drivertest.MySQLDSN, and skip (or fail, with
// SQLPOOL_REQUIRE_SERVERS=1) when those do not answer.
//
// Tests that pin a known bug skip with "known bug:" unless
// SQLPOOL_KNOWN_BUGS=1, which runs them (and they fail until it is fixed).

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/lib/pq"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
	"github.com/sqlpool/sqlpool/internal/faultproxy"
	"github.com/sqlpool/sqlpool/pool"
)

// knownBug skips t, which pins the bug described by why, unless
// SQLPOOL_KNOWN_BUGS=1.
func knownBug(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("SQLPOOL_KNOWN_BUGS") != "1" {
		t.Skip("known bug: " + why + " (SQLPOOL_KNOWN_BUGS=1 runs it)")
	}
}

// raceSlack is added to timing bounds: the race detector and a loaded
// 2-core CI machine slow everything down.
const raceSlack = 200 * time.Millisecond

// ---- servers ----

// relServer is one test server, with a marker that tells this test's
// connections from every other's: PostgreSQL's application_name, MariaDB's
// default database (root's connections carry no other per-client label in
// the processlist).
type relServer struct {
	kind   string // "postgres" or "mysql"
	drv    driver.Driver
	addr   string  // the server's host:port
	marker string  // unique to the test
	admin  *sql.DB // bare database/sql straight to the server, for checks and kills
	// connector returns the driver's connector to the server through addr
	// (the server's own, or a proxy's).
	connector func(addr string) (driver.Connector, error)

	insertSQL string // (id, g): one write
	readSQL   string // (id): a read
	countSQL  string // on admin: id, count(*) of every write
}

// relServerKinds lists the servers and drivers the database tests run
// against: lib/pq and go-sql-driver/mysql, the drivers most users have.
// Network cuts also run with pgx's stdlib ("pgx"), for comparison.
var relServerKinds = []string{"postgres", "mysql"}

var relSeq atomic.Int64

// relOpen returns the server of kind, with a fresh write table, or skips.
func relOpen(t *testing.T, kind string) *relServer {
	t.Helper()
	marker := fmt.Sprintf("sqlpool_rel_%d_%d", os.Getpid(), relSeq.Add(1))
	s := &relServer{kind: kind, marker: marker}
	ctx := context.Background()
	switch kind {
	case "postgres", "pgx":
		dsn := drivertest.PostgresDSN(t)
		u, err := url.Parse(dsn)
		if err != nil || u.Host == "" {
			t.Fatalf("these tests need a URL in SQLPOOL_TEST_POSTGRES_DSN, got %q", dsn)
		}
		s.drv, s.addr = &pq.Driver{}, u.Host
		if kind == "pgx" {
			s.drv = stdlib.GetDefaultDriver()
		}
		with := func(addr, app string) string {
			v := *u
			v.Host = addr
			q := v.Query()
			q.Set("application_name", app)
			v.RawQuery = q.Encode()
			return v.String()
		}
		s.connector = func(addr string) (driver.Connector, error) {
			if kind == "pgx" {
				return s.drv.(driver.DriverContext).OpenConnector(with(addr, marker))
			}
			return pq.NewConnector(with(addr, marker))
		}
		c, err := pq.NewConnector(with(u.Host, marker+"_admin"))
		if err != nil {
			t.Fatal(err)
		}
		s.admin = sql.OpenDB(c)
		s.insertSQL = "INSERT INTO " + marker + " (id, g) VALUES ($1, $2)"
		s.readSQL = "SELECT count(*) FROM " + marker + " WHERE id = $1"
		s.countSQL = "SELECT id, count(*) FROM " + marker + " GROUP BY id"
		relExec(t, s.admin, "CREATE TABLE "+marker+" (id bigint NOT NULL, g int NOT NULL)")
		relExec(t, s.admin, "CREATE INDEX ON "+marker+" (id)")
		t.Cleanup(func() {
			s.admin.ExecContext(ctx, "DROP TABLE IF EXISTS "+marker)
		})
	case "mysql":
		dsn := drivertest.MySQLDSN(t)
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			t.Fatal(err)
		}
		s.drv, s.addr = &mysql.MySQLDriver{}, cfg.Addr
		s.connector = func(addr string) (driver.Connector, error) {
			c := cfg.Clone()
			c.Net, c.Addr, c.DBName = "tcp", addr, marker
			c.Logger = &mysql.NopLogger{} // it logs every broken pipe a fault makes
			return mysql.NewConnector(c)
		}
		ac := cfg.Clone()
		ac.Logger = &mysql.NopLogger{} // a restart leaves it idle connections to close
		c, err := mysql.NewConnector(ac)
		if err != nil {
			t.Fatal(err)
		}
		s.admin = sql.OpenDB(c)
		s.insertSQL = "INSERT INTO w (id, g) VALUES (?, ?)"
		s.readSQL = "SELECT count(*) FROM w WHERE id = ?"
		s.countSQL = "SELECT id, count(*) FROM " + marker + ".w GROUP BY id"
		relExec(t, s.admin, "CREATE DATABASE "+marker)
		relExec(t, s.admin, "CREATE TABLE "+marker+".w (id bigint NOT NULL, g int NOT NULL, KEY (id)) ENGINE=InnoDB")
		t.Cleanup(func() {
			s.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+marker)
		})
	default:
		t.Fatalf("unknown server kind %q", kind)
	}
	t.Cleanup(func() { s.admin.Close() })
	return s
}

// eachServer runs f in a subtest against each of relServerKinds.
func eachServer(t *testing.T, f func(*testing.T, *relServer)) {
	for _, kind := range relServerKinds {
		t.Run(kind, func(t *testing.T) { f(t, relOpen(t, kind)) })
	}
}

func relExec(t *testing.T, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// pool returns a DB pooled by sqlpool, reaching the server through addr
// (the server's own, or a proxy's), closed at the end of the test.
func (s *relServer) pool(t *testing.T, addr string, cfg sqlpool.Config) (*sql.DB, *sqlpool.Connector) {
	t.Helper()
	base, err := s.connector(addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sqlpool.Wrap(base, cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sqlpool.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db, c
}

// backends returns the server's IDs of the test's connections.
func (s *relServer) backends(t *testing.T) []int64 {
	t.Helper()
	q := "SELECT pid FROM pg_stat_activity WHERE application_name = $1"
	if s.kind == "mysql" {
		q = "SELECT id FROM information_schema.processlist WHERE db = ?"
	}
	rows, err := s.admin.Query(q, s.marker)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

// kill ends the server connection id from the server's side.
func (s *relServer) kill(t *testing.T, id int64) {
	t.Helper()
	var err error
	if s.kind == "postgres" {
		_, err = s.admin.Exec("SELECT pg_terminate_backend($1)", id)
	} else {
		_, err = s.admin.Exec(fmt.Sprintf("KILL %d", id))
	}
	if err != nil {
		t.Errorf("killing backend %d: %v", id, err)
	}
}

// writes returns how many rows each written id has.
func (s *relServer) writes(t *testing.T) map[int64]int {
	t.Helper()
	rows, err := s.admin.Query(s.countSQL)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := make(map[int64]int)
	for rows.Next() {
		var id int64
		var c int
		if err := rows.Scan(&id, &c); err != nil {
			t.Fatal(err)
		}
		n[id] = c
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitNoBackends waits until the server shows none of the test's
// connections.
func (s *relServer) waitNoBackends(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ids := s.backends(t)
		if len(ids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still shows %d of the pool's connections: %v", s.kind, len(ids), ids)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ---- load ----

// opKind is what one operation of the load does.
type opKind uint8

const (
	opInsert   opKind = iota // one INSERT, autocommit
	opTxInsert               // BEGIN, INSERT, COMMIT
	opRead                   // one SELECT
)

// relOp records one operation of the load.
type relOp struct {
	kind       opKind
	id         int64 // the id written; 0 for a read
	start, end time.Time
	err        error
	committing bool      // a transaction's error came from its COMMIT
	commitAt   time.Time // when a transaction's COMMIT began
}

// relLoad runs operations on a DB from several goroutines and records each.
type relLoad struct {
	db        *sql.DB
	s         *relServer
	opTimeout time.Duration // each operation's context deadline
	pace      time.Duration // pause between a goroutine's operations
	readOnly  bool          // reads run WithReadOnly (a Cluster sends them to replicas)

	ids      atomic.Int64
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup

	mu  sync.Mutex
	ops []relOp // guarded by mu
}

func newLoad(db *sql.DB, s *relServer, opTimeout time.Duration) *relLoad {
	return &relLoad{db: db, s: s, opTimeout: opTimeout, pace: time.Millisecond, stop: make(chan struct{})}
}

// start starts n goroutines.
func (l *relLoad) start(n int) {
	for g := range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), uint64(time.Now().UnixNano())))
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				l.one(g, rng)
				time.Sleep(l.pace)
			}
		}()
	}
}

// one runs and records one operation.
func (l *relLoad) one(g int, rng *rand.Rand) {
	op := relOp{start: time.Now()}
	ctx, cancel := context.WithTimeout(context.Background(), l.opTimeout)
	defer cancel()
	switch r := rng.IntN(10); {
	case r < 6:
		op.kind, op.id = opInsert, l.ids.Add(1)
		_, op.err = l.db.ExecContext(ctx, l.s.insertSQL, op.id, g)
	case r < 8:
		op.kind, op.id = opTxInsert, l.ids.Add(1)
		tx, err := l.db.BeginTx(ctx, nil)
		if err == nil {
			if _, err = tx.ExecContext(ctx, l.s.insertSQL, op.id, g); err != nil {
				tx.Rollback()
			} else {
				op.commitAt = time.Now()
				if err = tx.Commit(); err != nil {
					op.committing = true
				}
			}
		}
		op.err = err
	default:
		op.kind = opRead
		if l.readOnly {
			ctx = sqlpool.WithReadOnly(ctx)
		}
		var n int64
		op.err = l.db.QueryRowContext(ctx, l.s.readSQL, rng.Int64N(max(l.ids.Load(), 1))+1).Scan(&n)
	}
	op.end = time.Now()
	l.mu.Lock()
	l.ops = append(l.ops, op)
	l.mu.Unlock()
}

// halt stops the load and returns its record. It is idempotent.
func (l *relLoad) halt() []relOp {
	l.stopOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ops)
}

// since returns how many operations started at or after since have
// succeeded, and when the last failed one ended (zero if none).
func (l *relLoad) since(since time.Time) (ok int, lastFailure time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, op := range l.ops {
		if op.err != nil && op.end.After(lastFailure) {
			lastFailure = op.end
		}
		if op.err == nil && !op.start.Before(since) {
			ok++
		}
	}
	return ok, lastFailure
}

// waitSuccesses waits until n operations started after since have
// succeeded.
func (l *relLoad) waitSuccesses(t *testing.T, since time.Time, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ok, _ := l.since(since); ok >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the load did not reach %d successful operations", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitRecovered waits until the load has run steadily, with no failure,
// for quiet after the fault ended at healed, and at least n operations
// started after the last failure succeeded. It returns the recovery time:
// from healed to the end of the last failure (0 if none failed after it).
func (l *relLoad) waitRecovered(t *testing.T, healed time.Time, quiet time.Duration, n int, limit time.Duration) time.Duration {
	t.Helper()
	deadline := healed.Add(limit + quiet + raceSlack)
	for {
		_, last := l.since(healed)
		from := healed
		if last.After(from) {
			from = last
		}
		if ok, _ := l.since(from); ok >= n && time.Since(from) >= quiet {
			if last.Before(healed) {
				return 0
			}
			return last.Sub(healed)
		}
		if time.Now().After(deadline) {
			t.Errorf("not recovered %v after the fault ended: last failure %v after it", time.Since(healed), last.Sub(healed))
			return time.Since(healed)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ---- lost and doubled writes ----

// ambiguous reports whether a write's error leaves its outcome unknown: it
// arrived after the statement (or, in a transaction, the COMMIT) may have
// reached the server, as a connection lost or reset while waiting for the
// answer, a context deadline reached while the statement ran, or a server
// that ended the connection (PostgreSQL's FATAL errors, MariaDB's
// "connection was killed") may leave it. A write whose error is not
// ambiguous must not have been applied: sqlpool refused the acquisition
// (ErrAcquireTimeout, ErrQueueFull, ErrClosed, ErrCircuitOpen, a Cluster's
// ErrNoPrimary, or its dial failed: nothing was sent), the server refused the statement with an error of its own, or the transaction failed
// before its COMMIT.
func ambiguous(op relOp) bool {
	err := op.err
	if op.kind == opTxInsert && !op.committing || errors.Is(err, sql.ErrTxDone) {
		return false // no COMMIT was sent
	}
	var dial *net.OpError
	if errors.Is(err, sqlpool.ErrAcquireTimeout) || errors.Is(err, sqlpool.ErrQueueFull) || errors.Is(err, sqlpool.ErrClosed) ||
		errors.Is(err, sqlpool.ErrCircuitOpen) || errors.Is(err, sqlpool.ErrNoPrimary) ||
		errors.As(err, &dial) && dial.Op == "dial" { // a dial failed (the driver's error, as bare): nothing was sent
		return false
	}
	var pe *pq.Error
	if errors.As(err, &pe) {
		return pe.Fatal() || pe.Code.Class() == "57" || pe.Code.Class() == "08"
	}
	var xe *pgconn.PgError
	if errors.As(err, &xe) {
		return xe.Severity == "FATAL" || strings.HasPrefix(xe.Code, "57") || strings.HasPrefix(xe.Code, "08")
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1927 || me.Number == 1053 // connection killed, server shutdown
	}
	return true
}

// writeAudit is the outcome of the writes of a load.
type writeAudit struct {
	succeeded, failed, ambiguous int
	lost                         []int64 // succeeded, absent
	doubled                      []int64 // present more than once
	phantom                      []int64 // failed for sure, yet present
}

// audit checks every write of ops against the table.
func audit(t *testing.T, s *relServer, ops []relOp) writeAudit {
	t.Helper()
	rows := s.writes(t)
	var a writeAudit
	for _, op := range ops {
		if op.kind == opRead {
			continue
		}
		n := rows[op.id]
		switch {
		case op.err == nil:
			a.succeeded++
			if n == 0 {
				a.lost = append(a.lost, op.id)
			}
		case ambiguous(op):
			a.failed++
			a.ambiguous++
		default:
			a.failed++
			if n > 0 {
				a.phantom = append(a.phantom, op.id)
			}
		}
		if n > 1 {
			a.doubled = append(a.doubled, op.id)
		}
	}
	return a
}

// check reports lost, doubled and phantom writes. Doubled writes through
// lib/pq are a known bug (see TestLostResponseIsNotRetried): check skips
// then, after reporting the rest.
func (a writeAudit) check(t *testing.T, s *relServer, ops []relOp) {
	t.Helper()
	errOf := func(id int64) error {
		for _, op := range ops {
			if op.id == id {
				return op.err
			}
		}
		return nil
	}
	for _, id := range a.lost {
		t.Errorf("write %d returned success but is not in the table", id)
	}
	for _, id := range a.phantom {
		t.Errorf("write %d is in the table, yet failed with an error that says it was not applied: %v", id, errOf(id))
	}
	if len(a.doubled) > 0 && s.kind == "postgres" {
		t.Errorf("%d writes doubled: lib/pq returns driver.ErrBadConn when the connection is lost after it sent the statement, "+
			"and sqlpool passes it on, so database/sql runs the statement again", len(a.doubled))
	}
	for _, id := range a.doubled {
		t.Errorf("write %d is in the table more than once (its error: %v): it was retried after it had run", id, errOf(id))
	}
}

// failures returns the failed operations of ops.
func failures(ops []relOp) (failed []relOp) {
	for _, op := range ops {
		if op.err != nil {
			failed = append(failed, op)
		}
	}
	return failed
}

// inFlight counts the operations running at some point in [from, to].
func inFlight(ops []relOp, from, to time.Time) int {
	n := 0
	for _, op := range ops {
		if !op.start.After(to) && !op.end.Before(from) {
			n++
		}
	}
	return n
}

var (
	addrPattern      = regexp.MustCompile(`\d+\.\d+\.\d+\.\d+:\d+`)
	poolStatePattern = regexp.MustCompile(`\(pool: [^)]*\)`)
)

// errorSummary counts failures by error text, for the log.
func errorSummary(ops []relOp) string {
	count := make(map[string]int)
	for _, op := range ops {
		if op.err != nil {
			msg := addrPattern.ReplaceAllString(op.err.Error(), "addr")
			msg = poolStatePattern.ReplaceAllString(msg, "(pool: ...)")
			if len(msg) > 120 {
				msg = msg[:120] + "..."
			}
			count[fmt.Sprintf("%T: %s", op.err, msg)]++
		}
	}
	var lines []string
	for msg, n := range count {
		lines = append(lines, fmt.Sprintf("%4d × %s", n, msg))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// ---- network cuts ----

// TestNetworkCut runs a load through a proxy, cuts the network in one of
// three ways, and measures what the callers see:
//
//   - stall: bytes stop flowing both ways, nothing is closed, for
//     stallFor, longer than the operations' deadline: every operation must
//     fail within its deadline, not hang; after Resume the pool recovers
//     (operations succeed again) within 2 s;
//   - restart: every connection reset and new ones refused for
//     outageFor, as a database restart looks from the client (the servers
//     here are shared with other tests, so the proxy plays the restart):
//     operations fail fast during the outage, and the pool recovers within
//     2 s of the server answering again;
//   - drop: every connection closed on both sides (FIN);
//   - reset: every connection aborted on both sides (RST): for both, each
//     connection cut fails at most one operation (the one in flight on it,
//     or, when the driver cannot tell a dead idle connection from a live
//     one, as pgx within a second of its last use, the first to borrow it
//     before a sibling's failure makes sqlpool check them all), and the
//     next ones succeed.
//
// Every write that returned success is then in the table exactly once, and
// no write is there twice.
func TestNetworkCut(t *testing.T) {
	for _, kind := range append(relServerKinds, "pgx") {
		for _, fault := range []string{"stall", "restart", "drop", "reset"} {
			t.Run(kind+"/"+fault, func(t *testing.T) {
				s := relOpen(t, kind)
				cutTheNetwork(t, s, fault)
			})
		}
	}
}

func cutTheNetwork(t *testing.T, s *relServer, fault string) {
	const (
		goroutines = 8
		stallFor   = 1200 * time.Millisecond
		outageFor  = 500 * time.Millisecond
	)
	// A stall must outlast the deadline; drops and resets are about what
	// fails, not how fast, so their deadline leaves room for a loaded CI
	// machine.
	opTimeout := 2 * time.Second
	if fault == "stall" {
		opTimeout = stallFor / 4
	}
	p, err := faultproxy.New(s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	db, c := s.pool(t, p.Addr(), sqlpool.Config{MaxSize: goroutines})
	l := newLoad(db, s, opTimeout)
	l.start(goroutines)
	defer l.halt()
	l.waitSuccesses(t, time.Time{}, 50)

	cutConns := p.Stats().Active // open or being dialed
	cut := time.Now()
	var healed time.Time
	switch fault {
	case "stall":
		p.Stall(faultproxy.Both)
		time.Sleep(stallFor) // the length of the outage, not synchronisation
		p.Resume()
		healed = time.Now()
	case "restart":
		p.Refuse()
		p.Reset()
		time.Sleep(outageFor) // the length of the outage, not synchronisation
		p.Resume()
		healed = time.Now()
	case "drop":
		p.Drop()
		healed = time.Now()
	case "reset":
		p.Reset()
		healed = time.Now()
	}
	recovery := l.waitRecovered(t, healed, 300*time.Millisecond, 3*goroutines, 2*time.Second)
	ops := l.halt()
	failed := failures(ops)
	a := audit(t, s, ops)
	st := c.Stats()

	// The longest an operation ran past its deadline. driver.Tx's Commit
	// takes no context (nor does database/sql pass one), so a COMMIT
	// begun before the deadline waits for the network: those count apart.
	var overrun, commitOverrun time.Duration
	var worst relOp
	for _, op := range ops {
		d := op.end.Sub(op.start) - opTimeout
		if !op.commitAt.IsZero() && op.commitAt.Before(op.start.Add(opTimeout)) {
			commitOverrun = max(commitOverrun, d)
			continue
		}
		if d > overrun {
			overrun, worst = d, op
		}
	}
	if overrun > 0 {
		t.Logf("the longest operation: kind %d, started %v after the cut, ran %v: %v",
			worst.kind, worst.start.Sub(cut).Round(time.Millisecond), worst.end.Sub(worst.start).Round(time.Millisecond), worst.err)
	}
	if commitOverrun > 0 {
		t.Logf("a COMMIT begun before its deadline ran %v past it: driver.Tx.Commit takes no context", commitOverrun.Round(time.Millisecond))
	}
	flying := inFlight(ops, cut, healed)
	t.Logf("%s/%s: %d ops, %d failed, %d in flight during the fault, %d connections cut; longest past its deadline %v; recovery %v after the fault ended; "+
		"writes: %d succeeded, %d failed (%d ambiguous), lost %d, doubled %d; pool: created %d, closed %v\n%s",
		s.kind, fault, len(ops), len(failed), flying, cutConns, overrun.Round(time.Millisecond), recovery.Round(time.Millisecond),
		a.succeeded, a.failed, a.ambiguous, len(a.lost), len(a.doubled), st.Created, st.Closed, errorSummary(ops))

	if recovery > 2*time.Second {
		t.Errorf("recovery took %v, want at most 2s", recovery)
	}
	switch fault {
	case "stall":
		// Past 2×raceSlack, an operation waited for the network, not for
		// a busy CPU: a hang lasts until Resume, 900 ms past the deadline.
		if s.kind == "postgres" && overrun > 2*raceSlack {
			a.check(t, s, ops)
			knownBug(t, fmt.Sprintf("lib/pq ignores a context deadline while the network is stalled: operations ran %v past their deadline", overrun))
		}
		if overrun > 2*raceSlack {
			t.Errorf("an operation ran %v past its %v deadline during the stall, want it to fail in time", overrun, opTimeout)
		}
	case "restart":
		// Operations fail during the outage, fast: nothing waits for a
		// server that refuses connections.
		if overrun > 2*raceSlack {
			t.Errorf("an operation ran %v past its %v deadline during the outage", overrun, opTimeout)
		}
	default:
		if len(failed) > cutConns {
			t.Errorf("%d operations failed, more than the %d connections cut", len(failed), cutConns)
		}
	}
	a.check(t, s, ops)
}

// ---- killed connections ----

// TestKilledConnections kills half of the pool's server connections
// (pg_terminate_backend, KILL) under a load of more goroutines than
// connections: at most the operations running on the killed connections
// fail, the pool replaces them, and no write is lost or doubled.
func TestKilledConnections(t *testing.T) { eachServer(t, killHalfThePool) }

func killHalfThePool(t *testing.T, s *relServer) {
	const (
		size       = 8
		goroutines = 12
		opTimeout  = 2 * time.Second
	)
	db, c := s.pool(t, s.addr, sqlpool.Config{MaxSize: size})
	l := newLoad(db, s, opTimeout)
	l.start(goroutines)
	defer l.halt()
	l.waitSuccesses(t, time.Time{}, 100)
	var ids []int64
	waitFor(t, "the pool to reach its size", func() bool {
		ids = s.backends(t)
		return len(ids) == size
	})
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	victims := ids[:size/2]
	created := c.Stats().Created

	cut := time.Now()
	for _, id := range victims {
		s.kill(t, id)
	}
	healed := time.Now()
	recovery := l.waitRecovered(t, healed, 300*time.Millisecond, 3*goroutines, 2*time.Second)
	waitFor(t, "the killed connections to be replaced", func() bool {
		now := s.backends(t)
		for _, id := range victims {
			if slices.Contains(now, id) {
				return false
			}
		}
		return len(now) == size
	})
	ops := l.halt()
	failed := failures(ops)
	a := audit(t, s, ops)
	st := c.Stats()
	t.Logf("%s: killed %d of %d connections; %d ops, %d failed, %d in flight during the kills; recovery %v; replaced: %d dialed; "+
		"writes: %d succeeded, %d failed (%d ambiguous), lost %d, doubled %d; closed %v\n%s",
		s.kind, len(victims), size, len(ops), len(failed), inFlight(ops, cut, healed), recovery.Round(time.Millisecond),
		st.Created-created, a.succeeded, a.failed, a.ambiguous, len(a.lost), len(a.doubled), st.Closed, errorSummary(ops))
	if len(failed) > len(victims) {
		t.Errorf("%d operations failed; at most %d (one per killed connection) may", len(failed), len(victims))
	}
	if st.Created-created < int64(len(victims)) {
		t.Errorf("%d connections dialed after the kills, want at least %d", st.Created-created, len(victims))
	}
	if recovery > 2*time.Second {
		t.Errorf("recovery took %v, want at most 2s", recovery)
	}
	a.check(t, s, ops)
}

// ---- nothing lost, nothing doubled ----

// TestLostResponseIsNotRetried makes the worst case of a network cut
// happen on purpose: the statement reaches the server and runs, and the
// connection is lost before its answer comes back. The caller must then
// get an error (an ambiguous one), and the statement must not run again:
// database/sql retries an operation that fails with driver.ErrBadConn, so
// neither the driver nor sqlpool may return it once the statement may have
// run.
func TestLostResponseIsNotRetried(t *testing.T) {
	for _, kind := range append(relServerKinds, "pgx") {
		for _, fault := range []string{"drop", "reset"} {
			for _, op := range []string{"exec", "commit"} {
				t.Run(kind+"/"+fault+"/"+op, func(t *testing.T) {
					loseTheResponse(t, relOpen(t, kind), fault, op)
				})
			}
		}
	}
}

func loseTheResponse(t *testing.T, s *relServer, fault, op string) {
	p, err := faultproxy.New(s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	db, _ := s.pool(t, p.Addr(), sqlpool.Config{MaxSize: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, s.insertSQL, 0, 0); err != nil {
		t.Fatal(err)
	}
	var tx *sql.Tx
	if op == "commit" {
		if tx, err = db.BeginTx(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, s.insertSQL, 1, 0); err != nil {
			t.Fatal(err)
		}
	}

	p.Stall(faultproxy.Downstream) // requests get through, answers do not
	done := make(chan error, 1)
	go func() {
		if tx != nil {
			done <- tx.Commit()
			return
		}
		_, err := db.ExecContext(ctx, s.insertSQL, 1, 0)
		done <- err
	}()
	waitFor(t, "the write to reach the server", func() bool { return s.writes(t)[1] > 0 })
	if fault == "drop" {
		p.Drop()
	} else {
		p.Reset()
	}
	p.Resume()
	err = <-done
	n := s.writes(t)[1]
	t.Logf("%s, answer lost by a %s during the %s: err = %v (%T); the write is in the table %d times", s.kind, fault, op, err, err, n)
	switch {
	case n > 1 && s.kind == "postgres":
		t.Errorf("the write ran %d times: lib/pq returns driver.ErrBadConn for a connection closed (EOF) after it sent the statement, "+
			"sqlpool passes it on, and database/sql runs the statement again", n)
		fallthrough
	case n > 1:
		t.Errorf("the write ran %d times: it was retried after it had run", n)
	case err == nil:
		// The answer was lost, yet the caller was told of success: only
		// possible if the statement ran again, which n rules out.
		t.Errorf("the write returned success although its answer was lost")
	case !ambiguous(relOp{kind: opInsert, err: err, committing: true}):
		t.Errorf("err = %v: an error that says the write was not applied, but it was", err)
	}
}

// ---- exclusivity ----

// ownership checks, through sqlpool's hooks, that a physical connection is
// never lent to two borrowers at once: OnAcquire takes it, OnRelease gives
// it back, and every operation must run on a connection its borrower holds.
type ownership struct {
	conns      sync.Map // ConnID → *atomic.Bool: borrowed
	violations atomic.Int64
	first      atomic.Pointer[string]
}

func (o *ownership) flag(id int64) *atomic.Bool {
	v, _ := o.conns.LoadOrStore(id, new(atomic.Bool))
	return v.(*atomic.Bool)
}

func (o *ownership) violate(format string, args ...any) {
	if o.violations.Add(1) == 1 {
		msg := fmt.Sprintf(format, args...)
		o.first.Store(&msg)
	}
}

func (o *ownership) hooks() sqlpool.Hooks {
	return sqlpool.Hooks{
		OnAcquire: func(e sqlpool.AcquireEvent) {
			if e.Err == nil && !o.flag(e.ConnID).CompareAndSwap(false, true) {
				o.violate("connection %d lent while borrowed", e.ConnID)
			}
		},
		OnRelease: func(e sqlpool.ReleaseEvent) {
			if !o.flag(e.ConnID).CompareAndSwap(true, false) {
				o.violate("connection %d released while not borrowed", e.ConnID)
			}
		},
		OnQueryStart: func(e sqlpool.QueryEvent) {
			if !o.flag(e.ConnID).Load() {
				o.violate("%s on connection %d, which is not borrowed", e.Op, e.ConnID)
			}
		},
	}
}

func (o *ownership) check(t *testing.T) {
	t.Helper()
	if n := o.violations.Load(); n > 0 {
		t.Errorf("%d exclusivity violations; the first: %s", n, *o.first.Load())
	}
	o.conns.Range(func(id, v any) bool {
		if v.(*atomic.Bool).Load() {
			t.Errorf("connection %d still borrowed after the load", id)
		}
		return true
	})
}

// TestExclusivity hammers a small pool with 64 goroutines and 100,000
// operations of every kind (queries with rows, execs, transactions,
// *sql.Conn, prepared statements, canceled contexts, broken connections),
// with lifetimes, idle timeouts and maintenance short enough to run all the
// time, and checks that no physical connection is ever lent to two
// borrowers at once: through the hooks (ownership), and through the race
// detector, since the fake driver's connections touch unguarded state on
// every call.
func TestExclusivity(t *testing.T) {
	const goroutines = 64
	total := 100_000
	if testing.Short() {
		total = 20_000
	}
	for _, tc := range []struct {
		name string
		cfg  sqlpool.Config
	}{
		{"default", sqlpool.Config{}},
		{"fair-reserve-validate", sqlpool.Config{FairQueue: true, CriticalReserve: 1, ValidationBypass: -1, StarvationAfter: time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o ownership
			cfg := tc.cfg
			cfg.MaxSize, cfg.MinSize = 8, 2
			cfg.MaxLifetime, cfg.IdleTimeout, cfg.MaintenanceInterval = 30*time.Millisecond, 10*time.Millisecond, 5*time.Millisecond
			cfg.Hooks = o.hooks()
			db, c, d := fakeDB(t, drivertest.Options{}, cfg)
			hammer(t, db, goroutines, total/2)
			waitFor(t, "the pool to be idle", func() bool { s := c.Stats(); return s.InUse == 0 && s.Waiting == 0 })
			o.check(t)
			s, ds := c.Stats(), d.Stats()
			t.Logf("%s: %d acquisitions, %d connections dialed, %d closed %v; driver: %d queries, %d execs",
				tc.name, s.Acquires, s.Created, ds.Closes, s.Closed, ds.Queries, ds.Execs)
		})
	}
}

// hammer runs n operations of every kind on db from g goroutines. Only the
// errors an operation asks for are allowed.
func hammer(t *testing.T, db *sql.DB, g, n int) {
	stmt, err := db.Prepare("GET k ?")
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	var left atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	for w := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			bg := context.Background()
			for left.Add(-1) >= 0 {
				ctx := bg
				if w%4 == 0 {
					ctx = sqlpool.WithPriority(bg, sqlpool.PriorityCritical)
				}
				var err error
				wantErr := false
				switch r := rng.IntN(100); {
				case r < 35:
					_, err = db.ExecContext(ctx, "SET k ? ?", w, r)
				case r < 55:
					var rows *sql.Rows
					if rows, err = db.QueryContext(ctx, "ROWS 3"); err == nil {
						for rows.Next() {
						}
						err = rows.Close()
					}
				case r < 65:
					var tx *sql.Tx
					if tx, err = db.BeginTx(ctx, nil); err == nil {
						tx.ExecContext(ctx, "SET t ? ?", w, r)
						var v any
						tx.QueryRowContext(ctx, "GET t ?", w).Scan(&v)
						if r%2 == 0 {
							err = tx.Commit()
						} else {
							err = tx.Rollback()
						}
					}
				case r < 75:
					var conn *sql.Conn
					if conn, err = db.Conn(ctx); err == nil {
						conn.ExecContext(ctx, "SETTENANT x")
						var id int64
						err = conn.QueryRowContext(ctx, "CONNID").Scan(&id)
						conn.Close()
					}
				case r < 88:
					var v any
					if err = stmt.QueryRowContext(ctx, w).Scan(&v); err == sql.ErrNoRows {
						err = nil
					}
				case r < 97:
					// Canceled at some point of its course.
					cctx, cancel := context.WithTimeout(ctx, time.Duration(rng.IntN(200))*time.Microsecond)
					_, err = db.ExecContext(cctx, "SET k ? ?", w, r)
					cancel()
					wantErr = err != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, sqlpool.ErrAcquireTimeout))
				default:
					_, err = db.ExecContext(ctx, "BADCONN")
					wantErr = errors.Is(err, driver.ErrBadConn)
				}
				if err != nil && !wantErr {
					t.Errorf("goroutine %d: %v", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// ---- overload ----

// soakDuration returns how long soak-style tests run: short unless
// SQLPOOL_SOAK=1, and SQLPOOL_SOAK_DURATION overrides it then.
func soakDuration(t *testing.T, short, soak time.Duration) time.Duration {
	t.Helper()
	if os.Getenv("SQLPOOL_SOAK") != "1" {
		return short
	}
	if v := os.Getenv("SQLPOOL_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("SQLPOOL_SOAK_DURATION: %v", err)
		}
		return d
	}
	return soak
}

// TestOverload runs ten times more goroutines than connections for a few
// seconds (30 s with SQLPOOL_SOAK=1): every operation that cannot get a
// connection fails with ErrAcquireTimeout or ErrQueueFull, promptly (within
// AcquireTimeout + 50 ms of its start, asserted with slack for -race on a
// loaded machine, and the real figure logged), memory stays bounded, and the
// pool is fully idle afterwards.
func TestOverload(t *testing.T) {
	const (
		size           = 4
		goroutines     = 10 * size
		acquireTimeout = 100 * time.Millisecond
		promptly       = 50 * time.Millisecond
	)
	run := soakDuration(t, 2*time.Second, 30*time.Second)
	// 30 ms per operation and 16 waiters: the last in the queue waits
	// about 16/4 × 30 = 120 ms, past AcquireTimeout, so the load meets all
	// three refusals: queue full, timed out, and would-time-out (refused at
	// once by FailFastBelow's estimate).
	db, c, _ := fakeDB(t, drivertest.Options{Latency: 30 * time.Millisecond}, sqlpool.Config{
		MaxSize: size, AcquireTimeout: acquireTimeout, MaxWaitQueue: 4 * size,
	})
	// Warm up, then measure memory from a settled heap.
	if _, err := db.Exec("SET k v"); err != nil {
		t.Fatal(err)
	}
	goroutinesBefore := runtime.NumGoroutine()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	var (
		ok, timeouts, queueFull, wouldTimeout atomic.Int64
		worstTimeout, worstRefusal            atomic.Int64 // nanoseconds: timeouts past AcquireTimeout, refusals' whole wait
		wg                                    sync.WaitGroup
	)
	raise := func(a *atomic.Int64, v time.Duration) {
		for {
			old := a.Load()
			if int64(v) <= old || a.CompareAndSwap(old, int64(v)) {
				return
			}
		}
	}
	stop := time.Now().Add(run)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				start := time.Now()
				_, err := db.ExecContext(context.Background(), "SET k ? ?", g, 1)
				took := time.Since(start)
				switch {
				case err == nil:
					ok.Add(1)
					continue
				case errors.Is(err, pool.ErrWouldTimeout): // refused at once: it would have timed out
					wouldTimeout.Add(1)
					raise(&worstRefusal, took)
				case errors.Is(err, sqlpool.ErrAcquireTimeout):
					timeouts.Add(1)
					raise(&worstTimeout, took-acquireTimeout)
				case errors.Is(err, sqlpool.ErrQueueFull):
					queueFull.Add(1)
					raise(&worstRefusal, took)
				default:
					t.Errorf("err = %v, want ErrAcquireTimeout or ErrQueueFull", err)
					return
				}
				time.Sleep(time.Millisecond) // pace the retries of a refused caller
			}
		}()
	}
	wg.Wait()

	waitFor(t, "the pool to be idle", func() bool { s := c.Stats(); return s.InUse == 0 && s.Waiting == 0 })
	waitFor(t, "the load's goroutines to end", func() bool { return runtime.NumGoroutine() <= goroutinesBefore })
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	s := c.Stats()
	wt, wr := time.Duration(worstTimeout.Load()), time.Duration(worstRefusal.Load())
	t.Logf("%v, %d goroutines on %d connections: %d ok, %d timed out (worst %v past AcquireTimeout %v), %d refused queue full, "+
		"%d refused would-time-out (worst refusal took %v); heap %+d bytes; pool after: %d open, %d in use, %d waiting",
		run, goroutines, size, ok.Load(), timeouts.Load(), wt.Round(100*time.Microsecond), acquireTimeout, queueFull.Load(),
		wouldTimeout.Load(), wr.Round(100*time.Microsecond), growth, s.Size, s.InUse, s.Waiting)
	if ok.Load() == 0 || timeouts.Load()+queueFull.Load()+wouldTimeout.Load() == 0 {
		t.Errorf("no overload: %d ok, %d failed", ok.Load(), timeouts.Load()+queueFull.Load()+wouldTimeout.Load())
	}
	if wt > promptly+raceSlack {
		t.Errorf("a timeout came %v after AcquireTimeout, want within %v (+%v slack for -race)", wt, promptly, raceSlack)
	}
	if wr > promptly+raceSlack {
		t.Errorf("a refusal took %v, want within %v (+%v slack for -race)", wr, promptly, raceSlack)
	}
	if growth > 8<<20 {
		t.Errorf("the heap grew by %d bytes during the overload, want less than 8 MiB", growth)
	}
}

// ---- Close ----

// TestCloseFailsWaitersAndLaterOperations closes a pool with a borrowed
// connection and a waiter: the waiter fails at once with ErrClosed, later
// operations fail with ErrClosed (or database/sql's "database is closed"),
// the borrowed connection keeps working for its borrower and is closed when
// released, and nothing is left open (TestMain checks goroutines).
func TestCloseFailsWaitersAndLaterOperations(t *testing.T) {
	db, c, d := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 1, MinSize: 1})
	ctx := context.Background()
	held, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	queryInt(t, ctx, held, "SELECT 1")
	waiter := make(chan error, 1)
	go func() {
		_, err := db.ExecContext(ctx, "SELECT 1")
		waiter <- err
	}()
	waitFor(t, "a waiter", func() bool { return c.Stats().Waiting == 1 })

	closed := time.Now()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waiter:
		if !errors.Is(err, sqlpool.ErrClosed) {
			t.Errorf("waiter: %v, want ErrClosed", err)
		}
		t.Logf("the waiter failed %v after Close", time.Since(closed))
	case <-time.After(time.Second):
		t.Fatal("the waiter still waits a second after Close")
	}
	if _, err := db.ExecContext(ctx, "SELECT 1"); err == nil || err.Error() != "sql: database is closed" {
		t.Errorf("DB.Exec after Close: %v, want sql: database is closed", err)
	}
	other := sql.OpenDB(c) // a second DB on the closed connector
	defer other.Close()
	if _, err := other.ExecContext(ctx, "SELECT 1"); !errors.Is(err, sqlpool.ErrClosed) {
		t.Errorf("Exec on a closed Connector: %v, want ErrClosed", err)
	}
	if _, err := c.Connect(ctx); !errors.Is(err, sqlpool.ErrClosed) {
		t.Errorf("Connect after Close: %v, want ErrClosed", err)
	}

	// The borrower keeps its connection (its session is pinned) until it
	// lets go.
	if n := queryInt(t, ctx, held, "SELECT 7"); n != 7 {
		t.Errorf("the held connection after Close: %d", n)
	}
	if n := d.Stats().Open; n != 1 {
		t.Errorf("%d connections open while one is borrowed, want 1", n)
	}
	held.Close()
	if n := d.Stats().Open; n != 0 {
		t.Errorf("%d connections open after the last release, want 0", n)
	}
	if s := c.Stats(); s.Size != 0 || s.InUse != 0 || s.Idle != 0 {
		t.Errorf("pool after Close: %d open, %d in use, %d idle; want none", s.Size, s.InUse, s.Idle)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestCloseClosesBorrowedConnectionsAfterATimeout pins what issue 9 asks
// of Close: wait for borrowed connections up to a timeout, then close them.
// Today a borrowed connection that is never released (a transaction left
// open, an *sql.Conn never closed) stays open on the server for ever after
// Close.
func TestCloseClosesBorrowedConnectionsAfterATimeout(t *testing.T) {
	d := drivertest.New(drivertest.Options{})
	c, err := sqlpool.Wrap(d.Connector("x"), sqlpool.Config{CloseTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	db := sqlpool.OpenDB(c)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	db.Close()
	deadline := time.Now().Add(10 * time.Second)
	for d.Stats().Open != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("a borrowed connection is still open 10s after Close")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCloseLeavesNoServerConnection closes a pool that served a load, with
// connections idle, borrowed by an *sql.Conn and inside a transaction: once
// they are released, the server shows none of them, and operations fail.
func TestCloseLeavesNoServerConnection(t *testing.T) {
	eachServer(t, func(t *testing.T, s *relServer) {
		db, c := s.pool(t, s.addr, sqlpool.Config{MaxSize: 6, MinSize: 2})
		l := newLoad(db, s, 2*time.Second)
		l.start(6)
		l.waitSuccesses(t, time.Time{}, 50)
		l.halt()
		ctx := context.Background()
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.PingContext(ctx); err != nil {
			t.Fatal(err)
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, s.insertSQL, -1, 0); err != nil {
			t.Fatal(err)
		}
		open := len(s.backends(t))
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, s.readSQL, 1); err == nil {
			t.Error("an operation succeeded after Close")
		}
		conn.Close()
		tx.Rollback()
		s.waitNoBackends(t)
		if st := c.Stats(); st.Size != 0 {
			t.Errorf("the pool counts %d connections after Close", st.Size)
		}
		t.Logf("%s: %d server connections before Close, 0 after", s.kind, open)
	})
}

// ---- bad input ----

// TestBadConfigNamesTheField extends TestInvalidConfigNamesTheField to every
// field with a constraint.
func TestBadConfigNamesTheField(t *testing.T) {
	d := drivertest.New(drivertest.Options{})
	for _, tc := range []struct {
		cfg  sqlpool.Config
		want string
	}{
		{sqlpool.Config{MinSize: -1}, "MinSize"},
		{sqlpool.Config{InitialSize: -1}, "InitialSize"},
		{sqlpool.Config{MaxSize: 2, InitialSize: 3}, "InitialSize"},
		{sqlpool.Config{MaxConcurrentConnects: -1}, "MaxConcurrentConnects"},
		{sqlpool.Config{ConnectRate: -1}, "ConnectRate"},
		{sqlpool.Config{ValidationTimeout: -1}, "ValidationTimeout"},
		{sqlpool.Config{MaintenanceInterval: -1}, "MaintenanceInterval"},
		{sqlpool.Config{LeakThreshold: -time.Second}, "LeakThreshold"},
		{sqlpool.Config{StatementCacheMode: sqlpool.CacheAll + 1}, "StatementCacheMode"},
		{sqlpool.Config{CriticalReserve: -1}, "CriticalReserve"},
		{sqlpool.Config{MaxSize: 4, CriticalReserve: 4}, "CriticalReserve"},
		{sqlpool.Config{FailFastBelow: 1}, "FailFastBelow"},
		{sqlpool.Config{DeadlockThreshold: -1}, "DeadlockThreshold"},
	} {
		_, err := sqlpool.Wrap(d.Connector("x"), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Wrap with %s: err = %v, want one naming %s", tc.want, err, tc.want)
		}
		if _, err2 := sqlpool.NewConnector(d, "x", tc.cfg); err2 == nil || err == nil || err2.Error() != err.Error() {
			t.Errorf("NewConnector and Wrap disagree on %s: %v, %v", tc.want, err2, err)
		}
	}
	if _, err := sqlpool.Wrap(nil, sqlpool.Config{}); err == nil {
		t.Error("Wrap(nil): no error")
	}
	if _, err := sqlpool.NewConnector(nil, "x", sqlpool.Config{}); err == nil {
		t.Error("NewConnector(nil driver): no error")
	}
}

// TestBadConfigRejectsNaN checks that float fields refuse NaN, which every
// comparison lets through.
func TestBadConfigRejectsNaN(t *testing.T) {
	d := drivertest.New(drivertest.Options{})
	var accepted []string
	for _, tc := range []struct {
		cfg  sqlpool.Config
		want string
	}{
		{sqlpool.Config{ConnectRate: math.NaN()}, "ConnectRate"},
		{sqlpool.Config{FailFastBelow: math.NaN()}, "FailFastBelow"},
	} {
		c, err := sqlpool.Wrap(d.Connector("x"), tc.cfg)
		if err == nil {
			c.Close()
			accepted = append(accepted, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s NaN: err = %v, want one naming %s", tc.want, err, tc.want)
		}
	}
	if len(accepted) > 0 {
		t.Errorf("NaN accepted for %v: pool.Config.normalize compares with < and >=, which NaN passes", accepted)
		t.Errorf("NaN accepted for %v", accepted)
	}
}

// TestBadDSNGivesTheDriversError checks that a malformed DSN fails with the
// driver's own error, as with the bare driver: at NewConnector when the
// driver parses DSNs in OpenConnector (go-sql-driver/mysql), at the first
// operation otherwise (lib/pq, whose Driver has no OpenConnector).
func TestBadDSNGivesTheDriversError(t *testing.T) {
	for _, dsn := range []string{
		"not a dsn",
		"root@tcp(127.0.0.1:3306/test",
		"root@tcp(127.0.0.1:3306)/test?timeout=abc",
		"root@tcp(127.0.0.1:3306)/test?tls=nosuchconfig",
		"root@unix/%zz",
	} {
		_, bare := (&mysql.MySQLDriver{}).OpenConnector(dsn)
		_, err := sqlpool.NewConnector(&mysql.MySQLDriver{}, dsn, sqlpool.Config{})
		if bare == nil {
			t.Errorf("mysql %q: the bare driver accepts it; pick another", dsn)
			continue
		}
		if err == nil || (!errors.Is(err, bare) && err.Error() != bare.Error()) {
			t.Errorf("mysql %q: err = %v, want the driver's %v", dsn, err, bare)
		}
	}
	for _, dsn := range []string{
		"postgres://%zz",
		"postgres://localhost:notaport/db",
		"host=localhost sslmode=bogus",
		"host=localhost connect_timeout=abc",
		"host='unterminated",
	} {
		_, bare := (&pq.Driver{}).Open(dsn)
		if bare == nil {
			t.Errorf("lib/pq %q: the bare driver accepts it; pick another", dsn)
			continue
		}
		c, err := sqlpool.NewConnector(&pq.Driver{}, dsn, sqlpool.Config{})
		if err == nil {
			db := sqlpool.OpenDB(c)
			err = db.Ping()
			db.Close()
		}
		var bareErr *pq.Error
		switch {
		case err == nil:
			t.Errorf("lib/pq %q: no error", dsn)
		case errors.As(bare, &bareErr) && !errors.As(err, &bareErr):
			t.Errorf("lib/pq %q: err = %v (%T), want the driver's *pq.Error %v", dsn, err, err, bare)
		case !errors.Is(err, bare) && !strings.Contains(err.Error(), bare.Error()):
			t.Errorf("lib/pq %q: err = %v, want the driver's %v", dsn, err, bare)
		default:
			t.Logf("lib/pq %q: %v", dsn, err)
		}
	}
}

// ---- fuzzing ----

// configFields lists the names of sqlpool.Config's fields.
var configFields = func() []string {
	var names []string
	typ := reflect.TypeFor[sqlpool.Config]()
	for i := range typ.NumField() {
		names = append(names, typ.Field(i).Name)
	}
	return names
}()

// FuzzConfig gives NewConnector random field values: it must return an
// error that names a field of Config, or a connector that works (an
// operation succeeds or fails with a pool error, and Close ends
// everything), and never panic. Seeds are in testdata/fuzz/FuzzConfig.
func FuzzConfig(f *testing.F) {
	f.Add(int8(0), 0, int8(0), 0, 0, 0, 0, 0, int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), 0.0, 0.0, uint8(0), false, false)
	f.Add(int8(2), 4, int8(1), 8, 2, 1, 16, 64, int64(time.Second), int64(time.Minute), int64(time.Minute), int64(time.Second),
		int64(time.Second), int64(time.Millisecond), int64(10*time.Millisecond), 100.0, 0.1, uint8(sqlpool.CacheAll), true, true)
	f.Add(int8(-1), -1, int8(-1), -1, -1, -1, -1, -1, int64(-1), int64(-1), int64(-1), int64(-1), int64(-1), int64(-1), int64(-1), -1.0, -1.0, uint8(9), false, true)
	f.Fuzz(func(t *testing.T, minSize int8, maxSize int, initialSize int8, maxWaitQueue, maxConcurrentConnects, criticalReserve,
		stmtCacheSize, stmtCacheMaxTotal int, acquireTimeout, maxLifetime, idleTimeout, connectTimeout, validationTimeout,
		validationBypass, maintenanceInterval int64, connectRate, failFastBelow float64, mode uint8, fair, validateOnRelease bool) {
		cfg := sqlpool.Config{
			MinSize: int(minSize), MaxSize: maxSize, InitialSize: int(initialSize), MaxWaitQueue: maxWaitQueue,
			MaxConcurrentConnects: maxConcurrentConnects, CriticalReserve: criticalReserve,
			StatementCacheSize: stmtCacheSize, StatementCacheMaxTotal: stmtCacheMaxTotal,
			AcquireTimeout: time.Duration(acquireTimeout), MaxLifetime: time.Duration(maxLifetime),
			IdleTimeout: time.Duration(idleTimeout), ConnectTimeout: time.Duration(connectTimeout),
			ValidationTimeout: time.Duration(validationTimeout), ValidationBypass: time.Duration(validationBypass),
			// A maintenance loop faster than 100µs would only burn the
			// fuzzer's CPU: what it does is the same.
			MaintenanceInterval: time.Duration(max(maintenanceInterval, int64(100*time.Microsecond), min(maintenanceInterval, 0))),
			ConnectRate:         connectRate, FailFastBelow: failFastBelow,
			StatementCacheMode: sqlpool.CacheMode(mode), FairQueue: fair, ValidateOnRelease: validateOnRelease,
		}
		d := drivertest.New(drivertest.Options{})
		c, err := sqlpool.NewConnector(d, "fuzz", cfg)
		if err != nil {
			for _, name := range configFields {
				if strings.Contains(err.Error(), name) {
					return
				}
			}
			t.Fatalf("NewConnector(%+v): %v, which names no field", cfg, err)
		}
		db := sqlpool.OpenDB(c)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_, err = db.ExecContext(ctx, "SET k ?", 1)
		cancel()
		if err != nil && !errors.Is(err, sqlpool.ErrAcquireTimeout) && !errors.Is(err, context.DeadlineExceeded) &&
			!errors.Is(err, sqlpool.ErrQueueFull) && !strings.HasPrefix(err.Error(), "sqlpool:") {
			t.Errorf("Exec with %+v: %v", cfg, err)
		}
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		waitFor(t, "every connection to close", func() bool { return d.Stats().Open == 0 })
	})
}

// ---- health checks that ignore their context ----

// stubbornConnector makes connections whose Ping blocks, while hang is
// open, whatever its context says: lib/pq's Ping behaves so while the
// network is stalled (it waits for the server's answer).
type stubbornConnector struct{ hang atomic.Pointer[chan struct{}] }

func (s *stubbornConnector) Connect(context.Context) (driver.Conn, error) {
	return stubbornConn{s}, nil
}
func (s *stubbornConnector) Driver() driver.Driver { return nil }

type stubbornConn struct{ s *stubbornConnector }

func (stubbornConn) Prepare(string) (driver.Stmt, error) {
	return nil, errors.New("stubborn: no prepare")
}
func (stubbornConn) Close() error              { return nil }
func (stubbornConn) Begin() (driver.Tx, error) { return nil, errors.New("stubborn: no transactions") }
func (stubbornConn) ExecContext(context.Context, string, []driver.NamedValue) (driver.Result, error) {
	return driver.RowsAffected(0), nil
}
func (c stubbornConn) Ping(context.Context) error {
	if ch := c.s.hang.Load(); ch != nil {
		<-*ch
	}
	return nil
}

// TestReliabilityValidationTimeoutBoundsAPingThatIgnoresItsContext checks
// that sqlpool's own health check of an idle connection gives up after
// ValidationTimeout even when the driver's Ping ignores its context, so an
// operation with a deadline is not held past it by sqlpool.
func TestReliabilityValidationTimeoutBoundsAPingThatIgnoresItsContext(t *testing.T) {
	const deadline = 200 * time.Millisecond
	s := &stubbornConnector{}
	c, err := sqlpool.Wrap(s, sqlpool.Config{MaxSize: 1, ValidationBypass: -1, ValidationTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	db := sqlpool.OpenDB(c)
	defer db.Close()
	if _, err := db.Exec("x"); err != nil { // dialed: no health check
		t.Fatal(err)
	}
	hang := make(chan struct{})
	s.hang.Store(&hang)
	var release sync.Once
	defer release.Do(func() { close(hang) })
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		_, err := db.ExecContext(ctx, "x")
		done <- err
	}()
	var took time.Duration
	select {
	case err = <-done:
		took = time.Since(start)
	case <-time.After(deadline + 500*time.Millisecond):
		release.Do(func() { close(hang) }) // let it go, to end the test cleanly
		err = <-done
		took = time.Since(start)
		t.Errorf("ValidationTimeout is enforced only through the context, which lib/pq's Ping ignores while the network is stalled: "+
			"the health check held an operation with a %v deadline for %v (pool.Pool.checkout calls Factory.Validate synchronously)", deadline, took)
	}
	t.Logf("an operation with a %v deadline returned after %v: %v", deadline, took, err)
	if took > deadline+raceSlack {
		t.Errorf("the operation took %v, past its %v deadline", took, deadline)
	}
}

// gatedConnector's dials wait, while gate is set, until it is closed or
// their context ends.
type gatedConnector struct {
	driver.Connector
	gate atomic.Pointer[chan struct{}]
}

func (g *gatedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	if ch := g.gate.Load(); ch != nil {
		select {
		case <-*ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.Connector.Connect(ctx)
}

// TestReliabilityADialingCallerTakesAConnectionReleasedMeanwhile: after a
// fault, callers dial replacements, and a dial can be slow (a server
// restarting, a network recovering). A caller waiting for its own dial
// should take a connection released meanwhile rather than fail at its
// deadline while that connection sits idle (the dial's connection then goes
// to the next waiter or the idle stack, as when the caller gives up).
func TestReliabilityADialingCallerTakesAConnectionReleasedMeanwhile(t *testing.T) {
	const deadline = 300 * time.Millisecond
	g := &gatedConnector{Connector: drivertest.New(drivertest.Options{}).Connector("x")}
	c, err := sqlpool.Wrap(g, sqlpool.Config{MaxSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	db := sqlpool.OpenDB(c)
	defer db.Close()
	ctx := context.Background()
	held, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	queryInt(t, ctx, held, "SELECT 1")
	gate := make(chan struct{})
	g.gate.Store(&gate)
	defer close(gate)

	done := make(chan error, 1)
	start := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(ctx, deadline)
		defer cancel()
		_, err := db.ExecContext(ctx, "SELECT 1") // dials the second connection: slow
		done <- err
	}()
	waitFor(t, "the dial", func() bool { return c.Stats().Dialing == 1 })
	released := time.Now()
	held.Close() // a connection is idle now
	err = <-done
	t.Logf("released %v after the start; the operation returned after %v: %v",
		released.Sub(start).Round(time.Millisecond), time.Since(start).Round(time.Millisecond), err)
	if errors.Is(err, sqlpool.ErrAcquireTimeout) {
		t.Error("a caller waiting for its own dial is not served by a connection released meanwhile: " +
			"pool.Pool.dial waits only for its dial, the caller's context and the timeout")
	}
	if err != nil {
		t.Errorf("the operation failed although a connection was released long before its deadline: %v", err)
	}
}
