//go:build tamago

package main

import (
	"fmt"

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
