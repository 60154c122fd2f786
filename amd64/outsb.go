//go:build tamago

package amd64

// String output to an I/O port. Defined in outsb.s.

// RepOutsb writes buf to port with one REP OUTSB: the CPU sends buf[0],
// buf[1], ... to the port, the count in RCX and the source in RSI (Intel SDM
// Vol. 2B "OUTS/OUTSB/OUTSW/OUTSD—Output String to Port" and "REP/REPE/REPZ/
// REPNE/REPNZ—Repeat String Operation Prefix"). The direction flag is clear,
// as Go's ABI keeps it, so RSI counts up.
func RepOutsb(port uint16, buf []byte)
