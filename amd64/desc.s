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
