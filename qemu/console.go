package qemu

import (
	"fmt"
	"strings"
	"time"

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
	// Config is the boot's configuration from its config line, valid
	// when HaveConfig is set; it decides the boot's manifest.
	Config     selftest.Config
	HaveConfig bool
	// Early is the early boot's line (selftest.EarlyPrefix ...), if the
	// kernel printed one before the closing line.
	Early string
	// Lines counts the console lines seen, the last unfinished one included.
	Lines int
	// Sleep is the guest sleep announced by a "clock: sleeping" line, and
	// HostSleep how long the host saw between that line and "clock: slept";
	// zero until both lines arrived.
	Sleep, HostSleep time.Duration
	// Now reads the host clock; nil means time.Now.
	Now        func() time.Time
	sleepStart time.Time
	tail       []string
	// inResult is set while the lines continue a check line the kernel
	// wrapped (selftest.Wrap).
	inResult bool
}

// ClockTolerance is how far, as a fraction, the host's measure of a guest
// sleep may be from the sleep asked for.
const ClockTolerance = 0.10

func (c *Console) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// feedClock times the kernel's physmap.sleep lines with the host clock.
func (c *Console) feedClock(line string) {
	if d, ok := strings.CutPrefix(line, selftest.SleepingPrefix); ok {
		if dur, err := time.ParseDuration(d); err == nil {
			c.Sleep, c.sleepStart = dur, c.now()
		}
	} else if strings.HasPrefix(line, selftest.SleptPrefix) && !c.sleepStart.IsZero() {
		c.HostSleep = c.now().Sub(c.sleepStart)
	}
}

// ClockError compares a timed guest sleep with the host's measure of it: nil
// when there was none or they agree within ClockTolerance.
func (c *Console) ClockError() error {
	if c.Sleep == 0 {
		return nil
	}
	if c.HostSleep == 0 {
		return &Error{Op: "clock", Err: ErrClock, Detail: fmt.Sprintf("the guest announced a %v sleep but never said it ended", c.Sleep), Tail: c.Tail()}
	}
	off := float64(c.HostSleep-c.Sleep) / float64(c.Sleep)
	if off < -ClockTolerance || off > ClockTolerance {
		return &Error{Op: "clock", Err: ErrClock, Detail: fmt.Sprintf("a %v guest sleep took %v of host time (%+.1f%%, more than %.0f%%)",
			c.Sleep, c.HostSleep.Round(time.Millisecond), off*100, ClockTolerance*100), Tail: c.Tail()}
	}
	return nil
}

// Feed records one console line (without its newline; a trailing carriage
// return is ignored) and says what it was.
func (c *Console) Feed(line string) LineKind {
	line = strings.TrimRight(line, "\r\n")
	c.Lines++
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
	c.feedClock(line)
	if strings.HasPrefix(line, selftest.EarlyPrefix) && c.Early == "" {
		c.Early = line
	}
	if c.inResult && selftest.IsContinuation(line) {
		last := &c.Tally.Results[len(c.Tally.Results)-1]
		last.Detail = selftest.Unwrap(last.Detail, line)
		return LineResult
	}
	c.inResult = false
	if r, err := selftest.ParseResult(line); err == nil {
		c.Tally.Add(r)
		c.inResult = true
		return LineResult
	}
	if cfg, err := selftest.ParseConfig(line); err == nil && !c.HaveConfig {
		c.Config, c.HaveConfig = cfg, true
		return LineOther
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

// FailLines returns the FAIL lines, in console order, each cut to
// detailWidth columns.
func (c *Console) FailLines() []string {
	var out []string
	for _, r := range c.Tally.Failed() {
		out = append(out, cut(r.String(), detailWidth))
	}
	return out
}

// Judge decides the self-test's verdict from the console alone: a closing
// line that agrees with the check lines, then the checks held to the
// boot's manifest (from its config line) and to e. Judge returns nil on
// success.
func (c *Console) Judge(e Expect) error {
	verdict := func(err error, format string, args ...any) error {
		return &Error{Op: "verdict", Err: err, Detail: fmt.Sprintf(format, args...), Tail: c.failLines(), Failed: c.FailLines()}
	}
	if !c.Closed {
		return verdict(ErrNoClosingLine, "no %q line on the console", "selftest: N passed, M failed, manifest K")
	}
	if got := c.Tally.Summary(); got.Passed != c.Summary.Passed || got.Failed != c.Summary.Failed {
		return verdict(ErrCountMismatch, "closing line says %d passed, %d failed; the console showed %d PASS and %d FAIL lines",
			c.Summary.Passed, c.Summary.Failed, got.Passed, got.Failed)
	}
	if c.HaveConfig {
		if n := len(selftest.Manifest(c.Config)); n != c.Summary.Manifest {
			return verdict(ErrManifest, "closing line says the manifest has %d checks; for %s it has %d",
				c.Summary.Manifest, strings.TrimPrefix(c.Config.String(), selftest.ConfigPrefix), n)
		}
	}
	if c.Summary.Passed+c.Summary.Failed == 0 {
		return verdict(ErrNoChecks, "%s", c.Summary)
	}
	failed := c.failedNames()
	if e.passing() && c.Summary.Failed > 0 {
		return verdict(ErrSelfTestFailed, "%d failed: %s", c.Summary.Failed, strings.Join(failed, ", "))
	}
	if !e.passing() && c.Summary.Failed == 0 {
		return verdict(ErrUnexpectedPass, "expected %s, but %d checks passed and none failed", e, c.Summary.Passed)
	}
	if err := c.judgeManifest(e); err != nil {
		return err
	}
	if e.passing() {
		return c.ClockError()
	}
	return nil
}

// ExpectedStatus is the QEMU exit status the kernel should leave with after
// a closing line with summary s.
func ExpectedStatus(s selftest.Summary) int {
	if s.OK() {
		return StatusPass
	}
	return StatusFail
}
