// Command kernel is physmap's unikernel: it boots on QEMU's microvm machine
// under TamaGo, reads the firmware memory map and its command line, checks
// the CPU and the board, and reports on the serial console in the protocol
// of package selftest before it exits QEMU with a pass or fail status.
//
// Build it with `make kernel` (GOOS=tamago GOARCH=amd64, see the Makefile).
package main
