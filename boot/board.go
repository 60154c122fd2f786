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
var Clock ClockInfo

// ClockInfo is how the TSC's rate was found.
type ClockInfo struct {
	// Source names the reference the TSC frequency came from: "kvm",
	// "CPUID 0x15", "CPUID 0x15 and 0x16" or "pit".
	Source string
	// TSCHz is the TSC frequency the runtime's clock uses.
	TSCHz uint64
	// Err is set when no reference could calibrate the TSC.
	Err error

	pit     verdict // the PIT windows' verdict, for Detail
	windows int     // how many windows were measured
}

// Detail says how the rate was found, for people: for the PIT, how many
// windows agreed and how closely ("9 of 9 5 ms windows agree within
// 0.011 %"); empty for the other sources. (Init leaves the formatting to
// this method: it runs on the system stack, where fmt fails on some
// arguments.)
func (c ClockInfo) Detail() string {
	if c.Source != "pit" || c.windows == 0 {
		return ""
	}
	return c.pit.describe(c.windows)
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
// it from the hypervisor (CPUID 0x40000010 or kvmclock pairing); else CPUID
// leaf 0x15 (with 0x16) gives it where the CPU enumerates it; everywhere
// else, TCG included, the TSC is measured against the PIT.
func initClock() {
	if CPU.Features().KVM && CPU.Freq() > 1 {
		Clock.Source, Clock.TSCHz = "kvm", uint64(CPU.Freq())
		return
	}
	hz, source, ok := cpuidTSCHz(amd64.Cpuid)
	if !ok {
		amd64.Outb(PIT_CMD, PIT_MODE2_0)
		amd64.Outb(PIT_CH0, 0) // reload 65536: low byte,
		amd64.Outb(PIT_CH0, 0) // then high byte
		v, ws, err := calibrateTSC(readPIT, amd64.Rdtsc)
		Clock.pit, Clock.windows = v, len(ws)
		if err != nil {
			Clock.Source, Clock.Err = "pit", err
			return
		}
		source, hz = "pit", v.hz
	}
	Clock.Source, Clock.TSCHz = source, hz
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

// The 8259A PICs' data ports: a byte written there is OCW1, the interrupt
// mask (Intel 8259A datasheet).
const (
	PIC1_DATA = 0x21
	PIC2_DATA = 0xa1
)

// MaskPIC masks all sixteen 8259A lines, whatever the firmware left
// (QEMU's firmware leaves them masked: both masks read 0xff before this),
// so that a process running with IF set can take the LAPIC's interrupts
// only: the PIT's channel 0, which the clock runs free, raises IRQ 0
// every 55 ms. physmap takes no device interrupts.
func MaskPIC() {
	amd64.Outb(PIC1_DATA, 0xff)
	amd64.Outb(PIC2_DATA, 0xff)
}
