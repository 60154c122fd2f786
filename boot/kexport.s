//go:build tamago

#include "textflag.h"

// COM1's transmit holding register and line status register, and LSR's
// THRE bit (transmit holding register empty): PC16550D data sheet, as
// TamaGo's soc/intel/uart names them.
#define COM1_THR	0x3f8
#define COM1_LSR	0x3fd
#define LSR_THRE	0x20

// ConsoleWriteC: RDI = s, RSI = n; returns n in RAX. It uses only RAX, RCX,
// RDX, RSI and RDI, all caller-saved in the SysV ABI, and no stack, so it
// runs on whatever stack its caller had. Position independent: it runs the
// same through the kernel text mapping and the identity window.
TEXT ·ConsoleWriteC(SB),NOSPLIT|NOFRAME,$0
	MOVQ	SI, CX
	MOVQ	SI, AX
	TESTQ	CX, CX
	JZ	done
next:
	MOVW	$COM1_LSR, DX
wait:
	INB
	TESTB	$LSR_THRE, AL
	JZ	wait
	MOVB	(DI), AL
	MOVW	$COM1_THR, DX
	OUTB
	INCQ	DI
	DECQ	CX
	JNZ	next
	MOVQ	SI, AX
done:
	RET

// func ConsoleWriteCAddr() uint64
TEXT ·ConsoleWriteCAddr(SB),NOSPLIT,$0-8
	MOVQ	$·ConsoleWriteC(SB), AX
	MOVQ	AX, ret+0(FP)
	RET
