//go:build tamago

#include "textflag.h"

// func Sgdt() (base uint64, limit uint16)
//
// SGDT stores the 10-byte GDTR, limit then base (SDM Vol. 2B "SGDT").
TEXT ·Sgdt(SB),NOSPLIT,$16-10
	SGDT	0(SP)
	MOVWQZX	0(SP), AX
	MOVQ	2(SP), BX
	MOVQ	BX, base+0(FP)
	MOVW	AX, limit+8(FP)
	RET

// func Lgdt(base uint64, limit uint16)
//
// LGDT reads the 10-byte pseudo-descriptor, limit then base.
TEXT ·Lgdt(SB),NOSPLIT,$16-10
	MOVW	limit+8(FP), AX
	MOVW	AX, 0(SP)
	MOVQ	base+0(FP), AX
	MOVQ	AX, 2(SP)
	LGDT	0(SP)
	RET

// func Lidt(base uint64, limit uint16)
TEXT ·Lidt(SB),NOSPLIT,$16-10
	MOVW	limit+8(FP), AX
	MOVW	AX, 0(SP)
	MOVQ	base+0(FP), AX
	MOVQ	AX, 2(SP)
	LIDT	0(SP)
	RET

// func Ltr(sel uint16)
TEXT ·Ltr(SB),NOSPLIT,$0-2
	MOVW	sel+0(FP), AX
	LTR	AX
	RET

// func Str() uint16
//
// STR EAX spelt as bytes (0F 00 /1, ModRM C8): the assembler has no STR.
TEXT ·Str(SB),NOSPLIT,$0-2
	XORL	AX, AX
	BYTE	$0x0f; BYTE $0x00; BYTE $0xc8
	MOVW	AX, ret+0(FP)
	RET
