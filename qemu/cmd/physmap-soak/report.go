package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/physmap/physmap/qemu"
)

// clockCheck is the kernel's check of its calibrated TSC rate.
const clockCheck = "clock"

// settings are what a soak ran.
type settings struct {
	Kernel, Memory, CPU, Append string
	N, Parallel, Busy           int
}

func (s settings) String() string {
	cpu := cmp.Or(s.CPU, qemu.DefaultCPU)
	app := ""
	if s.Append != "" {
		app = " -append " + strconv.Quote(s.Append)
	}
	return fmt.Sprintf("%d boots of %s (-m %s -cpu %s%s), %d at a time, %d busy processes on the host",
		s.N, s.Kernel, s.Memory, cpu, app, s.Parallel, s.Busy)
}

// outcome is what one boot came to.
type outcome struct {
	OK          bool
	Interrupted bool          // stopped by ^C: not counted
	Checks      []string      // the checks that failed
	Harness     string        // the harness error, when no failed check explains the failure
	Why         string        // one line for the progress log
	Clock       bool          // a clock failure: FAIL clock, or the harness's timing of a guest sleep
	TSCMHz      float64       // the rate the clock line reported; 0 if none
	Elapsed     time.Duration // QEMU's start to its exit
}

// mhzRE finds the rate in the clock check's line ("TSC at 2596.141 MHz, ...").
var mhzRE = regexp.MustCompile(`([0-9]+(?:\.[0-9]+)?) MHz`)

// classify turns one Run's result into an outcome.
func classify(res *qemu.Result, err error) outcome {
	var o outcome
	if res != nil {
		o.Elapsed = res.Elapsed
		for _, r := range res.Console.Tally.Results {
			if r.Check == clockCheck && r.Verdict {
				if m := mhzRE.FindStringSubmatch(r.Detail); m != nil {
					o.TSCMHz, _ = strconv.ParseFloat(m[1], 64)
				}
			}
		}
	}
	if err == nil {
		o.OK = true
		return o
	}
	o.Why = err.Error()
	if errors.Is(err, qemu.ErrInterrupted) {
		o.Interrupted = true
		return o
	}
	if res != nil && res.Console.Closed {
		for _, r := range res.Console.Tally.Failed() {
			o.Checks = append(o.Checks, r.Check)
			o.Clock = o.Clock || r.Check == clockCheck
		}
	}
	if len(o.Checks) > 0 {
		var lines []string
		for _, r := range res.Console.Tally.Failed() {
			lines = append(lines, r.String())
		}
		o.Why = strings.Join(lines, "; ")
		return o
	}
	// No FAIL line: the harness's own verdict, by its kind.
	var he *qemu.Error
	if errors.As(err, &he) {
		o.Harness = he.Err.Error()
	} else {
		o.Harness = err.Error()
	}
	o.Clock = errors.Is(err, qemu.ErrClock)
	return o
}

// count is how many boots failed one way.
type count struct {
	Name  string
	Boots int
}

// report is the soak's result.
type report struct {
	Settings      settings
	Boots, Failed int // boots run, boots that failed
	ClockFailures int
	Checks        []count // failed checks, most frequent first
	Harness       []count // harness errors without a failed check
	TSC           []float64
	Elapsed       []time.Duration
	Wall          time.Duration
}

func tally(outs []outcome, s settings, wall time.Duration) report {
	rep := report{Settings: s, Boots: len(outs), Wall: wall}
	checks, harness := map[string]int{}, map[string]int{}
	for _, o := range outs {
		if !o.OK {
			rep.Failed++
		}
		if o.Clock {
			rep.ClockFailures++
		}
		for _, c := range o.Checks {
			checks[c]++
		}
		if o.Harness != "" {
			harness[o.Harness]++
		}
		if o.TSCMHz > 0 {
			rep.TSC = append(rep.TSC, o.TSCMHz)
		}
		if o.Elapsed > 0 {
			rep.Elapsed = append(rep.Elapsed, o.Elapsed)
		}
	}
	rep.Checks, rep.Harness = sorted(checks), sorted(harness)
	slices.Sort(rep.TSC)
	slices.Sort(rep.Elapsed)
	return rep
}

func sorted(m map[string]int) []count {
	var cs []count
	for name, n := range m {
		cs = append(cs, count{name, n})
	}
	slices.SortFunc(cs, func(a, b count) int {
		return cmp.Or(cmp.Compare(b.Boots, a.Boots), cmp.Compare(a.Name, b.Name))
	})
	return cs
}

// middle returns the median of a sorted slice.
func middle[T any](s []T) T { return s[(len(s)-1)/2] }

func (rep report) print(w io.Writer) {
	fmt.Fprintf(w, "physmap-soak: %s\n", rep.Settings)
	if rep.Boots < rep.Settings.N {
		fmt.Fprintf(w, "interrupted after %d boots\n", rep.Boots)
	}
	list := func(title string, cs []count) {
		if len(cs) == 0 {
			fmt.Fprintf(w, "%s: none\n", title)
			return
		}
		fmt.Fprintf(w, "%s:\n", title)
		for _, c := range cs {
			fmt.Fprintf(w, "  %5d  %s\n", c.Boots, c.Name)
		}
	}
	list("boots failing each check", rep.Checks)
	list("boots failing by harness error", rep.Harness)
	if t := rep.TSC; len(t) > 0 {
		lo, mid, hi := t[0], middle(t), t[len(t)-1]
		fmt.Fprintf(w, "TSC rate over %d boots: min %.3f, median %.3f, max %.3f MHz (spread %.3f %% of the median)\n",
			len(t), lo, mid, hi, (hi-lo)/mid*100)
	}
	if e := rep.Elapsed; len(e) > 0 {
		fmt.Fprintf(w, "boot time, QEMU start to exit: min %.2fs, median %.2fs, max %.2fs\n",
			e[0].Seconds(), middle(e).Seconds(), e[len(e)-1].Seconds())
	}
	fmt.Fprintf(w, "soak: %d boots under load (%d busy processes), %d failed, %d clock failures, in %s\n",
		rep.Boots, rep.Settings.Busy, rep.Failed, rep.ClockFailures, rep.Wall.Round(time.Second))
}
