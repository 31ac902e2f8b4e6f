// Package pgbouncer starts a private PgBouncer for tests, in front of the
// PostgreSQL server of drivertest.PostgresDSN.
//
// Start writes an ini file, an auth file and a log file into a fresh
// directory, runs the pgbouncer binary (Debian's package puts it in
// /usr/sbin) in the foreground on a free port of 127.0.0.1, waits until a
// SELECT 1 through it succeeds, and registers a cleanup that stops the
// process, waits for it and removes the directory. No unix socket is
// opened, so it never collides with a system PgBouncer.
//
// When the binary is missing, Start skips the test, or fails it when
// $SQLPOOL_REQUIRE_SERVERS is 1.
package pgbouncer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/sqlpool/sqlpool/drivertest"
	"github.com/sqlpool/sqlpool/internal/testproc"
)

// Options configure a private PgBouncer. The zero value is a pooler in
// transaction mode with 4 server connections per database and user.
type Options struct {
	// PoolMode is pool_mode: "transaction" (the default), "session" or
	// "statement".
	PoolMode string
	// PoolSize is default_pool_size, the server connections per database
	// and user pair. Zero means 4.
	PoolSize int
	// MaxClientConn is max_client_conn. Zero means 1000.
	MaxClientConn int
	// Users may log in besides postgres (auth_type is trust: any password,
	// but the name must be in the auth file). Each logs in to PostgreSQL
	// under its own name, so it must exist there.
	Users []string
	// Settings are extra lines for the [pgbouncer] section, such as
	// "max_prepared_statements = 100" (PgBouncer 1.21 and later). They come
	// last, so they override the lines Start writes.
	Settings []string
}

// Server is a running private PgBouncer.
type Server struct {
	addr     string // 127.0.0.1:port
	dir      string // its ini, auth file, log and pid file
	upstream *url.URL
	cmd      *exec.Cmd
	exited   chan struct{} // closed once cmd has been waited for
	waitErr  error         // cmd.Wait's error; read after exited is closed

	closeOnce sync.Once
	closeErr  error
}

// ErrNotInstalled means no pgbouncer binary was found.
var ErrNotInstalled = errors.New("pgbouncer: the pgbouncer binary is not installed (apt-get install pgbouncer; Debian puts it in /usr/sbin)")

// binary returns the path of the pgbouncer binary: on $PATH, or Debian's.
func binary() (string, error) {
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	const debian = "/usr/sbin/pgbouncer"
	if _, err := os.Stat(debian); err == nil {
		return debian, nil
	}
	return "", ErrNotInstalled
}

// Start starts a PgBouncer with opts in front of drivertest.PostgresDSN's
// server, and stops it when t ends. It skips t when PostgreSQL does not
// answer or pgbouncer is not installed, or fails it in both cases when
// $SQLPOOL_REQUIRE_SERVERS is 1.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	upstream, err := url.Parse(drivertest.PostgresDSN(t))
	if err != nil || upstream.Host == "" {
		t.Fatalf("pgbouncer: SQLPOOL_TEST_POSTGRES_DSN must be a URL (postgres://user@host:port/db), got %q", upstream)
	}
	bin, err := binary()
	if err != nil {
		if os.Getenv("SQLPOOL_REQUIRE_SERVERS") == "1" {
			t.Fatal(err)
		}
		t.Skipf("skipping: %v (set SQLPOOL_REQUIRE_SERVERS=1 to fail instead)", err)
	}
	// The port is free when we look; another process may take it before
	// pgbouncer binds it, so try again a few times.
	for attempt := 1; ; attempt++ {
		s, err := start(bin, upstream, opts)
		if err == nil {
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("pgbouncer: stopping: %v", err)
				}
			})
			return s
		}
		if attempt == 3 {
			t.Fatal(err)
		}
		t.Logf("pgbouncer: attempt %d: %v; trying another port", attempt, err)
	}
}

// start runs one pgbouncer and waits until it serves SELECT 1, or stops it
// and returns why it did not.
func start(bin string, upstream *url.URL, opts Options) (*Server, error) {
	port, err := testproc.FreePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sqlpool-pgbouncer-")
	if err != nil {
		return nil, err
	}
	s := &Server{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir, upstream: upstream, exited: make(chan struct{})}
	var as *user.User // nil: as ourselves
	if os.Geteuid() == 0 {
		// pgbouncer refuses to run as root. Its user must be able to
		// write its log and pid file.
		as = unprivileged()
		uid, _ := strconv.Atoi(as.Uid)
		gid, _ := strconv.Atoi(as.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if err := s.writeConfig(port, opts); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer stderr.Close() // the child has its own copy
	s.cmd = exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	s.cmd.Stdout, s.cmd.Stderr = stderr, stderr
	runAs(s.cmd, as)
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgbouncer: starting %s: %w", bin, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(30 * time.Second); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// unprivileged returns the user pgbouncer runs as when started by root:
// postgres, or else nobody.
func unprivileged() *user.User {
	for _, name := range []string{"postgres", "nobody"} {
		if u, err := user.Lookup(name); err == nil {
			return u
		}
	}
	return &user.User{Username: "nobody", Uid: "65534", Gid: "65534"}
}

// writeConfig writes the ini and auth files into s.dir, readable by the
// user pgbouncer runs as.
func (s *Server) writeConfig(port int, opts Options) error {
	mode := opts.PoolMode
	if mode == "" {
		mode = "transaction"
	}
	size := opts.PoolSize
	if size <= 0 {
		size = 4
	}
	maxClients := opts.MaxClientConn
	if maxClients <= 0 {
		maxClients = 1000
	}
	host, upPort, err := net.SplitHostPort(s.upstream.Host)
	if err != nil {
		host, upPort = s.upstream.Host, "5432"
	}
	admin := s.upstream.User.Username()
	if admin == "" {
		admin = "postgres"
	}
	var auth strings.Builder
	for _, u := range append([]string{admin}, opts.Users...) {
		fmt.Fprintf(&auth, "%q \"\"\n", u)
	}
	ini := []string{
		"[databases]",
		// Any database name goes to the upstream server, as the client's user.
		fmt.Sprintf("* = host=%s port=%s", host, upPort),
		"",
		"[pgbouncer]",
		"listen_addr = 127.0.0.1",
		fmt.Sprintf("listen_port = %d", port),
		"unix_socket_dir =",
		"auth_type = trust",
		"auth_file = " + filepath.Join(s.dir, "users.txt"),
		"admin_users = " + admin,
		"logfile = " + s.LogPath(),
		"pidfile = " + filepath.Join(s.dir, "pgbouncer.pid"),
		"pool_mode = " + mode,
		fmt.Sprintf("default_pool_size = %d", size),
		fmt.Sprintf("max_client_conn = %d", maxClients),
		// lib/pq sends extra_float_digits; pgbouncer refuses unknown
		// startup parameters unless told to ignore them.
		"ignore_startup_parameters = extra_float_digits",
	}
	ini = append(ini, opts.Settings...)
	files := map[string]string{
		"pgbouncer.ini": strings.Join(ini, "\n") + "\n",
		"users.txt":     auth.String(),
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(s.dir, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// waitReady polls SELECT 1 through the pooler until it answers, the
// process exits, or timeout passes.
func (s *Server) waitReady(timeout time.Duration) error {
	c, err := pq.NewConnector(s.DSN("connect_timeout=2"))
	if err != nil {
		return err
	}
	db := sql.OpenDB(c)
	defer db.Close()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = db.ExecContext(ctx, "SELECT 1")
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("pgbouncer: exited at start (%v); its output:\n%s", s.waitErr, s.output())
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgbouncer: no answer on %s after %v: %v; its output:\n%s", s.addr, timeout, err, s.output())
		}
	}
}

// output returns pgbouncer's stderr and log file, for error messages.
func (s *Server) output() string {
	out, _ := os.ReadFile(filepath.Join(s.dir, "stderr"))
	log, _ := os.ReadFile(s.LogPath())
	if len(log) > 0 && !strings.Contains(string(out), string(log)) {
		out = append(out, log...)
	}
	return string(out)
}

// Addr returns the address PgBouncer listens on, 127.0.0.1:port.
func (s *Server) Addr() string { return s.addr }

// Pid returns the process id of pgbouncer.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// LogPath returns the path of PgBouncer's log file.
func (s *Server) LogPath() string { return filepath.Join(s.dir, "pgbouncer.log") }

// DSN returns a URL DSN to the upstream database through PgBouncer, as the
// upstream DSN's user, with sslmode=disable and the query parameters of
// extra (such as "binary_parameters=yes"; may be empty).
func (s *Server) DSN(extra string) string {
	return s.UserDSN(s.upstream.User.Username(), extra)
}

// UserDSN is DSN logging in as user, which must be in Options.Users.
func (s *Server) UserDSN(user, extra string) string {
	u := *s.upstream
	u.Host = s.addr
	u.User = url.User(user)
	q := u.Query()
	q.Set("sslmode", "disable")
	if x, err := url.ParseQuery(extra); err == nil {
		for k, v := range x {
			q[k] = v
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// AdminDSN returns a URL DSN to PgBouncer's admin console (the database
// "pgbouncer", simple query protocol only: SHOW POOLS, SHOW CONFIG...).
func (s *Server) AdminDSN() string {
	u, _ := url.Parse(s.DSN(""))
	u.Path = "/pgbouncer"
	return u.String()
}

// Close stops PgBouncer at once (SIGTERM, then SIGKILL after 5 seconds),
// waits for the process and removes its directory. It is idempotent; the
// test's cleanup calls it.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		defer os.RemoveAll(s.dir)
		select {
		case <-s.exited:
			return // it died on its own; start reports why
		default:
		}
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			s.closeErr = err
		}
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
			s.closeErr = fmt.Errorf("pgbouncer: did not stop within 5s of SIGTERM; killed it")
		}
	})
	return s.closeErr
}

// Exited reports whether the pgbouncer process has ended and been waited
// for.
func (s *Server) Exited() bool {
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}
