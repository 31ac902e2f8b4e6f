//go:build linux

// Package pgcluster starts a private PostgreSQL primary and a streaming
// replica for tests, from the machine's PostgreSQL binaries, so that tests
// can stop, cut, promote and rejoin servers no other test shares.
//
// Start runs initdb into a fresh temporary directory, starts the primary
// ("pg0") on a free port of 127.0.0.1, clones it with pg_basebackup into a
// replica ("pg1") that streams from it, and waits until it does. Both
// servers trust every local connection: connect as the superuser postgres
// to the database postgres (Node.DSN). Their unix sockets are in the
// temporary directory, so they never collide with a system server.
// Settings favour speed over durability (fsync=off, small shared_buffers);
// wal_log_hints=on lets Rejoin run pg_rewind. A Start takes about a second.
//
// The servers are children of the test binary and die with it, even when
// it crashes before its cleanup (the kernel kills them: Pdeathsig). When
// the test binary runs as root, every PostgreSQL program runs as the
// postgres OS user, since initdb and postgres refuse root.
//
// The binaries are the newest of /usr/lib/postgresql/*/bin (Debian's
// layout), else those of pg_config --bindir, else the directory of initdb
// on $PATH. PostgreSQL 13 or later is needed (pg_rewind recovers a target
// that was not shut down cleanly).
//
// A Node's Start, Stop and Rejoin wait for each other; its other methods
// may run at any time.
package pgcluster

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/sqlpool/sqlpool/internal/testproc"
)

var (
	// ErrNotInstalled means the PostgreSQL server binaries were not found.
	ErrNotInstalled = errors.New("pgcluster: the PostgreSQL server binaries (initdb, postgres, pg_basebackup, pg_rewind) are not installed (apt-get install postgresql)")
	// ErrRunning means a node runs where it must be stopped: stop it first.
	ErrRunning = errors.New("pgcluster: the node is running; stop it first")
)

// defaultWait bounds each wait of a method whose context has no deadline.
const defaultWait = time.Minute

// config is appended to the primary's postgresql.conf; pg_basebackup and
// pg_rewind copy it to the replica. What differs between the nodes (port,
// socket directory, primary_conninfo) is given on postgres's command line,
// so that no copy of the data directory carries it from one node to the
// other.
var config = []string{
	"listen_addresses = '127.0.0.1'",
	"fsync = off",
	"shared_buffers = 16MB",
	"huge_pages = off",
	"wal_level = replica",
	"max_wal_senders = 4",
	"wal_keep_size = 256MB",               // a replica, or a rejoining primary, catches up without a slot
	"wal_log_hints = on",                  // pg_rewind
	"hot_standby = on",                    // replicas serve reads
	"hot_standby_feedback = on",           // fewer reads on replicas cancelled by replay
	"wal_retrieve_retry_interval = 100ms", // a replica reconnects soon after its primary restarts
	"log_line_prefix = '%m [%p] %q%a '",
}

// hba trusts local and loopback connections, replication included.
const hba = `local all all trust
host all all 127.0.0.1/32 trust
local replication all trust
host replication all 127.0.0.1/32 trust
`

// Cluster is a private primary and its streaming replica.
type Cluster struct {
	// Primary and Replica are the nodes in their roles at Start; they keep
	// these names after a promotion.
	Primary, Replica *Node

	dir  string              // everything: data directories, sockets, logs
	bin  string              // the PostgreSQL binaries
	cred *syscall.Credential // whom the programs run as; nil: as ourselves

	closeOnce sync.Once
	closeErr  error
}

// Node is one PostgreSQL server of a Cluster.
type Node struct {
	// Name is "pg0" for the primary at Start, "pg1" for the replica.
	Name string
	// Port is the TCP port of 127.0.0.1 the server listens on. It does not
	// change after Start returns.
	Port int

	c *Cluster

	// life serialises Start, Stop and Rejoin. It is held while they wait
	// for the server, on purpose.
	life sync.Mutex

	mu       sync.Mutex
	proc     *process // guarded by mu; nil when stopped
	upstream *Node    // guarded by mu; the primary it streams from while in standby, nil for none
}

// process is one run of a postmaster.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has been waited for
	err    error         // cmd.Wait's error; read after exited is closed
}

func (p *process) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Start starts a primary and a replica streaming from it, and stops both
// and removes their files when t ends, logging the end of both servers'
// logs first if t failed. It skips t when the binaries are missing, or
// fails it when $SQLPOOL_REQUIRE_SERVERS is 1.
func Start(t testing.TB) *Cluster {
	t.Helper()
	bin, cred, err := programs()
	if err != nil {
		if os.Getenv("SQLPOOL_REQUIRE_SERVERS") == "1" {
			t.Fatal(err)
		}
		t.Skipf("skipping: %v (set SQLPOOL_REQUIRE_SERVERS=1 to fail instead)", err)
	}
	dir, err := os.MkdirTemp("", "sqlpool-pgcluster-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{dir: dir, bin: bin, cred: cred}
	c.Primary = &Node{Name: "pg0", c: c}
	c.Replica = &Node{Name: "pg1", c: c}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.Nodes() {
				t.Logf("pgcluster: the end of %s's log (%s):\n%s", n.Name, n.LogPath(), tail(n.LogPath(), 40))
			}
		}
		if err := c.Close(); err != nil {
			t.Errorf("pgcluster: %v", err)
		}
	})
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), defaultWait)
	defer cancel()
	if err := c.start(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// start creates and starts the primary, then the replica.
func (c *Cluster) start(ctx context.Context) error {
	p, r := c.Primary, c.Replica
	if err := c.run(ctx, p, "initdb", "-D", p.DataDir(), "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"); err != nil {
		return err
	}
	conf := filepath.Join(p.DataDir(), "postgresql.conf")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString("\n# pgcluster\n" + strings.Join(config, "\n") + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(p.DataDir(), "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return err
	}
	if err := c.chown(filepath.Join(p.DataDir(), "pg_hba.conf")); err != nil {
		return err
	}
	if err := p.startOnFreePort(ctx); err != nil {
		return err
	}
	if err := c.run(ctx, r, "pg_basebackup", "-D", r.DataDir(), "-d", p.conninfo(), "-X", "stream",
		"-c", "fast", "--no-sync"); err != nil {
		return err
	}
	if err := r.follow(p); err != nil {
		return err
	}
	if err := r.startOnFreePort(ctx); err != nil {
		return err
	}
	if err := p.WaitStreaming(ctx); err != nil {
		return err
	}
	return r.WaitStreaming(ctx)
}

// programs returns the directory of the PostgreSQL binaries and the
// credentials to run them with.
func programs() (string, *syscall.Credential, error) {
	bin, err := binDir()
	if err != nil {
		return "", nil, err
	}
	if os.Geteuid() != 0 {
		return bin, nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return "", nil, fmt.Errorf("pgcluster: running as root, and initdb and postgres refuse root, but there is no postgres OS user to run them as: %w", err)
	}
	return bin, testproc.Credential(u), nil
}

// binDir finds the PostgreSQL binaries: the newest of Debian's
// /usr/lib/postgresql/*/bin, else pg_config --bindir, else initdb's
// directory on $PATH.
func binDir() (string, error) {
	var dirs []string
	debian, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(debian, func(a, b string) int { return slices.Compare(versionOf(b), versionOf(a)) })
	dirs = append(dirs, debian...)
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dirs = append(dirs, strings.TrimSpace(string(out)))
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if p, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(p))
		}
	}
	for _, d := range dirs {
		if complete(d) {
			return d, nil
		}
	}
	return "", ErrNotInstalled
}

// versionOf returns the numbers of a path /usr/lib/postgresql/VERSION/bin.
func versionOf(bin string) []int {
	var v []int
	for _, s := range strings.Split(filepath.Base(filepath.Dir(bin)), ".") {
		n, _ := strconv.Atoi(s)
		v = append(v, n)
	}
	return v
}

// complete reports whether dir holds every program pgcluster runs.
func complete(dir string) bool {
	for _, p := range []string{"initdb", "postgres", "pg_basebackup", "pg_rewind"} {
		if fi, err := os.Stat(filepath.Join(dir, p)); err != nil || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// command returns a command running program of the PostgreSQL binaries
// as c.cred, with no PG* variables of ours, killed by the kernel when the
// test binary dies. (Pdeathsig fires when the thread that started the
// child exits; the Go runtime ends a thread only when a goroutine locked
// to it returns, which nothing here does.) The credentials are switched
// before exec: a switch after it would clear the parent-death signal.
func (c *Cluster) command(ctx context.Context, program string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, program), args...)
	cmd.Dir = c.dir // the postgres user may not enter ours
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: c.cred}
	return cmd
}

// run runs program to its end, its output appended to n's log.
func (c *Cluster) run(ctx context.Context, n *Node, program string, args ...string) error {
	cmd := c.command(ctx, program, args...)
	out, err := cmd.CombinedOutput()
	if lerr := appendLog(n.LogPath(), fmt.Sprintf("pgcluster: %s %s\n%s", program, strings.Join(args, " "), out)); lerr != nil && err == nil {
		err = lerr
	}
	if err != nil {
		return fmt.Errorf("pgcluster: %s for %s failed: %v; its output:\n%s", program, n.Name, err, out)
	}
	return nil
}

// chown gives path to the user the programs run as.
func (c *Cluster) chown(path string) error {
	if c.cred == nil {
		return nil
	}
	return os.Chown(path, int(c.cred.Uid), int(c.cred.Gid))
}

// Nodes returns the primary and the replica of Start, in that order.
func (c *Cluster) Nodes() []*Node { return []*Node{c.Primary, c.Replica} }

// WaitReplayed waits until every running replica has replayed all that the
// primary had written when it was called. The primary is the running node
// not in recovery: after a promotion, the promoted one.
func (c *Cluster) WaitReplayed(ctx context.Context) error {
	ctx, cancel := bounded(ctx)
	defer cancel()
	var primary *Node
	var replicas []*Node
	for _, n := range c.Nodes() {
		if n.Pid() == 0 {
			continue
		}
		rec, err := n.InRecovery(ctx)
		if err != nil {
			return err
		}
		if rec {
			replicas = append(replicas, n)
			continue
		}
		if primary != nil {
			return fmt.Errorf("pgcluster: two primaries, %s and %s: stop one or rejoin it", primary.Name, n.Name)
		}
		primary = n
	}
	if primary == nil {
		return errors.New("pgcluster: no primary runs: start one or promote a replica")
	}
	for _, r := range replicas {
		if err := r.WaitReplayed(ctx, primary); err != nil {
			return err
		}
	}
	return nil
}

// Close stops both servers (fast shutdown) and removes their directory.
// It is called when the test of Start ends; calling it again does nothing.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		var errs []error
		nodes := c.Nodes()
		for i := len(nodes) - 1; i >= 0; i-- { // a primary stops sooner without its replica
			errs = append(errs, nodes[i].Stop("fast"))
		}
		errs = append(errs, os.RemoveAll(c.dir))
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

// Addr returns the address the server listens on, 127.0.0.1:port.
func (n *Node) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.Port)) }

// DSN returns a lib/pq key=value DSN to the node: the superuser postgres
// (trusted: no password) on the database postgres, without TLS. Append
// more key=value pairs as needed.
func (n *Node) DSN() string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable", n.Port)
}

// conninfo is how other nodes and programs reach n.
func (n *Node) conninfo() string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres", n.Port)
}

// DataDir returns the node's data directory.
func (n *Node) DataDir() string { return filepath.Join(n.c.dir, n.Name) }

// LogPath returns the node's log: the server's output across its runs,
// and that of the programs run for it (initdb, pg_basebackup, pg_rewind).
func (n *Node) LogPath() string { return filepath.Join(n.c.dir, n.Name+".log") }

// Pid returns the process id of the node's postmaster, or 0 when it does
// not run.
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil || !n.proc.running() {
		return 0
	}
	return n.proc.cmd.Process.Pid
}

// follow makes n a standby of primary on its next start.
func (n *Node) follow(primary *Node) error {
	signal := filepath.Join(n.DataDir(), "standby.signal")
	if err := os.WriteFile(signal, nil, 0o600); err != nil {
		return err
	}
	if err := n.c.chown(signal); err != nil {
		return err
	}
	n.mu.Lock()
	n.upstream = primary
	n.mu.Unlock()
	return nil
}

// startOnFreePort starts n on a port that was free a moment ago, and on
// another if that one was taken before the server could bind it.
func (n *Node) startOnFreePort(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		port, err := testproc.FreePort()
		if err != nil {
			return err
		}
		n.Port = port
		err = n.Start(ctx)
		if err == nil || attempt == 3 || ctx.Err() != nil {
			return err
		}
	}
}

// Start starts the stopped server and waits until it accepts connections
// (a replica: once it has replayed enough to be consistent). It fails
// with ErrRunning if the server runs.
func (n *Node) Start(ctx context.Context) error {
	ctx, cancel := bounded(ctx)
	defer cancel()
	n.life.Lock()
	defer n.life.Unlock()
	return n.start(ctx)
}

// start is Start with n.life held.
func (n *Node) start(ctx context.Context) error {
	n.mu.Lock()
	running := n.proc != nil && n.proc.running()
	upstream := n.upstream
	n.mu.Unlock()
	if running {
		return fmt.Errorf("pgcluster: starting %s: %w", n.Name, ErrRunning)
	}
	args := []string{"-D", n.DataDir(), "-p", strconv.Itoa(n.Port), "-k", n.c.dir}
	if upstream != nil {
		args = append(args, "-c", "primary_conninfo="+upstream.conninfo()+" application_name="+n.Name)
	}
	log, err := os.OpenFile(n.LogPath(), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer log.Close() // the server has its own copy
	fmt.Fprintf(log, "pgcluster: postgres %s\n", strings.Join(args, " "))
	// Not tied to ctx: the server outlives the call.
	cmd := n.c.command(context.Background(), "postgres", args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgcluster: starting %s: %w", n.Name, err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	n.mu.Lock()
	n.proc = p
	n.mu.Unlock()
	err = poll(ctx, p.exited, func(ctx context.Context) (bool, error) {
		var one int
		return true, n.queryRow(ctx, "SELECT 1", &one)
	})
	if err == nil {
		return nil
	}
	if !p.running() {
		err = fmt.Errorf("exited (%v)", p.err)
	}
	n.stop(syscall.SIGQUIT)
	return fmt.Errorf("pgcluster: starting %s on port %d: %w; the end of its log:\n%s", n.Name, n.Port, err, tail(n.LogPath(), 20))
}

// Stop stops the server with pg_ctl's shutdown mode "fast" (sessions are
// ended, then a checkpoint is written), "immediate" (no checkpoint: the
// next start recovers, as after a crash) or "smart" (waits for sessions
// to end), and waits until it has exited. Stopping a stopped node does
// nothing.
func (n *Node) Stop(mode string) error {
	sig, ok := map[string]syscall.Signal{"smart": syscall.SIGTERM, "fast": syscall.SIGINT, "immediate": syscall.SIGQUIT}[mode]
	if !ok {
		return fmt.Errorf("pgcluster: stopping %s: unknown mode %q; want \"fast\", \"immediate\" or \"smart\"", n.Name, mode)
	}
	n.life.Lock()
	defer n.life.Unlock()
	return n.stop(sig)
}

// stop is Stop with n.life held. A server still running a minute after
// sig is killed.
func (n *Node) stop(sig syscall.Signal) error {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil {
		return nil
	}
	p.cmd.Process.Signal(sig) // fails only if it has exited
	timer := time.NewTimer(defaultWait)
	defer timer.Stop()
	var err error
	select {
	case <-p.exited:
	case <-timer.C:
		p.cmd.Process.Kill()
		<-p.exited
		err = fmt.Errorf("pgcluster: %s did not stop within %v of %v; killed", n.Name, defaultWait, sig)
	}
	n.mu.Lock()
	n.proc = nil
	n.mu.Unlock()
	return err
}

// Promote promotes the replica to a primary and waits until it accepts
// writes. Stop its primary first, or the cluster has two.
func (n *Node) Promote(ctx context.Context) error {
	ctx, cancel := bounded(ctx)
	defer cancel()
	var ok bool
	if err := n.queryRow(ctx, "SELECT pg_promote(false)", &ok); err != nil {
		return fmt.Errorf("pgcluster: promoting %s: %w", n.Name, err)
	}
	// Assigning a transaction id is refused during recovery.
	err := poll(ctx, nil, func(ctx context.Context) (bool, error) {
		var xid string
		return true, n.queryRow(ctx, "SELECT pg_current_xact_id()::text", &xid)
	})
	if err != nil {
		return fmt.Errorf("pgcluster: promoting %s: it accepts no writes: %w", n.Name, err)
	}
	return nil
}

// InRecovery reports whether the server is a replica (in recovery).
func (n *Node) InRecovery(ctx context.Context) (bool, error) {
	var rec bool
	if err := n.queryRow(ctx, "SELECT pg_is_in_recovery()", &rec); err != nil {
		return false, fmt.Errorf("pgcluster: asking %s whether it is in recovery: %w", n.Name, err)
	}
	return rec, nil
}

// WaitStreaming waits until replication streams: on a primary, to a
// walsender's replica; on a replica, from its walreceiver's primary.
func (n *Node) WaitStreaming(ctx context.Context) error {
	ctx, cancel := bounded(ctx)
	defer cancel()
	err := poll(ctx, nil, func(ctx context.Context) (bool, error) {
		var streaming bool
		err := n.queryRow(ctx, `SELECT CASE WHEN pg_is_in_recovery()
			THEN EXISTS (SELECT FROM pg_stat_wal_receiver WHERE status = 'streaming')
			ELSE EXISTS (SELECT FROM pg_stat_replication WHERE state = 'streaming') END`, &streaming)
		return streaming, err
	})
	if err != nil {
		return fmt.Errorf("pgcluster: waiting for %s to stream: %w", n.Name, err)
	}
	return nil
}

// WaitReplayed waits until the replica has replayed all that primary had
// written (flushed) when it was called.
func (n *Node) WaitReplayed(ctx context.Context, primary *Node) error {
	ctx, cancel := bounded(ctx)
	defer cancel()
	var lsn string
	if err := primary.queryRow(ctx, "SELECT pg_current_wal_flush_lsn()::text", &lsn); err != nil {
		return fmt.Errorf("pgcluster: reading the WAL position of %s: %w", primary.Name, err)
	}
	err := poll(ctx, nil, func(ctx context.Context) (bool, error) {
		var replayed sql.NullBool
		if err := n.queryRow(ctx, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", &replayed, lsn); err != nil {
			return false, err
		}
		if !replayed.Valid {
			return false, permanent{fmt.Errorf("%s is not a replica", n.Name)}
		}
		return replayed.Bool, nil
	})
	if err != nil {
		return fmt.Errorf("pgcluster: waiting for %s to replay %s of %s: %w", n.Name, lsn, primary.Name, err)
	}
	return nil
}

// Rejoin makes a stopped former primary a replica of newPrimary: a
// CHECKPOINT on newPrimary (so that pg_rewind sees its new timeline),
// pg_rewind of n's data directory against it (which first recovers n if it
// was not shut down cleanly), standby.signal, and a start with
// primary_conninfo pointing at newPrimary. It waits until n streams. It
// fails with ErrRunning if n runs.
func (n *Node) Rejoin(ctx context.Context, newPrimary *Node) error {
	ctx, cancel := bounded(ctx)
	defer cancel()
	n.life.Lock()
	defer n.life.Unlock()
	if n.Pid() != 0 {
		return fmt.Errorf("pgcluster: rejoining %s: %w", n.Name, ErrRunning)
	}
	if err := newPrimary.exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("pgcluster: rejoining %s: CHECKPOINT on %s: %w", n.Name, newPrimary.Name, err)
	}
	if err := n.c.run(ctx, n, "pg_rewind", "--target-pgdata="+n.DataDir(),
		"--source-server="+newPrimary.conninfo(), "--no-sync"); err != nil {
		return err
	}
	if err := n.follow(newPrimary); err != nil {
		return err
	}
	if err := n.start(ctx); err != nil {
		return err
	}
	return n.WaitStreaming(ctx)
}

// queryRow runs q on a connection of its own and scans its one row.
func (n *Node) queryRow(ctx context.Context, q string, dest any, args ...any) error {
	db, err := n.open()
	if err != nil {
		return err
	}
	defer db.Close()
	return db.QueryRowContext(ctx, q, args...).Scan(dest)
}

// exec runs q on a connection of its own.
func (n *Node) exec(ctx context.Context, q string) error {
	db, err := n.open()
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, q)
	return err
}

func (n *Node) open() (*sql.DB, error) {
	c, err := pq.NewConnector(n.DSN() + " connect_timeout=2")
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

// permanent is an error that ends a poll at once.
type permanent struct{ error }

// poll calls check every 20 ms until it reports done, fails with a
// permanent error, exited is closed, or ctx ends. Other errors are
// retried (a server may be starting): the last one is reported with ctx's.
func poll(ctx context.Context, exited <-chan struct{}, check func(ctx context.Context) (bool, error)) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		done, err := check(ctx)
		var p permanent
		switch {
		case errors.As(err, &p):
			return p.error
		case err == nil && done:
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%w (the last error: %v)", ctx.Err(), last)
			}
			return ctx.Err()
		case <-exited:
			return errors.New("the server exited")
		case <-tick.C:
		}
	}
}

// bounded returns ctx, bounded by defaultWait if it has no deadline.
func bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, defaultWait)
}

// appendLog appends text to the log at path.
func appendLog(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
