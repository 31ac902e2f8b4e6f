// Package testproc holds what the test harnesses that start servers of
// their own (internal/pgbouncer, internal/pgcluster) share: a free
// loopback port, and on Linux the credentials of an OS user and whether a
// process still runs.
package testproc

import "net"

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
