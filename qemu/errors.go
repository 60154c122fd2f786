package qemu

import (
	"errors"
	"fmt"
	"strings"
)

// Environment and usage errors: the run could not start. ExitCode maps them
// to 2.
var (
	ErrBadMemory      = errors.New("bad memory size")
	ErrMemoryTooSmall = errors.New("memory size below the minimum")
	ErrBadAccel       = errors.New("bad accelerator")
	ErrQEMUMissing    = errors.New("QEMU not installed")
	ErrKernelMissing  = errors.New("kernel image missing")
	ErrStart          = errors.New("cannot start QEMU")
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
// errors.Is works), a human detail, and the console's last lines where they
// help explain it.
type Error struct {
	Op     string   // "memory", "start", "boot", "verdict", "hold", ...
	Err    error    // one of the sentinels above
	Detail string   // what happened, for a person
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
		errors.Is(err, ErrQEMUMissing), errors.Is(err, ErrKernelMissing), errors.Is(err, ErrStart):
		return ExitUsage
	}
	return ExitFailed
}
