package qemu

import (
	"fmt"
	"strings"

	"github.com/physmap/physmap/kernel/selftest"
)

// TailLines is how many console lines errors quote.
const TailLines = 20

// LineKind says what a console line meant to the protocol.
type LineKind int

// Kinds of console lines.
const (
	LineOther   LineKind = iota // not part of the protocol (boot log, ...)
	LineResult                  // a PASS or FAIL line
	LineClosing                 // the closing line
	LineHold                    // selftest.HoldLine
)

// Console follows one boot's serial console through package selftest.
// The zero value is ready to use.
type Console struct {
	// Tally holds the PASS and FAIL lines seen before the closing line.
	Tally selftest.Tally
	// Summary is the closing line, valid when Closed is set.
	Summary selftest.Summary
	// Closed is set once the closing line has been seen.
	Closed bool
	// Holding is set once selftest.HoldLine has been seen after the closing
	// line.
	Holding bool
	tail    []string
}

// Feed records one console line (without its newline; a trailing carriage
// return is ignored) and says what it was.
func (c *Console) Feed(line string) LineKind {
	line = strings.TrimRight(line, "\r\n")
	c.tail = append(c.tail, line)
	if len(c.tail) > TailLines {
		c.tail = c.tail[len(c.tail)-TailLines:]
	}
	if c.Closed {
		if line == selftest.HoldLine {
			c.Holding = true
			return LineHold
		}
		return LineOther
	}
	if r, err := selftest.ParseResult(line); err == nil {
		c.Tally.Add(r)
		return LineResult
	}
	if s, err := selftest.ParseSummary(line); err == nil {
		c.Summary, c.Closed = s, true
		return LineClosing
	}
	// Anything else, including a line that only looks like a check line, is
	// boot log; a lost check line shows up as ErrCountMismatch.
	return LineOther
}

// Tail returns the last TailLines console lines, oldest first.
func (c *Console) Tail() []string { return append([]string(nil), c.tail...) }

// failedNames lists the failed checks.
func (c *Console) failedNames() []string {
	var names []string
	for _, r := range c.Tally.Failed() {
		names = append(names, r.Check)
	}
	return names
}

// Judge decides the self-test's verdict from the console alone. With
// expectFail empty the run must pass: a closing line with at least one check
// and no failure. With expectFail set the run must fail and a FAIL line must
// name exactly that check. Judge returns nil on success.
func (c *Console) Judge(expectFail string) error {
	verdict := func(err error, format string, args ...any) error {
		return &Error{Op: "verdict", Err: err, Detail: fmt.Sprintf(format, args...), Tail: c.Tail()}
	}
	if !c.Closed {
		return verdict(ErrNoClosingLine, "no %q line on the console", "selftest: N passed, M failed")
	}
	if got := c.Tally.Summary(); got != c.Summary {
		return verdict(ErrCountMismatch, "closing line says %d passed, %d failed; the console showed %d PASS and %d FAIL lines",
			c.Summary.Passed, c.Summary.Failed, got.Passed, got.Failed)
	}
	if c.Summary.Passed+c.Summary.Failed == 0 {
		return verdict(ErrNoChecks, "%s", c.Summary)
	}
	failed := c.failedNames()
	if expectFail == "" {
		if !c.Summary.OK() {
			return verdict(ErrSelfTestFailed, "%d failed: %s", c.Summary.Failed, strings.Join(failed, ", "))
		}
		return nil
	}
	if c.Summary.Failed == 0 {
		return verdict(ErrUnexpectedPass, "expected FAIL %s, but %d checks passed and none failed", expectFail, c.Summary.Passed)
	}
	for _, name := range failed {
		if name == expectFail {
			return nil
		}
	}
	return verdict(ErrWrongFailure, "expected FAIL %s, got FAIL %s", expectFail, strings.Join(failed, ", "))
}

// ExpectedStatus is the QEMU exit status the kernel should leave with after
// a closing line with summary s.
func ExpectedStatus(s selftest.Summary) int {
	if s.OK() {
		return StatusPass
	}
	return StatusFail
}
