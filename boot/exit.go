//go:build tamago

package boot

import (
	tamago "github.com/usbarmory/tamago/amd64"

	"github.com/physmap/physmap/amd64"
)

// QEMU's isa-debug-exit device, as physmap's harness configures it
// (-device isa-debug-exit,iobase=0xf4,iosize=0x04): writing v makes QEMU
// exit with status (v<<1)|1.
const DEBUG_EXIT_PORT = 0xf4

// Exit codes written to the debug-exit port.
const (
	ExitPass = 0 // QEMU exits with status 1
	ExitFail = 1 // QEMU exits with status 3
)

// exit ends the machine: through the debug-exit device when QEMU has one,
// else by a triple fault, which QEMU run with -no-reboot turns into a
// shutdown.
func exit(code int32) {
	v := uint32(ExitPass)
	if code != 0 {
		v = ExitFail
	}
	amd64.Outl(DEBUG_EXIT_PORT, v)
	tamago.Fault()
}

// Halt stops the CPU for good, with interrupts off.
func Halt() {
	amd64.Cli()
	for {
		amd64.Hlt()
	}
}
