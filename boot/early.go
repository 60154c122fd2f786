package boot

import (
	"fmt"
	"strings"

	"github.com/physmap/physmap/amd64"
)

// The runtime's window. Its start is fixed by TamaGo, its size by physmap,
// and the early boot checks that RAM holds it.
const (
	// RuntimeStart is TamaGo's RamStart (its amd64/mem.go), where the
	// runtime's window begins; the kernel checks the two agree.
	RuntimeStart = 0x10000000
	// HeapSize is the memory window TamaGo's runtime owns, from
	// RuntimeStart up: image, heap and stacks. It is the only size physmap
	// fixes; everything else comes from the firmware memory map. With
	// RuntimeStart at 256 MiB it makes 384 MiB the least RAM a machine can
	// have.
	HeapSize   = 128 << 20
	runtimeEnd = RuntimeStart + HeapSize
)

// EarlyPrefix starts the one line the early boot prints when it cannot start
// the runtime; kernel/selftest's EarlyPrefix, which the harness reads, is the
// same (a host test compares them).
const EarlyPrefix = "physmap: early boot: "

// Values cpuinit writes to the debug-exit port when it stops the machine
// before the runtime starts; QEMU exits with status (v<<1)|1, which
// kernel/selftest names StatusEarlyCPU and StatusEarlyRAM.
const (
	earlyExitCPU = 2 // a CPU feature in earlyNeeds is missing: status 5
	earlyExitRAM = 3 // no RAM under the runtime's window: status 7
)

// cpuidReg is one of the four registers CPUID returns, numbered as cpuinit
// stores them.
type cpuidReg uint32

const (
	regEAX cpuidReg = iota
	regEBX
	regECX
	regEDX
)

func (r cpuidReg) String() string { return [...]string{"EAX", "EBX", "ECX", "EDX"}[r] }

// earlyNeed is one CPU feature that is used before physmap's kernel can
// check and report anything: by cpuinit itself, by TamaGo's runtime start-up
// (its rt0 and schedinit, which seeds the RNG and reads the clock), or by the
// code the Go compiler emits for GOAMD64=v1.
type earlyNeed struct {
	name string   // the feature, as the SDM names it
	leaf uint32   // CPUID leaf (subleaf 0)
	reg  cpuidReg // register of the leaf
	mask uint32   // the feature's bit in it
	who  string   // "which ... needs" clause: who uses it, and for what
	hint string   // a -cpu that has it
}

// earlyNeeds lists, in the order cpuinit checks them, every CPU feature used
// before the kernel's own checks run (SDM Vol. 2A, CPUID, Tables 3-10 and
// 3-11; AMD APM Vol. 3, Appendix E). NX, PGE and Page1GB are not here: the
// early boot does not use them, and the kernel checks NX and PGE itself
// (cpu.nx, cpu.pge) before it relies on them, with the full report.
var earlyNeeds = []earlyNeed{
	{"long mode", amd64.CPUID_EXT_INFO, regEDX, amd64.EXTINFO_EDX_LM,
		"the early boot needs to enter 64-bit mode", "-cpu max or -cpu qemu64,+rdrand"},
	{"PAE", amd64.CPUID_INFO, regEDX, amd64.INFO_EDX_PAE,
		"long mode's 4- and 5-level paging needs (SDM Vol. 3A 10.8.5)", "-cpu max"},
	{"MSRs", amd64.CPUID_INFO, regEDX, amd64.INFO_EDX_MSR,
		"the early boot needs to set EFER.LME and TamaGo's runtime to set FS_BASE", "-cpu max"},
	{"FXSR", amd64.CPUID_INFO, regEDX, amd64.INFO_EDX_FXSR,
		"the early boot needs to enable SSE (CR4.OSFXSR)", "-cpu max"},
	{"SSE", amd64.CPUID_INFO, regEDX, amd64.INFO_EDX_SSE,
		"Go's amd64 code uses (GOAMD64=v1)", "-cpu max"},
	{"SSE2", amd64.CPUID_INFO, regEDX, amd64.INFO_EDX_SSE2,
		"Go's amd64 code uses (GOAMD64=v1)", "-cpu max"},
	{"CMOV", amd64.CPUID_INFO, regEDX, amd64.INFO_EDX_CMOV,
		"Go's amd64 code uses (GOAMD64=v1)", "-cpu max"},
	{"a TSC", amd64.CPUID_INFO, regEDX, amd64.INFO_EDX_TSC,
		"the runtime's clock reads (RDTSC) from its start", "-cpu max"},
	{"RDRAND", amd64.CPUID_INFO, regECX, amd64.INFO_ECX_RDRAND,
		"TamaGo's runtime needs to seed its RNG", "-cpu max or -cpu qemu64,+rdrand"},
}

// bit returns the number of the feature's bit.
func (n earlyNeed) bit() int {
	for i := range 32 {
		if n.mask == 1<<i {
			return i
		}
	}
	panic(fmt.Sprintf("early need %s: mask %#x is not one bit", n.name, n.mask))
}

// line is what cpuinit prints when the feature is missing, in the SDM's
// notation for a CPUID bit: CPUID.01H:ECX[30].
func (n earlyNeed) line() string {
	return fmt.Sprintf("%sthis CPU lacks %s (CPUID.%02XH:%v[%d]), which %s; try %s",
		EarlyPrefix, n.name, n.leaf, n.reg, n.bit(), n.who, n.hint)
}

// earlyRAMLine is what cpuinit prints when the PVH memory map has no RAM
// under the runtime's window.
func earlyRAMLine() string {
	return fmt.Sprintf("%sno RAM for the runtime at [%#x, %#x): give the machine at least %d MiB (-m 512M)",
		EarlyPrefix, RuntimeStart, runtimeEnd, runtimeEnd>>20)
}

// earlyNeedHeader is the size of an entry of the table cpuinit reads before
// its line: leaf, register, mask and the entry's whole size, 4 bytes each.
const earlyNeedHeader = 16

// earlyAsmFile is the assembly file earlyAsm renders, next to this one.
const earlyAsmFile = "early.s"

// earlyAsm renders early.s: the table of earlyNeeds cpuinit walks and the
// lines it prints. The file is generated, so the lines in the assembly and
// the ones tested on the host are the same bytes; TestEarlyAsm fails when it
// is stale (go test ./boot -run TestEarlyAsm -update rewrites it).
func earlyAsm() []byte {
	var b strings.Builder
	b.WriteString(`// Code generated by go test ./boot -run TestEarlyAsm -update (from early.go); DO NOT EDIT.

//go:build tamago

#include "textflag.h"

// earlyNeedTable is the table cpuinit walks, one entry per CPU feature it
// checks: leaf, register (0 EAX, 1 EBX, 2 ECX, 3 EDX), bit mask and the
// entry's size, 4 bytes each, then the line printed when the feature is
// missing, NUL-terminated and padded to 8 bytes. A zero mask ends it.
`)
	off := 0
	for _, n := range earlyNeeds {
		msg := asmString(n.line() + "\r\n")
		fmt.Fprintf(&b, "\n// %s\n", n.line())
		for _, w := range []uint32{n.leaf, uint32(n.reg), n.mask, uint32(earlyNeedHeader + len(msg))} {
			fmt.Fprintf(&b, "DATA\t·earlyNeedTable+%#04x(SB)/4, $%#x\n", off, w)
			off += 4
		}
		off = asmData(&b, "·earlyNeedTable", off, msg)
	}
	b.WriteString("\n// The end of the table.\n")
	for range earlyNeedHeader / 4 {
		fmt.Fprintf(&b, "DATA\t·earlyNeedTable+%#04x(SB)/4, $0\n", off)
		off += 4
	}
	fmt.Fprintf(&b, "GLOBL\t·earlyNeedTable(SB),RODATA,$%#x\n", off)

	b.WriteString("\n// earlyRAMMsg is printed when no RAM holds the runtime's window.\n")
	msg := asmString(earlyRAMLine() + "\r\n")
	n := asmData(&b, "·earlyRAMMsg", 0, msg)
	fmt.Fprintf(&b, "GLOBL\t·earlyRAMMsg(SB),RODATA,$%#x\n", n)
	return []byte(b.String())
}

// asmString NUL-terminates s and pads it with NULs to a multiple of 8 bytes.
func asmString(s string) string {
	s += "\x00"
	for len(s)%8 != 0 {
		s += "\x00"
	}
	return s
}

// asmData writes s, a multiple of 8 bytes, as DATA lines of sym from off on,
// and returns the offset after it.
func asmData(b *strings.Builder, sym string, off int, s string) int {
	for i := 0; i < len(s); i += 8 {
		b.WriteString("DATA\t" + sym + fmt.Sprintf("+%#04x(SB)/8, $\"", off))
		for _, c := range []byte(s[i : i+8]) {
			switch {
			case c == '"' || c == '\\':
				b.WriteString(`\` + string(c))
			case c >= ' ' && c <= '~':
				b.WriteByte(c)
			default:
				fmt.Fprintf(b, `\x%02x`, c)
			}
		}
		b.WriteString("\"\n")
		off += 8
	}
	return off
}
