package selftest

import (
	"errors"
	"testing"
)

func TestResultRoundTrip(t *testing.T) {
	for _, r := range []Result{
		{Pass, "cpu.nx", "CPUID 0x80000001 EDX bit 20 set"},
		{Fail, "option", `unknown option "physmap.bogus=1"`},
		{Pass, "e820.sorted", ""},
		{Fail, "alias/kernel-text", "va 0xffffffff80001000: pa 0x1000 != 0x2000"},
	} {
		got, err := ParseResult(r.String() + "\r\n")
		if err != nil {
			t.Fatalf("ParseResult(%q): %v", r.String(), err)
		}
		if got != r {
			t.Errorf("round trip of %q = %+v, want %+v", r.String(), got, r)
		}
	}
}

func TestParseResultRejects(t *testing.T) {
	for _, line := range []string{
		"", "PASS", "PASS :x", "PASS two words: x", "pass x: y", "FAIL x y",
		"selftest: 1 passed, 0 failed", "BIOS-e820: [mem 0x0-0x1] usable",
	} {
		if _, err := ParseResult(line); !errors.Is(err, ErrNotProtocol) {
			t.Errorf("ParseResult(%q) err = %v, want ErrNotProtocol", line, err)
		}
	}
}

func TestSummary(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Summary
		ok   bool
	}{
		{"selftest: 12 passed, 0 failed, manifest 12", Summary{12, 0, 12}, true},
		{"selftest: 11 passed, 1 failed, manifest 12\r", Summary{11, 1, 12}, false},
		{"selftest: 0 passed, 0 failed, manifest 0", Summary{0, 0, 0}, false},
		{"selftest: 11 passed, 0 failed, manifest 12", Summary{11, 0, 12}, false},
		{"selftest: 13 passed, 0 failed, manifest 12", Summary{13, 0, 12}, true},
	} {
		got, err := ParseSummary(tc.line)
		if err != nil {
			t.Fatalf("ParseSummary(%q): %v", tc.line, err)
		}
		if got != tc.want || got.OK() != tc.ok {
			t.Errorf("ParseSummary(%q) = %+v ok=%v, want %+v ok=%v", tc.line, got, got.OK(), tc.want, tc.ok)
		}
		if tc.line[len(tc.line)-1] != '\r' && got.String() != tc.line {
			t.Errorf("String() = %q, want %q", got.String(), tc.line)
		}
	}
	for _, line := range []string{"selftest: x passed, 0 failed, manifest 1", "selftest: 1 passed", "selftest: -1 passed, 0 failed, manifest 0",
		"selftest 1 passed, 0 failed, manifest 1", "selftest: 1 passed, 0 failed", "selftest: 1 passed, 0 failed, manifest +1", "selftest: 1 passed, 0 failed, manifest 01"} {
		if _, err := ParseSummary(line); !errors.Is(err, ErrNotProtocol) {
			t.Errorf("ParseSummary(%q) err = %v, want ErrNotProtocol", line, err)
		}
	}
}

func TestTally(t *testing.T) {
	var tl Tally
	tl.Add(Result{Pass, "a", ""})
	tl.Add(Result{Fail, "b", "broken"})
	tl.Add(Result{Pass, "c", ""})
	if s := tl.Summary(); s != (Summary{Passed: 2, Failed: 1}) {
		t.Errorf("Summary() = %+v, want {2 1}", s)
	}
	if f := tl.Failed(); len(f) != 1 || f[0].Check != "b" {
		t.Errorf("Failed() = %+v, want [b]", f)
	}
}

func TestPhase(t *testing.T) {
	p := Phase{Name: "directmap", At: 123456789}
	got, err := ParsePhase(p.String() + "\r\n")
	if err != nil || got != p {
		t.Fatalf("ParsePhase(%q) = %+v, %v", p.String(), got, err)
	}
	if got := p.String(); got != "phase: directmap ended at 123.456789 ms" {
		t.Errorf("String() = %q", got)
	}
	for _, bad := range []string{"phase: x", "phase: x ended at -1.000000 ms", "phase: two words ended at 5.000000 ms", "phase:x ended at 5.000000 ms",
		"phase: x ended at 5.0 ms", "phase: x ended at 5 ms", "phase: x 5", "PASS a: b"} {
		if _, err := ParsePhase(bad); !errors.Is(err, ErrNotProtocol) {
			t.Errorf("ParsePhase(%q) err = %v, want ErrNotProtocol", bad, err)
		}
	}
}
