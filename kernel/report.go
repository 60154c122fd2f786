//go:build tamago

package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/boot"
	"github.com/physmap/physmap/kernel/dump"
	"github.com/physmap/physmap/kernel/selftest"
)

// report prints check results as they happen and keeps the tally.
type report struct {
	tally selftest.Tally
	// times is each result's share of the boot: the time since the
	// previous result (or the phase line before it), for the bench.
	times []dump.CheckTime
	last  time.Time
}

// Check records one result and prints its line; it is region.Reporter.
func (r *report) Check(name string, ok bool, format string, args ...any) {
	since := r.last
	if phaseMark.After(since) {
		since = phaseMark
	}
	if !since.IsZero() {
		r.times = append(r.times, dump.CheckTime{Name: name, Ns: time.Since(since).Nanoseconds()})
	}
	defer func() { r.last = time.Now() }()
	res := selftest.Result{Verdict: selftest.Verdict(ok), Check: name, Detail: fmt.Sprintf(format, args...)}
	r.tally.Add(res)
	for _, l := range selftest.Wrap(res.String(), selftest.Width) {
		fmt.Println(l)
	}
}

// pass and fail are Check with the verdict spelt out.
func (r *report) pass(name, format string, args ...any) { r.Check(name, true, format, args...) }
func (r *report) fail(name, format string, args ...any) { r.Check(name, false, format, args...) }

// close holds the results to the manifest (a missing or unlisted check is
// a failure), prints the closing line and returns it.
func (r *report) close(manifest []string) selftest.Summary {
	if missing := selftest.Missing(manifest, r.tally.Results); len(missing) > 0 {
		r.fail("manifest", "missing: %s", strings.Join(missing, ", "))
	}
	if extra := selftest.Unlisted(manifest, r.tally.Results); len(extra) > 0 {
		r.fail("manifest", "not in the manifest: %s", strings.Join(extra, ", "))
	}
	s := r.tally.Summary()
	s.Manifest = len(manifest)
	fmt.Println(s)
	return s
}

// phaseMark is when the last phase line was printed: a check's time
// starts there if it is later than the previous result.
var phaseMark time.Time

// phase prints a phase line: the guest time, by the calibrated TSC, at
// which a phase of the boot ended.
func phase(name string) {
	defer func() { phaseMark = time.Now() }()
	hz := boot.Clock.TSCHz
	if hz == 0 {
		return
	}
	tsc := amd64.Rdtsc()
	ns := tsc/hz*1e9 + tsc%hz*1e9/hz
	fmt.Println(selftest.Phase{Name: name, At: time.Duration(ns)})
}
