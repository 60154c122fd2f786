//go:build tamago

package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/boot"
	"github.com/physmap/physmap/kernel/option"
	"github.com/physmap/physmap/kernel/region"
	"github.com/physmap/physmap/mm"
)

// The boot entry of the registry: the checks that run before there is an
// address space, in the kernel's main package.

// checkOptions parses the command line and reports every bad word.
func checkOptions(r *report, cmdline string) option.Options {
	l := option.ParseLine(cmdline)
	opts, others, errs := l.Options, l.Others, l.Errs
	for _, w := range l.Warnings {
		fmt.Printf("physmap: warning: %s\n", w)
	}
	for _, err := range errs {
		r.fail("option", "%v", err)
	}
	if len(errs) == 0 {
		detail := opts.String()
		if len(others) > 0 {
			detail += fmt.Sprintf("; not physmap's, left alone: %s", strings.Join(others, " "))
		}
		r.pass("option", "%s", detail)
	}
	return opts
}

// firmware is what the two firmware tables said.
type firmware struct {
	e820    []byte // fw_cfg's etc/e820
	pvh     []byte // the PVH start_info memory map
	pvhErr  error
	memmap  boot.MemoryMap
	cmdline string
}

// checkMemoryMap parses fw_cfg's memory map (what physmap builds from),
// prints it as Linux does, and compares its RAM with the PVH start_info
// memory map's: two firmware tables read by two parsers. It returns the
// fw_cfg map, nil if unusable.
func checkMemoryMap(r *report, fw *firmware, log io.Writer) boot.MemoryMap {
	m, err := boot.ParseE820(fw.e820)
	if err != nil {
		r.fail("e820", "fw_cfg etc/e820: %v", err)
		return nil
	}
	fmt.Fprintln(log, "BIOS-provided physical RAM map:")
	for _, e := range m {
		fmt.Fprintln(log, e)
	}
	if err := m.Validate(); err != nil {
		r.fail("e820", "fw_cfg etc/e820: %v", err)
		return nil
	}
	fw.memmap = m
	if fw.pvhErr != nil {
		r.fail("e820", "the PVH memory map: %v", fw.pvhErr)
		return m
	}
	pvh, err := region.ParsePVHMemmap(fw.pvh, 0)
	if err != nil {
		r.fail("e820", "%v", err)
		return m
	}
	// The two may differ below 1 MiB (QEMU's PVH map leaves out the
	// legacy hole at 640 KiB), where Linux maps the whole ISA range
	// anyway: compare what the direct map must cover.
	isa := []mm.PhysRange{{Start: 0, End: isaEnd}}
	a, b := joined(append(isa, m.RAM()...)), joined(append(isa, pvh...))
	if !equalRanges(a, b) {
		r.fail("e820", "with the ISA range, fw_cfg's etc/e820 gives RAM %v, the PVH start_info memory map %v", a, b)
		return m
	}
	win := runtimeWindow()
	if goos := mm.PhysAddr(boot.RuntimeStart); win.Start != goos {
		r.fail("e820", "TamaGo's RamStart %v is not the %v the early boot checked", win.Start, goos)
		return m
	}
	if !m.CoversRAM(win) {
		r.fail("e820", "the runtime window %v is not RAM: this machine has %s; give it at least %s", win, humanSize(m.RAMBytes()), humanSize(uint64(win.End)))
		return m
	}
	r.pass("e820", "fw_cfg's etc/e820 and the PVH memory map agree on the RAM the direct map covers, %v; the runtime window %v lies in RAM", a, win)
	return m
}

// joined sorts ranges and joins those that touch.
func joined(rs []mm.PhysRange) []mm.PhysRange {
	var out []mm.PhysRange
	for _, r := range rs {
		if n := len(out); n > 0 && r.Start <= out[n-1].End {
			out[n-1].End = max(out[n-1].End, r.End)
			continue
		}
		out = append(out, r)
	}
	return out
}

func equalRanges(a, b []mm.PhysRange) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkClock measures the runtime's clock against the PIT afresh. fast,
// the clock-fast injection, first makes the runtime's clock run half as
// fast again, by scaling the multiplier it converts TSC ticks with.
func checkClock(r *report, fast bool) {
	c := boot.Clock
	if c.Err != nil {
		r.fail("clock", "TSC not calibrated: %v", c.Err)
		return
	}
	if fast {
		boot.CPU.TimerMultiplier *= 1.5
	}
	ppt, retries, ok := measureClock()
	if !ok {
		r.fail("clock", "no clean %d ms window against the PIT in %d tries (the guest was paused too often?)", clockWindowMS, retries)
		return
	}
	off := ppt - 1000
	r.Check("clock", off >= -clockTolerance && off <= clockTolerance,
		"TSC at %.3f MHz by %s (%s); the runtime's clock measured against the PIT runs at %d.%d%% of its rate (median of %d windows of %d ms, %d measured again)",
		float64(c.TSCHz)/1e6, c.Source, c.Detail(), ppt/10, abs(ppt%10), clockWindows, clockWindowMS, retries)
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// checkCPU reports the CPU features physmap needs beyond those the early
// boot already required, and the paging mode the early boot chose.
func checkCPU(r *report, f amd64.Features, levels int, mode mm.Mode) {
	if f.NX {
		r.pass("cpu.nx", "NX (CPUID 0x80000001 EDX[20]): present")
	} else {
		r.fail("cpu.nx", "NX (CPUID 0x80000001 EDX[20]): absent, and Linux's permissions need it")
	}
	cr4 := amd64.ReadCR4()
	want, why := mm.Mode4Level, "CPUID has no LA57"
	switch {
	case levels == 4:
		why = "physmap.levels=4"
	case f.LA57:
		want, why = mm.Mode5Level, "CPUID has LA57"
	}
	if levels == 5 && !f.LA57 {
		r.fail("paging.mode", "physmap.levels=5 asked for, but CPUID has no LA57: %v paging", mode)
		return
	}
	r.Check("paging.mode", mode == want, "%v paging (CR4.LA57=%d), want %v: %s; CPUID Page1GB=%s, %d physical address bits",
		mode, bit(cr4&amd64.CR4_LA57), want, why, yes(f.Page1GB), f.PhysAddrBits)
}

// checkCPUState reports, when the proofs are about to run, the control bits
// Linux sets and the layout relies on.
func checkCPUState(r *report) {
	efer, cr0, cr4 := amd64.Rdmsr(amd64.MSR_EFER), amd64.ReadCR0(), amd64.ReadCR4()
	r.Check("cpu.state", efer&amd64.EFER_NXE != 0 && cr0&amd64.CR0_WP != 0 && cr4&amd64.CR4_PGE != 0,
		"EFER.NXE=%d CR0.WP=%d CR4.PGE=%d, as Linux sets them", bit(efer&amd64.EFER_NXE), bit(cr0&amd64.CR0_WP), bit(cr4&amd64.CR4_PGE))
}

// clampToPhysBits drops the RAM a CPU with physBits physical address bits
// (MAXPHYADDR, CPUID 0x80000008) cannot address: a page-table entry with a
// higher address has reserved bits set. Linux likewise ignores such
// memory; physmap also reports the error, since the machine is
// misconfigured.
func clampToPhysBits(r *report, ram []mm.PhysRange, physBits uint) []mm.PhysRange {
	if physBits == 0 || physBits >= mm.MaxPhysBits {
		return ram
	}
	limit := mm.PhysAddr(1) << physBits
	var out []mm.PhysRange
	var lost uint64
	for _, e := range ram {
		if e.End > limit {
			lost += uint64(e.End - max(e.Start, limit))
		}
		if e.Start >= limit {
			continue
		}
		e.End = min(e.End, limit)
		out = append(out, e)
	}
	if lost > 0 {
		r.fail("ram.physbits", "%s of RAM lie at or above %v, beyond this CPU's %d physical address bits (CPUID 0x80000008): left unmapped", humanSize(lost), limit, physBits)
	}
	return out
}

func bit(v uint64) int {
	if v != 0 {
		return 1
	}
	return 0
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
