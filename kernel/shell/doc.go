// Package shell is physmap's serial console: after the self-test the kernel
// can leave the user at a prompt ("physmap> ") to explore the address space
// it built and proved, with commands in the spirit of crash(8):
//
//	help                 the commands
//	regions              the layout as built (mm.rst rows, with what is mapped)
//	walk VA              every level's entry for VA, like crash's vtop, then the PA
//	aliases PA           every virtual address that maps PA
//	x VA [N]             hex dump of N bytes read through VA; a fault is reported
//	dis VA [N]           disassembly of N instructions at VA
//	ptdump [-phys] [REGION]  the live tables in Linux's ptdump format
//	wx                   the W+X audit of both canonical halves
//	selftest             run the proofs again on the live tables
//	exit                 end, with the self-test's status
//
// Addresses are hex, with or without 0x and with optional _ separators, or
// a layout symbol plus an optional hex offset (page_offset_base+0x1000).
// Bad input gets one "error: ..." line and the prompt back.
//
// The package is pure Go: the kernel supplies a [Machine] (the live tables
// and reads through the CPU with fault recovery) and a byte source for
// [Lines]; the host tests use a Machine built on mm's simulated memory.
package shell
