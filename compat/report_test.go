package main

import (
	"slices"
	"strings"
	"testing"
)

// events builds go test -json output from "Action Test [Output]" lines.
func events(lines ...string) string {
	var b strings.Builder
	for _, l := range lines {
		f := strings.SplitN(l, " ", 3)
		b.WriteString(`{"Action":"` + f[0] + `"`)
		if len(f) > 1 && f[1] != "-" {
			b.WriteString(`,"Test":"` + f[1] + `"`)
		}
		if len(f) > 2 {
			b.WriteString(`,"Output":"` + f[2] + `\n"`)
		}
		b.WriteString("}\n")
	}
	return b.String()
}

func mustParse(t *testing.T, text string) *runResult {
	t.Helper()
	res, err := parseRun(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestParseRunCountsOutcomesAndTreatsUnfinishedTestsAsFailed(t *testing.T) {
	res := mustParse(t, events(
		"run TestA", "output TestA --- PASS: TestA", "pass TestA",
		"run TestB", "run TestB/x", "output TestB/x oops", "output TestB/x --- FAIL: TestB/x", "fail TestB/x",
		"output TestB --- FAIL: TestB", "fail TestB",
		"run TestC", "output TestC --- SKIP: TestC", "skip TestC",
		"run TestD", "output TestD panic: boom",
		"output - FAIL\\tpkg",
	)+"not json\n")
	if p, f, s := res.counts(); p != 1 || f != 3 || s != 1 {
		t.Errorf("counts = %d passed, %d failed, %d skipped; want 1, 3, 1", p, f, s)
	}
	if res.panicked != "TestD" {
		t.Errorf("panicked = %q, want TestD", res.panicked)
	}
	if want := []string{"TestA", "TestB", "TestC"}; !slices.Equal(res.finished, want) {
		t.Errorf("finished = %q, want %q", res.finished, want)
	}
	if !slices.Contains(res.output["TestB/x"], "oops") {
		t.Errorf("TestB/x output = %q, want it to hold oops", res.output["TestB/x"])
	}
	if !slices.Equal(res.pkgOutput, []string{"FAIL\tpkg", "not json"}) {
		t.Errorf("pkgOutput = %q", res.pkgOutput)
	}
}

func TestAPausedTestFailedByACrashIsNotFinished(t *testing.T) {
	res := mustParse(t, events("run TestP", "fail TestP"))
	if len(res.finished) != 0 {
		t.Errorf("finished = %q, want none: TestP printed no result line", res.finished)
	}
}

func TestMergeReplacesTheUnfinishedTests(t *testing.T) {
	res := mustParse(t, events("run TestA", "output TestA --- PASS: TestA", "pass TestA", "run TestP", "run TestX", "output TestX panic: boom"))
	res.merge(mustParse(t, events("run TestP", "output TestP --- PASS: TestP", "pass TestP")))
	if res.tests["TestP"] != passed || res.tests["TestA"] != passed || res.tests["TestX"] != failed {
		t.Errorf("tests = %v, want TestA and TestP passed, TestX failed", res.tests)
	}
	if res.panicked != "" {
		t.Errorf("panicked = %q after a run without panic, want none", res.panicked)
	}
}

func TestRegressionsNameTheDeepestDifference(t *testing.T) {
	bare := &runResult{tests: map[string]outcome{
		"TestA": passed, "TestA/x": passed, "TestA/y": passed,
		"TestB": passed, "TestB/x": passed,
		"TestC": passed, "TestD": failed, "TestE": passed, "TestF": passed,
	}}
	wrapped := &runResult{tests: map[string]outcome{
		"TestA": failed, "TestA/x": passed, "TestA/y": failed,
		"TestB": failed, // TestB/x never ran: TestB stopped before it
		"TestC": skipped, "TestD": failed, "TestE": passed,
		// TestF did not run at all.
	}}
	want := []string{"TestA/y", "TestB", "TestC", "TestF"}
	if got := regressions(bare, wrapped); !slices.Equal(got, want) {
		t.Errorf("regressions = %q, want %q", got, want)
	}
}

func TestAllowListCoversSubtestsAndNeedsAReason(t *testing.T) {
	list, err := parseAllowList("# comment\n\nmysql TestPing Raw gives sqlpool's conn\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		suite, test string
		want        bool
	}{
		{"mysql", "TestPing", true},
		{"mysql", "TestPing/default#01", true},
		{"mysql", "TestPingContext", false},
		{"pq", "TestPing", false},
	} {
		if _, ok := list.allowed(c.suite, c.test); ok != c.want {
			t.Errorf("allowed(%s, %s) = %v, want %v", c.suite, c.test, ok, c.want)
		}
	}
	if e, _ := list.allowed("mysql", "TestPing"); e.reason != "Raw gives sqlpool's conn" {
		t.Errorf("reason = %q", e.reason)
	}
	if _, err := parseAllowList("mysql TestPing\n"); err == nil {
		t.Error("an entry without a reason was accepted")
	}
}

func TestTheBuiltInAllowListParses(t *testing.T) {
	list, err := parseAllowList(defaultAllowList)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range list {
		if !slices.ContainsFunc(suites, func(s suite) bool { return s.name == e.suite }) {
			t.Errorf("allow-list entry %s %s: no such suite", e.suite, e.test)
		}
	}
}

func TestAFlakyDifferenceIsReportedAndDoesNotFail(t *testing.T) {
	r := &suiteResult{
		suite:   suite{name: "pq", driver: "lib/pq"},
		bare:    &runResult{tests: map[string]outcome{"TestSlow": passed, "TestBroken": passed}},
		wrapped: &runResult{tests: map[string]outcome{"TestSlow": failed, "TestBroken": failed}},
	}
	var out strings.Builder
	if err := report(&out, []*suiteResult{r}, nil, false, 0); err != errRegressions {
		t.Fatalf("report with one real difference = %v, want errRegressions", err)
	}
	r.flaky = map[string]int{"TestSlow": 1}
	out.Reset()
	if err := report(&out, []*suiteResult{r}, nil, false, 0); err != errRegressions {
		t.Fatalf("report with a real and a flaky difference = %v, want errRegressions", err)
	}
	if !strings.Contains(out.String(), "TestSlow (flaky: passed wrapped when run again alone, rerun 1 of 2)") {
		t.Errorf("the report does not name the flaky test:\n%s", out.String())
	}
	r.flaky["TestBroken"] = 2
	out.Reset()
	if err := report(&out, []*suiteResult{r}, nil, false, 0); err != nil {
		t.Fatalf("report with flaky differences only = %v, want nil:\n%s", err, out.String())
	}
}
