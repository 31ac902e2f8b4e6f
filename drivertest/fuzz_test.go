package drivertest

import (
	"context"
	"database/sql/driver"
	"io"
	"strconv"
	"strings"
	"testing"
)

// FuzzParse gives the command parser random statements: it must accept
// them with a faithful parse or reject them with a drivertest error, and a
// connection must run whatever it accepts (as an exec, a query and a
// prepared statement) without panicking.
func FuzzParse(f *testing.F) {
	for _, q := range []string{
		"SET k v", "set t ? ?", "DEL a b", "GET k", "SCAN", "SCAN a b", "COUNT",
		"SELECT 1 -2 2.5 1e3 TRUE false NULL X'00ff' x'zz' word", "SELECT ?", "ROWS 3", "ROWS ?", "ROWS -1", "ROWS x",
		"MULTI", "SETTENANT x", "TENANT", "CONNID", "SLEEP", "BADCONN", "FAIL boom now", "FAIL",
		"", " \t\n", "COUNT extra", "ROWS 1 2", "SET k", "unknown statement", "sElEcT\tä\u00a0ß", "SELECT 1e400 NaN Inf",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, query string) {
		cmd, err := parse(query)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "drivertest: ") {
				t.Errorf("parse(%q): error %q lacks the drivertest: prefix", query, err)
			}
			return
		}
		words := strings.Fields(query)
		if cmd.keyword != strings.ToUpper(words[0]) || strings.Join(cmd.words, " ") != strings.Join(words[1:], " ") {
			t.Errorf("parse(%q) = keyword %q, words %q", query, cmd.keyword, cmd.words)
		}
		form, ok := statements[cmd.keyword]
		if !ok || len(cmd.words) < form.min || form.max >= 0 && len(cmd.words) > form.max {
			t.Errorf("parse(%q) accepted %d words for %s", query, len(cmd.words), form.usage)
		}
		question := 0
		for _, w := range cmd.words {
			if w == "?" {
				question++
			}
		}
		if cmd.numInput != question {
			t.Errorf("parse(%q): NumInput %d, want %d", query, cmd.numInput, question)
		}
		if cmd.keyword == "ROWS" {
			if n, err := strconv.Atoi(cmd.words[0]); err == nil && n > 1000 {
				return // a million rows is what was asked for, not a bug
			}
		}

		// A canceled context makes SLEEP return at once; nothing else
		// looks at it.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		args := make([]driver.NamedValue, cmd.numInput)
		for i := range args {
			args[i] = driver.NamedValue{Ordinal: i + 1, Value: int64(i)}
		}
		d := New(Options{})
		dc, err := d.connect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer dc.Close()
		c := dc.(interface {
			driver.ExecerContext
			driver.QueryerContext
			driver.ConnPrepareContext
		})
		c.ExecContext(ctx, query, args)
		if rows, err := c.QueryContext(ctx, query, args); err == nil {
			drain(t, rows)
		}
		s, err := c.PrepareContext(ctx, query)
		if err != nil {
			t.Fatalf("Prepare(%q) after parse accepted it: %v", query, err)
		}
		if n := s.NumInput(); n != cmd.numInput {
			t.Errorf("Prepare(%q).NumInput() = %d, want %d", query, n, cmd.numInput)
		}
		if rows, err := s.(driver.StmtQueryContext).QueryContext(ctx, args); err == nil {
			drain(t, rows)
		}
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
}

// drain reads every row of every result set, then closes rows.
func drain(t *testing.T, rows driver.Rows) {
	t.Helper()
	for {
		dest := make([]driver.Value, len(rows.Columns()))
		for {
			if err := rows.Next(dest); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("Next: %v", err)
			}
		}
		rs, ok := rows.(driver.RowsNextResultSet)
		if !ok || !rs.HasNextResultSet() || rs.NextResultSet() != nil {
			break
		}
	}
	if err := rows.Close(); err != nil {
		t.Error(err)
	}
}
