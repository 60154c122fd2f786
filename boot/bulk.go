//go:build tamago

package boot

import (
	"io"

	"github.com/physmap/physmap/amd64"
)

// DEBUGCON_PORT is the I/O port of QEMU's isa-debugcon device as physmap's
// harness configures it (-device isa-debugcon,iobase=0xe9,...; the device is
// QEMU's hw/char/debugcon.c): every byte written there goes to the device's
// character backend, which the harness keeps apart from the console.
const DEBUGCON_PORT = 0xe9

// Bulk is the bulk channel: output too large for the serial console (the
// JSON dump of the live tables) written to QEMU's debugcon device, a whole
// buffer per REP OUTSB, with no line-status polling as a UART needs. On a
// machine without the device the bytes go nowhere.
var Bulk io.Writer = bulk{}

type bulk struct{}

// Write sends p to the debugcon port; it cannot fail.
func (bulk) Write(p []byte) (int, error) {
	if len(p) > 0 {
		amd64.RepOutsb(DEBUGCON_PORT, p)
	}
	return len(p), nil
}
