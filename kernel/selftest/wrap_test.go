package selftest

import (
	"strings"
	"testing"
)

func TestWrap(t *testing.T) {
	long := "PASS walk.image: " + strings.Repeat("every image page is one frame at three addresses, ", 8) + strings.Repeat("x", 250)
	for _, line := range []string{"", "PASS a: short", long, "FAIL b: " + strings.Repeat("y", 400), strings.Repeat("z ", 120)} {
		got := Wrap(line, Width)
		if len(line) <= Width && (len(got) != 1 || got[0] != line) {
			t.Errorf("Wrap(%q) = %q, want it unchanged", line, got)
			continue
		}
		joined := got[0]
		for i, l := range got {
			if len(l) > Width {
				t.Errorf("line %d of Wrap is %d columns: %q", i, len(l), l)
			}
			if i > 0 {
				if !IsContinuation(l) {
					t.Errorf("line %d %q is not a continuation", i, l)
				}
				joined = Unwrap(joined, l)
			}
		}
		// Words survive, in order; a cut word is split, not lost.
		if strings.ReplaceAll(joined, " ", "") != strings.ReplaceAll(line, " ", "") {
			t.Errorf("Wrap lost text:\n%q\n%q", line, joined)
		}
	}
}

func TestIsContinuation(t *testing.T) {
	for line, want := range map[string]bool{"    more words": true, "     indented more": false, "PASS a: b": false, "    ": false, " [mem 0x0]": false} {
		if got := IsContinuation(line); got != want {
			t.Errorf("IsContinuation(%q) = %v", line, got)
		}
	}
}
