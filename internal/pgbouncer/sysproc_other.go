//go:build !linux

package pgbouncer

import "syscall"

// sysProcAttr is nil where the kernel cannot kill a child with its parent:
// a pgbouncer outlives a test binary that dies before its cleanup.
func sysProcAttr() *syscall.SysProcAttr { return nil }
