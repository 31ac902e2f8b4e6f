package sqlpool_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/internal/faultproxy"
	"github.com/sqlpool/sqlpool/internal/pgcluster"
)

// TestClusterFaultsUnderLoad runs a Cluster over a private PostgreSQL
// primary and its streaming replica (internal/pgcluster), each behind a
// fault proxy, under a load of writes and WithReadOnly reads, and plays
// one fault after the other: the replica stopped, the primary cut from
// the network, the primary stopped and restarted, the primary stopped and
// the replica promoted, the old primary rejoined as a replica. After each,
// the load must recover within 2 s of the fault's end; at the end no
// write may be lost or doubled. It logs the fault table and the routing
// figures.
func TestClusterFaultsUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two PostgreSQL servers")
	}
	const (
		goroutines = 16
		opTimeout  = 2 * time.Second
		downFor    = time.Second // the length of each outage, not synchronisation
		quiet      = 300 * time.Millisecond
		limit      = 2 * time.Second // recovery bound
	)
	pc := pgcluster.Start(t)
	ctx := context.Background()
	nodes := []*pgcluster.Node{pc.Primary, pc.Replica}
	proxies := make([]*faultproxy.Proxy, len(nodes))
	var hosts []sqlpool.Host
	for i, n := range nodes {
		p, err := faultproxy.New(n.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		proxies[i] = p
		_, port, _ := net.SplitHostPort(p.Addr())
		base, err := pq.NewConnector(fmt.Sprintf("host=127.0.0.1 port=%s user=postgres dbname=postgres sslmode=disable connect_timeout=2", port))
		if err != nil {
			t.Fatal(err)
		}
		c, err := sqlpool.Wrap(base, sqlpool.Config{MaxSize: 8, AcquireTimeout: opTimeout, BreakAfter: 3, BreakFor: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, sqlpool.Host{Name: fmt.Sprintf("pg%d", i), Connector: c})
	}

	s := &relServer{
		kind:      "postgres",
		insertSQL: "INSERT INTO w (id, g) VALUES ($1, $2)",
		readSQL:   "SELECT count(*) FROM w WHERE id = $1",
		countSQL:  "SELECT id, count(*) FROM w GROUP BY id",
	}
	admin := func(n *pgcluster.Node) *sql.DB {
		db, err := sql.Open("postgres", n.DSN())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	relExec(t, admin(pc.Primary), "CREATE TABLE w (id bigint NOT NULL, g int NOT NULL)")
	relExec(t, admin(pc.Primary), "CREATE INDEX ON w (id)")
	if err := pc.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}

	cl, err := sqlpool.NewCluster(hosts, sqlpool.ClusterConfig{CheckInterval: 100 * time.Millisecond, MaxReplicaLag: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	db := sqlpool.OpenCluster(cl)
	t.Cleanup(func() { db.Close() })
	if p := cl.Stats().Primary; p != "pg0" {
		t.Fatalf("the Cluster's primary is %q, want pg0", p)
	}

	l := newLoad(db, s, opTimeout)
	l.readOnly = true
	l.start(goroutines)
	defer l.halt()
	l.waitSuccesses(t, time.Time{}, 500)

	type phase struct {
		fault        string
		from, healed time.Time
		recovery     time.Duration
		reads        [2]int64 // the reads each host served during the phase
	}
	var phases []phase
	hostReads := func() (n [2]int64) {
		for i, h := range cl.Stats().Hosts {
			n[i] = h.Reads
		}
		return n
	}
	play := func(fault string, inject func(), heal func()) {
		t.Helper()
		before := hostReads()
		p := phase{fault: fault, from: time.Now()}
		inject()
		time.Sleep(downFor)
		heal()
		p.healed = time.Now()
		p.recovery = l.waitRecovered(t, p.healed, quiet, 100, limit)
		after := hostReads()
		p.reads = [2]int64{after[0] - before[0], after[1] - before[1]}
		phases = append(phases, p)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	play("replica stopped, restarted", func() { must(pc.Replica.Stop("fast")) }, func() {
		must(pc.Replica.Start(ctx))
		must(pc.Replica.WaitStreaming(ctx))
	})
	play("primary cut from the network", func() { proxies[0].Refuse(); proxies[0].Reset() }, proxies[0].Resume)
	play("primary stopped, restarted", func() { must(pc.Primary.Stop("fast")) }, func() { must(pc.Primary.Start(ctx)) })
	old := pc.Primary
	play("primary stopped, replica promoted", func() { must(old.Stop("fast")) }, func() { must(pc.Replica.Promote(ctx)) })
	waitFor(t, "writes to follow the promoted replica", func() bool { return cl.Stats().Primary == "pg1" })
	play("old primary rejoined as a replica", func() {}, func() {
		must(old.Rejoin(ctx, pc.Replica))
		cl.CheckHosts(ctx)
	})
	waitFor(t, "the rejoined host to serve reads", func() bool {
		h := cl.Stats().Hosts[0]
		return h.Role == sqlpool.RoleReplica && h.Reads > 0
	})
	steady := time.Now()
	l.waitSuccesses(t, steady, 500)
	ops := l.halt()

	// Every write is on the promoted replica, the last primary.
	s.admin = admin(pc.Replica)
	a := audit(t, s, ops)
	a.check(t, s, ops)

	var b strings.Builder
	fmt.Fprintf(&b, "%-36s %7s %7s %8s %10s %10s %9s %s\n", "fault", "ops", "failed", "circuit", "fail p50", "fail max", "recovery", "reads pg0/pg1")
	for i, p := range phases {
		end := time.Now()
		if i+1 < len(phases) {
			end = phases[i+1].from
		}
		var n, circuit int
		var fails []time.Duration
		for _, op := range ops {
			if op.start.Before(p.from) || !op.start.Before(end) {
				continue
			}
			n++
			if op.err != nil {
				fails = append(fails, op.end.Sub(op.start))
				if errors.Is(op.err, sqlpool.ErrCircuitOpen) {
					circuit++
				}
			}
		}
		slices.Sort(fails)
		p50, worst := time.Duration(0), time.Duration(0)
		if len(fails) > 0 {
			p50, worst = fails[len(fails)/2], fails[len(fails)-1]
		}
		fmt.Fprintf(&b, "%-36s %7d %7d %8d %10v %10v %9v %7d/%d\n", p.fault, n, len(fails), circuit,
			p50.Round(time.Microsecond), worst.Round(time.Microsecond), p.recovery.Round(time.Millisecond), p.reads[0], p.reads[1])
		if p.fault == "primary cut from the network" && circuit == 0 {
			t.Errorf("%s: no operation failed fast with ErrCircuitOpen", p.fault)
		}
	}
	var reads, readErrs int
	for _, op := range ops {
		if op.kind == opRead {
			reads++
			if op.err != nil {
				readErrs++
			}
		}
	}
	st := cl.Stats()
	fmt.Fprintf(&b, "writes: %d succeeded, %d failed (%d ambiguous), lost %d, doubled %d\n", a.succeeded, a.failed, a.ambiguous, len(a.lost), len(a.doubled))
	fmt.Fprintf(&b, "reads: %d, %d failed;", reads, readErrs)
	for _, h := range st.Hosts {
		fmt.Fprintf(&b, " %s (%s now): %d reads (%d for want of a replica), %d writes;", h.Name, h.Role, h.Reads, h.Fallbacks, h.Writes)
	}
	t.Logf("Cluster over a PostgreSQL primary and a streaming replica, %d goroutines (60%% writes, 20%% transactions, 20%% WithReadOnly reads), outages of %v:\n%s",
		goroutines, downFor, b.String())
	if st.Hosts[1].Reads == 0 {
		t.Error("no read went to the replica")
	}
}
