// Package qemu is physmap's host harness: it builds the one QEMU command line
// the project uses, boots the kernel under QEMU's microvm machine, streams
// and parses the serial console with package selftest, and decides the
// verdict.
//
// # Command line
//
// Config.Command is the only place where the QEMU argv is written down. The
// Makefile and the commands in qemu/cmd call the harness, never QEMU.
//
// # Verdict
//
// A run succeeds when the console shows the self-test's closing line, every
// check of the boot's manifest passed (the manifest comes from package
// selftest's registry for the configuration the kernel's config line
// states, checked against the command line), no check outside it appeared,
// and QEMU then leaves through isa-debug-exit with the matching status (the
// kernel writes 0 on pass, so QEMU exits (0<<1)|1 = 1; it writes 1 on fail,
// giving 3). With Runner.Expect naming failures, a run succeeds only when
// those checks fail: an injection's boot exactly those, with every other
// check of its manifest passing; an environment's boot at least those.
//
// Why QEMU stopped is learned from QMP events (SHUTDOWN with its reason, or
// RESET) on a socket in a private temporary directory, or the caller's
// Config.QMP path, so that a triple fault before the closing line (QEMU's
// "guest-reset" under -no-reboot) is reported as such.
//
// # Hold mode
//
// A kernel booted with physmap.hold=1 prints selftest.HoldLine after its
// report and stays halted. The runner then keeps QEMU alive until it is
// interrupted or the timeout ends, so a QMP client can inspect the live
// machine; or, with Runner.OnHold set, it calls the hook with the runner's
// own QMP connection (see Monitor.HumanMonitorCommand) and quits QEMU when
// the hook returns.
//
// # Cross-check
//
// CrossCheck (physmap-run -crosscheck, and every memory-by-CPU case of
// physmap-test) uses hold mode to compare the kernel's JSON dump of its live
// tables (package kernel/dump) with QEMU's own walk of them: info tlb over
// the kernel half and the low window (every leaf, frame and RW/NX/USR/G/PWT/
// PCD bit), CR3 from info registers, and gva2gpa on the first kernel
// instruction's three addresses and every module page. QMP replies longer
// than the QMP library reads go through a small relay (see CrossCheck.Dial).
//
// # Scripted shell
//
// Runner.Shell types lines into the kernel's serial shell (physmap.shell=1)
// through QEMU's stdin, each after the prompt, and matches each answer.
//
// # KVM
//
// Accelerator KVM is used only if a probe run of the same command line,
// paused with -S, comes up and answers QMP query-kvm with KVM enabled;
// otherwise the run falls back to TCG with a one-line note. See ProbeKVM.
package qemu
