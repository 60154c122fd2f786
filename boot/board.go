//go:build tamago

package boot

import (
	"runtime/goos"
	_ "unsafe" // go:linkname

	tamago "github.com/usbarmory/tamago/amd64"
	"github.com/usbarmory/tamago/soc/intel/uart"

	"github.com/physmap/physmap/amd64"
)

// COM1 is the first serial port's I/O base on a PC.
const COM1 = 0x3f8

// ramSize is the runtime's window (early.go's HeapSize).
//
//go:linkname ramSize runtime/goos.RamSize
var ramSize uint = HeapSize

// Peripheral instances.
var (
	// CPU is the bootstrap processor as TamaGo drives it.
	CPU = &tamago.CPU{TimerMultiplier: 1}

	// UART0 is the serial console (COM1).
	UART0 = &uart.UART{Index: 1, Base: COM1}
)

// Clock describes how the board keeps time; Init fills it in.
var Clock struct {
	// Source names the reference the TSC frequency came from.
	Source string
	// TSCHz is the TSC frequency the runtime's clock uses.
	TSCHz uint64
	// Err is set when no reference could calibrate the TSC.
	Err error
}

//go:linkname printk runtime/goos.Printk
func printk(c byte) {
	UART0.Tx(c)
}

//go:linkname nanotime runtime/goos.Nanotime
func nanotime() int64 {
	return CPU.GetTime()
}

// Init is TamaGo's Hwinit1 hook: it runs early in runtime start-up, after
// the world has started, so it may allocate.
//
//go:linkname Init runtime/goos.Hwinit1
func Init() {
	CPU.Init()
	UART0.Init()
	initClock()
	goos.Exit = exit
}

func init() {
	// Exceptions print their vector and RIP rather than triple-faulting
	// silently.
	CPU.EnableExceptions()
}

// initClock sets the runtime clock's TSC frequency. Under KVM TamaGo reads
// it from the hypervisor (CPUID 0x40000010 or kvmclock pairing); everywhere
// else, TCG included, the TSC is measured against the PIT.
func initClock() {
	if CPU.Features().KVM && CPU.Freq() > 1 {
		Clock.Source, Clock.TSCHz = "kvm", uint64(CPU.Freq())
		return
	}
	amd64.Outb(PIT_CMD, PIT_MODE2_0)
	amd64.Outb(PIT_CH0, 0) // reload 65536: low byte,
	amd64.Outb(PIT_CH0, 0) // then high byte
	hz, err := calibrateTSC(readPIT, amd64.Rdtsc, CalibrationTicks)
	if err != nil {
		Clock.Err = err
		return
	}
	Clock.Source, Clock.TSCHz = "pit", hz
	CPU.TimerMultiplier = 1e9 / float64(hz)
	CPU.SetTime(0)
}

// readPIT latches channel 0 and returns its count.
func readPIT() uint16 {
	amd64.Outb(PIT_CMD, PIT_LATCH0)
	lo := amd64.Inb(PIT_CH0)
	hi := amd64.Inb(PIT_CH0)
	return uint16(hi)<<8 | uint16(lo)
}
