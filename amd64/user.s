//go:build tamago

#include "go_asm.h"
#include "textflag.h"

// Entering and leaving ring 3; user.go explains the design. Every access
// to uf, kf, stubCR3 and userChain is RIP-relative, so the syscall entry
// stubs run as well through the image's alias in the kernel text mapping
// (where MSR_LSTAR points) as in the runtime's window.

#define FSBASE	0xc0000100
#define GSBASE	0xc0000101

// SAVE_USER stores the general-purpose registers but AX, CX and SP in uf.
#define SAVE_USER \
	MOVQ	BX, ·uf+userFrame_bx(SB); \
	MOVQ	DX, ·uf+userFrame_dx(SB); \
	MOVQ	SI, ·uf+userFrame_si(SB); \
	MOVQ	DI, ·uf+userFrame_di(SB); \
	MOVQ	BP, ·uf+userFrame_bp(SB); \
	MOVQ	R8, ·uf+userFrame_r8(SB); \
	MOVQ	R9, ·uf+userFrame_r9(SB); \
	MOVQ	R10, ·uf+userFrame_r10(SB); \
	MOVQ	R11, ·uf+userFrame_r11(SB); \
	MOVQ	R12, ·uf+userFrame_r12(SB); \
	MOVQ	R13, ·uf+userFrame_r13(SB); \
	MOVQ	R14, ·uf+userFrame_r14(SB); \
	MOVQ	R15, ·uf+userFrame_r15(SB)

// LOAD_USER loads them back (but AX, CX, R11 and SP).
#define LOAD_USER \
	MOVQ	·uf+userFrame_bx(SB), BX; \
	MOVQ	·uf+userFrame_dx(SB), DX; \
	MOVQ	·uf+userFrame_si(SB), SI; \
	MOVQ	·uf+userFrame_di(SB), DI; \
	MOVQ	·uf+userFrame_bp(SB), BP; \
	MOVQ	·uf+userFrame_r8(SB), R8; \
	MOVQ	·uf+userFrame_r9(SB), R9; \
	MOVQ	·uf+userFrame_r10(SB), R10; \
	MOVQ	·uf+userFrame_r12(SB), R12; \
	MOVQ	·uf+userFrame_r13(SB), R13; \
	MOVQ	·uf+userFrame_r14(SB), R14; \
	MOVQ	·uf+userFrame_r15(SB), R15

// func enterUser()
//
// Saves the kernel's callee state, its RFLAGS and its FS and GS bases (a
// process may load FS or GS, which resets their bases; the runtime keeps
// its TLS at FS), loads the process's CR3 and enters ring 3 at __USER_CS
// (SDM Vol. 2A "IRET"; Vol. 2B "SYSRET": RIP from RCX, RFLAGS from R11,
// CS and SS from STAR[63:48] + 16 and + 8). leaveUser returns from it.
TEXT ·enterUser(SB),NOSPLIT|NOFRAME,$0
	PUSHFQ
	POPQ	AX
	MOVQ	AX, ·kf+kernelFrame_flags(SB)
	CLI
	MOVQ	SP, ·kf+kernelFrame_sp(SB)
	MOVQ	BP, ·kf+kernelFrame_bp(SB)
	MOVQ	BX, ·kf+kernelFrame_bx(SB)
	MOVQ	R12, ·kf+kernelFrame_r12(SB)
	MOVQ	R13, ·kf+kernelFrame_r13(SB)
	MOVQ	R14, ·kf+kernelFrame_r14(SB)
	MOVQ	R15, ·kf+kernelFrame_r15(SB)
	MOVL	$FSBASE, CX
	RDMSR
	MOVL	AX, ·kf+kernelFrame_fsbase(SB)
	MOVL	DX, ·kf+kernelFrame_fsbase+4(SB)
	MOVL	$GSBASE, CX
	RDMSR
	MOVL	AX, ·kf+kernelFrame_gsbase(SB)
	MOVL	DX, ·kf+kernelFrame_gsbase+4(SB)

	MOVQ	·uf+userFrame_cr3(SB), AX
	MOVQ	AX, CR3

	CMPQ	·uf+userFrame_pti(SB), $0
	JNE	pti
	CMPQ	·uf+userFrame_sysret(SB), $0
	JNE	sysret
	// The IRETQ frame (SDM Vol. 3A 6.14.3): RIP, CS, RFLAGS, RSP, SS.
	// SUBQ and MOVQ rather than PUSHQ: the assembler holds PUSH and POP
	// to balance within a function, and this frame is never popped here.
	SUBQ	$40, SP
	MOVQ	$const_USER_DS, 32(SP)
	MOVQ	·uf+userFrame_rsp(SB), AX
	MOVQ	AX, 24(SP)
	MOVQ	·uf+userFrame_rflags(SB), AX
	MOVQ	AX, 16(SP)
	MOVQ	$const_USER_CS, 8(SP)
	MOVQ	·uf+userFrame_rip(SB), AX
	MOVQ	AX, 0(SP)
	LOAD_USER
	MOVQ	·uf+userFrame_r11(SB), R11
	MOVQ	·uf+userFrame_cx(SB), CX
	MOVQ	·uf+userFrame_ax(SB), AX
	IRETQ

// Under PTI the last instructions before ring 3 run in the user copy,
// which maps neither the runtime's window nor kernel data: the IRETQ
// frame and the process's RAX go on the cpu_entry_area's entry stack
// (mapped in both copies, as Linux's trampoline stack is), with ptiExit's
// alias in the kernel text mapping on top, where RET goes.
pti:
	MOVQ	·uf+userFrame_tramp(SB), SP
	SUBQ	$56, SP
	MOVQ	$const_USER_DS, 48(SP)
	MOVQ	·uf+userFrame_rsp(SB), AX
	MOVQ	AX, 40(SP)
	MOVQ	·uf+userFrame_rflags(SB), AX
	MOVQ	AX, 32(SP)
	MOVQ	$const_USER_CS, 24(SP)
	MOVQ	·uf+userFrame_rip(SB), AX
	MOVQ	AX, 16(SP)
	MOVQ	·uf+userFrame_ax(SB), AX
	MOVQ	AX, 8(SP)
	MOVQ	·uf+userFrame_exitPC(SB), AX
	MOVQ	AX, 0(SP)
	LOAD_USER
	MOVQ	·uf+userFrame_r11(SB), R11
	MOVQ	·uf+userFrame_cx(SB), CX
	RET

sysret:
	LOAD_USER
	MOVQ	·uf+userFrame_ax(SB), AX
	MOVQ	·uf+userFrame_rip(SB), CX
	MOVQ	·uf+userFrame_rflags(SB), R11
	MOVQ	·uf+userFrame_rsp(SB), SP
	// SYSRETQ: REX.W 0F 07 (without REX.W it returns to 32-bit code).
	BYTE	$0x48; BYTE $0x0f; BYTE $0x07

// leaveUser restores what enterUser saved and returns from it, with the
// process's registers and the cause in uf. Entered by JMP, on any stack.
TEXT ·leaveUser(SB),NOSPLIT|NOFRAME,$0
	MOVL	$FSBASE, CX
	MOVL	·kf+kernelFrame_fsbase(SB), AX
	MOVL	·kf+kernelFrame_fsbase+4(SB), DX
	WRMSR
	MOVL	$GSBASE, CX
	MOVL	·kf+kernelFrame_gsbase(SB), AX
	MOVL	·kf+kernelFrame_gsbase+4(SB), DX
	WRMSR
	MOVQ	·kf+kernelFrame_sp(SB), SP
	MOVQ	·kf+kernelFrame_bp(SB), BP
	MOVQ	·kf+kernelFrame_bx(SB), BX
	MOVQ	·kf+kernelFrame_r12(SB), R12
	MOVQ	·kf+kernelFrame_r13(SB), R13
	MOVQ	·kf+kernelFrame_r14(SB), R14
	MOVQ	·kf+kernelFrame_r15(SB), R15
	CLD
	PUSHQ	·kf+kernelFrame_flags(SB)
	POPFQ
	RET

// ptiEntryText marks the start of the code PTI's user copy maps, as
// __entry_text_start does: everything from here to ptiEntryTextEnd.
TEXT ·ptiEntryText(SB),NOSPLIT|NOFRAME,$0
	BYTE	$0xcc

// ptiExit switches to the user copy and returns to ring 3, reached by RET
// from enterUser at its alias, with the process's registers loaded, the
// process's RAX and the IRETQ frame on the entry stack. It reads ucr3
// while kernel data is still mapped, then touches only the entry stack.
// Under PTI the kernel's mappings are not global but the ones both copies
// share, so the CR3 load drops every other translation the kernel left
// in the TLB (SDM Vol. 3A 4.10.4.1), as SWITCH_TO_USER_CR3's does on a
// CPU without PCID.
TEXT ·ptiExit(SB),NOSPLIT|NOFRAME,$0
	MOVQ	·uf+userFrame_ucr3(SB), AX
	MOVQ	AX, CR3
	MOVQ	0(SP), AX
	ADDQ	$8, SP
	IRETQ

// The PTI scratch words: the lowest two of the cpu_entry_area's entry
// stack, at a fixed address (CPU_ENTRY_AREA_BASE is not randomized in
// Linux 6.1). MOV with a 64-bit absolute address exists only for RAX
// (SDM Vol. 2B "MOV", opcodes A1 and A3).
#define SCRATCH(lo) BYTE $lo; BYTE $0x20; BYTE $0x00; BYTE $0x00; BYTE $0x00; BYTE $0xfe; BYTE $0xff; BYTE $0xff
#define STORE_RAX(lo) BYTE $0x48; BYTE $0xa3; SCRATCH(lo)
#define LOAD_RAX(lo) BYTE $0x48; BYTE $0xa1; SCRATCH(lo)

// syscallEntryPTI is MSR_LSTAR's target under PTI. Its first acts switch
// to the kernel copy as SWITCH_TO_KERNEL_CR3 does (clear CR3 bits 12 and
// 11), with RAX as the scratch register, spilled to the entry stack where
// entry_SYSCALL_64 spills RSP to TSS.sp2; CR3 as it found it is kept
// there too, for the check.
TEXT ·syscallEntryPTI(SB),NOSPLIT|NOFRAME,$0
	STORE_RAX(0x00)
	MOVQ	CR3, AX
	STORE_RAX(0x08)
	ANDQ	$-6145, AX
	MOVQ	AX, CR3
	LOAD_RAX(0x00)
	MOVQ	SP, ·uf+userFrame_rsp(SB)
	MOVQ	AX, ·uf+userFrame_ax(SB)
	LOAD_RAX(0x08)
	MOVQ	AX, ·uf+userFrame_entryCR3(SB)
	LEAQ	·syscallEntryPTI(SB), AX
	MOVQ	AX, ·uf+userFrame_entryRIP(SB)
	JMP	·syscallCommon(SB)

// syscallEntry is MSR_LSTAR's target (SDM Vol. 2B "SYSCALL": RCX holds the
// return RIP, R11 RFLAGS, RSP is still the process's, RFLAGS is masked by
// MSR_SYSCALL_MASK, so IF is clear). It records CR3 before anything else
// could change it, and its own address as it runs.
TEXT ·syscallEntry(SB),NOSPLIT|NOFRAME,$0
	MOVQ	SP, ·uf+userFrame_rsp(SB)
	MOVQ	AX, ·uf+userFrame_ax(SB)
	MOVQ	CR3, AX
	MOVQ	AX, ·uf+userFrame_entryCR3(SB)
	LEAQ	·syscallEntry(SB), AX
	MOVQ	AX, ·uf+userFrame_entryRIP(SB)
	JMP	·syscallCommon(SB)

// syscallEntryCR3 switches CR3 to stubCR3 first, with RSP as the scratch
// register, as PTI's entry_SYSCALL_64 does with SWITCH_TO_KERNEL_CR3.
TEXT ·syscallEntryCR3(SB),NOSPLIT|NOFRAME,$0
	MOVQ	SP, ·uf+userFrame_rsp(SB)
	MOVQ	·stubCR3(SB), SP
	MOVQ	SP, CR3
	MOVQ	AX, ·uf+userFrame_ax(SB)
	MOVQ	CR3, AX
	MOVQ	AX, ·uf+userFrame_entryCR3(SB)
	LEAQ	·syscallEntryCR3(SB), AX
	MOVQ	AX, ·uf+userFrame_entryRIP(SB)
	JMP	·syscallCommon(SB)

TEXT ·syscallCommon(SB),NOSPLIT|NOFRAME,$0
	SAVE_USER
	MOVQ	CX, ·uf+userFrame_cx(SB)
	MOVQ	CX, ·uf+userFrame_rip(SB)
	MOVQ	R11, ·uf+userFrame_rflags(SB)
	XORL	AX, AX
	MOVQ	AX, ·uf+userFrame_vector(SB)
	MOVQ	AX, ·uf+userFrame_code(SB)
	MOVQ	AX, ·uf+userFrame_cr2(SB)
	MOVQ	AX, ·uf+userFrame_cs(SB)
	MOVQ	AX, ·uf+userFrame_ss(SB)
	MOVQ	$const_CauseSyscall, ·uf+userFrame_cause(SB)
	JMP	·leaveUser(SB)

// ignoreSysret is MSR_CSTAR's target: -ENOSYS, straight back to 32-bit
// code (SYSRETL, 0F 07).
TEXT ·ignoreSysret(SB),NOSPLIT|NOFRAME,$0
	MOVL	$-38, AX
	BYTE	$0x0f; BYTE $0x07

// userTrap is reached from a gate stub with an exception taken in ring 3,
// on the stack TSS.RSP0 (or the gate's IST) names: the vector, the error
// code (0 for vectors without one), then the CPU's frame (RIP, CS, RFLAGS,
// RSP, SS; SDM Vol. 3A 6.14.2). They are read, not popped: the stack is
// abandoned, and the next entry starts again at its top.
//
// Under PTI (entered at its alias, from the user copy) it switches to the
// kernel copy first, with RAX spilled on that stack, as the entry stubs'
// SWITCH_TO_KERNEL_CR3 does, and records CR3 as it found it.
TEXT ·userTrap(SB),NOSPLIT|NOFRAME,$0
	SUBQ	$16, SP
	MOVQ	AX, 8(SP)
	MOVQ	CR3, AX
	MOVQ	AX, 0(SP)
	// Under PTI the gates are the stubs' aliases in the kernel text
	// mapping: running in the kernel half says PTI (a root without PTI
	// may well have bit 12 set).
	LEAQ	·userTrap(SB), AX
	TESTQ	AX, AX
	JNS	kcopy
	MOVQ	0(SP), AX
	ANDQ	$-6145, AX
	MOVQ	AX, CR3
kcopy:
	MOVQ	0(SP), AX
	MOVQ	AX, ·uf+userFrame_entryCR3(SB)
	MOVQ	8(SP), AX
	ADDQ	$16, SP
	MOVQ	AX, ·uf+userFrame_ax(SB)
	MOVQ	CX, ·uf+userFrame_cx(SB)
	SAVE_USER
	MOVQ	0(SP), AX
	MOVQ	AX, ·uf+userFrame_vector(SB)
	MOVQ	8(SP), AX
	MOVQ	AX, ·uf+userFrame_code(SB)
	MOVQ	16(SP), AX
	MOVQ	AX, ·uf+userFrame_rip(SB)
	MOVQ	24(SP), AX
	MOVQ	AX, ·uf+userFrame_cs(SB)
	MOVQ	32(SP), AX
	MOVQ	AX, ·uf+userFrame_rflags(SB)
	MOVQ	40(SP), AX
	MOVQ	AX, ·uf+userFrame_rsp(SB)
	MOVQ	48(SP), AX
	MOVQ	AX, ·uf+userFrame_ss(SB)
	MOVQ	CR2, AX
	MOVQ	AX, ·uf+userFrame_cr2(SB)
	MOVQ	$0, ·uf+userFrame_entryRIP(SB)
	MOVQ	$const_CauseException, ·uf+userFrame_cause(SB)
	JMP	·leaveUser(SB)

// CHAIN passes an exception taken in ring 0 to the gate that was replaced,
// registers and stack as the CPU left them: a slot below the frame gets
// the chained entry point, AX comes back, RET jumps. (Slots are made with
// SUBQ and MOVQ throughout: the assembler holds PUSH and POP to balance
// at each RET, and these leave by JMP or hand the slot to RET.)
#define CHAIN(vec) \
	SUBQ	$8, SP; \
	MOVQ	AX, 0(SP); \
	MOVQ	·userChain+(vec*8)(SB), AX; \
	XCHGQ	AX, 0(SP); \
	RET

// The gate stubs. Without an error code the CPU's frame starts with RIP,
// CS at 8(SP); with one (#SS, #GP, #AC) CS is at 16(SP). CS's RPL is the
// interrupted CPL.
#define TRAP_NOERR(vec) \
	TESTQ	$3, 8(SP); \
	JZ	kernel; \
	SUBQ	$16, SP; \
	MOVQ	$0, 8(SP); \
	MOVQ	$vec, 0(SP); \
	JMP	·userTrap(SB); \
kernel: \
	CHAIN(vec)

#define TRAP_ERR(vec) \
	TESTQ	$3, 16(SP); \
	JZ	kernel; \
	SUBQ	$8, SP; \
	MOVQ	$vec, 0(SP); \
	JMP	·userTrap(SB); \
kernel: \
	CHAIN(vec)

TEXT ·trapDE(SB),NOSPLIT|NOFRAME,$0
	TRAP_NOERR(0)

TEXT ·trapDB(SB),NOSPLIT|NOFRAME,$0
	TRAP_NOERR(1)

TEXT ·trapUD(SB),NOSPLIT|NOFRAME,$0
	TRAP_NOERR(6)

TEXT ·trapNM(SB),NOSPLIT|NOFRAME,$0
	TRAP_NOERR(7)

TEXT ·trapSS(SB),NOSPLIT|NOFRAME,$0
	TRAP_ERR(12)

TEXT ·trapGP(SB),NOSPLIT|NOFRAME,$0
	TRAP_ERR(13)

TEXT ·trapMF(SB),NOSPLIT|NOFRAME,$0
	TRAP_NOERR(16)

TEXT ·trapAC(SB),NOSPLIT|NOFRAME,$0
	TRAP_ERR(17)

TEXT ·trapXM(SB),NOSPLIT|NOFRAME,$0
	TRAP_NOERR(19)

// trapPF is the #PF gate under PTI: a fault in ring 3 goes to userTrap
// from the entry text, one in ring 0 to pfEntry (fault.s), which handles
// the kernel's probes; without PTI the gate is pfEntry itself.
TEXT ·trapPF(SB),NOSPLIT|NOFRAME,$0
	TESTQ	$3, 16(SP)
	JZ	kernel
	SUBQ	$8, SP
	MOVQ	$14, 0(SP)
	JMP	·userTrap(SB)
kernel:
	JMP	·pfEntry(SB)

// trapTimer is the LAPIC timer's gate (LOCAL_TIMER_VECTOR, with no error
// code). From ring 3 it goes to userTrap like an exception, and the
// kernel sends the EOI. In ring 0, where IF is clear but for
// AcceptInterrupt's one instruction, it returns at once: the interrupt
// stays in service until the kernel's EOI.
TEXT ·trapTimer(SB),NOSPLIT|NOFRAME,$0
	TESTQ	$3, 8(SP)
	JZ	kernel
	SUBQ	$16, SP
	MOVQ	$0, 8(SP)
	MOVQ	$const_VECTOR_LOCAL_TIMER, 0(SP)
	JMP	·userTrap(SB)
kernel:
	IRETQ

// trapSpurious is the LAPIC's spurious vector: no EOI, no record (SDM
// Vol. 3A 11.9), from either ring.
TEXT ·trapSpurious(SB),NOSPLIT|NOFRAME,$0
	IRETQ

// holdLoop loads CR3 from AX and halts for good, with interrupts off: the
// machine held for the host to read the tables of an address space, a
// process's among them. It is in the entry text so that PTI's user copy,
// where kernel text is absent, maps it too; HoldIn jumps to it.
TEXT ·holdLoop(SB),NOSPLIT|NOFRAME,$0
	MOVQ	AX, CR3
halt:
	HLT
	JMP	halt

// ptiEntryTextEnd marks the end of the entry text.
TEXT ·ptiEntryTextEnd(SB),NOSPLIT|NOFRAME,$0
	BYTE	$0xcc

// func ptiPCs() (start, end, lstar, exit, pf, hold uint64)
TEXT ·ptiPCs(SB),NOSPLIT,$0-48
	MOVQ	$·ptiEntryText(SB), AX
	MOVQ	AX, start+0(FP)
	MOVQ	$·ptiEntryTextEnd(SB), AX
	MOVQ	AX, end+8(FP)
	MOVQ	$·syscallEntryPTI(SB), AX
	MOVQ	AX, lstar+16(FP)
	MOVQ	$·ptiExit(SB), AX
	MOVQ	AX, exit+24(FP)
	MOVQ	$·trapPF(SB), AX
	MOVQ	AX, pf+32(FP)
	MOVQ	$·holdLoop(SB), AX
	MOVQ	AX, hold+40(FP)
	RET

// func irqPCs() (timer, spurious uint64)
TEXT ·irqPCs(SB),NOSPLIT,$0-16
	MOVQ	$·trapTimer(SB), AX
	MOVQ	AX, timer+0(FP)
	MOVQ	$·trapSpurious(SB), AX
	MOVQ	AX, spurious+8(FP)
	RET

// func AcceptInterrupt()
//
// Opens the interrupt window for one instruction (STI's shadow covers
// the NOP), so that an interrupt already pending is taken here, in ring 0.
TEXT ·AcceptInterrupt(SB),NOSPLIT,$0
	STI
	NOP
	CLI
	RET

// func HoldIn(cr3, pc uint64)
TEXT ·HoldIn(SB),NOSPLIT,$0-16
	CLI
	MOVQ	cr3+0(FP), AX
	MOVQ	pc+8(FP), BX
	JMP	BX

// func syscallEntryPC() uint64
TEXT ·syscallEntryPC(SB),NOSPLIT,$0-8
	MOVQ	$·syscallEntry(SB), AX
	MOVQ	AX, ret+0(FP)
	RET

// func syscallEntryCR3PC() uint64
TEXT ·syscallEntryCR3PC(SB),NOSPLIT,$0-8
	MOVQ	$·syscallEntryCR3(SB), AX
	MOVQ	AX, ret+0(FP)
	RET

// func ignoreSysretPC() uint64
TEXT ·ignoreSysretPC(SB),NOSPLIT,$0-8
	MOVQ	$·ignoreSysret(SB), AX
	MOVQ	AX, ret+0(FP)
	RET

// func trapPCs(out *[9]uint64)
TEXT ·trapPCs(SB),NOSPLIT,$0-8
	MOVQ	out+0(FP), BX
	MOVQ	$·trapDE(SB), AX
	MOVQ	AX, 0(BX)
	MOVQ	$·trapDB(SB), AX
	MOVQ	AX, 8(BX)
	MOVQ	$·trapUD(SB), AX
	MOVQ	AX, 16(BX)
	MOVQ	$·trapNM(SB), AX
	MOVQ	AX, 24(BX)
	MOVQ	$·trapSS(SB), AX
	MOVQ	AX, 32(BX)
	MOVQ	$·trapGP(SB), AX
	MOVQ	AX, 40(BX)
	MOVQ	$·trapMF(SB), AX
	MOVQ	AX, 48(BX)
	MOVQ	$·trapAC(SB), AX
	MOVQ	AX, 56(BX)
	MOVQ	$·trapXM(SB), AX
	MOVQ	AX, 64(BX)
	RET
