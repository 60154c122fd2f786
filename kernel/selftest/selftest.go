package selftest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// HoldLine is printed by a kernel that stays halted after its report.
const HoldLine = "physmap: holding"

// Lines around a sleep the kernel makes for the host to time
// (physmap.sleep=N): "clock: sleeping 2s", then "clock: slept 2.0001s by
// the guest clock". The duration after SleepingPrefix is in
// time.Duration's format.
const (
	SleepingPrefix = "clock: sleeping "
	SleptPrefix    = "clock: slept "
)

// PhasePrefix starts a line that marks the end of one phase of the boot
// with the guest's time since the TSC started (about QEMU's start):
// "phase: NAME ended at MILLISECONDS ms", to six decimals.
const PhasePrefix = "phase: "

// Phase is one phase line.
type Phase struct {
	Name string
	At   time.Duration
}

// String renders p as its console line: "phase: regions ended at
// 352.311540 ms" (guest time, to the nanosecond).
func (p Phase) String() string {
	ns := p.At.Nanoseconds()
	return fmt.Sprintf("%s%s ended at %d.%06d ms", PhasePrefix, p.Name, ns/1e6, ns%1e6)
}

// ParsePhase parses a phase line.
func ParsePhase(line string) (Phase, error) {
	rest, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), PhasePrefix)
	if !ok {
		return Phase{}, ErrNotProtocol
	}
	bad := fmt.Errorf("%w: malformed phase line %q", ErrNotProtocol, line)
	name, at, ok := strings.Cut(rest, " ended at ")
	ms, ok2 := strings.CutSuffix(at, " ms")
	whole, frac, ok3 := strings.Cut(ms, ".")
	if !ok || !ok2 || !ok3 || len(frac) != 6 || !ValidCheckName(name) {
		return Phase{}, bad
	}
	w, err1 := strconv.ParseInt(whole, 10, 64)
	f, err2 := strconv.ParseInt(frac, 10, 64)
	if err1 != nil || err2 != nil || w < 0 || f < 0 || strconv.FormatInt(w, 10) != whole {
		return Phase{}, bad
	}
	return Phase{Name: name, At: time.Duration(w*1e6 + f)}, nil
}

// closingPrefix starts the closing line.
const closingPrefix = "selftest: "

// Verdict is the outcome of one check.
type Verdict bool

// The two verdicts.
const (
	Fail Verdict = false
	Pass Verdict = true
)

func (v Verdict) String() string {
	if v {
		return "PASS"
	}
	return "FAIL"
}

// Result is one check's line.
type Result struct {
	Verdict Verdict
	Check   string
	Detail  string
}

// String renders r as one console line, without the newline.
func (r Result) String() string {
	return fmt.Sprintf("%s %s: %s", r.Verdict, r.Check, r.Detail)
}

// Summary is the closing line's content: the checks that passed and
// failed, and how many the boot's manifest lists.
type Summary struct {
	Passed, Failed, Manifest int
}

// String renders s as the closing line, without the newline:
// "selftest: 36 passed, 0 failed, manifest 36".
func (s Summary) String() string {
	return fmt.Sprintf("%s%d passed, %d failed, manifest %d", closingPrefix, s.Passed, s.Failed, s.Manifest)
}

// OK reports whether the summary is a pass: no check failed and at least
// as many passed as the manifest lists (at least one). Whether the right
// checks passed is for the manifest to say (Missing).
func (s Summary) OK() bool { return s.Passed > 0 && s.Failed == 0 && s.Passed >= s.Manifest }

// ErrNotProtocol is returned for a line that is not part of the protocol.
var ErrNotProtocol = errors.New("not a self-test line")

// ValidCheckName reports whether name can be used as a check name.
func ValidCheckName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '_', c == '-', c == '/':
		default:
			return false
		}
	}
	return true
}

// ParseResult parses a PASS or FAIL line. Trailing carriage returns and
// newlines are ignored.
func ParseResult(line string) (Result, error) {
	line = strings.TrimRight(line, "\r\n")
	var r Result
	switch {
	case strings.HasPrefix(line, "PASS "):
		r.Verdict = Pass
	case strings.HasPrefix(line, "FAIL "):
		r.Verdict = Fail
	default:
		return Result{}, ErrNotProtocol
	}
	name, detail, ok := strings.Cut(line[len("PASS "):], ":")
	if !ok || !ValidCheckName(name) {
		return Result{}, fmt.Errorf("%w: malformed check line %q", ErrNotProtocol, line)
	}
	r.Check = name
	r.Detail = strings.TrimPrefix(detail, " ")
	return r, nil
}

// ParseSummary parses the closing line.
func ParseSummary(line string) (Summary, error) {
	line = strings.TrimRight(line, "\r\n")
	rest, ok := strings.CutPrefix(line, closingPrefix)
	if !ok {
		return Summary{}, ErrNotProtocol
	}
	var s Summary
	p, rest, ok := strings.Cut(rest, " passed, ")
	f, m, ok2 := strings.Cut(rest, " failed, manifest ")
	if !ok || !ok2 {
		return Summary{}, fmt.Errorf("%w: malformed closing line %q", ErrNotProtocol, line)
	}
	for _, c := range []struct {
		what string
		s    string
		n    *int
	}{{"pass", p, &s.Passed}, {"fail", f, &s.Failed}, {"manifest", m, &s.Manifest}} {
		v, err := strconv.Atoi(c.s)
		if err != nil || v < 0 || strconv.Itoa(v) != c.s {
			return Summary{}, fmt.Errorf("%w: malformed %s count in %q", ErrNotProtocol, c.what, line)
		}
		*c.n = v
	}
	return s, nil
}

// Tally collects results and produces the summary.
type Tally struct {
	Results []Result
}

// Add records r.
func (t *Tally) Add(r Result) { t.Results = append(t.Results, r) }

// Summary counts the recorded results; Manifest is left for the caller.
func (t *Tally) Summary() Summary {
	var s Summary
	for _, r := range t.Results {
		if r.Verdict {
			s.Passed++
		} else {
			s.Failed++
		}
	}
	return s
}

// Failed returns the recorded failures, in order.
func (t *Tally) Failed() []Result {
	var out []Result
	for _, r := range t.Results {
		if !r.Verdict {
			out = append(out, r)
		}
	}
	return out
}
