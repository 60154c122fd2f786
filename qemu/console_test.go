package qemu

import (
	"errors"
	"fmt"
	"slices"
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

// bootLines is a console of a boot with configuration cfg: a line for every
// check of its manifest (FAIL for those in fail, none for those in drop),
// then extra lines, then the closing line the kernel would print.
func bootLines(cfg selftest.Config, fail, drop []string, extra ...string) []string {
	lines := []string{"physmap: booting", cfg.String()}
	var tl selftest.Tally
	add := func(r selftest.Result) {
		tl.Add(r)
		lines = append(lines, r.String())
	}
	for _, name := range selftest.Manifest(cfg) {
		switch {
		case slices.Contains(drop, name):
		case slices.Contains(fail, name):
			add(selftest.Result{Verdict: selftest.Fail, Check: name, Detail: "broken"})
		default:
			add(selftest.Result{Verdict: selftest.Pass, Check: name, Detail: "fine"})
		}
	}
	for _, l := range extra {
		if r, err := selftest.ParseResult(l); err == nil {
			tl.Add(r)
		}
		lines = append(lines, l)
	}
	sum := tl.Summary()
	sum.Manifest = len(selftest.Manifest(cfg))
	return append(lines, sum.String()+"\r")
}

var cfg5 = selftest.Config{Levels: 5, Page1GB: true}

// prints turns console lines into a fake QEMU script's print commands.
func prints(lines []string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("print " + strings.TrimSuffix(l, "\r") + "\n")
	}
	return b.String()
}

// passPrints prints a passing 5-level boot's config line, checks and
// closing line; failPrints one that fails tlb.
var (
	passPrints = prints(bootLines(cfg5, nil, nil)[1:])
	failPrints = prints(bootLines(cfg5, []string{"tlb"}, nil)[1:])
)

func TestJudge(t *testing.T) {
	exact := func(f ...string) Expect { return Expect{Fails: f, Exact: true} }
	for _, tc := range []struct {
		name   string
		lines  []string
		expect Expect
		want   error
	}{
		{"pass", bootLines(cfg5, nil, nil), Expect{}, nil},
		{"pass with KASLR", bootLines(selftest.Config{Levels: 4, KASLR: true}, nil, nil), Expect{}, nil},
		{"fail", bootLines(cfg5, []string{"tlb"}, nil), Expect{}, ErrSelfTestFailed},
		{"missing check", bootLines(cfg5, nil, []string{"content", "wx"}), Expect{}, ErrManifest},
		{"unlisted check", bootLines(cfg5, nil, nil, "PASS bogus.check: x"), Expect{}, ErrManifest},
		{"KASLR checks in a boot without KASLR", bootLines(cfg5, nil, nil, "PASS kaslr.memory: x"), Expect{}, ErrManifest},
		{"no config line", []string{"PASS a: x", "selftest: 1 passed, 0 failed, manifest 1"}, Expect{}, ErrManifest},
		{"manifest count wrong", append(bootLines(cfg5, nil, nil)[:len(bootLines(cfg5, nil, nil))-1], "selftest: 30 passed, 0 failed, manifest 30"), Expect{}, ErrCountMismatch},
		{"zero checks", []string{"physmap: booting", "selftest: 0 passed, 0 failed, manifest 0"}, Expect{}, ErrNoChecks},
		{"no closing line", []string{"physmap: booting", "PASS a: x"}, Expect{}, ErrNoClosingLine},
		{"empty console", nil, Expect{}, ErrNoClosingLine},
		{"lost check line", []string{"PASS a: x", "selftest: 2 passed, 0 failed, manifest 0"}, Expect{}, ErrCountMismatch},
		{"checks after closing ignored", append(bootLines(cfg5, nil, nil), "FAIL late: x"), Expect{}, nil},
		{"injection fails exactly", bootLines(cfg5, []string{"walk.image", "content"}, nil), exact("walk.image", "content"), nil},
		{"injection fails more", bootLines(cfg5, []string{"walk.image", "content", "wx"}, nil), exact("walk.image", "content"), ErrWrongFailure},
		{"injection fails less", bootLines(cfg5, []string{"walk.image"}, nil), exact("walk.image", "content"), ErrWrongFailure},
		{"injection boot misses a check", bootLines(cfg5, []string{"walk.image"}, []string{"wx"}), exact("walk.image"), ErrManifest},
		{"injection passes", bootLines(cfg5, nil, nil), exact("tlb"), ErrUnexpectedPass},
		{"environment fails at least", []string{`FAIL option: unknown option "physmap.bogus=1"`, "FAIL layout.build: no", "selftest: 0 passed, 2 failed, manifest 0"}, ExpectFailing("option"), nil},
		{"environment wrong check", []string{"PASS a: x", "FAIL options: y", "selftest: 1 passed, 1 failed, manifest 0"}, ExpectFailing("option"), ErrWrongFailure},
		{"environment passed", bootLines(cfg5, nil, nil), ExpectFailing("cpu.nx"), ErrUnexpectedPass},
		{"environment no closing", []string{"FAIL option: x"}, ExpectFailing("option"), ErrNoClosingLine},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := feed(tc.lines...)
			err := c.Judge(tc.expect)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Judge(%v) = %v, want %v", tc.expect, err, tc.want)
			}
			if err != nil {
				var he *Error
				if !errors.As(err, &he) || len(he.Tail) == 0 && len(tc.lines) > 0 {
					t.Errorf("error %v does not carry the lines that explain it", err)
				}
				for _, r := range c.Tally.Failed() {
					if !slices.Contains(he.Tail, r.String()) {
						t.Errorf("error %v does not quote %q", err, r)
					}
				}
			}
		})
	}
}

func TestJudgeNamesFailures(t *testing.T) {
	err := feed(bootLines(cfg5, []string{"mm.check", "cpu.nx"}, nil)...).Judge(Expect{})
	if err == nil || !strings.Contains(err.Error(), "cpu.nx, mm.check") {
		t.Errorf("Judge error %v does not name the failed checks", err)
	}
	err = feed(bootLines(cfg5, nil, []string{"content", "wx"})...).Judge(Expect{})
	if err == nil || !strings.Contains(err.Error(), "missing: content, wx") {
		t.Errorf("Judge error %v does not name the missing checks", err)
	}
}

func TestConfigAgrees(t *testing.T) {
	for _, tc := range []struct {
		append string
		cfg    selftest.Config
		ok     bool
	}{
		{"", cfg5, true},
		{"physmap.kaslr=3", selftest.Config{Levels: 5, KASLR: true}, true},
		{"physmap.kaslr=3", cfg5, false},
		{"", selftest.Config{Levels: 5, KASLR: true}, false},
		{"physmap.levels=4", cfg5, false},
		{"physmap.levels=4", selftest.Config{Levels: 4}, true},
		{"physmap.bogus=1", cfg5, true},
	} {
		if err := ConfigAgrees(tc.append, tc.cfg); (err == nil) != tc.ok {
			t.Errorf("ConfigAgrees(%q, %v) = %v, want ok=%v", tc.append, tc.cfg, err, tc.ok)
		}
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
		{"selftest: 1 passed, 0 failed, manifest 0", LineClosing},
		{"selftest: 1 passed, 0 failed, manifest 0", LineOther},
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
			lines := bootLines(cfg5, nil, nil)
			for _, l := range lines[:len(lines)-1] {
				c.Feed(l)
			}
			c.Feed(selftest.SleepingPrefix + "2s")
			host = host.Add(tc.host)
			c.Feed(selftest.SleptPrefix + "2.0001s by the guest clock")
			c.Feed(lines[len(lines)-1])
			if c.Sleep != 2*time.Second || c.HostSleep != tc.host {
				t.Fatalf("Sleep, HostSleep = %v, %v; want 2s, %v", c.Sleep, c.HostSleep, tc.host)
			}
			if err := c.Judge(Expect{}); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("Judge = %v, want %v", err, tc.want)
			}
		})
	}
	c := feed(append([]string{selftest.SleepingPrefix + "2s"}, bootLines(cfg5, nil, nil)...)...)
	if err := c.Judge(Expect{}); !errors.Is(err, ErrClock) {
		t.Errorf("a sleep that never ended: Judge = %v, want ErrClock", err)
	}
}

func TestFeedJoinsWrappedChecks(t *testing.T) {
	r := selftest.Result{Verdict: selftest.Fail, Check: "walk.image", Detail: strings.Repeat("a frame that is not where it should be, ", 6) + "at last"}
	lines := selftest.Wrap(r.String(), selftest.Width)
	if len(lines) < 2 {
		t.Fatalf("the line did not wrap: %q", lines)
	}
	c := feed(append(lines, "  indented boot log", "PASS b: x")...)
	if got := c.Tally.Results; len(got) != 2 || got[0].Detail != r.Detail {
		t.Errorf("results %+v, want the wrapped detail %q joined", got, r.Detail)
	}
}
