// Package boot is physmap's board support for QEMU's microvm machine: it
// brings up the CPU, the serial console and a calibrated clock, and reads the
// firmware's memory map and the kernel command line through QEMU's fw_cfg
// device.
//
// TamaGo's stock board/qemu/microvm cannot be used: it needs kvmclock or an
// invariant TSC and panics under QEMU's TCG, which has neither. This package
// composes TamaGo's amd64 and soc/intel/uart packages instead and keeps time
// by calibrating the TSC against the 8254 PIT, which QEMU emulates at a fixed
// 1.193182 MHz under every accelerator, over several short windows that a
// paused guest cannot fool (clock.go); an Intel CPU that enumerates its TSC
// rate in CPUID leaf 0x15 is taken at its word.
//
// Files that touch hardware or TamaGo carry the tamago build tag; the
// protocol and arithmetic (fw_cfg directory, e820 records, calibration) are
// plain Go tested on the host.
package boot
