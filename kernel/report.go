//go:build tamago

package main

import (
	"fmt"
	"time"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/boot"

	"github.com/physmap/physmap/kernel/selftest"
)

// report prints check results as they happen and keeps the tally.
type report struct {
	tally selftest.Tally
}

// check records one result and prints its line.
func (r *report) check(name string, ok bool, format string, args ...any) {
	res := selftest.Result{Verdict: selftest.Verdict(ok), Check: name, Detail: fmt.Sprintf(format, args...)}
	r.tally.Add(res)
	fmt.Println(res)
}

// pass and fail are check with the verdict spelt out.
func (r *report) pass(name, format string, args ...any) { r.check(name, true, format, args...) }
func (r *report) fail(name, format string, args ...any) { r.check(name, false, format, args...) }

// close prints the closing line and returns whether the run passed.
func (r *report) close() bool {
	s := r.tally.Summary()
	fmt.Println(s)
	return s.OK()
}

// phase prints a phase line: the guest time, by the calibrated TSC, at
// which a phase of the boot ended.
func phase(name string) {
	hz := boot.Clock.TSCHz
	if hz == 0 {
		return
	}
	tsc := amd64.Rdtsc()
	ns := tsc/hz*1e9 + tsc%hz*1e9/hz
	fmt.Println(selftest.Phase{Name: name, At: time.Duration(ns)})
}
