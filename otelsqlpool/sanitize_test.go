package otelsqlpool_test

import (
	"testing"

	"github.com/sqlpool/sqlpool/otelsqlpool"
)

func TestSanitizeReplacesLiteralsOnly(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"SELECT * FROM t WHERE id = 42", "SELECT * FROM t WHERE id = ?"},
		{"SELECT 'a', 'it''s', 'back\\'slash' FROM t", "SELECT ?, ?, ? FROM t"},
		{"SELECT 1.5, .5, 1e-3, 2E10, 0x1F, -7", "SELECT ?, ?, ?, ?, ?, -?"},
		{"SELECT t1.c2 FROM t1 WHERE x = $1 AND y = ? AND z = :name", "SELECT t1.c2 FROM t1 WHERE x = $1 AND y = ? AND z = :name"},
		{`SELECT "col 1", ` + "`c2`" + ` FROM "T"`, `SELECT "col 1", ` + "`c2`" + ` FROM "T"`},
		{"SELECT $$it's 1$$, $tag$ 2 $tag$ FROM t", "SELECT ?, ? FROM t"},
		{"SELECT 1 -- don't 2\nFROM t /* it's 3 */", "SELECT ? -- don't 2\nFROM t /* it's 3 */"},
		{"INSERT INTO t VALUES (E'x\\n', X'ff', 'unterminated", "INSERT INTO t VALUES (E?, X?, ?"},
		{"SELECT 'é', café FROM t", "SELECT ?, café FROM t"},
		{"", ""},
	} {
		if got := otelsqlpool.Sanitize(tc.in); got != tc.want {
			t.Errorf("Sanitize(%q)\n = %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"SELECT 'a''b', 1.5e3 FROM t WHERE x = $1", "$$x", "/* 'x", "-- 1\n2", `"a`, "0x", "'\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		s := otelsqlpool.Sanitize(q)
		if len(s) > len(q) {
			t.Errorf("Sanitize(%q) = %q grew", q, s)
		}
		if again := otelsqlpool.Sanitize(s); again != s {
			t.Errorf("Sanitize is not idempotent on %q: %q, then %q", q, s, again)
		}
	})
}
