//go:build !linux

package pgbouncer

import (
	"os/exec"
	"os/user"
)

// runAs makes cmd run as u (when not nil) with pgbouncer's -u. The kernel
// cannot kill a child with its parent here: a pgbouncer outlives a test
// binary that dies before its cleanup.
func runAs(cmd *exec.Cmd, u *user.User) {
	if u != nil {
		cmd.Args = append([]string{cmd.Args[0], "-u", u.Username}, cmd.Args[1:]...)
	}
}
