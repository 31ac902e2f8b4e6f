package partition

import (
	"errors"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// MaxNameLen is the longest partition name, in bytes: 256.
const MaxNameLen = 256

// ErrInvalidPartitionName is returned for a partition name, or a Sticky key,
// that is longer than MaxNameLen bytes, is not valid UTF-8 or holds a
// control character (NUL included). Route checks a key before it routes it
// under any Unknown policy, so that such a key never creates a partition,
// never reaches the default one, and never shows in a metric label or a log
// line; Add and NewRouter check names too.
var ErrInvalidPartitionName = errors.New("sqlpool: invalid partition name")

// checkName reports what is wrong with a partition name from outside.
func checkName(name string) error {
	var what string
	switch {
	case len(name) > MaxNameLen:
		what = fmt.Sprintf("is %d bytes long, more than %d", len(name), MaxNameLen)
	case !utf8.ValidString(name):
		what = "is not valid UTF-8"
	default:
		for i, c := range name {
			if c == 0 {
				what = fmt.Sprintf("holds a NUL byte at byte %d", i)
				break
			}
			if unicode.IsControl(c) {
				what = fmt.Sprintf("holds the control character %U at byte %d", c, i)
				break
			}
		}
	}
	if what == "" {
		return nil
	}
	return fmt.Errorf("%w: %s %s; a partition name must be valid UTF-8, without control characters, of at most %d bytes",
		ErrInvalidPartitionName, quote(name), what, MaxNameLen)
}

// quoteMax is the most bytes of a name quote shows.
const quoteMax = 64

// quote returns name quoted, for a message, cut after quoteMax bytes (at a
// rune's start when it is UTF-8).
func quote(name string) string {
	if len(name) <= quoteMax {
		return strconv.Quote(name)
	}
	cut := quoteMax
	for i := cut; i > quoteMax-utf8.UTFMax && i > 0; i-- {
		if utf8.RuneStart(name[i]) {
			cut = i
			break
		}
	}
	return strconv.Quote(name[:cut]) + fmt.Sprintf("... (%d bytes)", len(name))
}
