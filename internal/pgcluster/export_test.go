//go:build linux

package pgcluster

// Installed returns ErrNotInstalled (or why root cannot run the servers)
// when Start would skip.
func Installed() error {
	_, _, err := programs()
	return err
}
