package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/physmap/physmap/qemu"
)

// result builds a Result whose console saw lines.
func result(lines ...string) *qemu.Result {
	res := &qemu.Result{Console: new(qemu.Console), Elapsed: time.Second}
	for _, l := range lines {
		res.Console.Feed(l)
	}
	return res
}

func TestClassify(t *testing.T) {
	pass := []string{"PASS clock: TSC at 2596.141 MHz, measured against pit", "PASS e820: fine", "selftest: 2 passed, 0 failed, manifest 2"}
	badClock := []string{"FAIL clock: TSC calibrated by pit at 13283628665 Hz, outside [100000000, 10000000000]", "PASS e820: fine", "selftest: 1 passed, 1 failed, manifest 2"}
	for _, tc := range []struct {
		name  string
		res   *qemu.Result
		err   error
		want  outcome
		check func(t *testing.T, o outcome)
	}{
		{"pass", result(pass...), nil, outcome{OK: true, TSCMHz: 2596.141, Elapsed: time.Second}, nil},
		{"clock check", result(badClock...), &qemu.Error{Op: "verdict", Err: qemu.ErrSelfTestFailed}, outcome{Checks: []string{"clock"}, Clock: true, Elapsed: time.Second}, nil},
		{"guest sleep", result(pass...), &qemu.Error{Op: "clock", Err: qemu.ErrClock, Detail: "a 2s guest sleep took 2.5s"},
			outcome{Harness: qemu.ErrClock.Error(), Clock: true, TSCMHz: 2596.141, Elapsed: time.Second}, nil},
		{"reset", result("physmap: booting"), &qemu.Error{Op: "boot", Err: qemu.ErrNoClosingLine, Detail: "guest reset"},
			outcome{Harness: qemu.ErrNoClosingLine.Error(), Elapsed: time.Second}, nil},
		{"not a harness error", nil, errors.New("odd"), outcome{Harness: "odd"}, nil},
		{"interrupted", result(), &qemu.Error{Op: "boot", Err: qemu.ErrInterrupted}, outcome{Interrupted: true, Elapsed: time.Second}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := classify(tc.res, tc.err)
			o.Why = "" // a message for people, checked below
			if o.OK != tc.want.OK || o.Interrupted != tc.want.Interrupted || strings.Join(o.Checks, ",") != strings.Join(tc.want.Checks, ",") ||
				o.Harness != tc.want.Harness || o.Clock != tc.want.Clock || o.TSCMHz != tc.want.TSCMHz || o.Elapsed != tc.want.Elapsed {
				t.Errorf("got %+v\nwant %+v", o, tc.want)
			}
		})
	}
	if o := classify(result(badClock...), &qemu.Error{Op: "verdict", Err: qemu.ErrSelfTestFailed}); !strings.HasPrefix(o.Why, "FAIL clock: TSC calibrated by pit") {
		t.Errorf("a failed check's progress line %q does not quote its FAIL line", o.Why)
	}
}

func TestReport(t *testing.T) {
	outs := []outcome{
		{OK: true, TSCMHz: 2596.1, Elapsed: time.Second},
		{OK: true, TSCMHz: 2596.3, Elapsed: 3 * time.Second},
		{Checks: []string{"clock", "wx"}, Clock: true, Elapsed: 2 * time.Second},
		{Checks: []string{"wx"}, Elapsed: 2 * time.Second},
		{Harness: qemu.ErrTimeout.Error()},
	}
	s := settings{Kernel: "build/physmap.elf", Memory: "2G", N: 5, Parallel: 2, Busy: 2}
	rep := tally(outs, s, 75*time.Second)
	if rep.Boots != 5 || rep.Failed != 3 || rep.ClockFailures != 1 {
		t.Errorf("boots %d failed %d clock %d, want 5 3 1", rep.Boots, rep.Failed, rep.ClockFailures)
	}
	var b bytes.Buffer
	rep.print(&b)
	out := b.String()
	for _, want := range []string{
		"physmap-soak: 5 boots of build/physmap.elf (-m 2G -cpu max), 2 at a time, 2 busy processes on the host\n",
		"boots failing each check:\n      2  wx\n      1  clock\n",
		"boots failing by harness error:\n      1  timeout\n",
		"TSC rate over 2 boots: min 2596.100, median 2596.100, max 2596.300 MHz",
		"boot time, QEMU start to exit: min 1.00s, median 2.00s, max 3.00s\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; last != "soak: 5 boots under load (2 busy processes), 3 failed, 1 clock failures, in 1m15s" {
		t.Errorf("last line %q", last)
	}
}

func TestReportClean(t *testing.T) {
	rep := tally([]outcome{{OK: true}}, settings{N: 1, Memory: "2G"}, time.Second)
	var b bytes.Buffer
	rep.print(&b)
	if out := b.String(); !strings.Contains(out, "boots failing each check: none\n") || !strings.Contains(out, "boots failing by harness error: none\n") {
		t.Errorf("clean report:\n%s", out)
	}
}
