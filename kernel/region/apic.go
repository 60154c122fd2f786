package region

import (
	"fmt"

	"github.com/physmap/physmap/mm"
)

// The two devices physmap maps the way Linux maps them: the local APIC and
// the I/O APIC. Their registers are memory mapped, read and written as
// aligned doublewords, and never RAM.

// The physical addresses Linux falls back on when no firmware table names
// others (arch/x86/include/asm/apicdef.h: APIC_DEFAULT_PHYS_BASE,
// IO_APIC_DEFAULT_PHYS_BASE); QEMU puts its LAPIC and its (first) IOAPIC
// there. The builder maps these; the proofs find the LAPIC from
// IA32_APIC_BASE instead and prove each frame a device by what its
// registers answer.
const (
	apicDefaultPhysBase   mm.PhysAddr = 0xfee0_0000
	ioAPICDefaultPhysBase mm.PhysAddr = 0xfec0_0000
)

// The LAPIC's registers and base MSR (SDM Vol. 3A 11.4.1, 11.4.4, Table
// 11-1; Linux's APIC_ID and APIC_LVR).
const (
	msrIA32APICBase        = 0x1b
	apicBaseExtd    uint64 = 1 << 10 // x2APIC mode: no MMIO interface
	apicBaseEnable  uint64 = 1 << 11 // APIC global enable
	apicBaseMask    uint64 = 0x000f_ffff_ffff_f000

	apicRegID  = 0x20 // local APIC ID: bits 31:24 in xAPIC mode
	apicRegLVR = 0x30 // local APIC version: version, max LVT entry
)

// The IOAPIC's two windows and its registers (Intel 82093AA datasheet
// 3.1-3.2): an index written to IOREGSEL selects the register IOWIN reads.
const (
	ioapicRegSel = 0x00
	ioapicWin    = 0x10

	ioapicRegID  = 0 // IOAPICID: ID in bits 27:24
	ioapicRegVer = 1 // IOAPICVER: version, max redirection entry
)

// The values QEMU 7.2's devices give, the expectation for their version
// registers: hw/intc/apic.c (apic_mem_read) answers the version
// apic_common_realize sets, 0x14, with APIC_LVT_NB-1 = 5 in bits 23:16;
// hw/intc/ioapic.c (ioapic_mem_read) answers its version property, 0x20 by
// default, with IOAPIC_NUM_PINS-1 = 23 in bits 23:16.
const (
	qemuLAPICVersion  uint32 = 0x0005_0014
	qemuIOAPICVersion uint32 = 0x0017_0020
)

// lapicBase returns the LAPIC's physical base from IA32_APIC_BASE, an
// error if the LAPIC has no MMIO interface (x2APIC mode) or is disabled.
func lapicBase(c CPU) (mm.PhysAddr, error) {
	v := c.ReadMSR(msrIA32APICBase)
	switch {
	case v&apicBaseExtd != 0:
		return 0, fmt.Errorf("IA32_APIC_BASE %#x: the LAPIC is in x2APIC mode, with no memory-mapped registers", v)
	case v&apicBaseEnable == 0:
		return 0, fmt.Errorf("IA32_APIC_BASE %#x: the LAPIC is disabled", v)
	}
	return mm.PhysAddr(v & apicBaseMask), nil
}

// initialAPICID is CPUID leaf 1's EBX[31:24], the initial APIC ID.
func initialAPICID(c CPU) uint32 {
	_, ebx, _, _ := c.CPUID(1, 0)
	return ebx >> 24
}

// read32 and write32 access one device register at va.
func read32(c CPU, what string, va mm.VirtAddr) (uint32, error) {
	v, f := c.Read32(va)
	if f.Faulted {
		return 0, &FaultError{What: "reading " + what, VA: va, Fault: f}
	}
	return v, nil
}

func write32(c CPU, what string, va mm.VirtAddr, v uint32) error {
	if f := c.Write32(va, v); f.Faulted {
		return &FaultError{What: "writing " + what, VA: va, Fault: f}
	}
	return nil
}

// lapicRegs reads the LAPIC's ID and version through the mapping at va and
// holds them to their sources: the ID to CPUID's initial APIC ID (bits
// 31:24 of the register), the version to QEMU's.
func lapicRegs(c CPU, what string, va mm.VirtAddr) (id, ver uint32, err error) {
	if id, err = read32(c, what+"'s ID register", va.Add(apicRegID)); err != nil {
		return 0, 0, err
	}
	if ver, err = read32(c, what+"'s version register", va.Add(apicRegLVR)); err != nil {
		return 0, 0, err
	}
	if want := initialAPICID(c); id>>24 != want {
		return 0, 0, fmt.Errorf("%s at %v: ID register %#x holds APIC ID %d, CPUID leaf 1 says %d", what, va, id, id>>24, want)
	}
	if ver != qemuLAPICVersion {
		return 0, 0, fmt.Errorf("%s at %v: version register %#x, QEMU's LAPIC answers %#x", what, va, ver, qemuLAPICVersion)
	}
	return id >> 24, ver, nil
}

// ioapicRegs reads the IOAPIC's version and ID through the mapping at va:
// the same window, IOWIN, must answer QEMU's version after IOREGSEL selects
// register 1 and something else after it selects register 0, which no RAM
// does; IOREGSEL reads back the index written.
func ioapicRegs(c CPU, what string, va mm.VirtAddr) (id, ver uint32, err error) {
	sel := func(reg uint32) (uint32, error) {
		if err := write32(c, what+"'s IOREGSEL", va.Add(ioapicRegSel), reg); err != nil {
			return 0, err
		}
		back, err := read32(c, what+"'s IOREGSEL", va.Add(ioapicRegSel))
		if err != nil {
			return 0, err
		}
		if back != reg {
			return 0, fmt.Errorf("%s at %v: IOREGSEL reads %#x after %#x was written", what, va, back, reg)
		}
		return read32(c, what+"'s IOWIN", va.Add(ioapicWin))
	}
	if ver, err = sel(ioapicRegVer); err != nil {
		return 0, 0, err
	}
	if ver != qemuIOAPICVersion {
		return 0, 0, fmt.Errorf("%s at %v: IOAPICVER reads %#x, QEMU's IOAPIC answers %#x", what, va, ver, qemuIOAPICVersion)
	}
	if id, err = sel(ioapicRegID); err != nil {
		return 0, 0, err
	}
	if id == ver {
		return 0, 0, fmt.Errorf("%s at %v: IOWIN reads %#x whichever register IOREGSEL selects: memory, not an IOAPIC", what, va, id)
	}
	return id >> 24 & 0xf, ver, nil
}

// The page attribute table (SDM Vol. 3A 12.12): a 4 KiB pte's PAT, PCD and
// PWT bits index one of IA32_PAT's eight memory types.
const msrIA32PAT = 0x277

// memType is a PAT memory-type encoding (SDM Vol. 3A Table 12-10).
type memType uint8

func (t memType) String() string {
	switch t {
	case 0:
		return "UC"
	case 1:
		return "WC"
	case 4:
		return "WT"
	case 5:
		return "WP"
	case 6:
		return "WB"
	case 7:
		return "UC-"
	}
	return fmt.Sprintf("reserved type %d", uint8(t))
}

// The memory types Linux's cache modes ask for: ioremap's
// _PAGE_CACHE_MODE_UC_MINUS and set_fixmap_nocache's _PAGE_CACHE_MODE_UC.
const (
	memUC      memType = 0
	memUCMinus memType = 7
)

// patType returns the memory type a 4 KiB leaf with attributes a selects in
// the CPU's IA32_PAT, and the entry's index.
func patType(c CPU, a mm.Attr) (memType, int) {
	i := 0
	if a&mm.AttrPWT != 0 {
		i |= 1
	}
	if a&mm.AttrPCD != 0 {
		i |= 2
	}
	if a&mm.AttrPAT != 0 {
		i |= 4
	}
	return memType(c.ReadMSR(msrIA32PAT) >> (8 * i) & 7), i
}

// cacheMask is the part of a leaf's attributes that chooses its memory
// type.
const cacheMask = mm.AttrPWT | mm.AttrPCD | mm.AttrPAT

// expectDevicePage checks that the leaf at va maps the device frame pa as
// one 4 KiB page with permissions perm and cache bits cache (Linux's
// pgprot), and that those bits select memory type want in the CPU's PAT.
func expectDevicePage(p *Proof, what string, va mm.VirtAddr, pa mm.PhysAddr, perm, cache mm.Attr, want memType) (mm.Translation, error) {
	t, err := p.expectLeaf(what, va, pa, perm)
	if err != nil {
		return t, err
	}
	if t.Size != mm.Size4K {
		return t, fmt.Errorf("%s at %v is a %v page, want 4K", what, va, t.Size)
	}
	if got := t.Attrs & cacheMask; got != cache {
		return t, fmt.Errorf("%s at %v has cache bits %v, want %v", what, va, cacheBits(got), cacheBits(cache))
	}
	if got, i := patType(p.CPU, t.Attrs); got != want {
		return t, fmt.Errorf("%s at %v selects PAT entry %d, %v; want %v", what, va, i, got, want)
	}
	return t, nil
}

// cacheBits names the cache bits of an attribute set, "none" for none.
func cacheBits(a mm.Attr) string {
	s := ""
	for _, b := range []struct {
		a    mm.Attr
		name string
	}{{mm.AttrPWT, "PWT"}, {mm.AttrPCD, "PCD"}, {mm.AttrPAT, "PAT"}} {
		if a&b.a != 0 {
			if s != "" {
				s += " "
			}
			s += b.name
		}
	}
	if s == "" {
		return "none"
	}
	return s
}

// notRAM checks that no RAM range of ref's memory map holds the page at pa.
func notRAM(ref Reference, what string, pa mm.PhysAddr) error {
	for _, r := range ref.RAM {
		if r.Overlaps(mm.PhysRange{Start: pa, End: pa.Add(page)}) {
			return fmt.Errorf("%s frame %v lies in RAM %v of the PVH memory map", what, pa, r)
		}
	}
	return nil
}
