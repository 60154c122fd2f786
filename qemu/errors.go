package qemu

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Environment and usage errors: the run could not start. ExitCode maps them
// to 2.
var (
	ErrBadMemory      = errors.New("bad memory size")
	ErrMemoryTooSmall = errors.New("memory size below the minimum")
	ErrBadAccel       = errors.New("bad accelerator")
	ErrQEMUMissing    = errors.New("QEMU not installed")
	ErrKernelMissing  = errors.New("no kernel image")
	ErrBadKernel      = errors.New("not a kernel QEMU can boot")
	ErrBadCPU         = errors.New("bad CPU model")
	ErrBadTimeout     = errors.New("bad timeout")
	ErrStart          = errors.New("cannot start QEMU")
	// ErrQEMURefused: QEMU exited before the guest ran, with a complaint on
	// its stderr (an unknown -cpu model, memory it cannot allocate, a
	// kernel it cannot load).
	ErrQEMURefused = errors.New("QEMU refused the machine")
	// ErrEarlyBoot: the kernel's early boot found the machine unfit (a CPU
	// feature or the RAM it needs missing), said so in one line
	// (selftest.EarlyPrefix) and ended QEMU with selftest.StatusEarlyCPU
	// or StatusEarlyRAM.
	ErrEarlyBoot = errors.New("early boot")
)

// Run errors: the kernel ran and the result is not the one wanted. ExitCode
// maps them to 1.
var (
	ErrSelfTestFailed = errors.New("self-test failed")
	ErrNoChecks       = errors.New("self-test ran no check")
	ErrNoClosingLine  = errors.New("QEMU stopped before the self-test's closing line")
	ErrTimeout        = errors.New("timeout")
	ErrInterrupted    = errors.New("interrupted")
	ErrUnexpectedPass = errors.New("self-test passed, a failure was expected")
	ErrWrongFailure   = errors.New("self-test failed, but not the expected check")
	ErrCountMismatch  = errors.New("closing line disagrees with the check lines")
	ErrClock          = errors.New("the guest clock disagrees with the host's")
	ErrExitStatus     = errors.New("QEMU exit status disagrees with the self-test")
	ErrHold           = errors.New("hold mode failed")
	ErrQMP            = errors.New("QMP failed")
)

// Error is a harness error: the operation, the sentinel it wraps (so that
// errors.Is works), a human detail, and the console lines that help explain
// it: the FAIL lines of a failed self-test, else the console's last lines.
type Error struct {
	Op     string   // "memory", "start", "boot", "verdict", "hold", ...
	Err    error    // one of the sentinels above
	Detail string   // what happened, for a person
	Failed []string // the FAIL lines, for a self-test that failed
	Tail   []string // last console lines, oldest first; may be empty
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %v", e.Op, e.Err)
	if e.Detail != "" {
		fmt.Fprintf(&b, ": %s", e.Detail)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Exit statuses of the harness commands.
const (
	ExitOK     = 0 // success
	ExitFailed = 1 // self-test failed or unexpected result
	ExitUsage  = 2 // usage or environment error
)

// ExitCode maps a Run error to the commands' exit status.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrBadMemory), errors.Is(err, ErrMemoryTooSmall), errors.Is(err, ErrBadAccel),
		errors.Is(err, ErrQEMUMissing), errors.Is(err, ErrKernelMissing), errors.Is(err, ErrBadKernel),
		errors.Is(err, ErrBadCPU), errors.Is(err, ErrBadTimeout), errors.Is(err, ErrStart),
		errors.Is(err, ErrQEMURefused), errors.Is(err, ErrEarlyBoot):
		return ExitUsage
	}
	return ExitFailed
}

// detailWidth is how much of a console line Details quotes.
const detailWidth = 200

// Details returns the lines that explain a failed run to a person, each
// starting with its kind: "FAIL check: ..." for the FAIL lines of a failed
// self-test, "| line" for the console's last lines where the run stopped
// before its verdict (cut to detailWidth columns), and "! line" for what QEMU
// said on its stderr when it stopped early. An error that is its own
// explanation in one line (usage, environment, a refusal, an early-boot
// failure) has none. res may be nil.
func Details(err error, res *Result) []string {
	var he *Error
	if err == nil || ExitCode(err) != ExitFailed || !errors.As(err, &he) {
		return nil
	}
	var out []string
	if len(he.Failed) > 0 {
		out = append(out, he.Failed...)
	} else {
		for _, l := range he.Tail {
			out = append(out, "| "+cut(l, detailWidth))
		}
	}
	if res != nil && res.Console != nil && !res.Console.Closed {
		for _, l := range res.Stderr {
			out = append(out, "! "+cut(l, detailWidth))
		}
	}
	return out
}

// cut shortens s to at most n bytes, saying how much it left out.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return fmt.Sprintf("%s... (%d more bytes)", s[:n], len(s)-n)
}
