//go:build tamago

#include "go_asm.h"
#include "textflag.h"

// Page-table entry bits (Intel SDM Vol. 3A 4.5, Tables 4-15 to 4-20).
#define PTE_P   (1<<0)
#define PTE_RW  (1<<1)
#define PTE_PCD (1<<4)
#define PTE_PS  (1<<7)

#define CR0_PE (1<<0)
#define CR0_MP (1<<1)
#define CR0_EM (1<<2)
#define CR0_PG (1<<31)
#define CR4_PAE (1<<5)
#define CR4_OSFXSR (1<<9)
#define CR4_OSXMMEXCPT (1<<10)
#define CR4_LA57 (1<<12)
#define MSR_EFER 0xc0000080
#define EFER_LME (1<<8)

#define COM1 0x3f8
#define COM1_LSR (COM1+5)	// line status register (16550 data sheet)
#define LSR_THRE (1<<5)	// transmit holding register empty
#define DEBUG_EXIT 0xf4

// "physmap.levels=4" as four little-endian words.
#define OPT0 $0x73796870	// "phys"
#define OPT1 $0x2e70616d	// "map."
#define OPT2 $0x6576656c	// "leve"
#define OPT3 $0x343d736c	// "ls=4"

// A flat GDT: null, 64-bit code (selector 0x08), data (0x10). The accessed
// bits are preset so the CPU never writes to this read-only data (SDM Vol. 3A
// 3.4.5.1).
DATA	·gdt<>+0x00(SB)/8, $0x0000000000000000
DATA	·gdt<>+0x08(SB)/8, $0x00209b0000000000
DATA	·gdt<>+0x10(SB)/8, $0x0000930000000000
GLOBL	·gdt<>(SB),RODATA,$24

DATA	·gdtr<>+0x00(SB)/2, $(3*8-1)
DATA	·gdtr<>+0x02(SB)/8, $·gdt<>(SB)
GLOBL	·gdtr<>(SB),RODATA,$10

// cpuinit runs in 32-bit protected mode: the assembler encodes for 64-bit
// mode, so only instructions that decode the same way are used (no REX
// prefixes, no 64-bit operands), and a symbol's address is found as
// (address after a CALL) + (offset the assembler gives as RIP-relative).
TEXT cpuinit(SB),NOSPLIT|NOFRAME,$0
	CLI
	MOVL	$const_earlyStack, SP
	MOVL	$const_pvhInfoSave, AX
	MOVL	BX, (AX)			// for the kernel to report

	// Every CPU feature used before the kernel's own checks run, in the
	// order of the table early.go generates (early.s): the first one
	// missing is named on COM1 and ends the machine.
	CALL	·pc<>(SB)
	MOVL	$·earlyNeedTable(SB), SI	// 6 bytes: SI = earlyNeedTable - address after it
	ADDL	$6, AX
	ADDL	AX, SI
need:
	MOVL	8(SI), AX			// the feature's mask; 0 ends the table
	TESTL	AX, AX
	JZ	needsok
	MOVL	0(SI), AX			// the highest leaf of the leaf's range
	ANDL	$0x80000000, AX
	CPUID
	CMPL	AX, 0(SI)
	JB	lacks				// the leaf is beyond it
	MOVL	0(SI), AX
	XORL	CX, CX
	CPUID
	SUBL	$16, SP				// EAX, EBX, ECX, EDX as the table numbers them
	MOVL	AX, 0(SP)
	MOVL	BX, 4(SP)
	MOVL	CX, 8(SP)
	MOVL	DX, 12(SP)
	MOVL	4(SI), BX
	MOVL	(SP)(BX*4), AX
	ADDL	$16, SP
	ANDL	8(SI), AX
	CMPL	AX, 8(SI)
	JNE	lacks
	ADDL	12(SI), SI			// the next entry
	JMP	need
lacks:
	ADDL	$const_earlyNeedHeader, SI	// the entry's line
	MOVL	$const_earlyExitCPU, BX
	JMP	earlyfail
needsok:
	XORL	DI, DI				// DI = 1 selects 5-level paging

	// LA57 present? (SDM Vol. 2A CPUID, leaf 07H: ECX[16])
	XORL	AX, AX
	CPUID
	CMPL	AX, $7
	JB	tables
	MOVL	$7, AX
	XORL	CX, CX
	CPUID
	TESTL	$(1<<16), CX
	JZ	tables
	MOVL	$1, DI

	// physmap.levels=4 on the PVH command line keeps 4-level paging.
	// (CPUID overwrote EBX: reload the start_info address.)
	MOVL	$const_pvhInfoSave, BX
	MOVL	(BX), BX
	CMPL	(BX), $const_hvmStartMagic
	JNE	tables
	MOVL	const_hvmStartCmdlineOff(BX), SI
	TESTL	SI, SI
	JZ	tables
	MOVB	$0x20, DL			// the byte before SI: words start after a space
scan:
	MOVB	(SI), AL
	TESTB	AL, AL
	JZ	tables
	CMPB	DL, $0x20
	JNE	next
	CMPL	0(SI), OPT0
	JNE	next
	CMPL	4(SI), OPT1
	JNE	next
	CMPL	8(SI), OPT2
	JNE	next
	CMPL	12(SI), OPT3
	JNE	next
	MOVB	16(SI), AL			// the word must end there
	CMPB	AL, $0x20
	JE	four
	TESTB	AL, AL
	JNE	next
four:
	XORL	DI, DI
	JMP	tables
next:
	MOVB	(SI), DL
	INCL	SI
	JMP	scan

tables:
	// Is there RAM for the runtime? Look for one RAM entry of the PVH
	// memory map (start_info version 1 and later) that holds its window.
	MOVL	$const_pvhInfoSave, BX
	MOVL	(BX), BX
	CMPL	(BX), $const_hvmStartMagic
	JNE	ramok
	CMPL	const_hvmStartVersionOff(BX), $1
	JB	ramok
	MOVL	const_hvmStartMemmapOff(BX), SI
	MOVL	const_hvmStartEntriesOff(BX), CX
	TESTL	SI, SI
	JZ	ramok
ramloop:
	TESTL	CX, CX
	JZ	noram
	CMPL	16(SI), $const_hvmMemmapRAM
	JNE	ramnext
	CMPL	4(SI), $0			// starts above 4 GiB
	JNE	ramnext
	MOVL	0(SI), AX
	CMPL	AX, $const_RuntimeStart
	JA	ramnext
	CMPL	12(SI), $0			// 4 GiB or more long
	JNE	ramok
	ADDL	8(SI), AX
	JC	ramok				// ends above 4 GiB
	CMPL	AX, $const_runtimeEnd
	JAE	ramok
ramnext:
	ADDL	$const_hvmMemmapEntrySize, SI
	DECL	CX
	JMP	ramloop
noram:
	CALL	·pc<>(SB)
	MOVL	$·earlyRAMMsg(SB), SI		// 6 bytes, as above
	ADDL	$6, AX
	ADDL	AX, SI
	MOVL	$const_earlyExitRAM, BX

	// earlyfail prints the NUL-terminated line at SI on COM1 and writes BX
	// to the debug-exit port.
earlyfail:
	MOVL	$COM1_LSR, DX
	INB
	TESTB	$LSR_THRE, AL			// no UART reads 0xff: nothing waits
	JZ	earlyfail
	MOVB	(SI), AL
	TESTB	AL, AL
	JZ	exit
	MOVL	$COM1, DX
	OUTB
	INCL	SI
	JMP	earlyfail
exit:
	MOVL	$DEBUG_EXIT, DX
	MOVL	BX, AX				// QEMU exits with status (BX<<1)|1
	OUTL
	// No debug-exit device: an empty IDT makes the breakpoint a triple
	// fault, which QEMU with -no-reboot turns into a shutdown.
	SUBL	$8, SP
	MOVL	$0, 0(SP)
	MOVL	$0, 4(SP)
	LIDT	(SP)
	INT	$3
	HLT
ramok:
	// Clear the tables.
	MOVL	$const_EARLY_TABLES, BX
clear:
	MOVL	$0, (BX)
	ADDL	$4, BX
	CMPL	BX, $const_earlyEnd
	JB	clear

	// pte table of the first 2 MiB: frame 0 not present, the rest RW.
	MOVL	$(const_earlyPT+8), BX
	MOVL	$(0x1000|PTE_RW|PTE_P), AX
pt:
	MOVL	AX, (BX)
	ADDL	$0x1000, AX
	ADDL	$8, BX
	CMPL	BX, $(const_earlyPT+0x1000)
	JB	pt

	// Four pmd tables of 2 MiB pages: 0-4 GiB, the last GiB uncached.
	MOVL	$const_earlyPD, BX
	MOVL	$(PTE_PS|PTE_RW|PTE_P), AX
pd:
	MOVL	AX, (BX)
	ADDL	$0x200000, AX
	ADDL	$8, BX
	CMPL	BX, $(const_earlyPD+0x4000)
	JB	pd
	MOVL	$(const_earlyPD+0x3000), BX
pcd:
	ORL	$PTE_PCD, (BX)
	ADDL	$8, BX
	CMPL	BX, $(const_earlyPD+0x4000)
	JB	pcd
	MOVL	$const_earlyPD, BX
	MOVL	$(const_earlyPT|PTE_RW|PTE_P), (BX)	// pmd 0 points at the pte table

	// The pud table points at the four pmd tables, the p4d (PML4) table
	// at the pud table, the pgd (PML5) table at the p4d table.
	MOVL	$const_earlyPDPT, BX
	MOVL	$(const_earlyPD|PTE_RW|PTE_P), AX
pdpt:
	MOVL	AX, (BX)
	ADDL	$0x1000, AX
	ADDL	$8, BX
	CMPL	BX, $(const_earlyPDPT+32)
	JB	pdpt
	MOVL	$const_earlyPML4, BX
	MOVL	$(const_earlyPDPT|PTE_RW|PTE_P), (BX)
	MOVL	$const_earlyPML5, BX
	MOVL	$(const_earlyPML4|PTE_RW|PTE_P), (BX)

	// CR4: PAE, SSE state (OSFXSR, OSXMMEXCPT), and LA57 if chosen. Not
	// PGE: nothing here is global, and the kernel checks CPUID for it
	// (cpu.pge) and sets it with its own tables.
	MOVL	$(CR4_PAE|CR4_OSFXSR|CR4_OSXMMEXCPT), AX
	MOVL	$const_earlyPML4, BX
	TESTL	DI, DI
	JZ	cr4
	ORL	$CR4_LA57, AX
	MOVL	$const_earlyPML5, BX
cr4:
	MOVL	AX, CR4
	MOVL	BX, CR3

	// Long mode (SDM Vol. 3A 10.8.5): EFER.LME, then CR0.PG.
	MOVL	$MSR_EFER, CX
	RDMSR
	ORL	$EFER_LME, AX
	WRMSR
	MOVL	CR0, AX
	ANDL	$~CR0_EM, AX
	ORL	$(CR0_PG|CR0_PE|CR0_MP), AX
	MOVL	AX, CR0

	// Load the GDT and far-return into its 64-bit code segment.
	CALL	·pc<>(SB)
	MOVL	$·gdtr<>(SB), BX	// 6 bytes: BX = gdtr - address after it
	ADDL	$6, AX
	ADDL	BX, AX
	LGDT	(AX)
	CALL	·pc<>(SB)
	MOVL	$·start64<>(SB), BX
	ADDL	$6, AX
	ADDL	BX, AX
	PUSHQ	$0x08			// 32-bit mode: pushes CS selector (4 bytes)
	PUSHQ	AX			// and EIP
	BYTE	$0xcb			// RETF

// pc returns in AX the address it returns to.
TEXT ·pc<>(SB),NOSPLIT|NOFRAME,$0
	MOVL	(SP), AX
	RET

// start64 runs in 64-bit mode.
TEXT ·start64<>(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$·gdtr<>(SB), AX
	LGDT	(AX)			// again, with the 64-bit base
	MOVL	$0x10, AX
	MOVW	AX, SS
	MOVW	AX, DS
	MOVW	AX, ES

	// The runtime's stack, where TamaGo puts it.
	MOVQ	runtime∕goos·RamStart(SB), SP
	MOVQ	runtime∕goos·RamSize(SB), AX
	MOVQ	runtime∕goos·RamStackOffset(SB), BX
	ADDQ	AX, SP
	SUBQ	BX, SP

	STI
	JMP	_rt0_tamago_start(SB)
