package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"
	"go.uber.org/goleak"

	"github.com/sqlpool/sqlpool/internal/workload"
)

// benchRow is one row of bench's table.
type benchRow struct {
	ops, errs int64
	ratio     string
}

// benchTable parses the table of a bench report: client → row.
func benchTable(t *testing.T, report string) map[string]benchRow {
	t.Helper()
	rows := make(map[string]benchRow)
	inTable := false
	for _, line := range strings.Split(report, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 0 && f[0] == "CLIENT":
			if want := []string{"CLIENT", "OPS", "OPS/S", "P50", "P99", "ERRORS", "SQLPOOL/CLIENT"}; strings.Join(f, " ") != strings.Join(want, " ") {
				t.Fatalf("header %q, want %q", f, want)
			}
			inTable = true
		case len(f) == 0:
			inTable = false
		case inTable:
			if len(f) != 7 {
				t.Fatalf("row %q has %d columns, want 7", line, len(f))
			}
			num := func(s string) int64 {
				n, err := strconv.ParseInt(strings.ReplaceAll(s, ",", ""), 10, 64)
				if err != nil {
					t.Fatalf("bad number %q in row %q", s, line)
				}
				return n
			}
			rows[f[0]] = benchRow{ops: num(f[1]), errs: num(f[5]), ratio: f[6]}
		}
	}
	if len(rows) == 0 {
		t.Fatalf("no table in the report:\n%s", report)
	}
	return rows
}

func TestBenchComparesEveryClientOnSQLiteAndDropsItsTable(t *testing.T) {
	for _, w := range []string{"select", "insert", "tx"} {
		t.Run(w, func(t *testing.T) {
			defer goleak.VerifyNone(t)

			dsn := "file:" + filepath.Join(t.TempDir(), "bench.db") + "?_journal_mode=WAL&_busy_timeout=10000&_txlock=immediate"
			var out, progress bytes.Buffer
			err := runBench(context.Background(), &out, benchConfig{
				Driver:     "sqlite",
				DSN:        dsn,
				Duration:   200 * time.Millisecond,
				Goroutines: 4,
				Workload:   w,
				MaxSize:    2,
				Table:      "bench_t",
				Rows:       1000,
				Progress:   &progress,
			})
			report := out.String()
			t.Logf("report:\n%s", report)
			if err != nil {
				t.Fatalf("runBench: %v", err)
			}

			rows := benchTable(t, report)
			for _, client := range []string{"args", "prepared", "sqlpool"} {
				r, ok := rows[client]
				switch {
				case !ok:
					t.Errorf("no row for client %s", client)
				case r.ops <= 0:
					t.Errorf("client %s: %d operations, want > 0", client, r.ops)
				case r.errs != 0:
					t.Errorf("client %s: %d errors, want 0", client, r.errs)
				}
				if client == "sqlpool" {
					if r.ratio != "-" {
						t.Errorf("sqlpool's ratio is %q, want -", r.ratio)
					}
				} else if x, err := strconv.ParseFloat(r.ratio, 64); err != nil || x <= 0 {
					t.Errorf("client %s: ratio %q, want a positive number", client, r.ratio)
				}
			}
			if len(rows) != 3 {
				t.Errorf("%d rows, want 3 (args, prepared, sqlpool)", len(rows))
			}
			if !strings.Contains(report, "workload "+w) {
				t.Errorf("the report does not name the workload %s", w)
			}
			if !strings.Contains(progress.String(), "sqlpool for 200ms") {
				t.Errorf("progress lacks sqlpool's run: %q", progress.String())
			}

			db, err := workload.OpenBare(&sqlite3.SQLiteDriver{}, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var n int
			if err := db.QueryRow("SELECT count(*) FROM sqlite_master WHERE name = 'bench_t'").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("table bench_t is still there after the run")
			}
		})
	}
}

func TestBenchLeavesAnExistingTableAlone(t *testing.T) {
	defer goleak.VerifyNone(t)

	dsn := "file:" + filepath.Join(t.TempDir(), "mine.db")
	db, err := workload.OpenBare(&sqlite3.SQLiteDriver{}, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE mine (id INTEGER PRIMARY KEY, v TEXT NOT NULL); INSERT INTO mine VALUES (1, 'precious')"); err != nil {
		t.Fatal(err)
	}
	err = runBench(context.Background(), io.Discard, benchConfig{
		Driver: "sqlite", DSN: dsn, Duration: time.Second, Goroutines: 1, Workload: "insert", MaxSize: 1, Table: "mine", Rows: 10,
	})
	if err == nil || !strings.Contains(err.Error(), "choose another -table") {
		t.Fatalf("runBench on an existing table: %v, want an error asking for another -table", err)
	}
	var v string
	if err := db.QueryRow("SELECT v FROM mine WHERE id = 1").Scan(&v); err != nil || v != "precious" {
		t.Errorf("the existing table's row: %q, %v; want it untouched", v, err)
	}
}

func TestBenchStopsWhenInterrupted(t *testing.T) {
	defer goleak.VerifyNone(t)

	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- runBench(ctx, &out, benchConfig{
			Driver: "sqlite", Duration: time.Hour, Goroutines: 2, Workload: "select", MaxSize: 2, Table: "t", Rows: 100,
			Progress: progressFunc(func(line string) {
				if strings.Contains(line, "args for") {
					cancel() // while the first client runs
				}
			}),
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("runBench: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("runBench did not stop within a minute of its context's end")
	}
	if !strings.Contains(out.String(), "interrupted") {
		t.Errorf("the report does not say it was interrupted:\n%s", out.String())
	}
}

// progressFunc is an io.Writer that calls itself with each write.
type progressFunc func(line string)

func (f progressFunc) Write(p []byte) (int, error) {
	f(string(p))
	return len(p), nil
}

func TestBenchRejectsBadFlags(t *testing.T) {
	defer goleak.VerifyNone(t)

	good := benchConfig{Driver: "sqlite", Duration: time.Second, Goroutines: 1, Workload: "select", MaxSize: 1, Table: "t", Rows: 1}
	for name, change := range map[string]func(*benchConfig){
		"unknown driver":       func(c *benchConfig) { c.Driver = "oracle" },
		"postgres without DSN": func(c *benchConfig) { c.Driver = "postgres" },
		"zero duration":        func(c *benchConfig) { c.Duration = 0 },
		"no goroutines":        func(c *benchConfig) { c.Goroutines = 0 },
		"unknown workload":     func(c *benchConfig) { c.Workload = "update" },
		"zero max":             func(c *benchConfig) { c.MaxSize = 0 },
		"quoted table":         func(c *benchConfig) { c.Table = `t"; DROP TABLE users; --` },
		"no rows":              func(c *benchConfig) { c.Rows = 0 },
	} {
		cfg := good
		change(&cfg)
		var ue usageError
		if err := runBench(context.Background(), io.Discard, cfg); !errors.As(err, &ue) {
			t.Errorf("%s: got %v, want a usage error", name, err)
		}
	}
}

func TestBenchCommandParsesItsFlags(t *testing.T) {
	defer goleak.VerifyNone(t)

	var stdout, stderr bytes.Buffer
	code := run([]string{"bench", "-duration", "100ms", "-goroutines", "2", "-workload", "tx", "-max", "2", "-rows", "50", "-table", "flags_t"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", code, stderr.String())
	}
	for _, want := range []string{"workload tx", "flags_t (50 rows", "2 goroutines on ", " CPUs, 100ms per client, at most 2 connections"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, stdout.String())
		}
	}
	if code := run([]string{"bench", "-workload", "update"}, &stdout, &stderr); code != 2 {
		t.Errorf("bench -workload update: exit status %d, want 2", code)
	}
	stdout.Reset()
	if code := run([]string{"help", "bench"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "drops it at the end") {
		t.Errorf("help bench: exit status %d, usage %q", code, stdout.String())
	}
}
