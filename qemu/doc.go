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
// RESET) on the runner's own socket in a private temporary directory, so
// that a triple fault before the closing line (QEMU's "guest-reset" under
// -no-reboot) is reported as such. Config.UserQMP adds a second monitor for
// a person or a tool; QEMU serves each on its own.
//
// A run that cannot be judged is an environment error (ExitCode 2), told
// apart before QEMU starts or from how it ended: a kernel file that is
// missing, empty or not an x86-64 ELF with the PVH entry note (CheckKernel);
// QEMU refusing the machine (exiting with a complaint before the guest wrote
// a byte, ErrQEMURefused); and the kernel's early boot finding the machine
// unfit (its selftest.EarlyPrefix line, or exit status
// selftest.StatusEarlyCPU or StatusEarlyRAM, ErrEarlyBoot). Details gives
// the lines that explain a failed run: the FAIL lines of a failed self-test,
// else the console's last lines.
//
// # Output
//
// The console and the runner's notes share the caller's Stdout and Stderr,
// in interactive mode a terminal whose stdin QEMU reads. QEMU makes its stdin
// non-blocking; the runner gives QEMU an open file description of the
// terminal of its own, so that the flag does not reach the harness's
// stdout, and writes every byte to a file that is non-blocking anyway,
// waiting while the terminal is behind. A note starts on a fresh line when
// the console's last byte was not a newline, and in interactive mode the
// unfinished line (the shell's prompt) is shown again after it.
//
// # Bulk channel
//
// Output too large for the serial console (the JSON dump of the live
// tables) goes to QEMU's isa-debugcon device at BulkPort, always on the
// command line (Config.Bulk names its file). The kernel writes a whole
// buffer to it with one REP OUTSB, without the line-status polling a UART
// needs; the runner returns it in Result.Bulk, and a hold hook reads it with
// Runner.BulkSoFar.
//
// # Hold mode
//
// A kernel booted with physmap.hold=1 prints selftest.HoldLine after its
// report and stays halted. The runner then keeps QEMU alive until it is
// interrupted (the timeout bounds only the boot), so a QMP client can
// inspect the live machine; or, with Runner.OnHold set, it calls the hook
// with the runner's own QMP connection (see Monitor.HumanMonitorCommand) and
// quits QEMU when the hook returns, or with Runner.StayHeld keeps it held
// until interrupted.
//
// # Cross-check
//
// CrossCheck (physmap-run -crosscheck, and every memory-by-CPU case of
// physmap-test) uses hold mode to compare the kernel's JSON dump of its live
// tables (package kernel/dump), read from the bulk channel, with QEMU's own
// walk of them: info tlb over
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
