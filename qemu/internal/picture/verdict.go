package picture

import (
	"fmt"

	"github.com/physmap/physmap/kernel/selftest"
	"github.com/physmap/physmap/qemu"
)

// Verdict is the self-test's outcome on the boot whose dump is drawn: the
// dump describes the tables, the console says whether they passed, and the
// picture's title says which.
type Verdict struct {
	// Known is set when the boot's console was read; without it the title
	// says the verdict is unknown.
	Known bool
	// Closed is set when the console showed the closing line.
	Closed bool
	// Summary is the closing line, valid when Closed is set.
	Summary selftest.Summary
	// Fails are the FAIL lines, in console order.
	Fails []selftest.Result
}

// VerdictOf reads the verdict from a console the harness followed.
func VerdictOf(c *qemu.Console) Verdict {
	return Verdict{Known: true, Closed: c.Closed, Summary: c.Summary, Fails: c.Tally.Failed()}
}

// OK reports whether the boot passed: a closing line with at least one
// check, none failed, and no FAIL line.
func (v Verdict) OK() bool { return v.Known && v.Closed && v.Summary.OK() && len(v.Fails) == 0 }

// headline is the verdict in a few words, for the title.
func (v Verdict) headline() string {
	switch {
	case !v.Known:
		return "self-test verdict unknown (no console read)"
	case !v.Closed:
		return fmt.Sprintf("INCOMPLETE BOOT: no self-test closing line (%d checks had failed)", len(v.Fails))
	case v.OK():
		return fmt.Sprintf("self-test passed: %d checks, 0 failed", v.Summary.Passed)
	case v.Summary.Failed == 0 && len(v.Fails) == 0:
		return fmt.Sprintf("SELF-TEST FAILED: %s", v.Summary)
	}
	return fmt.Sprintf("SELF-TEST FAILED: %d of %d checks failed, these tables break what the layout promises",
		v.Summary.Failed, v.Summary.Passed+v.Summary.Failed)
}
