package qemu

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultBinary is the QEMU executable looked up in PATH.
const DefaultBinary = "qemu-system-x86_64"

// MinMemoryMiB is the smallest guest memory the kernel can boot with: its
// heap window sits at 256-384 MiB physical, and 512 MiB leaves room above it
// for the page tables and the direct map's test ranges.
const MinMemoryMiB = 512

// DefaultCPU is the CPU model used under TCG when Config.CPU is empty.
const DefaultCPU = "max"

// hostCPU is the CPU model used under KVM when Config.CPU is empty.
const hostCPU = "host"

// Debug-exit device the kernel leaves QEMU through (QEMU hw/misc/debugexit.c:
// a write of v exits QEMU with status (v<<1)|1).
const (
	debugExitIOBase = 0xf4
	debugExitIOSize = 0x04
	// StatusPass is QEMU's exit status after the kernel wrote 0.
	StatusPass = 0<<1 | 1
	// StatusFail is QEMU's exit status after the kernel wrote 1.
	StatusFail = 1<<1 | 1
)

// Accel is a QEMU accelerator.
type Accel string

// The accelerators the harness knows.
const (
	TCG Accel = "tcg"
	KVM Accel = "kvm"
)

// ParseAccel checks an accelerator name.
func ParseAccel(s string) (Accel, error) {
	switch a := Accel(s); a {
	case TCG, KVM:
		return a, nil
	}
	return "", &Error{Op: "accel", Err: ErrBadAccel, Detail: fmt.Sprintf("%q (want tcg or kvm)", s)}
}

// Config describes one QEMU run.
type Config struct {
	// Binary is the QEMU executable; empty means DefaultBinary from PATH.
	Binary string
	// Kernel is the ELF image passed with -kernel.
	Kernel string
	// Memory is the guest memory as QEMU's -m takes it: a whole number of
	// MiB, or a number with a K, M, G or T suffix ("512M", "2G", "16G").
	Memory string
	// CPU is the CPU model; empty means DefaultCPU, or "host" under KVM.
	CPU string
	// Accel is the accelerator; empty means TCG.
	Accel Accel
	// Append is the kernel command line (-append); empty means none.
	Append string
	// QMP is the path of a QMP unix socket (-qmp ...,server=on,wait=off);
	// empty means none on the command line (the runner then picks a
	// private one).
	QMP string
	// GDB makes QEMU listen for gdb on :1234 and wait for it (-s -S).
	GDB bool
	// Interactive gives the serial console to a person: stdin goes to QEMU.
	Interactive bool
	// Timeout bounds the run; zero means none.
	Timeout time.Duration
	// NoReserve backs the guest's RAM with memory-backend-ram reserve=off
	// (MAP_NORESERVE): plain -m reserves all of it up front, which Linux's
	// default overcommit refuses beyond the host's RAM and swap, while
	// physmap's guest touches only a little of it. The guest sees the same
	// machine.
	NoReserve bool
	// Initrd is an initial ramdisk passed with -initrd; empty means none.
	Initrd string
	// MemPath, if set, backs the guest's RAM with a file QEMU shares with
	// the host (memory-backend-file mem-path=MemPath,share=on, e.g. on
	// /dev/shm), so a host tool can read guest memory while it runs. The
	// guest sees the same machine.
	MemPath string
}

// ramBackendID names the memory backend NoReserve adds.
const ramBackendID = "physmap.ram"

// binary returns the QEMU executable name or path.
func (c Config) binary() string {
	if c.Binary != "" {
		return c.Binary
	}
	return DefaultBinary
}

// accel returns the accelerator, TCG by default.
func (c Config) accel() Accel {
	if c.Accel == "" {
		return TCG
	}
	return c.Accel
}

// cpu returns the CPU model: the user's, else host under KVM, else max.
func (c Config) cpu() string {
	switch {
	case c.CPU != "":
		return c.CPU
	case c.accel() == KVM:
		return hostCPU
	}
	return DefaultCPU
}

// Command returns the QEMU argv for c, argv[0] being the executable. It is
// the only place in physmap where the QEMU command line is written.
//
// The PIT stays enabled (no pit=off): the kernel calibrates its clock with
// it. pic=off because the kernel uses the IO-APIC only; rtc=on for the CMOS
// clock; x-option-roms=on lets QEMU's microvm firmware load the PVH ELF.
func (c Config) Command() ([]string, error) {
	if _, err := ParseMemory(c.Memory); err != nil {
		return nil, err
	}
	if _, err := ParseAccel(string(c.accel())); err != nil {
		return nil, err
	}
	if c.Kernel == "" {
		return nil, &Error{Op: "config", Err: ErrKernelMissing, Detail: "no kernel image given"}
	}
	machine := "microvm,x-option-roms=on,pic=off,rtc=on"
	if c.NoReserve || c.MemPath != "" {
		machine += ",memory-backend=" + ramBackendID
	}
	argv := []string{
		c.binary(),
		"-machine", machine,
		"-m", strings.TrimSpace(c.Memory),
		"-cpu", c.cpu(),
		"-accel", string(c.accel()),
		"-smp", "1",
		"-nographic",
		"-monitor", "none",
		"-serial", "stdio",
		"-no-reboot",
		"-device", fmt.Sprintf("isa-debug-exit,iobase=0x%x,iosize=0x%02x", debugExitIOBase, debugExitIOSize),
		"-kernel", c.Kernel,
	}
	switch {
	case c.MemPath != "":
		backend := fmt.Sprintf("memory-backend-file,id=%s,size=%s,mem-path=%s,share=on", ramBackendID, strings.TrimSpace(c.Memory), strings.ReplaceAll(c.MemPath, ",", ",,"))
		if c.NoReserve {
			backend += ",reserve=off"
		}
		argv = append(argv, "-object", backend)
	case c.NoReserve:
		argv = append(argv, "-object", fmt.Sprintf("memory-backend-ram,id=%s,size=%s,reserve=off", ramBackendID, strings.TrimSpace(c.Memory)))
	}
	if c.Initrd != "" {
		argv = append(argv, "-initrd", c.Initrd)
	}
	if c.Append != "" {
		argv = append(argv, "-append", c.Append)
	}
	if c.QMP != "" {
		argv = append(argv, "-qmp", "unix:"+c.QMP+",server=on,wait=off")
	}
	if c.GDB {
		argv = append(argv, "-s", "-S")
	}
	return argv, nil
}

// Memory size units QEMU's -m accepts (suffix to MiB multiplier; "" is MiB).
var memUnitsMiB = map[string]uint64{"": 1, "m": 1, "g": 1 << 10, "t": 1 << 20}

// ParseMemory parses a memory size as QEMU's -m takes it and returns it in
// MiB. It refuses sizes below MinMemoryMiB, fractions, and sizes that are not
// a whole number of MiB.
func ParseMemory(s string) (uint64, error) {
	bad := func(why string) error {
		return &Error{Op: "memory", Err: ErrBadMemory, Detail: fmt.Sprintf("%q: %s (examples: 512M, 2G, 2048)", s, why)}
	}
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, bad("empty size")
	}
	split := strings.IndexFunc(t, func(r rune) bool { return r < '0' || r > '9' })
	if split < 0 {
		split = len(t)
	}
	num, unit := t[:split], strings.ToLower(t[split:])
	if num == "" {
		return 0, bad("not a number")
	}
	unit = strings.TrimSuffix(unit, "b")
	var mib uint64
	if unit == "k" {
		n, err := strconv.ParseUint(num, 10, 64)
		if err != nil {
			return 0, bad("number out of range")
		}
		if n%1024 != 0 {
			return 0, bad("not a whole number of MiB")
		}
		mib = n / 1024
	} else {
		mul, ok := memUnitsMiB[unit]
		if !ok {
			return 0, bad(fmt.Sprintf("unknown unit %q (want K, M, G or T)", unit))
		}
		n, err := strconv.ParseUint(num, 10, 64)
		if err != nil || n > (1<<63)/mul {
			return 0, bad("number out of range")
		}
		mib = n * mul
	}
	if mib < MinMemoryMiB {
		return 0, &Error{Op: "memory", Err: ErrMemoryTooSmall,
			Detail: fmt.Sprintf("%q is %d MiB; the minimum is %d MiB (512M): the kernel heap sits at 256-384 MiB physical", s, mib, MinMemoryMiB)}
	}
	return mib, nil
}
