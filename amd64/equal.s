#include "textflag.h"

// func equalPage(a, b uint64) bool
//
// Compares the 4096 bytes at a and b, 64 bytes a round with SSE2's PCMPEQB
// (SDM Vol. 2B "PCMPEQB"), which TCG runs as host vector operations.
TEXT ·equalPage(SB),NOSPLIT,$0-17
	MOVQ	a+0(FP), SI
	MOVQ	b+8(FP), DI
	MOVQ	$64, CX
loop:
	MOVOU	0(SI), X0
	MOVOU	16(SI), X1
	MOVOU	32(SI), X2
	MOVOU	48(SI), X3
	MOVOU	0(DI), X4
	MOVOU	16(DI), X5
	MOVOU	32(DI), X6
	MOVOU	48(DI), X7
	PCMPEQB	X4, X0
	PCMPEQB	X5, X1
	PCMPEQB	X6, X2
	PCMPEQB	X7, X3
	PAND	X1, X0
	PAND	X3, X2
	PAND	X2, X0
	PMOVMSKB	X0, AX
	CMPL	AX, $0xffff
	JNE	differ
	ADDQ	$64, SI
	ADDQ	$64, DI
	DECQ	CX
	JNZ	loop
	MOVB	$1, ret+16(FP)
	RET
differ:
	MOVB	$0, ret+16(FP)
	RET
