//go:build tamago

#include "go_asm.h"
#include "textflag.h"

// physmap's page-fault gate and the probes it rescues; fault.go explains the
// design. Everything the handler touches is fixed storage (pfRec, pfCalling,
// pfTarget, pfChain) or the interrupted stack.

// The frame the processor pushes for an exception with an error code taken
// at the same privilege level in IA-32e mode, as offsets from RSP at the
// handler's first instruction (SDM Vol. 3A 6.14.2, Figure 6-9). With IST 0
// the stack does not switch: the frame sits on the interrupted stack.
#define FRAME_ERR	0
#define FRAME_RIP	8
#define FRAME_CS	16
#define FRAME_RFLAGS	24
#define FRAME_RSP	32
#define FRAME_SS	40

// The handler's save area, below the frame: AX, BX, CX, and one slot for
// the address of TamaGo's handler when the fault is passed on.
#define SAVE_AX		0
#define SAVE_BX		8
#define SAVE_CX		16
#define SAVE_CHAIN	24
#define SAVE_SIZE	32

// The longest x86 instruction (SDM Vol. 2A 2.3.11).
#define MAX_INSN_LEN	15

// Exception table: pairs of (address of an instruction allowed to fault,
// address to resume at), 16 bytes each. Every faulting instruction is the
// first instruction of its own NOFRAME TEXT symbol, so its address is the
// symbol's; the stubs reach it by CALL and the fixup is a bare RET back to
// the stub, which reads the record. Add a pair here for every new probe.
#define EXTABLE_LEN	5
DATA	·extable<>+0x00(SB)/8, $·read64Insn(SB)
DATA	·extable<>+0x08(SB)/8, $·probeFixup(SB)
DATA	·extable<>+0x10(SB)/8, $·write64Insn(SB)
DATA	·extable<>+0x18(SB)/8, $·probeFixup(SB)
DATA	·extable<>+0x20(SB)/8, $·write8Insn(SB)
DATA	·extable<>+0x28(SB)/8, $·probeFixup(SB)
DATA	·extable<>+0x30(SB)/8, $·read32Insn(SB)
DATA	·extable<>+0x38(SB)/8, $·probeFixup(SB)
DATA	·extable<>+0x40(SB)/8, $·write32Insn(SB)
DATA	·extable<>+0x48(SB)/8, $·probeFixup(SB)
GLOBL	·extable<>(SB), RODATA, $(EXTABLE_LEN*16)

// pfEntry is physmap's vector-14 gate (SDM Vol. 3A 6.15, "Interrupt 14").
// It recognises a fault of a probe instruction listed in the exception
// table, or the instruction fetch at the address ProbeCall is calling,
// records vector, error code, CR2 and RIP in pfRec, rewrites the saved RIP
// to the fixup and returns with IRETQ. Any other fault goes to TamaGo's
// handler (pfChain) with the registers and the stack exactly as the
// processor left them. It uses 32 bytes of stack below the 48-byte frame,
// touches no flags the frame does not restore, and no SSE state.
TEXT ·pfEntry(SB),NOSPLIT|NOFRAME,$0
	// A fault in ring 3 (CS's RPL, the interrupted CPL) is a process's:
	// user.s hands it to RunUser's caller.
	TESTQ	$3, FRAME_CS(SP)
	JZ	kernelpf
	SUBQ	$8, SP
	MOVQ	$const_VECTOR_PF, 0(SP)
	JMP	·userTrap(SB)

kernelpf:
	SUBQ	$SAVE_SIZE, SP
	MOVQ	AX, SAVE_AX(SP)
	MOVQ	BX, SAVE_BX(SP)
	MOVQ	CX, SAVE_CX(SP)

	MOVQ	(SAVE_SIZE+FRAME_RIP)(SP), AX

	// Look the faulting RIP up; the table is a handful of entries, so a
	// linear scan.
	LEAQ	·extable<>(SB), BX
	MOVQ	$EXTABLE_LEN, CX
scan:
	CMPQ	AX, 0(BX)
	JEQ	found
	ADDQ	$16, BX
	DECQ	CX
	JNZ	scan

	// Not a table entry: is it ProbeCall's fetch fault? Then RIP is the
	// called address itself and CR2 lies within the first instruction
	// (equal to it unless the instruction straddles a page boundary). The
	// I bit is not required: the processor reports it only with
	// EFER.NXE or CR4.SMEP set (SDM Vol. 3A 4.7).
	CMPQ	·pfCalling(SB), $0
	JEQ	chain
	MOVQ	·pfTarget(SB), BX
	CMPQ	AX, BX
	JNE	chain
	MOVQ	CR2, CX
	SUBQ	BX, CX
	CMPQ	CX, $MAX_INSN_LEN
	JAE	chain
	MOVQ	$0, ·pfCalling(SB)
	MOVQ	$·probeFixup(SB), BX
	JMP	record

found:
	MOVQ	8(BX), BX

record:
	// AX: faulting RIP, BX: fixup.
	MOVQ	AX, ·pfRec+faultRecord_rip(SB)
	MOVQ	(SAVE_SIZE+FRAME_ERR)(SP), CX
	MOVQ	CX, ·pfRec+faultRecord_code(SB)
	MOVQ	CR2, CX
	MOVQ	CX, ·pfRec+faultRecord_cr2(SB)
	MOVQ	$const_VECTOR_PF, ·pfRec+faultRecord_vector(SB)
	MOVQ	$1, ·pfRec+faultRecord_hit(SB)

	MOVQ	BX, (SAVE_SIZE+FRAME_RIP)(SP)
	MOVQ	SAVE_AX(SP), AX
	MOVQ	SAVE_BX(SP), BX
	MOVQ	SAVE_CX(SP), CX
	ADDQ	$(SAVE_SIZE+8), SP	// the save area and the error code
	IRETQ

chain:
	// Leave with the error code on top of the stack, as TamaGo's gate
	// expects it: RET pops the chain slot into RIP.
	MOVQ	·pfChain(SB), AX
	MOVQ	AX, SAVE_CHAIN(SP)
	MOVQ	SAVE_AX(SP), AX
	MOVQ	SAVE_BX(SP), BX
	MOVQ	SAVE_CX(SP), CX
	ADDQ	$SAVE_CHAIN, SP
	RET

// The instructions allowed to fault, each its own symbol (see extable).
// Register convention with the stubs: BX holds the address, AX the value.

TEXT ·read64Insn(SB),NOSPLIT|NOFRAME,$0
	MOVQ	(BX), AX
	RET

TEXT ·write64Insn(SB),NOSPLIT|NOFRAME,$0
	MOVQ	AX, (BX)
	RET

TEXT ·write8Insn(SB),NOSPLIT|NOFRAME,$0
	MOVB	AX, (BX)
	RET

// The 32-bit accesses device registers need (a LAPIC or IOAPIC register is
// read and written as one aligned doubleword: SDM Vol. 3A 11.4.1; 82093AA
// datasheet 3.0).
TEXT ·read32Insn(SB),NOSPLIT|NOFRAME,$0
	MOVL	(BX), AX
	RET

TEXT ·write32Insn(SB),NOSPLIT|NOFRAME,$0
	MOVL	AX, (BX)
	RET

// probeFixup is where a rescued fault resumes: its RET pops the return
// address the stub's CALL pushed, whether the faulting instruction was a
// table entry or the first one of ProbeCall's callee.
TEXT ·probeFixup(SB),NOSPLIT|NOFRAME,$0
	RET

// RECORD copies pfRec to a stub's results after the probe. hit is 0 when
// nothing faulted: the stub clears it before the access.
#define RECORD(hit, vector, code, cr2, rip) \
	MOVQ	·pfRec+faultRecord_hit(SB), CX; \
	MOVQ	CX, hit; \
	MOVQ	·pfRec+faultRecord_vector(SB), CX; \
	MOVQ	CX, vector; \
	MOVQ	·pfRec+faultRecord_code(SB), CX; \
	MOVQ	CX, code; \
	MOVQ	·pfRec+faultRecord_cr2(SB), CX; \
	MOVQ	CX, cr2; \
	MOVQ	·pfRec+faultRecord_rip(SB), CX; \
	MOVQ	CX, rip

// func probeRead64(va uint64) (val, hit, vector, code, cr2, rip uint64)
TEXT ·probeRead64(SB),NOSPLIT,$0-56
	MOVQ	$0, ·pfRec+faultRecord_hit(SB)
	MOVQ	va+0(FP), BX
	XORL	AX, AX
	CALL	·read64Insn(SB)
	MOVQ	AX, val+8(FP)
	RECORD(hit+16(FP), vector+24(FP), code+32(FP), cr2+40(FP), rip+48(FP))
	RET

// func probeWrite64(va, val uint64) (hit, vector, code, cr2, rip uint64)
TEXT ·probeWrite64(SB),NOSPLIT,$0-56
	MOVQ	$0, ·pfRec+faultRecord_hit(SB)
	MOVQ	va+0(FP), BX
	MOVQ	val+8(FP), AX
	CALL	·write64Insn(SB)
	RECORD(hit+16(FP), vector+24(FP), code+32(FP), cr2+40(FP), rip+48(FP))
	RET

// func probeWrite8(va uint64, val uint8) (hit, vector, code, cr2, rip uint64)
TEXT ·probeWrite8(SB),NOSPLIT,$0-56
	MOVQ	$0, ·pfRec+faultRecord_hit(SB)
	MOVQ	va+0(FP), BX
	MOVBQZX	val+8(FP), AX
	CALL	·write8Insn(SB)
	RECORD(hit+16(FP), vector+24(FP), code+32(FP), cr2+40(FP), rip+48(FP))
	RET

// func probeRead32(va uint64) (val uint32, hit, vector, code, cr2, rip uint64)
TEXT ·probeRead32(SB),NOSPLIT,$0-56
	MOVQ	$0, ·pfRec+faultRecord_hit(SB)
	MOVQ	va+0(FP), BX
	XORL	AX, AX
	CALL	·read32Insn(SB)
	MOVL	AX, val+8(FP)
	RECORD(hit+16(FP), vector+24(FP), code+32(FP), cr2+40(FP), rip+48(FP))
	RET

// func probeWrite32(va uint64, val uint32) (hit, vector, code, cr2, rip uint64)
TEXT ·probeWrite32(SB),NOSPLIT,$0-56
	MOVQ	$0, ·pfRec+faultRecord_hit(SB)
	MOVQ	va+0(FP), BX
	MOVL	val+8(FP), AX
	CALL	·write32Insn(SB)
	RECORD(hit+16(FP), vector+24(FP), code+32(FP), cr2+40(FP), rip+48(FP))
	RET

// func probeCall(va uint64) (ret, hit, vector, code, cr2, rip uint64)
//
// Calls va with AX zeroed and the ProbeCall convention of fault.go. The
// callee may clobber every general-purpose register but RSP: BP comes back
// from the frame the assembler saves it in, and Go's ABI wrapper reloads
// R14 and X15 after any ABI0 call.
TEXT ·probeCall(SB),NOSPLIT,$0-56
	MOVQ	$0, ·pfRec+faultRecord_hit(SB)
	MOVQ	va+0(FP), BX
	MOVQ	BX, ·pfTarget(SB)
	MOVQ	$1, ·pfCalling(SB)
	XORL	AX, AX
	CALL	BX
	MOVQ	$0, ·pfCalling(SB)
	MOVQ	AX, ret+8(FP)
	RECORD(hit+16(FP), vector+24(FP), code+32(FP), cr2+40(FP), rip+48(FP))
	RET

// func pfEntryPC() uint64
TEXT ·pfEntryPC(SB),NOSPLIT,$0-8
	MOVQ	$·pfEntry(SB), AX
	MOVQ	AX, ret+0(FP)
	RET

// func sidt() (base uint64, limit uint16)
//
// SIDT stores the 10-byte IDTR, limit then base (SDM Vol. 2B "SIDT").
TEXT ·sidt(SB),NOSPLIT,$16-10
	SIDT	0(SP)
	MOVWQZX	0(SP), AX
	MOVQ	2(SP), BX
	MOVQ	BX, base+0(FP)
	MOVW	AX, limit+8(FP)
	RET

// func readCS() uint16
//
// The current code segment selector (SDM Vol. 2A "MOV—Move", segment
// register forms).
TEXT ·readCS(SB),NOSPLIT,$0-2
	MOVW	CS, AX
	MOVW	AX, ret+0(FP)
	RET
