//go:build tamago

#include "textflag.h"

// func Ptr(va uint64) unsafe.Pointer
TEXT ·Ptr(SB),NOSPLIT,$0-16
	MOVQ	va+0(FP), AX
	MOVQ	AX, ret+8(FP)
	RET
