//go:build tamago

package boot

import "github.com/physmap/physmap/amd64"

// physmap's early boot replaces TamaGo's (build tag linkcpuinit), for two
// reasons: LA57 can only be switched on while paging is off, so the choice
// between 4- and 5-level paging belongs here; and TamaGo maps memory with
// 1 GiB pages whatever CPUID says, which real CPUs without Page1GB refuse.
//
// cpuinit (cpuinit.s) is entered in 32-bit protected mode with paging off,
// as QEMU's PVH boot leaves it, with EBX holding the physical address of the
// hvm_start_info structure (Xen's arch-x86/hvm/start_info.h). It:
//   - checks with CPUID every feature it and the runtime's start-up use
//     (earlyNeeds, early.go) and, for the first one missing, prints one line
//     starting with EarlyPrefix on COM1 and exits QEMU through the
//     debug-exit device with earlyExitCPU;
//   - checks that the PVH memory map has RAM under the runtime's window,
//     and otherwise prints why and exits with earlyExitRAM;
//   - picks 5-level paging when CPUID.(EAX=7,ECX=0):ECX[16] (LA57) is set
//     and the command line does not say physmap.levels=4;
//   - identity-maps the first 4 GiB with 2 MiB pages (page 0 left unmapped
//     through a 4 KiB table, so nil dereferences fault; 3-4 GiB uncached, as
//     it holds the local APIC and other MMIO) in tables at EARLY_TABLES;
//   - enables PAE and LA57 as chosen, long mode, paging and SSE (not
//     PGE: the kernel checks it and turns it on with its own tables);
//   - loads a GDT with a 64-bit code segment, jumps to 64-bit code, sets the
//     runtime's stack and enters the Go runtime.
//
// The tables below 1 MiB are replaced by physmap's own tables once the
// runtime runs; they only have to last until then.

// Early boot constants, shared with cpuinit.s through go_asm.h.
const (
	// EARLY_TABLES is the physical page of the first early table: the pte
	// table of the first 2 MiB, then four pmd tables (one per GiB), the
	// pud table, the p4d table (PML4) and the pgd table (PML5).
	EARLY_TABLES = 0x1000
	earlyPT      = EARLY_TABLES
	earlyPD      = EARLY_TABLES + 0x1000
	earlyPDPT    = EARLY_TABLES + 0x5000
	earlyPML4    = EARLY_TABLES + 0x6000
	earlyPML5    = EARLY_TABLES + 0x7000
	earlyEnd     = EARLY_TABLES + 0x8000
	// earlyStack is the top of the stack cpuinit uses before the runtime's;
	// pvhInfoSave, at its bottom, keeps the hvm_start_info address.
	earlyStack  = 0xa000
	pvhInfoSave = 0x9000

	// hvmStartMagic opens hvm_start_info; cmdline_paddr is at offset 24;
	// from version 1, memmap_paddr at 40 and memmap_entries at 48, each
	// entry 24 bytes: addr u64, size u64, type u32 (1 = RAM), reserved.
	hvmStartMagic      = 0x336ec578
	hvmStartVersionOff = 4
	hvmStartCmdlineOff = 24
	hvmStartMemmapOff  = 40
	hvmStartEntriesOff = 48
	hvmMemmapEntrySize = 24
	hvmMemmapRAM       = 1
)

// PVHStartInfo returns the physical address of the hvm_start_info structure
// the boot loader passed, and its command line's address (0 when absent).
// Precondition: the early identity map is still live.
func PVHStartInfo() (info, cmdline uint32) {
	info = *(*uint32)(amd64.Ptr(pvhInfoSave))
	if info == 0 || *(*uint32)(amd64.Ptr(uint64(info))) != hvmStartMagic {
		return info, 0
	}
	return info, *(*uint32)(amd64.Ptr(uint64(info + hvmStartCmdlineOff)))
}
