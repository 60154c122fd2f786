//go:build tamago

#include "textflag.h"

// func Image() (text, etext, rodata, noptrdata, end uint64)
TEXT ·Image(SB),NOSPLIT,$0-40
	MOVQ	$runtime·text(SB), AX
	MOVQ	AX, text+0(FP)
	MOVQ	$runtime·etext(SB), AX
	MOVQ	AX, etext+8(FP)
	MOVQ	$runtime·rodata(SB), AX
	MOVQ	AX, rodata+16(FP)
	MOVQ	$runtime·noptrdata(SB), AX
	MOVQ	AX, noptrdata+24(FP)
	MOVQ	$runtime·end(SB), AX
	MOVQ	AX, end+32(FP)
	RET

// RIPProbe follows ProbeCall's convention (result in AX, plain RET). The
// LEA is spelt as bytes so that it is RIP-relative whatever the assembler
// would choose (Intel SDM Vol. 2A 2.2.1.6 "RIP-Relative Addressing").
TEXT ·RIPProbe(SB),NOSPLIT|NOFRAME,$0
	BYTE	$0x48; BYTE $0x8d; BYTE $0x05; LONG $0	// LEA RAX, [RIP+0]
	RET

// func RIPProbeAddr() uint64
TEXT ·RIPProbeAddr(SB),NOSPLIT,$0-8
	MOVQ	$·RIPProbe(SB), AX
	MOVQ	AX, ret+0(FP)
	RET
