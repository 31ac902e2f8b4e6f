// Command compat runs third-party test suites (sqlx on four drivers, lib/pq's
// and go-sql-driver/mysql's own) twice, bare and with their *sql.DB opened
// through sqlpool, and reports the tests that pass bare and fail wrapped.
//
// Sources come from the module cache (go mod download); each is copied to a
// temporary directory and patched only where its tests open a *sql.DB (see
// suites.go). A difference not in allowlist.txt makes the command exit 1.
//
// Usage, from the repository root:
//
//	go run ./compat [-suites sqlx/pq,pq] [-v]
//
// The servers are those of the project's tests: SQLPOOL_TEST_POSTGRES_DSN
// and SQLPOOL_TEST_MYSQL_DSN, with the same defaults. A suite whose server
// does not answer is skipped, or fails with SQLPOOL_REQUIRE_SERVERS=1.
package main

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/lib/pq"
)

//go:embed allowlist.txt
var defaultAllowList string

// gormNote says why gorm's suite is not run.
const gormNote = "gorm v1.31.2: not run — its tests/ are a separate module (gorm.io/gorm/tests) that the module proxy does not serve, and gorm.io/gorm@v1.31.2 holds no tests/"

func main() {
	names := flag.String("suites", "", "comma-separated suites to run (default all): "+suiteNames())
	allowFile := flag.String("allow", "", "allow-list file (default: the compat/allowlist.txt built in)")
	verbose := flag.Bool("v", false, "print each differing test's whole wrapped output, not its first lines")
	keep := flag.Bool("keep", false, "keep the patched copies, and print where they are")
	timeout := flag.Duration("timeout", 4*time.Minute, "go test -timeout of each run")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Stdout, options{suites: *names, allowFile: *allowFile, verbose: *verbose, keep: *keep, timeout: *timeout})
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	suites, allowFile string
	verbose, keep     bool
	timeout           time.Duration
}

// errRegressions is returned when a test passes bare and fails wrapped and
// the allow-list does not name it.
var errRegressions = errors.New("compat: tests pass bare and fail wrapped (listed above); fix sqlpool, or add them to compat/allowlist.txt with the reason")

// errSuiteFailed is returned when a suite could not be run or compared.
var errSuiteFailed = errors.New("compat: a suite did not run to the end (see above)")

// suiteResult is what became of one suite.
type suiteResult struct {
	suite         suite
	skipped       string // why it did not run, if it did not
	err           error
	bare, wrapped *runResult
	took          [2]time.Duration // bare, wrapped
	crashes       [2][]string      // tests that panicked, bare and wrapped
	// flaky are the tests that passed bare and failed wrapped in the
	// suite's run, and passed wrapped when run again alone (the rerun's
	// number, from 1): timing-sensitive tests that a loaded machine fails.
	flaky map[string]int
}

func run(ctx context.Context, w io.Writer, opt options) error {
	allowText := defaultAllowList
	if opt.allowFile != "" {
		b, err := os.ReadFile(opt.allowFile)
		if err != nil {
			return fmt.Errorf("compat: allow-list: %w", err)
		}
		allowText = string(b)
	}
	allow, err := parseAllowList(allowText)
	if err != nil {
		return err
	}
	selected, err := selectSuites(opt.suites)
	if err != nil {
		return err
	}
	root, err := checkout(ctx)
	if err != nil {
		return err
	}
	srv := servers{
		postgres: cmp.Or(os.Getenv("SQLPOOL_TEST_POSTGRES_DSN"), "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"),
		mysql:    cmp.Or(os.Getenv("SQLPOOL_TEST_MYSQL_DSN"), "root@tcp(127.0.0.1:3306)/test"),
	}
	up := map[string]error{"": nil, "postgres": ping(ctx, "postgres", srv.postgres), "mysql": ping(ctx, "mysql", srv.mysql)}

	tmp, err := os.MkdirTemp("", "sqlpool-compat-")
	if err != nil {
		return fmt.Errorf("compat: %w", err)
	}
	if opt.keep {
		fmt.Fprintf(w, "compat: the copies stay in %s\n", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	start := time.Now()
	results := make([]*suiteResult, len(selected))
	dirs := map[*source]string{}
	for i, s := range selected {
		results[i] = &suiteResult{suite: s}
		if err := up[s.server]; err != nil {
			if os.Getenv("SQLPOOL_REQUIRE_SERVERS") == "1" {
				return fmt.Errorf("compat: %s needs %s, which does not answer (%v); start it or unset SQLPOOL_REQUIRE_SERVERS", s.name, s.server, err)
			}
			results[i].skipped = fmt.Sprintf("%s does not answer: %v", s.server, err)
			continue
		}
		if _, ok := dirs[s.src]; ok {
			continue
		}
		dir, err := prepare(ctx, s.src, root, tmp)
		if err != nil {
			return err
		}
		dirs[s.src] = dir
	}

	// Suites on different servers run at once; those on one server one
	// after the other, since they share its database.
	byServer := map[string][]*suiteResult{}
	for _, r := range results {
		if r.skipped == "" {
			byServer[r.suite.server] = append(byServer[r.suite.server], r)
		}
	}
	var wg sync.WaitGroup
	for _, group := range byServer {
		wg.Go(func() {
			for _, r := range group {
				if ctx.Err() != nil {
					r.err = ctx.Err()
					continue
				}
				runSuite(ctx, r, dirs[r.suite.src], tmp, srv, opt.timeout)
			}
		})
	}
	wg.Wait()
	// Differences the allow-list does not explain run again, alone, one
	// suite at a time.
	for _, r := range results {
		if r.skipped != "" || r.err != nil || ctx.Err() != nil {
			continue
		}
		var again []string
		for _, name := range regressions(r.bare, r.wrapped) {
			if _, ok := allow.allowed(r.suite.name, name); !ok && r.wrapped.tests[name] != notRun {
				again = append(again, name)
			}
		}
		rerun(ctx, r, again, dirs[r.suite.src], tmp, srv, opt.timeout)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("compat: interrupted: %w", err)
	}
	return report(w, results, allow, opt.verbose, time.Since(start))
}

// selectSuites returns the suites named in list, or all of them.
func selectSuites(list string) ([]suite, error) {
	if list == "" {
		return suites, nil
	}
	var out []suite
	for name := range strings.SplitSeq(list, ",") {
		i := slices.IndexFunc(suites, func(s suite) bool { return s.name == name })
		if i < 0 {
			return nil, fmt.Errorf("compat: no suite %q; the suites are %s", name, suiteNames())
		}
		out = append(out, suites[i])
	}
	return out, nil
}

func suiteNames() string {
	var names []string
	for _, s := range suites {
		names = append(names, s.name)
	}
	return strings.Join(names, ", ")
}

// checkout returns the root of this sqlpool checkout, which the copies
// replace github.com/sqlpool/sqlpool with.
func checkout(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || filepath.Base(gomod) != "go.mod" {
		return "", fmt.Errorf("compat: cannot find the sqlpool checkout (go env GOMOD: %q, %v); run from inside it", gomod, err)
	}
	dir := filepath.Dir(gomod)
	b, err := os.ReadFile(gomod)
	if err != nil || !bytes.Contains(b, []byte("module github.com/sqlpool/sqlpool\n")) {
		return "", fmt.Errorf("compat: %s is not sqlpool's go.mod; run from inside the sqlpool checkout", gomod)
	}
	return dir, nil
}

// ping reports whether the server of dsn answers within a few seconds.
func ping(ctx context.Context, driverName, dsn string) error {
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// execOn runs query on the server named server ("postgres" or "mysql").
func execOn(ctx context.Context, server string, srv servers, query string) error {
	dsn := map[string]string{"postgres": srv.postgres, "mysql": srv.mysql}[server]
	db, err := sql.Open(server, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, query)
	return err
}

// prepare copies src from the module cache into tmp, patches the copy and
// points its sqlpool at root. It returns the copy's directory.
func prepare(ctx context.Context, src *source, root, tmp string) (string, error) {
	out, err := goCmd(ctx, "", nil, "mod", "download", "-json", src.module)
	var mod struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &mod); jerr != nil || mod.Dir == "" {
		return "", fmt.Errorf("compat: go mod download %s: %v %s; check the network or GOPROXY", src.module, err, cmp.Or(mod.Error, string(out)))
	}
	dir := filepath.Join(tmp, strings.NewReplacer("/", "_", "@", "_").Replace(src.module))
	if err := copyTree(mod.Dir, dir); err != nil {
		return "", fmt.Errorf("compat: copying %s: %w", src.module, err)
	}
	for _, p := range src.patches {
		if err := p.apply(dir); err != nil {
			return "", fmt.Errorf("compat: %s: %w", src.module, err)
		}
	}
	for name, text := range src.files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return "", fmt.Errorf("compat: %s: %w", src.module, err)
		}
	}
	env := []string{"GOFLAGS=-mod=mod"}
	for _, args := range [][]string{
		{"mod", "edit", "-require=github.com/sqlpool/sqlpool@v0.0.0", "-replace=github.com/sqlpool/sqlpool=" + root},
		{"mod", "tidy"},
		// Built once here, so that suites of one source running at once
		// on different servers do not each build it.
		{"test", "-c", "-vet=off", "-o", filepath.Join(dir, "compat.test"), "."},
	} {
		if out, err := goCmd(ctx, dir, env, args...); err != nil {
			return "", fmt.Errorf("compat: %s: go %s: %v\n%s", src.module, strings.Join(args, " "), err, out)
		}
	}
	return dir, nil
}

// apply makes p's replacement in the copy at dir.
func (p patch) apply(dir string) error {
	name := filepath.Join(dir, p.file)
	b, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	if n := bytes.Count(b, []byte(p.old)); n != p.n {
		return fmt.Errorf("patch %s: %q occurs %d times, want %d; the suite changed, update compat/suites.go", p.file, p.old, n, p.n)
	}
	return os.WriteFile(name, bytes.ReplaceAll(b, []byte(p.old), []byte(p.new)), 0o644)
}

// copyTree copies the directory tree from into to, writable (the module
// cache is read-only), leaving out nested modules' vendor trees and .git.
func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		target := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}

// runSuite runs r's suite bare, then wrapped.
func runSuite(ctx context.Context, r *suiteResult, dir, tmp string, srv servers, timeout time.Duration) {
	for i, wrap := range []bool{false, true} {
		mode := [...]string{"bare", "wrapped"}[i]
		env, err := modeEnv(r, tmp, srv, wrap, "")
		if err != nil {
			r.err = err
			return
		}
		start := time.Now()
		res, crashes, err := goTest(ctx, dir, env, "", r.suite.skip, afterCrash(ctx, r, srv), timeout)
		r.took[i] = time.Since(start)
		if err != nil {
			r.err = err
			return
		}
		r.crashes[i] = crashes
		if p, _, _ := res.counts(); p == 0 {
			r.err = fmt.Errorf("%s, %s: no test passed:\n%s", r.suite.name, mode, tail(res.pkgOutput, 20))
			return
		}
		if wrap {
			r.wrapped = res
		} else {
			r.bare = res
		}
	}
}

// afterCrash returns what cleans up after a test of r's suite panics, or nil.
func afterCrash(ctx context.Context, r *suiteResult, srv servers) func() error {
	if r.suite.afterCrash == "" {
		return nil
	}
	return func() error { return execOn(ctx, r.suite.server, srv, r.suite.afterCrash) }
}

// modeEnv returns the environment of a run of r's suite, bare or wrapped,
// with its own temporary directory (suffix tells reruns apart).
func modeEnv(r *suiteResult, tmp string, srv servers, wrap bool, suffix string) ([]string, error) {
	mode := map[bool]string{false: "bare", true: "wrapped"}[wrap]
	runTmp := filepath.Join(tmp, strings.ReplaceAll(r.suite.name, "/", "_")+"-"+mode+suffix)
	if err := os.MkdirAll(runTmp, 0o755); err != nil {
		return nil, err
	}
	env, err := r.suite.env(srv, runTmp)
	if err != nil {
		return nil, err
	}
	return append(env, "SQLPOOL_COMPAT_WRAP="+map[bool]string{false: "0", true: "1"}[wrap], "TMPDIR="+runTmp), nil
}

// reruns is how many times a difference runs again, alone, before it
// counts.
const reruns = 2

// rerun runs the top-level tests of names (tests that passed bare and
// failed wrapped) wrapped again, alone, up to reruns times, and records in
// r.flaky those that pass. A test that fails on a loaded machine and
// passes alone measured time, not sqlpool: lib/pq's listener tests wait
// 100 ms for an event, TestQueryRowContext allows 50 ms past a deadline.
func rerun(ctx context.Context, r *suiteResult, names []string, dir, tmp string, srv servers, timeout time.Duration) {
	for attempt := 1; attempt <= reruns && len(names) > 0; attempt++ {
		var tops []string
		for _, name := range names {
			top, _, _ := strings.Cut(name, "/")
			if q := "^" + regexp.QuoteMeta(top) + "$"; !slices.Contains(tops, q) {
				tops = append(tops, q)
			}
		}
		env, err := modeEnv(r, tmp, srv, true, fmt.Sprintf("-rerun%d", attempt))
		if err != nil {
			return
		}
		res, _, err := goTest(ctx, dir, env, strings.Join(tops, "|"), r.suite.skip, afterCrash(ctx, r, srv), timeout)
		if err != nil {
			return
		}
		var left []string
		for _, name := range names {
			if res.tests[name] == passed {
				if r.flaky == nil {
					r.flaky = map[string]int{}
				}
				r.flaky[name] = attempt
			} else {
				left = append(left, name)
			}
		}
		names = left
	}
}

// maxCrashes is how many panics a run of a suite may survive.
const maxCrashes = 8

// goTest runs the tests in dir (those run matches, all when it is ""). When
// a test panics, which ends the test binary, it runs the tests that had not
// finished, and returns the merged results and the tests that panicked.
func goTest(ctx context.Context, dir string, env []string, run, skip string, afterCrash func() error, timeout time.Duration) (*runResult, []string, error) {
	var res *runResult
	var crashes []string
	for {
		args := []string{"test", "-json", "-count=1", "-vet=off", "-timeout", timeout.String()}
		if run != "" {
			args = append(args, "-run", run)
		}
		var skips []string
		if skip != "" {
			skips = append(skips, skip)
		}
		if res != nil {
			for _, name := range append(res.finished, crashes...) {
				skips = append(skips, "^"+regexp.QuoteMeta(name)+"$")
			}
		}
		if len(skips) > 0 {
			args = append(args, "-skip", strings.Join(skips, "|"))
		}
		out, _ := goCmd(ctx, dir, env, append(args, ".")...)
		next, err := parseRun(bytes.NewReader(out))
		if err != nil {
			return nil, nil, err
		}
		if res == nil {
			res = next
		} else {
			res.merge(next)
		}
		if next.panicked == "" || len(crashes) == maxCrashes || ctx.Err() != nil {
			return res, crashes, nil
		}
		crashes = append(crashes, next.panicked)
		if afterCrash != nil {
			if err := afterCrash(); err != nil {
				return nil, nil, fmt.Errorf("after %s panicked: %w", next.panicked, err)
			}
		}
	}
}

// goCmd runs the go command in dir with env added, and returns its
// standard output (and standard error, if it fails). Cancelling ctx kills
// the command's whole process group: go test's test binary too.
func goCmd(ctx context.Context, dir string, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"GOWORK=off"}, env...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		stdout.Write(stderr.Bytes())
	}
	return stdout.Bytes(), err
}

func tail(lines []string, n int) string {
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// report prints the table and each difference, and returns errRegressions
// if a difference is not allowed, or the first suite's error.
func report(w io.Writer, results []*suiteResult, allow allowList, verbose bool, took time.Duration) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SUITE\tDRIVER\tMODE\tPASSED\tFAILED\tSKIPPED\tTIME\tPASSED BARE, NOT WRAPPED")
	var failedSuites int
	for _, r := range results {
		switch {
		case r.skipped != "":
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\tnot run: %s\n", r.suite.name, r.suite.driver, r.skipped)
			continue
		case r.err != nil:
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\terror (below)\n", r.suite.name, r.suite.driver)
			failedSuites++
			continue
		}
		regs := slices.DeleteFunc(regressions(r.bare, r.wrapped), func(name string) bool { _, ok := r.flaky[name]; return ok })
		for i, res := range []*runResult{r.bare, r.wrapped} {
			p, f, s := res.counts()
			last := "-"
			if i == 1 {
				last = fmt.Sprint(len(regs))
				if len(regs) > 0 && len(regs) <= 3 {
					last += ": " + strings.Join(regs, ", ")
				}
				if len(r.flaky) > 0 {
					last += fmt.Sprintf(" (+%d flaky, below)", len(r.flaky))
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%.0fs\t%s\n", r.suite.name, r.suite.driver,
				[...]string{"bare", "wrapped"}[i], p, f, s, r.took[i].Seconds(), last)
		}
	}
	fmt.Fprintf(tw, "gorm\t-\t-\t-\t-\t-\t-\tnot run (below)\n")
	tw.Flush()
	fmt.Fprintf(w, "\n%s\ntotal %.0fs\n", gormNote, took.Seconds())

	var unexpected int
	for _, r := range results {
		if r.err != nil {
			fmt.Fprintf(w, "\n%s: %v\n", r.suite.name, r.err)
			continue
		}
		if r.skipped != "" {
			continue
		}
		for i, crashed := range r.crashes {
			for _, name := range crashed {
				fmt.Fprintf(w, "\n%s: %s panicked %s, ending its run; the tests not finished ran again\n", r.suite.name, name, [...]string{"bare", "wrapped"}[i])
			}
		}
		var missing []string
		for _, name := range regressions(r.bare, r.wrapped) {
			if r.wrapped.tests[name] == notRun {
				missing = append(missing, name)
				continue
			}
			status := "NOT ALLOWED"
			if e, ok := allow.allowed(r.suite.name, name); ok {
				status = "allowed: " + e.reason
			} else if n, ok := r.flaky[name]; ok {
				status = fmt.Sprintf("flaky: passed wrapped when run again alone, rerun %d of %d", n, reruns)
			} else {
				unexpected++
			}
			fmt.Fprintf(w, "\n%s %s (%s), wrapped %s:\n", r.suite.name, name, status, r.wrapped.tests[name])
			out := r.wrapped.output[name]
			if !verbose && len(out) > 6 {
				out = append(out[:6:6], "\t…")
			}
			for _, line := range out {
				fmt.Fprintf(w, "\t%s\n", line)
			}
		}
		if len(missing) > 0 {
			// The wrapped run ended early: a panic or a timeout, which the
			// allow-list cannot excuse.
			unexpected++
			fmt.Fprintf(w, "\n%s: %d tests that passed bare did not run wrapped (%s, …); the run ended with:\n\t%s\n",
				r.suite.name, len(missing), missing[0], strings.ReplaceAll(tail(r.wrapped.pkgOutput, 30), "\n", "\n\t"))
		}
	}
	for _, e := range allow {
		for _, r := range results {
			if r.suite.name != e.suite || r.bare == nil || r.wrapped == nil {
				continue
			}
			if !slices.ContainsFunc(regressions(r.bare, r.wrapped), func(name string) bool {
				return name == e.test || strings.HasPrefix(name, e.test+"/")
			}) {
				fmt.Fprintf(w, "\nallow-list: %s %s no longer differs; remove its entry\n", e.suite, e.test)
			}
		}
	}
	if failedSuites > 0 {
		return errSuiteFailed
	}
	if unexpected > 0 {
		return errRegressions
	}
	return nil
}
