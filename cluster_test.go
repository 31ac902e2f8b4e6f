package sqlpool_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
)

// testHosts is a Cluster over fake drivers, h0 the primary and the others
// its replicas, whose roles, lags and check failures the test sets. Its
// CheckInterval is an hour: the Cluster learns of a change when the test
// calls CheckHosts.
type testHosts struct {
	cl  *sqlpool.Cluster
	db  *sql.DB
	drv []*drivertest.Driver

	mu     sync.Mutex
	status map[string]sqlpool.HostStatus // guarded by mu
	down   map[string]error              // guarded by mu
}

func newTestHosts(t *testing.T, n int, cfg sqlpool.ClusterConfig, opts ...drivertest.Options) *testHosts {
	t.Helper()
	return newTestHostsWith(t, n, cfg, sqlpool.Config{MaxSize: 4}, opts...)
}

// newTestHostsWith is newTestHosts with each host's Connector configured
// by hostCfg.
func newTestHostsWith(t *testing.T, n int, cfg sqlpool.ClusterConfig, hostCfg sqlpool.Config, opts ...drivertest.Options) *testHosts {
	t.Helper()
	th := &testHosts{status: map[string]sqlpool.HostStatus{}, down: map[string]error{}}
	var hosts []sqlpool.Host
	for i := range n {
		var o drivertest.Options
		if i < len(opts) {
			o = opts[i]
		}
		d := drivertest.New(o)
		name := fmt.Sprintf("h%d", i)
		seed := sql.OpenDB(d.Connector(""))
		if _, err := seed.Exec("SET whoami " + name); err != nil {
			t.Fatal(err)
		}
		seed.Close()
		c, err := sqlpool.Wrap(d.Connector(""), hostCfg)
		if err != nil {
			t.Fatal(err)
		}
		th.drv = append(th.drv, d)
		th.status[name] = sqlpool.HostStatus{ReadOnly: i > 0}
		hosts = append(hosts, sqlpool.Host{Name: name, Connector: c})
	}
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = time.Hour
	}
	cfg.Check = th.check
	cl, err := sqlpool.NewCluster(hosts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	th.cl, th.db = cl, sqlpool.OpenCluster(cl)
	t.Cleanup(func() { th.db.Close() })
	return th
}

func (th *testHosts) check(ctx context.Context, host string, db *sql.DB) (sqlpool.HostStatus, error) {
	if err := db.PingContext(ctx); err != nil {
		return sqlpool.HostStatus{}, err
	}
	th.mu.Lock()
	defer th.mu.Unlock()
	return th.status[host], th.down[host]
}

// set changes what host's checks report, and checks every host.
func (th *testHosts) set(host string, st sqlpool.HostStatus, down error) {
	th.mu.Lock()
	th.status[host], th.down[host] = st, down
	th.mu.Unlock()
	th.cl.CheckHosts(context.Background())
}

// who returns the name of the host that served a read with ctx.
func who(t *testing.T, ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) string {
	t.Helper()
	var name string
	if err := q.QueryRowContext(ctx, "GET whoami").Scan(&name); err != nil {
		t.Fatalf("GET whoami: %v", err)
	}
	return name
}

// reads returns how many of n reads with ctx each host served.
func (th *testHosts) reads(t *testing.T, ctx context.Context, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for range n {
		seen[who(t, ctx, th.db)]++
	}
	return seen
}

// execHost runs an exec with ctx and returns the host that ran it.
func (th *testHosts) execHost(t *testing.T, ctx context.Context) string {
	t.Helper()
	before := make([]int64, len(th.drv))
	for i, d := range th.drv {
		before[i] = d.Stats().Execs
	}
	if _, err := th.db.ExecContext(ctx, "SET k v"); err != nil {
		t.Fatalf("exec: %v", err)
	}
	host := ""
	for i, d := range th.drv {
		if d.Stats().Execs > before[i] {
			host += fmt.Sprintf("h%d", i)
		}
	}
	return host
}

func (th *testHosts) host(name string) sqlpool.HostStats {
	for _, h := range th.cl.Stats().Hosts {
		if h.Name == name {
			return h
		}
	}
	return sqlpool.HostStats{}
}

func TestClusterSendsWritesToThePrimaryAndReadOnlyReadsToReplicas(t *testing.T) {
	th := newTestHosts(t, 3, sqlpool.ClusterConfig{Balance: sqlpool.RoundRobin})
	ctx := context.Background()
	ro := sqlpool.WithReadOnly(ctx)

	if s := th.cl.Stats(); s.Primary != "h0" {
		t.Fatalf("Stats().Primary = %q, want h0", s.Primary)
	}
	if got := who(t, ctx, th.db); got != "h0" {
		t.Errorf("a read without WithReadOnly went to %s, want the primary h0", got)
	}
	if got := th.reads(t, ro, 10); got["h1"] != 5 || got["h2"] != 5 {
		t.Errorf("10 WithReadOnly reads, round robin: %v, want 5 on each replica", got)
	}
	if got := th.execHost(t, ro); got != "h0" {
		t.Errorf("an Exec with a WithReadOnly context ran on %q, want the primary h0", got)
	}

	tx, err := th.db.BeginTx(ro, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	first, second := who(t, ro, tx), who(t, ro, tx)
	if first == "h0" || first != second {
		t.Errorf("a read-only transaction read on %s then %s, want one replica throughout", first, second)
	}
	tx.Commit()
	tx, err = th.db.BeginTx(ro, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := who(t, ro, tx); got != "h0" {
		t.Errorf("a read-write transaction with a WithReadOnly context ran on %s, want the primary h0", got)
	}
	tx.Rollback()

	if h := th.host("h0"); h.Role != sqlpool.RolePrimary || h.Writes != 2 || h.Reads != 1 {
		t.Errorf("h0: role %v, %d writes, %d reads; want primary, 2 (the Exec and the transaction), 1", h.Role, h.Writes, h.Reads)
	}
	if h := th.host("h1"); h.Role != sqlpool.RoleReplica || h.Reads < 5 || h.Writes != 0 {
		t.Errorf("h1: role %v, %d reads, %d writes; want replica, at least 5 reads, no write", h.Role, h.Reads, h.Writes)
	}
}

func TestClusterLeastInUseAvoidsABusyReplica(t *testing.T) {
	th := newTestHosts(t, 3, sqlpool.ClusterConfig{})
	ro := sqlpool.WithReadOnly(context.Background())
	c, err := th.db.Conn(ro)
	if err != nil {
		t.Fatal(err)
	}
	busy := who(t, ro, c) // the *sql.Conn keeps its connection on busy
	other := map[string]string{"h1": "h2", "h2": "h1"}[busy]
	if got := th.reads(t, ro, 6); got[other] != 6 {
		t.Errorf("reads while %s holds a borrowed connection: %v, want all 6 on %s", busy, got, other)
	}
	c.Close()
	if got := th.reads(t, ro, 6); got["h1"] == 0 || got["h2"] == 0 {
		t.Errorf("reads once both are idle: %v, want both replicas used", got)
	}
}

func TestClusterSkipsAReplicaThatLagsAndFallsBackToThePrimary(t *testing.T) {
	th := newTestHosts(t, 3, sqlpool.ClusterConfig{MaxReplicaLag: time.Second})
	ro := sqlpool.WithReadOnly(context.Background())

	th.set("h1", sqlpool.HostStatus{ReadOnly: true, Lag: 5 * time.Second}, nil)
	if got := th.reads(t, ro, 4); got["h2"] != 4 {
		t.Errorf("reads with h1 5s behind (bound 1s): %v, want all on h2", got)
	}
	th.set("h2", sqlpool.HostStatus{ReadOnly: true, Lag: 2 * time.Second}, nil)
	if got := th.reads(t, ro, 3); got["h0"] != 3 {
		t.Errorf("reads with both replicas behind: %v, want all on the primary", got)
	}
	if h := th.host("h0"); h.Fallbacks != 3 {
		t.Errorf("h0.Fallbacks = %d, want 3", h.Fallbacks)
	}
	th.set("h1", sqlpool.HostStatus{ReadOnly: true, Lag: time.Second}, nil)
	if got := th.reads(t, ro, 2); got["h1"] != 2 {
		t.Errorf("reads with h1 back within the bound: %v, want all on h1", got)
	}
}

func TestClusterSkipsAReplicaWhoseCircuitIsOpen(t *testing.T) {
	th := newTestHostsWith(t, 3, sqlpool.ClusterConfig{Balance: sqlpool.RoundRobin},
		sqlpool.Config{MaxSize: 4, BreakAfter: 1, BreakFor: time.Hour})
	ro := sqlpool.WithReadOnly(context.Background())
	if got := th.reads(t, ro, 4); got["h1"] != 2 || got["h2"] != 2 {
		t.Fatalf("reads before the fault: %v, want 2 on each replica", got)
	}
	// h1's connections die and it refuses new ones; its checks, over a
	// connection of their own, still answer.
	boom := errors.New("connection refused")
	th.drv[1].SetFaults(drivertest.Faults{ConnectErr: boom})
	th.drv[1].KillAll()
	var failed int
	for i := 0; i < 4 && !th.host("h1").CircuitOpen; i++ {
		var name string
		if err := th.db.QueryRowContext(ro, "GET whoami").Scan(&name); err != nil {
			failed++
		}
	}
	if !th.host("h1").CircuitOpen {
		t.Fatalf("h1's circuit is closed after %d failed reads (BreakAfter 1)", failed)
	}
	if got := th.reads(t, ro, 6); got["h2"] != 6 {
		t.Errorf("reads with h1's circuit open: %v, want all on h2 (no error)", got)
	}
	if h := th.host("h1"); !h.Up {
		t.Errorf("h1 is down by its checks (%s); the test wants only its circuit open", h.CheckError)
	}
}

func TestClusterReadYourWritesKeepsAWritingPartitionOnThePrimary(t *testing.T) {
	th := newTestHosts(t, 2, sqlpool.ClusterConfig{ReadYourWrites: time.Hour})
	a := sqlpool.WithReadOnly(sqlpool.WithTenant(context.Background(), "a"))
	b := sqlpool.WithReadOnly(sqlpool.WithTenant(context.Background(), "b"))
	if got := who(t, a, th.db); got != "h1" {
		t.Fatalf("tenant a's read before any write went to %s, want the replica h1", got)
	}
	th.execHost(t, a)
	if got := who(t, a, th.db); got != "h0" {
		t.Errorf("tenant a's read after its write went to %s, want the primary h0", got)
	}
	if got := who(t, b, th.db); got != "h1" {
		t.Errorf("tenant b's read after a's write went to %s, want the replica h1", got)
	}
}

func TestClusterReadYourWritesEnds(t *testing.T) {
	th := newTestHosts(t, 2, sqlpool.ClusterConfig{ReadYourWrites: 50 * time.Millisecond})
	a := sqlpool.WithReadOnly(sqlpool.WithTenant(context.Background(), "a"))
	th.execHost(t, a)
	wrote := time.Now()
	got := who(t, a, th.db)
	if got != "h0" && time.Since(wrote) < 50*time.Millisecond {
		t.Errorf("a read right after a write went to %s, want the primary h0", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for who(t, a, th.db) != "h1" {
		if time.Now().After(deadline) {
			t.Fatal("reads still go to the primary 5s after a write, with ReadYourWrites 50ms")
		}
	}
}

func TestClusterWithoutAPrimaryFailsWritesWithErrNoPrimaryAndServesReads(t *testing.T) {
	th := newTestHosts(t, 2, sqlpool.ClusterConfig{})
	th.set("h0", sqlpool.HostStatus{ReadOnly: true}, nil) // demoted, and nothing promoted
	_, err := th.db.Exec("SET k v")
	if !errors.Is(err, sqlpool.ErrNoPrimary) {
		t.Fatalf("Exec without a primary: %v, want ErrNoPrimary", err)
	}
	for _, want := range []string{"h0: replica", "h1: replica", "WithReadOnly"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error %q does not say %q", err, want)
		}
	}
	if got := th.reads(t, sqlpool.WithReadOnly(context.Background()), 4); got["h0"]+got["h1"] != 4 {
		t.Errorf("reads without a primary: %v", got)
	}
}

func TestClusterWritesFollowAPromotedReplica(t *testing.T) {
	var logs syncBuffer
	th := newTestHosts(t, 3, sqlpool.ClusterConfig{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()
	if got := th.execHost(t, ctx); got != "h0" {
		t.Fatalf("a write before the failover ran on %q, want h0", got)
	}
	// The primary stops answering; h1 is promoted.
	th.drv[0].SetFaults(drivertest.Faults{PingErr: errors.New("primary down"), ConnectErr: errors.New("primary down")})
	th.drv[0].KillAll()
	th.set("h1", sqlpool.HostStatus{}, nil)
	if s := th.cl.Stats(); s.Primary != "h1" {
		t.Fatalf("Stats().Primary after the promotion = %q, want h1", s.Primary)
	}
	if got := th.execHost(t, ctx); got != "h1" {
		t.Errorf("a write after the failover ran on %q, want the promoted h1", got)
	}
	if got := th.reads(t, sqlpool.WithReadOnly(ctx), 3); got["h2"] != 3 {
		t.Errorf("reads after the failover: %v, want all on the remaining replica h2", got)
	}
	// The old primary comes back writable: writes stay on h1, and the
	// Cluster warns.
	th.drv[0].SetFaults(drivertest.Faults{})
	th.set("h0", sqlpool.HostStatus{}, nil)
	if got := th.execHost(t, ctx); got != "h1" {
		t.Errorf("a write with two writable hosts ran on %q, want the current primary h1", got)
	}
	for _, want := range []string{"writes go to a new primary", "primary=h1", "two hosts report themselves writable"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, logs.String())
		}
	}
}

func TestClusterDrainsAHostThatStopsAnswering(t *testing.T) {
	th := newTestHosts(t, 3, sqlpool.ClusterConfig{})
	ro := sqlpool.WithReadOnly(context.Background())
	th.set("h2", sqlpool.HostStatus{ReadOnly: true}, errors.New("check failed"))
	if got := th.reads(t, ro, 4); got["h1"] != 4 {
		t.Errorf("reads with h2 down: %v, want all on h1", got)
	}
	if h := th.host("h2"); h.Up || h.CheckError != "check failed" {
		t.Errorf("h2: Up %v, CheckError %q; want down with the check's error", h.Up, h.CheckError)
	}
}

func TestClusterDrainsASlowReplica(t *testing.T) {
	th := newTestHosts(t, 3, sqlpool.ClusterConfig{}, drivertest.Options{}, drivertest.Options{}, drivertest.Options{Latency: 30 * time.Millisecond})
	ro := sqlpool.WithReadOnly(context.Background())
	th.cl.CheckHosts(context.Background())
	h := th.host("h2")
	if h.Healthy || h.Latency < 30*time.Millisecond {
		t.Fatalf("h2, 30ms slower than its peers: healthy %v, latency %v; want drained", h.Healthy, h.Latency)
	}
	if !th.host("h1").Healthy {
		t.Errorf("h1 drained too: %+v", th.host("h1"))
	}
	if got := th.reads(t, ro, 4); got["h1"] != 4 {
		t.Errorf("reads with h2 drained: %v, want all on h1", got)
	}
}

func TestClusterDrainsReplicasWhoseOperationsFail(t *testing.T) {
	th := newTestHosts(t, 2, sqlpool.ClusterConfig{MaxErrorRate: 0.5})
	ro := sqlpool.WithReadOnly(context.Background())
	// The error rate is an EWMA over check intervals: failures that last
	// three intervals cross 0.5.
	for range 3 {
		for range 10 {
			if _, err := th.db.QueryContext(ro, "FAIL broken replica"); err == nil {
				t.Fatal("FAIL succeeded")
			}
		}
		th.cl.CheckHosts(context.Background())
	}
	h := th.host("h1")
	if h.Healthy || h.ErrorRate <= 0.5 {
		t.Fatalf("h1 after three intervals of failed reads: healthy %v, error rate %.2f; want drained", h.Healthy, h.ErrorRate)
	}
	if got := who(t, ro, th.db); got != "h0" {
		t.Errorf("a read with the only replica drained went to %s, want the primary", got)
	}
	// Intervals without failures bring it back.
	for range 20 {
		th.cl.CheckHosts(context.Background())
		if th.host("h1").Healthy {
			return
		}
	}
	t.Errorf("h1 still drained after 20 checks without a failure: %+v", th.host("h1"))
}

func TestNewClusterRejectsBadInput(t *testing.T) {
	conn := func() *sqlpool.Connector {
		c, err := sqlpool.Wrap(drivertest.New(drivertest.Options{}).Connector(""), sqlpool.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	check := func(context.Context, string, *sql.DB) (sqlpool.HostStatus, error) { return sqlpool.HostStatus{}, nil }
	shared := conn()
	for _, tc := range []struct {
		name  string
		hosts []sqlpool.Host
		cfg   sqlpool.ClusterConfig
		want  string
	}{
		{"no hosts", nil, sqlpool.ClusterConfig{Check: check}, "no hosts"},
		{"nil connector", []sqlpool.Host{{Name: "a"}}, sqlpool.ClusterConfig{Check: check}, "hosts[0].Connector is nil"},
		{"same name", []sqlpool.Host{{Name: "a", Connector: conn()}, {Name: "a", Connector: conn()}}, sqlpool.ClusterConfig{Check: check}, `two hosts named "a"`},
		{"shared connector", []sqlpool.Host{{Connector: shared}, {Connector: shared}}, sqlpool.ClusterConfig{Check: check}, "already serves a Cluster"},
		{"no check", []sqlpool.Host{{Connector: conn()}}, sqlpool.ClusterConfig{}, "set ClusterConfig.Check"},
		{"balance", []sqlpool.Host{{Connector: conn()}}, sqlpool.ClusterConfig{Check: check, Balance: 7}, "ClusterConfig.Balance"},
		{"lag", []sqlpool.Host{{Connector: conn()}}, sqlpool.ClusterConfig{Check: check, MaxReplicaLag: -1}, "ClusterConfig.MaxReplicaLag"},
		{"ryw", []sqlpool.Host{{Connector: conn()}}, sqlpool.ClusterConfig{Check: check, ReadYourWrites: -1}, "ClusterConfig.ReadYourWrites"},
		{"interval", []sqlpool.Host{{Connector: conn()}}, sqlpool.ClusterConfig{Check: check, CheckInterval: -1}, "ClusterConfig.CheckInterval"},
		{"factor", []sqlpool.Host{{Connector: conn()}}, sqlpool.ClusterConfig{Check: check, HealthFactor: 0.5}, "ClusterConfig.HealthFactor"},
		{"error rate", []sqlpool.Host{{Connector: conn()}}, sqlpool.ClusterConfig{Check: check, MaxErrorRate: 2}, "ClusterConfig.MaxErrorRate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := sqlpool.NewCluster(tc.hosts, tc.cfg)
			if err == nil {
				cl.Close()
				t.Fatal("NewCluster succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestClusterCloseStopsItsChecksAndClosesItsHosts(t *testing.T) {
	th := newTestHosts(t, 2, sqlpool.ClusterConfig{CheckInterval: time.Millisecond})
	// A check gives up after CheckInterval: under load some find a host
	// down, and a read fails until the next check. One read must succeed,
	// so that a connection is open when Close comes.
	waitFor(t, "a read to succeed", func() bool {
		var name string
		return th.db.QueryRowContext(sqlpool.WithReadOnly(context.Background()), "GET whoami").Scan(&name) == nil
	})
	if err := th.db.Close(); err != nil { // closes the Cluster
		t.Fatal(err)
	}
	for i, d := range th.drv {
		if open := d.Stats().Open; open != 0 {
			t.Errorf("h%d has %d connections open after Close", i, open)
		}
	}
	if _, err := th.cl.Connect(context.Background()); !errors.Is(err, sqlpool.ErrClosed) {
		t.Errorf("Connect after Close: %v, want ErrClosed", err)
	}
	// goleak (TestMain) checks that the checks' goroutines ended.
}
