//go:build tamago

package amd64

// Control registers, MSRs, CPUID, the TSC and TLB invalidation. Defined in
// cpu.s.

// ReadCR0 returns CR0 (SDM Vol. 3A 2.5).
func ReadCR0() uint64

// WriteCR0 loads CR0.
func WriteCR0(val uint64)

// ReadCR2 returns CR2, the linear address of the last page fault.
func ReadCR2() uint64

// ReadCR3 returns CR3, the physical address of the top-level page table.
func ReadCR3() uint64

// WriteCR3 loads CR3, which also flushes every non-global TLB entry
// (SDM Vol. 3A 4.10.4.1).
func WriteCR3(val uint64)

// ReadCR4 returns CR4.
func ReadCR4() uint64

// WriteCR4 loads CR4; toggling CR4.PGE flushes the whole TLB, global entries
// included (SDM Vol. 3A 4.10.4.1).
func WriteCR4(val uint64)

// Rdmsr reads a model-specific register (SDM Vol. 2B "RDMSR").
func Rdmsr(msr uint32) uint64

// Wrmsr writes a model-specific register (SDM Vol. 2B "WRMSR").
func Wrmsr(msr uint32, val uint64)

// Cpuid executes CPUID for a leaf and subleaf (SDM Vol. 2A "CPUID").
func Cpuid(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)

// Rdtsc returns the time-stamp counter (SDM Vol. 2B "RDTSC").
func Rdtsc() uint64

// Invlpg invalidates the TLB entries for the page holding va
// (SDM Vol. 2A "INVLPG").
func Invlpg(va uint64)

// Hlt halts the processor until the next interrupt.
func Hlt()

// Cli clears the interrupt flag.
func Cli()

// Stac sets RFLAGS.AC: with CR4.SMAP, supervisor accesses to user pages
// are allowed until Clac (SDM Vol. 2B "STAC"). #UD without CPUID SMAP.
func Stac()

// Clac clears RFLAGS.AC (SDM Vol. 2A "CLAC").
func Clac()
