//go:build linux

package pgcluster_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	_ "github.com/lib/pq"
	"go.uber.org/goleak"

	"github.com/sqlpool/sqlpool/internal/pgcluster"
	"github.com/sqlpool/sqlpool/internal/testproc"
)

// TestMain checks that no goroutine outlives the tests: each server's
// waiter ends when Close has stopped it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// open returns a database/sql handle on n, closed when t ends.
func open(t *testing.T, n *pgcluster.Node) *sql.DB {
	t.Helper()
	db, err := sql.Open("postgres", n.DSN()+" connect_timeout=5")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// run runs q on n on a connection of its own, which a restart of n
// cannot have broken.
func run(t *testing.T, n *pgcluster.Node, q string, args ...any) {
	t.Helper()
	db := open(t, n)
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %s: %v", n.Name, q, err)
	}
	db.Close()
}

// rows returns the values of t's column v on n, in order.
func rows(t *testing.T, n *pgcluster.Node) []string {
	t.Helper()
	db := open(t, n)
	defer db.Close()
	rs, err := db.Query("SELECT v FROM t ORDER BY v")
	if err != nil {
		t.Fatalf("%s: %v", n.Name, err)
	}
	defer rs.Close()
	var vs []string
	for rs.Next() {
		var v string
		if err := rs.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

func wantRows(t *testing.T, n *pgcluster.Node, want ...string) {
	t.Helper()
	if got := rows(t, n); !slices.Equal(got, want) {
		t.Fatalf("%s has rows %q, want %q", n.Name, got, want)
	}
}

func wantRecovery(t *testing.T, n *pgcluster.Node, want bool) {
	t.Helper()
	got, err := n.InRecovery(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("%s in recovery: %v, want %v", n.Name, got, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestStartReplicatesWritesToTheReplica(t *testing.T) {
	t0 := time.Now()
	c := pgcluster.Start(t)
	t.Logf("Start took %v", time.Since(t0).Round(time.Millisecond))
	ctx := context.Background()
	p, r := c.Primary, c.Replica
	if p.Name != "pg0" || r.Name != "pg1" || !slices.Equal(c.Nodes(), []*pgcluster.Node{p, r}) {
		t.Fatalf("nodes %q, %q, Nodes %v; want pg0, pg1", p.Name, r.Name, c.Nodes())
	}
	if p.Port == r.Port || p.Addr() != "127.0.0.1:"+strconv.Itoa(p.Port) {
		t.Fatalf("ports %d and %d, primary's address %s", p.Port, r.Port, p.Addr())
	}
	for _, n := range c.Nodes() {
		if n.Pid() == 0 {
			t.Errorf("%s has no pid", n.Name)
		}
		if _, err := os.Stat(filepath.Join(n.DataDir(), "PG_VERSION")); err != nil {
			t.Errorf("%s's data directory: %v", n.Name, err)
		}
		if _, err := os.Stat(n.LogPath()); err != nil {
			t.Errorf("%s's log: %v", n.Name, err)
		}
	}
	wantRecovery(t, p, false)
	wantRecovery(t, r, true)

	run(t, p, "CREATE TABLE t (v text)")
	run(t, p, "INSERT INTO t VALUES ('a')")
	must(t, c.WaitReplayed(ctx))
	wantRows(t, r, "a")
	if _, err := open(t, r).Exec("INSERT INTO t VALUES ('b')"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("a write on the replica: %v, want a read-only error", err)
	}
}

func TestStoppedNodesStartAgain(t *testing.T) {
	c := pgcluster.Start(t)
	ctx := context.Background()
	p, r := c.Primary, c.Replica
	run(t, p, "CREATE TABLE t (v text)")

	must(t, r.Stop("fast"))
	if pid := r.Pid(); pid != 0 {
		t.Fatalf("a stopped node's pid is %d, want 0", pid)
	}
	must(t, r.Stop("fast")) // again: nothing to do
	run(t, p, "INSERT INTO t VALUES ('written while the replica was down')")
	must(t, r.Start(ctx))
	must(t, r.WaitStreaming(ctx))
	if err := r.Start(ctx); !errors.Is(err, pgcluster.ErrRunning) {
		t.Fatalf("starting a running node: %v, want ErrRunning", err)
	}
	must(t, c.WaitReplayed(ctx))
	wantRows(t, r, "written while the replica was down")

	// A crash of the primary: it recovers, and the replica reconnects.
	pid := p.Pid()
	must(t, p.Stop("immediate"))
	must(t, p.Start(ctx))
	if p.Pid() == pid || p.Pid() == 0 {
		t.Fatalf("the restarted primary's pid is %d, was %d", p.Pid(), pid)
	}
	run(t, p, "INSERT INTO t VALUES ('written after a crash')")
	must(t, p.WaitStreaming(ctx))
	must(t, r.WaitReplayed(ctx, p))
	wantRows(t, r, "written after a crash", "written while the replica was down")

	if err := p.Stop("slow"); err == nil {
		t.Fatal("Stop accepted the mode \"slow\"")
	}
}

func TestPromotedReplicaTakesWritesAndTheOldPrimaryRejoins(t *testing.T) {
	c := pgcluster.Start(t)
	ctx := context.Background()
	p, r := c.Primary, c.Replica
	run(t, p, "CREATE TABLE t (v text)")
	run(t, p, "INSERT INTO t VALUES ('1 on pg0')")
	must(t, c.WaitReplayed(ctx))

	must(t, p.Stop("fast"))
	t0 := time.Now()
	must(t, r.Promote(ctx))
	promoted := time.Since(t0)
	wantRecovery(t, r, false)
	run(t, r, "INSERT INTO t VALUES ('2 on pg1')")

	t0 = time.Now()
	must(t, p.Rejoin(ctx, r))
	t.Logf("Promote took %v, Rejoin %v", promoted.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	if err := p.Rejoin(ctx, r); !errors.Is(err, pgcluster.ErrRunning) {
		t.Fatalf("rejoining a running node: %v, want ErrRunning", err)
	}
	wantRecovery(t, p, true)
	run(t, r, "INSERT INTO t VALUES ('3 on pg1')")
	must(t, p.WaitReplayed(ctx, r))
	wantRows(t, p, "1 on pg0", "2 on pg1", "3 on pg1")
	run(t, r, "INSERT INTO t VALUES ('4 on pg1')")
	must(t, c.WaitReplayed(ctx)) // finds the new primary
	wantRows(t, p, "1 on pg0", "2 on pg1", "3 on pg1", "4 on pg1")
	if err := r.Promote(ctx); err == nil {
		t.Fatal("promoting a primary succeeded")
	}
}

// TestRejoinRewindsWritesTheNewPrimaryNeverSaw crashes a primary after a
// write its stopped replica never received, promotes the replica, and
// rejoins the old primary: pg_rewind must first recover it, then drop the
// write.
func TestRejoinRewindsWritesTheNewPrimaryNeverSaw(t *testing.T) {
	c := pgcluster.Start(t)
	ctx := context.Background()
	p, r := c.Primary, c.Replica
	run(t, p, "CREATE TABLE t (v text)")
	must(t, c.WaitReplayed(ctx))

	must(t, r.Stop("fast"))
	run(t, p, "INSERT INTO t VALUES ('lost')")
	must(t, p.Stop("immediate"))
	must(t, r.Start(ctx))
	must(t, r.Promote(ctx))
	run(t, r, "INSERT INTO t VALUES ('kept')")

	must(t, p.Rejoin(ctx, r))
	must(t, p.WaitReplayed(ctx, r))
	wantRows(t, p, "kept")
}

// TestServersDieWithTheirTestBinary runs this test again in a child
// process that starts a cluster and exits at once, with no cleanup (as a
// panic or a timeout would): the kernel must kill both servers with it.
func TestServersDieWithTheirTestBinary(t *testing.T) {
	if os.Getenv("SQLPOOL_PGCLUSTER_CRASH") == "1" {
		c := pgcluster.Start(t)
		for _, n := range c.Nodes() {
			fmt.Printf("pgcluster pid %d %s\n", n.Pid(), n.DataDir())
		}
		os.Exit(3)
	}
	if err := pgcluster.Installed(); err != nil {
		if os.Getenv("SQLPOOL_REQUIRE_SERVERS") == "1" {
			t.Fatal(err)
		}
		t.Skipf("skipping: %v (set SQLPOOL_REQUIRE_SERVERS=1 to fail instead)", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestServersDieWithTheirTestBinary$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SQLPOOL_PGCLUSTER_CRASH=1")
	out, _ := cmd.Output()
	pids := map[int]string{} // pid → data directory
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if s, ok := strings.CutPrefix(sc.Text(), "pgcluster pid "); ok {
			pid, dir, _ := strings.Cut(s, " ")
			n, _ := strconv.Atoi(pid)
			pids[n] = dir
		}
	}
	if len(pids) != 2 {
		t.Fatalf("the child printed %d pids, want 2; its output:\n%s", len(pids), out)
	}
	t.Cleanup(func() { // the child's cleanup did not run
		for pid, dir := range pids {
			if testproc.Alive(pid) {
				syscall.Kill(pid, syscall.SIGKILL) // so that a failure leaks nothing
			}
			removeSharedMemory(t, dir)
		}
		for _, dir := range pids {
			os.RemoveAll(filepath.Dir(dir))
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for pid := range pids {
		for testproc.Alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("postgres %d still runs 10s after its test binary died", pid)
			}
			time.Sleep(10 * time.Millisecond) // polling a process we cannot wait for
		}
	}
}

// removeSharedMemory removes the System V segment a killed postmaster left
// (postmaster.pid's seventh line: key, id), if it is still that one.
func removeSharedMemory(t *testing.T, dataDir string) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 7 {
		return
	}
	f := strings.Fields(lines[6])
	if len(f) != 2 {
		return
	}
	key, err1 := strconv.ParseInt(f[0], 10, 32)
	id, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return
	}
	var ds [256]byte // struct shmid_ds; it begins with ipc_perm, which begins with the key
	const ipcStat, ipcRmid = 2, 0
	if _, _, e := syscall.Syscall(syscall.SYS_SHMCTL, uintptr(id), ipcStat, uintptr(unsafe.Pointer(&ds[0]))); e != 0 {
		return
	}
	if *(*int32)(unsafe.Pointer(&ds[0])) != int32(key) {
		return // another segment took the id
	}
	if _, _, e := syscall.Syscall(syscall.SYS_SHMCTL, uintptr(id), ipcRmid, 0); e != 0 {
		t.Logf("removing the shared memory segment %d of %s: %v", id, dataDir, e)
	}
}
