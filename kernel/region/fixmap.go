package region

import (
	"errors"
	"fmt"

	"github.com/physmap/physmap/mm"
)

// Fixmap is the fixmap (arch/x86/include/asm/fixmap.h): compile-time
// slots counted down from FIXADDR_TOP, fix_to_virt(i) = FIXADDR_TOP -
// i*PAGE_SIZE, where FIXADDR_TOP = round_up(VSYSCALL_ADDR + PAGE_SIZE,
// PMD_SIZE) - PAGE_SIZE. After boot, a Linux 6.1 built as Debian builds it
// has two slots mapped: FIX_APIC_BASE, the local APIC's registers
// (arch/x86/kernel/apic/apic.c: register_lapic_address), and
// FIX_IO_APIC_BASE_0, the first IOAPIC's (arch/x86/kernel/apic/io_apic.c:
// io_apic_init_mappings), both with set_fixmap_nocache. text_poke has no
// slot in 6.1's fixmap: it patches through a temporary mm (alternative.go).
type Fixmap struct {
	// staleFrame is the fixmap-apic-stale-tlb injection's RAM frame, used
	// once, during the proof: any INVLPG elsewhere may flush QEMU's whole
	// TLB, so the stale entry is made right before the reads.
	staleFrame mm.PhysAddr
}

// makeStale points FIX_APIC_BASE at the injection's zeroed RAM frame, reads
// it so that the TLB caches it, then points the slot back at the LAPIC
// without INVLPG: the tables are right, the global TLB entry is not.
func (f *Fixmap) makeStale(s *Space, apic mm.VirtAddr) error {
	pa := f.staleFrame
	f.staleFrame = 0
	if err := errors.Join(s.AS.Unmap(apic, page), s.AS.Map(apic, pa, page, fixmapPerm|fixmapCache, mm.Only(mm.Size4K))); err != nil {
		return err
	}
	if _, ft := s.CPU.Read32(apic.Add(apicRegLVR)); ft.Faulted {
		return fmt.Errorf("fixmap-apic-stale-tlb: reading the remapped FIX_APIC_BASE: %v", ft)
	}
	s.TLB.Skip = true
	err := errors.Join(s.AS.Unmap(apic, page), s.AS.Map(apic, apicDefaultPhysBase, page, fixmapPerm|fixmapCache, mm.Only(mm.Size4K)))
	s.TLB.Skip = false
	return err
}

// The slots of enum fixed_addresses up to the IOAPIC's, in 6.1's order for
// Debian's configuration: VSYSCALL_PAGE (CONFIG_X86_VSYSCALL_EMULATION=y:
// (FIXADDR_TOP - VSYSCALL_ADDR) >> PAGE_SHIFT, the one slot above
// FIXADDR_TOP's 2 MiB boundary), FIX_DBGP_BASE, FIX_EARLYCON_MEM_BASE, no
// FIX_OHCI1394_BASE (CONFIG_PROVIDE_OHCI1394_DMA_INIT is not set), then
// FIX_APIC_BASE (CONFIG_X86_LOCAL_APIC=y) and FIX_IO_APIC_BASE_0
// (CONFIG_X86_IO_APIC=y). Counted from VSYSCALL_PAGE.
const (
	fixDbgpBase = 1 + iota
	fixEarlyconMemBase
	fixAPICBase
	fixIOAPICBase0
)

// fixmapTop is FIXADDR_TOP for the vsyscall page at vsyscall.
func fixmapTop(vsyscall mm.VirtAddr) mm.VirtAddr {
	return vsyscall.Add(page).AlignUp(uint64(mm.Size2M)).Sub(page)
}

// fixToVirt is fix_to_virt of the slot idx places after VSYSCALL_PAGE.
func fixToVirt(vsyscall mm.VirtAddr, idx uint64) mm.VirtAddr {
	top := fixmapTop(vsyscall)
	vsyscallPage := uint64(top-vsyscall) / page
	return top.Sub((vsyscallPage + idx) * page)
}

// fixmapNocache is set_fixmap_nocache's protection, FIXMAP_PAGE_NOCACHE =
// PAGE_KERNEL_IO_NOCACHE: __PAGE_KERNEL with _PAGE_NOCACHE, which is
// cachemode2protval(_PAGE_CACHE_MODE_UC), PCD and PWT with Linux's PAT
// (arch/x86/include/asm/pgtable_types.h, arch/x86/mm/pat/memtype.c).
const (
	fixmapPerm  = mm.PageKernel
	fixmapCache = mm.AttrPCD | mm.AttrPWT
)

// fixmapSlot is one slot physmap maps.
type fixmapSlot struct {
	name string
	idx  uint64
	pa   mm.PhysAddr // the builder's: Linux's default address
}

var fixmapSlots = []fixmapSlot{
	{"FIX_APIC_BASE", fixAPICBase, apicDefaultPhysBase},
	{"FIX_IO_APIC_BASE_0", fixIOAPICBase0, ioAPICDefaultPhysBase},
}

func (f *Fixmap) Populate(s *Space) error {
	fm := s.region(mm.KindFixmap)
	vs := s.region(mm.KindVsyscall).Start
	for _, sl := range fixmapSlots {
		va := fixToVirt(vs, sl.idx)
		if !fm.Contains(va) {
			return fmt.Errorf("%s at %v lies outside the fixmap %v-%v", sl.name, va, fm.Start, fm.Last())
		}
		if err := s.AS.Map(va, sl.pa, page, fixmapPerm|fixmapCache, mm.Only(mm.Size4K)); err != nil {
			return fmt.Errorf("set_fixmap_nocache(%s, %v): %w", sl.name, sl.pa, err)
		}
	}
	return nil
}

func (f *Fixmap) Inject(s *Space, name string) error {
	apic := fixToVirt(s.region(mm.KindVsyscall).Start, fixAPICBase)
	switch name {
	case "fixmap-apic-cached":
		return s.AS.Protect(apic, page, fixmapPerm)
	case "fixmap-apic-ram":
		pa, err := s.Frames.AllocFrame()
		if err != nil {
			return err
		}
		return errors.Join(s.AS.Unmap(apic, page), s.AS.Map(apic, pa, page, fixmapPerm|fixmapCache, mm.Only(mm.Size4K)))
	case "fixmap-apic-stale-tlb":
		pa, err := s.Frames.AllocFrame()
		if err != nil {
			return err
		}
		f.staleFrame = pa
		return writeBytes(s.CPU, "a scratch frame", s.DirectVA(pa), zeroPage[:])
	}
	return fmt.Errorf("fixmap: no injection %q", name)
}

// Prove checks region.fixmap. The slots' addresses come from fixmap.h's
// enum and mm.rst's VSYSCALL_ADDR, the LAPIC's frame from IA32_APIC_BASE,
// the IOAPIC's from Linux's default address; each frame is proved a device
// by its registers (the LAPIC's ID against CPUID, both versions against
// QEMU's) and by lying outside the PVH memory map's RAM; the cache bits
// against set_fixmap_nocache's, their memory type against the CPU's PAT.
func (f *Fixmap) Prove(p *Proof) {
	const name = "region.fixmap"
	vs := p.spec(mm.KindVsyscall).Start
	apicVA, ioapicVA := fixToVirt(vs, fixAPICBase), fixToVirt(vs, fixIOAPICBase0)
	var apicPA mm.PhysAddr
	var apicID, apicVer, ioID, ioVer uint32
	err := func() error {
		var err error
		if apicPA, err = lapicBase(p.CPU); err != nil {
			return err
		}
		for _, d := range []struct {
			what string
			va   mm.VirtAddr
			pa   mm.PhysAddr
		}{{"FIX_APIC_BASE", apicVA, apicPA}, {"FIX_IO_APIC_BASE_0", ioapicVA, ioAPICDefaultPhysBase}} {
			if err := notRAM(p.Ref, d.what, d.pa); err != nil {
				return err
			}
			if _, err := expectDevicePage(p, d.what, d.va, d.pa, fixmapPerm, fixmapCache, memUC); err != nil {
				return err
			}
		}
		if f.staleFrame != 0 {
			if err := f.makeStale(p.Act, apicVA); err != nil {
				return err
			}
			defer p.Act.TLB.InvalidatePage(apicVA)
		}
		if apicID, apicVer, err = lapicRegs(p.CPU, "the LAPIC through FIX_APIC_BASE", apicVA); err != nil {
			return err
		}
		if ioID, ioVer, err = ioapicRegs(p.CPU, "the IOAPIC through FIX_IO_APIC_BASE_0", ioapicVA); err != nil {
			return err
		}
		// Nothing else: the early boot's slots (FIX_DBGP_BASE,
		// FIX_EARLYCON_MEM_BASE, early_ioremap's FIX_BTMAP_*) are clear
		// after boot, and this configuration maps no other.
		fm := p.spec(mm.KindFixmap)
		for lf := range p.Live.Leaves(mm.VirtRange{Start: fm.Start, End: fm.Last()}) {
			if lf.VA != apicVA && lf.VA != ioapicVA {
				return fmt.Errorf("a %v leaf at %v maps %v in the fixmap, which holds only FIX_APIC_BASE and FIX_IO_APIC_BASE_0 after boot", lf.Size, lf.VA, lf.PA)
			}
		}
		return nil
	}()
	if err != nil {
		fail(p.R, name, "%v", err)
		return
	}
	_, i := patType(p.CPU, fixmapPerm|fixmapCache)
	pass(p.R, name, "FIX_APIC_BASE %v -> %v (IA32_APIC_BASE), FIX_IO_APIC_BASE_0 %v -> %v, both %v (PAT entry %d: UC), "+
		"as set_fixmap_nocache maps them, and nothing else; neither frame RAM; through them the LAPIC's ID %d = CPUID's initial APIC ID, "+
		"version %#x, and the IOAPIC's ID %d, version %#x (QEMU's, 24 pins), selected through IOREGSEL",
		apicVA, apicPA, ioapicVA, ioAPICDefaultPhysBase, fixmapPerm|fixmapCache, i, apicID, apicVer, ioID, ioVer)
}
