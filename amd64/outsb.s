//go:build tamago

#include "textflag.h"

// Intel SDM Vol. 2B "OUTS/OUTSB/OUTSW/OUTSD" with the REP prefix: DX holds
// the port, RSI the source, RCX the count; DF=0 (Go's ABI) makes RSI count
// up. A zero count writes nothing.

// func RepOutsb(port uint16, buf []byte)
TEXT ·RepOutsb(SB),NOSPLIT,$0-32
	MOVW	port+0(FP), DX
	MOVQ	buf_base+8(FP), SI
	MOVQ	buf_len+16(FP), CX
	REP; OUTSB
	RET
