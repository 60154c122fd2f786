package qemu

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
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
	// QMP is the path of the harness's own QMP unix socket (-qmp
	// ...,server=on,wait=off); empty means none on the command line. The
	// runner sets it to a private socket of its own.
	QMP string
	// UserQMP is the path of a second QMP monitor for a person or a tool
	// (qmp-shell, say), apart from the harness's: QEMU serves each -qmp on
	// its own, so a client there disturbs neither. Empty means none.
	UserQMP string
	// Bulk is the file the bulk channel goes to: QEMU's isa-debugcon
	// device at BulkPort, always on the command line, to which the kernel
	// writes what is too large for the console (the JSON dump of its live
	// tables, see boot.Bulk). Empty sends it to a null backend; the runner
	// sets a private file of its own unless the caller gave one.
	Bulk string
	// GDB makes QEMU wait for gdb on GDBAddress, localhost only (-gdb
	// tcp:127.0.0.1:1234 -S).
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

// The bulk channel: QEMU's isa-debugcon device (hw/char/debugcon.c) at the
// I/O port boot.DEBUGCON_PORT uses, and the character backend it writes to.
const (
	BulkPort      = 0xe9
	bulkChardevID = "physmap.bulk"
)

// GDBAddress is where QEMU waits for gdb with Config.GDB: this machine
// only, never every interface as QEMU's -s does.
const GDBAddress = "127.0.0.1:1234"

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
	if c.CPU != "" {
		if err := CheckCPU(c.CPU); err != nil {
			return nil, err
		}
	}
	bulk := "null,id=" + bulkChardevID
	if c.Bulk != "" {
		bulk = "file,id=" + bulkChardevID + ",path=" + optValue(c.Bulk)
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
		"-chardev", bulk,
		"-device", fmt.Sprintf("isa-debugcon,iobase=0x%x,chardev=%s", BulkPort, bulkChardevID),
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
	for _, q := range []string{c.QMP, c.UserQMP} {
		if q != "" {
			argv = append(argv, "-qmp", "unix:"+optValue(q)+",server=on,wait=off")
		}
	}
	if c.GDB {
		argv = append(argv, "-gdb", "tcp:"+GDBAddress, "-S")
	}
	return argv, nil
}

// optValue escapes a value inside a QEMU option list, where a comma is
// written twice.
func optValue(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// CheckCPU checks a CPU model given by the user: QEMU's -cpu takes a model
// name with optional ,+feature,-feature,key=value parts, never empty or with
// spaces. Whether QEMU knows the model is QEMU's to say.
func CheckCPU(s string) error {
	bad := func(why string) error {
		return &Error{Op: "cpu", Err: ErrBadCPU, Detail: fmt.Sprintf("%q: %s (examples: max, max,-la57, qemu64,+rdrand)", s, why)}
	}
	switch {
	case strings.TrimSpace(s) == "":
		return bad("empty CPU model")
	case strings.ContainsFunc(s, unicode.IsSpace):
		return bad("a CPU model has no spaces")
	case strings.HasPrefix(s, ",") || strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+"):
		return bad("no model name before the features")
	}
	return nil
}

// MaxTimeout is the longest run the harness accepts: a day, far above the
// slowest boot measured (512 GiB of RAM, under a minute).
const MaxTimeout = 24 * time.Hour

// CheckTimeout checks a bound given for a run: positive and at most
// MaxTimeout. (Config.Timeout zero means no bound, which the commands give
// only to interactive runs.)
func CheckTimeout(d time.Duration) error {
	switch {
	case d <= 0:
		return &Error{Op: "timeout", Err: ErrBadTimeout, Detail: fmt.Sprintf("%v: must be positive, such as 120s or 10m", d)}
	case d > MaxTimeout:
		return &Error{Op: "timeout", Err: ErrBadTimeout, Detail: fmt.Sprintf("%v: more than %v", d, MaxTimeout)}
	}
	return nil
}

// MaxMemoryMiB is the largest guest memory the harness asks QEMU for: 4 PiB,
// all that x86-64's 52-bit physical addresses reach (Intel SDM Vol. 3A
// 4.1.4, MAXPHYADDR at most 52).
const MaxMemoryMiB = 1 << (52 - 20)

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
	if mib > MaxMemoryMiB {
		return 0, bad(fmt.Sprintf("more than the %d TiB x86-64 can address", MaxMemoryMiB>>20))
	}
	if mib < MinMemoryMiB {
		return 0, &Error{Op: "memory", Err: ErrMemoryTooSmall,
			Detail: fmt.Sprintf("%q is %d MiB; the minimum is %d MiB (512M): the kernel heap sits at 256-384 MiB physical", s, mib, MinMemoryMiB)}
	}
	return mib, nil
}
