package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// outcome is what became of one test in one run.
type outcome uint8

const (
	notRun outcome = iota // no event for the test: the run ended before it
	passed
	failed // failed, or started and never finished (a panic, a timeout)
	skipped
)

func (o outcome) String() string {
	return [...]string{"not run", "passed", "failed", "skipped"}[o]
}

// runResult is the parsed `go test -json` output of one run of a suite.
type runResult struct {
	tests  map[string]outcome  // every test and subtest that started
	output map[string][]string // each test's output, "=== RUN" lines left out
	// pkgOutput is the output that belongs to no test: build errors, the
	// final FAIL line, what a panic printed after its test's line.
	pkgOutput []string
	// finished lists the top-level tests that passed, failed or were
	// skipped; a parallel test paused when a panic ended the run is not
	// among them.
	finished []string
	// panicked is the test whose output has a panic, which ended the run
	// (a timeout panics too).
	panicked string
}

// testEvent is the part of a test2json event the harness reads.
type testEvent struct {
	Action string
	Test   string
	Output string
}

// parseRun reads `go test -json` output. Lines that are not JSON (what the
// go command prints itself) go to pkgOutput.
func parseRun(r io.Reader) (*runResult, error) {
	res := &runResult{tests: map[string]outcome{}, output: map[string][]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		var ev testEvent
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil {
			res.pkgOutput = append(res.pkgOutput, string(line))
			continue
		}
		if ev.Test == "" {
			if ev.Action == "output" || ev.Action == "build-output" {
				res.pkgOutput = append(res.pkgOutput, strings.TrimRight(ev.Output, "\n"))
			}
			continue
		}
		switch ev.Action {
		case "run":
			res.tests[ev.Test] = failed // until it says otherwise
		case "pass", "fail", "skip":
			res.tests[ev.Test] = map[string]outcome{"pass": passed, "fail": failed, "skip": skipped}[ev.Action]
			// test2json also fails the tests a crash left paused; only
			// those that printed their "--- " line finished.
			if !strings.Contains(ev.Test, "/") && slices.ContainsFunc(res.output[ev.Test], isResultLine) {
				res.finished = append(res.finished, ev.Test)
			}
		case "output":
			out := strings.TrimRight(ev.Output, "\n")
			if strings.HasPrefix(out, "panic: ") && res.panicked == "" {
				res.panicked = ev.Test
			}
			if !strings.HasPrefix(strings.TrimSpace(out), "=== ") {
				res.output[ev.Test] = append(res.output[ev.Test], out)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading go test -json output: %w", err)
	}
	return res, nil
}

// isResultLine reports whether line is a test's "--- PASS" (FAIL, SKIP).
func isResultLine(line string) bool {
	return strings.HasPrefix(strings.TrimSpace(line), "--- ")
}

// merge adds the outcomes of next, a run of the tests that r did not
// finish, to r.
func (r *runResult) merge(next *runResult) {
	for name, o := range next.tests {
		r.tests[name] = o
	}
	for name, out := range next.output {
		r.output[name] = out
	}
	r.pkgOutput = append(r.pkgOutput, next.pkgOutput...)
	r.finished = append(r.finished, next.finished...)
	r.panicked = next.panicked
}

// counts returns how many tests (subtests included) passed, failed and
// were skipped.
func (r *runResult) counts() (pass, fail, skip int) {
	for _, o := range r.tests {
		switch o {
		case passed:
			pass++
		case failed:
			fail++
		case skipped:
			skip++
		}
	}
	return pass, fail, skip
}

// regressions returns, sorted, the tests that passed bare and did not pass
// wrapped. A parent is left out when one of its subtests is listed: the
// subtest names the difference. A subtest that did not run wrapped while
// its parent did is left out too: its parent stopped early and is listed.
func regressions(bare, wrapped *runResult) []string {
	var names []string
	for name, o := range bare.tests {
		if o != passed || wrapped.tests[name] == passed {
			continue
		}
		if parent, _, ok := cutLast(name); ok && wrapped.tests[name] == notRun && wrapped.tests[parent] != notRun {
			continue
		}
		names = append(names, name)
	}
	slices.Sort(names)
	// Sorted, a test's subtests follow it directly.
	var out []string
	for i, name := range names {
		if i+1 < len(names) && strings.HasPrefix(names[i+1], name+"/") {
			continue
		}
		out = append(out, name)
	}
	return out
}

// cutLast splits a subtest's name into its parent's and its own.
func cutLast(name string) (parent, sub string, ok bool) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return "", name, false
	}
	return name[:i], name[i+1:], true
}

// allowEntry is one known difference between bare and wrapped runs.
type allowEntry struct {
	suite, test, reason string
}

// allowList is the list of known differences, read from allowlist.txt.
type allowList []allowEntry

// parseAllowList reads lines of the form "suite test reason…"; blank lines
// and lines starting with # are ignored. Every entry must give a reason.
func parseAllowList(text string) (allowList, error) {
	var list allowList
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			return nil, fmt.Errorf("allow-list line %d: want \"suite test reason\", got %q; add the reason the difference is expected", i+1, line)
		}
		list = append(list, allowEntry{suite: f[0], test: f[1], reason: strings.Join(f[2:], " ")})
	}
	return list, nil
}

// allowed returns the entry that covers test of suite: one naming the test
// itself or one of its parents.
func (l allowList) allowed(suite, test string) (allowEntry, bool) {
	for _, e := range l {
		if e.suite == suite && (e.test == test || strings.HasPrefix(test, e.test+"/")) {
			return e, true
		}
	}
	return allowEntry{}, false
}
