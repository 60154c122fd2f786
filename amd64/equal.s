#include "textflag.h"

// func equal3Page(a, b, c uint64) uint8
//
// Compares the 4096 bytes at b and at c with those at a, reading each of
// the three once (two two-way compares would read a twice): 0 if both are
// the same as a, 1 if b differs, else 2. 64 bytes of each a round with
// SSE2's PCMPEQB (SDM Vol. 2B "PCMPEQB"), which TCG runs as host vector
// operations.
TEXT ·equal3Page(SB),NOSPLIT,$0-25
	MOVQ	a+0(FP), SI
	MOVQ	b+8(FP), DI
	MOVQ	c+16(FP), DX
	MOVQ	$64, CX
loop3:
	MOVOU	0(SI), X0
	MOVOU	16(SI), X1
	MOVOU	32(SI), X2
	MOVOU	48(SI), X3
	MOVOU	0(DI), X4
	MOVOU	16(DI), X5
	MOVOU	32(DI), X6
	MOVOU	48(DI), X7
	MOVOU	0(DX), X8
	MOVOU	16(DX), X9
	MOVOU	32(DX), X10
	MOVOU	48(DX), X11
	PCMPEQB	X0, X4
	PCMPEQB	X1, X5
	PCMPEQB	X2, X6
	PCMPEQB	X3, X7
	PCMPEQB	X0, X8
	PCMPEQB	X1, X9
	PCMPEQB	X2, X10
	PCMPEQB	X3, X11
	PAND	X5, X4
	PAND	X7, X6
	PAND	X6, X4
	PMOVMSKB	X4, AX
	CMPL	AX, $0xffff
	JNE	bdiffers
	PAND	X9, X8
	PAND	X11, X10
	PAND	X10, X8
	PMOVMSKB	X8, AX
	CMPL	AX, $0xffff
	JNE	cdiffers
	ADDQ	$64, SI
	ADDQ	$64, DI
	ADDQ	$64, DX
	DECQ	CX
	JNZ	loop3
	MOVB	$0, ret+24(FP)
	RET
bdiffers:
	MOVB	$1, ret+24(FP)
	RET
cdiffers:
	MOVB	$2, ret+24(FP)
	RET
