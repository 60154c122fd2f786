package amd64

import "fmt"

// The pure half of running code in ring 3: Linux's user segments, the
// SYSCALL MSRs as Linux's syscall_init writes them, and what a return from
// user mode reports. The switch itself is in user.go and user.s.

// Linux's GDT entries for user mode and their selectors
// (arch/x86/include/asm/segment.h, 64-bit): SYSRET takes the 32-bit code
// selector from STAR[63:48] and finds the data and 64-bit code segments 8
// and 16 bytes above it, so the three sit in that order.
const (
	GDT_ENTRY_DEFAULT_USER32_CS = 4
	GDT_ENTRY_DEFAULT_USER_DS   = 5
	GDT_ENTRY_DEFAULT_USER_CS   = 6

	RPL_USER     = 3
	USER32_CS    = GDT_ENTRY_DEFAULT_USER32_CS*8 + RPL_USER // __USER32_CS, 0x23
	USER_DS      = GDT_ENTRY_DEFAULT_USER_DS*8 + RPL_USER   // __USER_DS, 0x2b
	USER_CS      = GDT_ENTRY_DEFAULT_USER_CS*8 + RPL_USER   // __USER_CS, 0x33
	SEG_RPL_MASK = 3
)

// The flags words of gdt_page's user descriptors (arch/x86/kernel/cpu/common.c,
// GDT_ENTRY_INIT(flags, 0, 0xfffff)): access byte in bits 0-7 (present,
// DPL 3, code or data), G, D/B and L in bits 12-15.
const (
	DESC_USER32_CS = 0xc0fb // 32-bit code, DPL 3, 4 GiB
	DESC_USER_DS   = 0xc0f3 // data, DPL 3
	DESC_USER_CS   = 0xa0fb // 64-bit code (L), DPL 3
)

// SegmentDescriptor encodes a code or data descriptor as Linux's
// GDT_ENTRY_INIT does (SDM Vol. 3A 3.4.5, Figure 3-8): limit 0-15, base
// 0-23, the flags' low byte (the access byte), limit 16-19, the flags' high
// nibble (AVL, L, D/B, G), base 24-31.
func SegmentDescriptor(flags uint16, base, limit uint32) uint64 {
	return uint64(limit&0xffff) | uint64(base&0xffffff)<<16 | uint64(flags&0xff)<<40 |
		uint64(limit>>16&0xf)<<48 | uint64(flags>>12&0xf)<<52 | uint64(base>>24)<<56
}

// SegmentDPL is a code or data descriptor's privilege level.
func SegmentDPL(desc uint64) int { return int(desc >> 45 & 3) }

// The SYSCALL MSRs (SDM Vol. 4, Table 2-2) and EFER's enable bit.
const (
	MSR_STAR         = 0xc000_0081 // SYSCALL's and SYSRET's segments
	MSR_LSTAR        = 0xc000_0082 // 64-bit SYSCALL's entry point
	MSR_CSTAR        = 0xc000_0083 // compatibility-mode SYSCALL's entry point
	MSR_SYSCALL_MASK = 0xc000_0084 // RFLAGS bits SYSCALL clears
	MSR_FS_BASE      = 0xc000_0100
	MSR_GS_BASE      = 0xc000_0101

	EFER_SCE = 1 << 0 // SYSCALL/SYSRET enable
)

// RFLAGS bits (SDM Vol. 1 3.4.3).
const (
	RFLAGS_CF    = 1 << 0
	RFLAGS_FIXED = 1 << 1 // always 1
	RFLAGS_PF    = 1 << 2
	RFLAGS_AF    = 1 << 4
	RFLAGS_ZF    = 1 << 6
	RFLAGS_SF    = 1 << 7
	RFLAGS_TF    = 1 << 8
	RFLAGS_IF    = 1 << 9
	RFLAGS_DF    = 1 << 10
	RFLAGS_OF    = 1 << 11
	RFLAGS_IOPL  = 3 << 12
	RFLAGS_NT    = 1 << 14
	RFLAGS_RF    = 1 << 16
	RFLAGS_AC    = 1 << 18
	RFLAGS_ID    = 1 << 21
)

// SyscallMask is what Linux 6.1's syscall_init writes to MSR_SYSCALL_MASK
// (arch/x86/kernel/cpu/common.c): every arithmetic flag, TF, IF, DF, IOPL,
// NT, RF, AC and ID clear on entry.
const SyscallMask = RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_TF |
	RFLAGS_IF | RFLAGS_DF | RFLAGS_OF | RFLAGS_IOPL | RFLAGS_NT | RFLAGS_RF | RFLAGS_AC | RFLAGS_ID

// UserFlags are the RFLAGS bits a process may keep across a return to it:
// the arithmetic flags, DF and AC (which POPF in ring 3 can set, SDM Vol. 2B
// "POPF"). TF, IOPL, NT and RF are never returned set; IF is the
// kernel's to set (the user region sets it, as Linux runs processes with
// IF=1).
const UserFlags = RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_DF | RFLAGS_OF | RFLAGS_AC

// STAR returns MSR_STAR as syscall_init writes it: wrmsr(MSR_STAR, 0,
// (__USER32_CS << 16) | __KERNEL_CS), the kernel's code selector in bits
// 32-47 and __USER32_CS in bits 48-63.
func STAR(kernelCS uint16) uint64 { return uint64(USER32_CS)<<48 | uint64(kernelCS)<<32 }

// UserRegs are a process's registers as the kernel keeps them between two
// entries to ring 3.
type UserRegs struct {
	AX, BX, CX, DX, SI, DI, BP uint64
	R8, R9, R10, R11           uint64
	R12, R13, R14, R15         uint64
	RIP, RSP, RFLAGS           uint64
}

// Cause is why a process left ring 3.
type Cause uint8

// The causes.
const (
	CauseSyscall   Cause = 1 // a SYSCALL instruction
	CauseException Cause = 2 // an exception taken in ring 3
)

// Exception vectors a process can raise (SDM Vol. 3A 6.3.1, Table 6-1).
const (
	VECTOR_DE = 0
	VECTOR_DB = 1
	VECTOR_UD = 6
	VECTOR_NM = 7
	VECTOR_SS = 12
	VECTOR_GP = 13
	VECTOR_MF = 16
	VECTOR_AC = 17
	VECTOR_XM = 19
)

// The interrupt vectors a process can be interrupted by, Linux's
// (arch/x86/include/asm/irq_vectors.h): the LAPIC timer's and the LAPIC's
// spurious vector.
const (
	VECTOR_LOCAL_TIMER = 0xec // LOCAL_TIMER_VECTOR
	VECTOR_SPURIOUS    = 0xff // SPURIOUS_APIC_VECTOR
)

// VectorName is the SDM's mnemonic for an exception vector.
func VectorName(v uint8) string {
	names := map[uint8]string{VECTOR_DE: "#DE", VECTOR_DB: "#DB", VECTOR_UD: "#UD", VECTOR_NM: "#NM",
		VECTOR_SS: "#SS", VECTOR_GP: "#GP", VECTOR_PF: "#PF", VECTOR_MF: "#MF", VECTOR_AC: "#AC", VECTOR_XM: "#XM",
		VECTOR_LOCAL_TIMER: "the LAPIC timer (vector 0xec)"}
	if n, ok := names[v]; ok {
		return n
	}
	return fmt.Sprintf("vector %d", v)
}

// Trap is what the CPU recorded when a process left ring 3.
type Trap struct {
	Cause  Cause
	Vector uint8  // the exception's vector
	Code   uint64 // its error code (0 for vectors without one)
	CR2    uint64 // CR2 at the exception (a #PF's address)
	// CS and SS are the selectors the exception frame holds: the code
	// the CPU interrupted. SYSCALL saves none (both 0).
	CS, SS uint64
	// EntryCR3 is CR3 as the entry code found it, before anything else
	// ran; EntryRIP the address a system call's entry stub ran at.
	EntryCR3, EntryRIP uint64
	// KernelCR3 is the root the kernel then ran under, as its caller read
	// it (under PTI, the kernel copy the entry code switched to).
	KernelCR3 uint64
}

// String describes the trap for the console: "syscall" or "#PF 0x5 (P
// read U) at 0xffff888000001000".
func (t Trap) String() string {
	switch t.Cause {
	case CauseSyscall:
		return "syscall"
	case CauseException:
		if t.Vector == VECTOR_PF {
			return fmt.Sprintf("#PF %#x (%v) at %#x", t.Code, PFError(t.Code), t.CR2)
		}
		return fmt.Sprintf("%s error code %#x", VectorName(t.Vector), t.Code)
	}
	return fmt.Sprintf("cause %d", t.Cause)
}

// PTIScratch is where the PTI entry stub spills RAX: the two lowest words
// of the cpu_entry_area's entry stack, CPU_ENTRY_AREA_BASE + 0x2000
// (user.s encodes it in the instructions; the cpu_entry_area must put its
// entry stack there).
const PTIScratch = 0xfffffe0000002000

// PTIText is the entry code PTI's user copy maps, in the runtime's window
// (the kernel maps its alias in the kernel text mapping): [Start, End)
// holds the SYSCALL stubs, the gate stubs and the exit to ring 3, as
// Linux's .entry.text holds entry_SYSCALL_64 and the idtentry stubs. The
// rest are entry points in it: LSTAR under PTI, the exit stub, #PF's gate.
type PTIText struct {
	Start, End, LSTAR, Exit, PF uint64
	// Hold is holdLoop, which HoldIn jumps to.
	Hold uint64
}
