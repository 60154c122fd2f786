package selftest

// Early-boot failures. Before TamaGo's runtime starts, physmap's early boot
// (boot/cpuinit.s) checks what it and the runtime need. When something is
// missing it prints one line starting with EarlyPrefix on COM1 and ends QEMU
// through the isa-debug-exit device, which exits with status (v<<1)|1.
const EarlyPrefix = "physmap: early boot: "

// QEMU exit statuses of an early-boot failure, told apart from a failed
// self-test (StatusFail, 3) by the harness.
const (
	StatusEarlyCPU = 5 // a CPU feature physmap or the runtime needs is missing (debug-exit value 2)
	StatusEarlyRAM = 7 // no RAM for the runtime's window (debug-exit value 3)
)
