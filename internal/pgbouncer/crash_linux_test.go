package pgbouncer_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sqlpool/sqlpool/internal/pgbouncer"
	"github.com/sqlpool/sqlpool/internal/testproc"
)

// TestPgbouncerDiesWithItsTestBinary runs this test again in a child
// process that starts a PgBouncer and exits at once, with no cleanup (as a
// panic or a timeout would): the kernel must kill the pooler with it.
func TestPgbouncerDiesWithItsTestBinary(t *testing.T) {
	if os.Getenv("SQLPOOL_PGBOUNCER_CRASH") == "1" {
		s := pgbouncer.Start(t, pgbouncer.Options{})
		fmt.Printf("pgbouncer pid %d\npgbouncer log %s\n", s.Pid(), s.LogPath())
		os.Exit(3)
	}
	pgbouncer.Start(t, pgbouncer.Options{}) // skips as the child would
	cmd := exec.Command(os.Args[0], "-test.run=^TestPgbouncerDiesWithItsTestBinary$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SQLPOOL_PGBOUNCER_CRASH=1")
	out, _ := cmd.Output()
	var pid int
	var dir string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if s, ok := strings.CutPrefix(sc.Text(), "pgbouncer pid "); ok {
			pid, _ = strconv.Atoi(s)
		}
		if s, ok := strings.CutPrefix(sc.Text(), "pgbouncer log "); ok {
			dir = filepath.Dir(s)
		}
	}
	if pid == 0 || dir == "" {
		t.Fatalf("the child printed no pid; its output:\n%s", out)
	}
	t.Cleanup(func() {
		if testproc.Alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL) // so that a failure leaks nothing
		}
		os.RemoveAll(dir) // the child's cleanup did not run

	})
	deadline := time.Now().Add(10 * time.Second)
	for testproc.Alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("pgbouncer %d still runs 10s after its test binary died", pid)
		}
		time.Sleep(10 * time.Millisecond) // polling a process we cannot wait for
	}
}
