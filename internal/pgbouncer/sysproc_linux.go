package pgbouncer

import "syscall"

// sysProcAttr makes the kernel kill pgbouncer when the test binary dies
// before its cleanup could run, so that no pooler outlives its test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
