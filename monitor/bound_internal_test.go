package monitor

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCSVSafePrefixesEveryFormulaLead(t *testing.T) {
	for _, cell := range []string{
		"=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "\n=1", "\x00=1", "\x00", "\x1b=1",
		"  =1", " \t@x", "＝1+1", "＋1", "－1", "＠x",
	} {
		if got := csvSafe(cell); got != "'"+cell {
			t.Errorf("csvSafe(%q) = %q, want it prefixed with a quote", cell, got)
		}
	}
	for _, cell := range []string{"", "acme", "a=b", "a-b", " acme", "'=1", "t-1", "é=1"} {
		if got := csvSafe(cell); got != cell {
			t.Errorf("csvSafe(%q) = %q, want it as it is", cell, got)
		}
	}
}

func TestSafeNameReplacesWhatCannotBeShownAndCutsLongNames(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	for _, c := range []struct{ in, want string }{
		{"acme", "acme"},
		{"tenant 42/é", "tenant 42/é"},
		{"<script>", "<script>"},
		{"bad\xff", "bad\uFFFD"},
		{"bad\xff\xfe", "bad\uFFFD\uFFFD"},
		{"nul\x00", "nul\uFFFD"},
		{"a\nb\tc\x7f", "a\uFFFDb\uFFFDc\uFFFD"},
		{"bidi\u202eexe", "bidi\uFFFDexe"},
		{"\u0085c1", "\uFFFDc1"},
	} {
		if got := safeName(c.in); got != c.want {
			t.Errorf("safeName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	got := safeName(long)
	if len(got) > MaxNameLength || !utf8.ValidString(got) || !strings.HasPrefix(got, "éé") || !strings.Contains(got, "…") {
		t.Errorf("safeName of 400 bytes = %q (%d bytes), want at most %d, cut and marked", got, len(got), MaxNameLength)
	}
	if safeName(long+"x") == got {
		t.Error("two long names that differ at the end were made equal")
	}
	if allocs := testing.AllocsPerRun(100, func() { safeName("tenant-42") }); allocs != 0 {
		t.Errorf("a safe name: %v allocations, want 0", allocs)
	}
}
