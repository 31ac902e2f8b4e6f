package testproc

import (
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

// Credential returns the credentials of u, to start a process as u
// (syscall.SysProcAttr.Credential).
func Credential(u *user.User) *syscall.Credential {
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// Alive reports whether process pid runs: it exists and is not a zombie
// (a dead test binary's children are reparented to init, which may be
// slow to reap them).
func Alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ...
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || (stat[i+2] != 'Z' && stat[i+2] != 'X')
}
