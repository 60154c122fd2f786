package qemu

// The cross-check: a second opinion on the kernel's page tables from QEMU's
// own MMU code. On a machine held with physmap.hold=1 the harness asks QEMU
// for every present leaf ("info tlb", QEMU target/i386/monitor.c: print_pte,
// tlb_info_la48, tlb_info_la57), for CR3 ("info registers") and for single
// translations ("gva2gpa", QEMU monitor/misc.c: hmp_gva2gpa), and compares
// the answers with the JSON dump the kernel wrote to the bulk channel
// (package kernel/dump; a kernel that printed it on its console instead is
// read from there).

import (
	"errors"
	"fmt"
	"strings"
)

// Cross-check errors. ErrQEMUDisagrees wraps ErrCrossCheck, so errors.Is
// finds ErrCrossCheck for every cross-check failure.
var (
	ErrCrossCheck    = errors.New("cross-check with QEMU failed")
	ErrQEMUDisagrees = fmt.Errorf("%w: QEMU's page walk disagrees with the kernel's dump", ErrCrossCheck)
)

// HoldOption is the kernel option that makes the machine hold for the
// cross-check.
const HoldOption = "physmap.hold=1"

// WithHold returns the kernel command line appendLine with HoldOption added,
// or an error if it already sets physmap.hold to something else.
func WithHold(appendLine string) (string, error) {
	for _, w := range strings.Fields(appendLine) {
		if w == HoldOption {
			return appendLine, nil
		}
		if strings.HasPrefix(w, "physmap.hold=") {
			return "", &Error{Op: "crosscheck", Err: ErrCrossCheck, Detail: fmt.Sprintf("the cross-check needs %s, the command line has %s", HoldOption, w)}
		}
	}
	return strings.TrimSpace(appendLine + " " + HoldOption), nil
}
