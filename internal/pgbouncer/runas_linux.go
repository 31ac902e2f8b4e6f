package pgbouncer

import (
	"os/exec"
	"os/user"
	"syscall"

	"github.com/sqlpool/sqlpool/internal/testproc"
)

// runAs makes cmd run as u (when not nil), and makes the kernel kill it
// when the test binary dies before its cleanup could run (a panic, a
// timeout), so that no pooler outlives its test. The user is switched
// before exec, not with pgbouncer's -u: a change of credentials after
// exec would clear the parent-death signal.
func runAs(cmd *exec.Cmd, u *user.User) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if u != nil {
		cmd.SysProcAttr.Credential = testproc.Credential(u)
	}
}
