package sqlpool_test

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sqlpool/sqlpool"
)

// TestServerRestart stops and starts the real PostgreSQL and MariaDB
// servers, with the machine's own service commands, while 32 goroutines
// read and write through a pool of 16: operations fail while the server is
// down, the pool recovers within 2 s of the server answering again, only
// operations in flight during the outage fail, and no write is lost or
// doubled.
//
// The servers are shared with every other test, so this test runs only
// when SQLPOOL_RESTART_TESTS=1, alone (.ci/run runs it after the others).
func TestServerRestart(t *testing.T) {
	if os.Getenv("SQLPOOL_RESTART_TESTS") != "1" {
		t.Skip("restarts the shared database servers: run alone with SQLPOOL_RESTART_TESTS=1 (.ci/run does)")
	}
	eachServer(t, restartUnderLoad)
}

func restartUnderLoad(t *testing.T, s *relServer) {
	const (
		size       = 16
		goroutines = 32
		opTimeout  = 2 * time.Second
		downFor    = time.Second // how long the server stays down, once stopped
	)
	stop, start := serviceCommands(t, s.kind)
	db, c := s.pool(t, s.addr, sqlpool.Config{MaxSize: size})
	l := newLoad(db, s, opTimeout)
	l.start(goroutines)
	defer l.halt()
	l.waitSuccesses(t, time.Time{}, 200)

	down := time.Now()
	started := false
	t.Cleanup(func() { // whatever happens, leave the server running
		if !started {
			run(t, start)
		}
	})
	run(t, stop)
	stopped := time.Now()
	time.Sleep(downFor) // the length of the outage, not synchronisation
	started = true
	done := make(chan struct{})
	go func() { // pg_ctlcluster start returns only once the server answers
		defer close(done)
		run(t, start)
	}()
	up := waitAnswering(t, s)
	<-done
	recovery := l.waitRecovered(t, up, 500*time.Millisecond, 3*goroutines, 2*time.Second)
	ops := l.halt()
	a := audit(t, s, ops)

	var failed, outside int // outside: failed, yet not in flight during the outage
	var firstOK time.Time   // the first success of an operation begun after the stop
	for _, op := range ops {
		if op.err == nil {
			if op.start.After(stopped) && (firstOK.IsZero() || op.end.Before(firstOK)) {
				firstOK = op.end
			}
			continue
		}
		failed++
		if op.start.After(up) || op.end.Before(down) {
			outside++
		}
	}
	st := c.Stats()
	t.Logf("%s restart: stop took %v, server answering %v after it stopped; %d ops, %d in flight during the outage; %d failed, %d of them outside it; "+
		"first success %v after the server answered (the probe polls every 10 ms); recovery %v after it; writes: %d succeeded, %d failed (%d ambiguous), lost %d, doubled %d; pool: created %d, closed %v\n%s",
		s.kind, stopped.Sub(down).Round(time.Millisecond), up.Sub(stopped).Round(time.Millisecond), len(ops), inFlight(ops, down, up), failed, outside,
		firstOK.Sub(up).Round(time.Millisecond), recovery.Round(time.Millisecond), a.succeeded, a.failed, a.ambiguous, len(a.lost), len(a.doubled), st.Created, st.Closed, errorSummary(ops))
	if recovery > 2*time.Second {
		t.Errorf("recovery took %v after the server answered again, want at most 2s", recovery)
	}
	if outside > 0 {
		t.Errorf("%d operations failed that were not in flight while the server was down, want none", outside)
	}
	a.check(t, s, ops)
}

// serviceCommands returns the commands that stop and start the server of
// kind as this machine runs it, or skips (fails with
// SQLPOOL_REQUIRE_SERVERS=1) when they are not available.
func serviceCommands(t *testing.T, kind string) (stop, start []string) {
	t.Helper()
	unavailable := func(why string) {
		if os.Getenv("SQLPOOL_REQUIRE_SERVERS") == "1" {
			t.Fatalf("cannot restart %s: %s", kind, why)
		}
		t.Skipf("cannot restart %s: %s", kind, why)
	}
	if os.Geteuid() != 0 {
		unavailable("the service commands need root")
	}
	switch kind {
	case "postgres":
		if _, err := exec.LookPath("pg_ctlcluster"); err != nil {
			unavailable("no pg_ctlcluster")
		}
		out, err := exec.Command("pg_lsclusters", "-h").Output()
		fields := strings.Fields(string(out))
		if err != nil || len(fields) < 2 {
			unavailable("pg_lsclusters lists no cluster")
		}
		cluster := []string{"pg_ctlcluster", "--skip-systemctl-redirect", fields[0], fields[1]}
		return append(cluster[:4:4], "stop", "-m", "fast"), append(cluster[:4:4], "start")
	case "mysql":
		daemon, err := exec.LookPath("mariadbd")
		if err != nil {
			unavailable("no mariadbd")
		}
		// --retry makes --stop wait until the server has exited.
		return []string{"start-stop-daemon", "--stop", "--retry", "TERM/60/KILL/5", "--exec", daemon},
			[]string{"start-stop-daemon", "--start", "--oknodo", "--background", "--exec", daemon}
	}
	t.Fatalf("unknown server kind %q", kind)
	return nil, nil
}

// run runs a service command.
func run(t *testing.T, argv []string) {
	t.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
}

// waitAnswering waits until a new connection to the server answers a
// query, and returns when it did.
func waitAnswering(t *testing.T, s *relServer) time.Time {
	t.Helper()
	conn, err := s.connector(s.addr)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	db.SetMaxIdleConns(0) // every attempt dials
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		var one int
		err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
		cancel()
		if err == nil {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer 60 s after its start: %v", s.kind, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
