package qemu

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/physmap/physmap/kernel/selftest"
)

func feed(lines ...string) *Console {
	c := new(Console)
	for _, l := range lines {
		c.Feed(l)
	}
	return c
}

func TestJudge(t *testing.T) {
	boot := "physmap: booting"
	for _, tc := range []struct {
		name       string
		lines      []string
		expectFail string
		want       error
	}{
		{"pass", []string{boot, "PASS a: x", "PASS b: y\r", "selftest: 2 passed, 0 failed\r"}, "", nil},
		{"fail", []string{"PASS a: x", "FAIL b: y", "selftest: 1 passed, 1 failed"}, "", ErrSelfTestFailed},
		{"zero checks", []string{boot, "selftest: 0 passed, 0 failed"}, "", ErrNoChecks},
		{"no closing line", []string{boot, "PASS a: x"}, "", ErrNoClosingLine},
		{"empty console", nil, "", ErrNoClosingLine},
		{"lost check line", []string{"PASS a: x", "selftest: 2 passed, 0 failed"}, "", ErrCountMismatch},
		{"checks after closing ignored", []string{"PASS a: x", "selftest: 1 passed, 0 failed", "FAIL late: x"}, "", nil},
		{"expect fail matches", []string{"PASS a: x", `FAIL option: unknown option "physmap.bogus=1"`, "selftest: 1 passed, 1 failed"}, "option", nil},
		{"expect fail among others", []string{"FAIL x: 1", "FAIL option: y", "selftest: 0 passed, 2 failed"}, "option", nil},
		{"expect fail wrong check", []string{"PASS a: x", "FAIL options: y", "selftest: 1 passed, 1 failed"}, "option", ErrWrongFailure},
		{"expect fail but passed", []string{"PASS option: x", "selftest: 1 passed, 0 failed"}, "option", ErrUnexpectedPass},
		{"expect fail no closing", []string{"FAIL option: x"}, "option", ErrNoClosingLine},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := feed(tc.lines...)
			err := c.Judge(tc.expectFail)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Judge(%q) = %v, want %v", tc.expectFail, err, tc.want)
			}
			if err != nil {
				var he *Error
				if !errors.As(err, &he) || len(he.Tail) != len(tc.lines) {
					t.Errorf("error %v does not carry the console tail", err)
				}
			}
		})
	}
}

func TestJudgeNamesFailures(t *testing.T) {
	err := feed("FAIL mm.check: W+X leaf", "FAIL cpu.nx: off", "selftest: 0 passed, 2 failed").Judge("")
	if err == nil || !strings.Contains(err.Error(), "mm.check, cpu.nx") {
		t.Errorf("Judge error %v does not name the failed checks", err)
	}
}

func TestFeedKinds(t *testing.T) {
	var c Console
	for _, tc := range []struct {
		line string
		want LineKind
	}{
		{selftest.HoldLine, LineOther}, // before the closing line it is just log
		{"PASS a: x", LineResult},
		{"BIOS-e820: [mem 0x0-0x9fbff] usable", LineOther},
		{"selftest: 1 passed, 0 failed", LineClosing},
		{"selftest: 1 passed, 0 failed", LineOther},
		{selftest.HoldLine + "\r", LineHold},
	} {
		if got := c.Feed(tc.line); got != tc.want {
			t.Errorf("Feed(%q) = %v, want %v", tc.line, got, tc.want)
		}
	}
	if !c.Holding || !c.Closed || c.Summary != (selftest.Summary{Passed: 1}) {
		t.Errorf("console state %+v", c)
	}
}

func TestTail(t *testing.T) {
	var c Console
	for i := range TailLines + 5 {
		c.Feed(fmt.Sprintf("line %d", i))
	}
	tail := c.Tail()
	if len(tail) != TailLines || tail[0] != "line 5" || tail[TailLines-1] != fmt.Sprintf("line %d", TailLines+4) {
		t.Errorf("Tail() = %q", tail)
	}
}

func TestClockAgainstHost(t *testing.T) {
	for _, tc := range []struct {
		name string
		host time.Duration // host time between the two clock lines
		want error
	}{
		{"agrees", 2*time.Second + 30*time.Millisecond, nil},
		{"9% slow", 2180 * time.Millisecond, nil},
		{"guest clock too fast", 1500 * time.Millisecond, ErrClock},
		{"guest clock too slow", 2300 * time.Millisecond, ErrClock},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := time.Unix(1000, 0)
			c := &Console{Now: func() time.Time { return host }}
			c.Feed("PASS clock: TSC at 2596.000 MHz, measured against pit")
			c.Feed(selftest.SleepingPrefix + "2s")
			host = host.Add(tc.host)
			c.Feed(selftest.SleptPrefix + "2.0001s by the guest clock")
			c.Feed("selftest: 1 passed, 0 failed")
			if c.Sleep != 2*time.Second || c.HostSleep != tc.host {
				t.Fatalf("Sleep, HostSleep = %v, %v; want 2s, %v", c.Sleep, c.HostSleep, tc.host)
			}
			if err := c.Judge(""); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("Judge = %v, want %v", err, tc.want)
			}
		})
	}
	c := feed(selftest.SleepingPrefix+"2s", "PASS a: x", "selftest: 1 passed, 0 failed")
	if err := c.Judge(""); !errors.Is(err, ErrClock) {
		t.Errorf("a sleep that never ended: Judge = %v, want ErrClock", err)
	}
}
