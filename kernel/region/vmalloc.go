package region

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/physmap/physmap/mm"
)

// Vmalloc is the vmalloc/ioremap space. physmap fills it with one
// vmalloc(4 pages) (mm/vmalloc.c: __vmalloc_node_range): a vmap area at
// VMALLOC_START, vmalloc_base, as the first area allocated starts there,
// its pages mapped PAGE_KERNEL over frames alloc_pages gives one at a time
// (none adjacent here); the TLB proof's page in the next area; then two
// ioremaps (arch/x86/mm/ioremap.c: __ioremap_caller), of the LAPIC's and
// the IOAPIC's register pages, each PAGE_KERNEL_IO with ioremap's
// _PAGE_CACHE_MODE_UC_MINUS, which cachemode2protval makes PCD (PAT entry
// 2). Every area is followed by an unmapped guard page, as every vmap area
// is unless VM_NO_GUARD, and the areas follow each other as
// alloc_vmap_area's first fit puts them. Linux itself reaches these two
// devices through the fixmap (fixmap.go); the ioremaps stand for what
// drivers do with device memory (arch/x86/kernel/hpet.c: hpet_set_mapping
// ioremaps the HPET, say), on the two devices QEMU's microvm has.
type Vmalloc struct {
	noFlush bool // the no-invlpg injection
}

// vmallocPages is the size of the area.
const vmallocPages = 4

// vmallocTag marks each page's first quadword with its index.
const vmallocTag = 0x636f_6c6c_616d_7600 // "\0vmalloc"

// tlbPageOffset is where the TLB proof's page lies: the next vmap area,
// after the first area and its guard page.
const tlbPageOffset = (vmallocPages + 1) * page

// ioremapPerm and ioremapCache are ioremap's protection: PAGE_KERNEL_IO
// (__PAGE_KERNEL) with cachemode2protval(_PAGE_CACHE_MODE_UC_MINUS),
// which is PCD alone with Linux's PAT (and with the CPU's reset PAT).
const (
	ioremapPerm  = mm.PageKernel
	ioremapCache = mm.AttrPCD
)

// ioremaps are the devices physmap ioremaps, in the order of their areas
// after the TLB page's.
var ioremaps = []struct {
	what string
	pa   mm.PhysAddr // the builder's: Linux's default address
}{{"the LAPIC", apicDefaultPhysBase}, {"the IOAPIC", ioAPICDefaultPhysBase}}

// ioremapOffset is where the i-th ioremap area starts: each area before it
// is one page and its guard.
func ioremapOffset(i int) uint64 { return tlbPageOffset + uint64(1+i)*2*page }

func (v *Vmalloc) Populate(s *Space) error {
	frames, err := s.Frames.AllocScattered(vmallocPages)
	if err != nil {
		return err
	}
	base := s.region(mm.KindVmalloc).Start
	for i, pa := range frames {
		lo := s.DirectVA(pa)
		if err := writeBytes(s.CPU, "a vmalloc frame", lo, zeroPage[:]); err != nil {
			return err
		}
		if err := write64(s.CPU, "a vmalloc tag", lo, vmallocTag|uint64(i)); err != nil {
			return err
		}
		if err := s.AS.Map(base.Add(uint64(i)*page), pa, page, mm.PageKernel, mm.Only(mm.Size4K)); err != nil {
			return err
		}
	}
	for i, d := range ioremaps {
		if err := s.AS.Map(base.Add(ioremapOffset(i)), d.pa, page, ioremapPerm|ioremapCache, mm.Only(mm.Size4K)); err != nil {
			return fmt.Errorf("ioremap of %s at %v: %w", d.what, d.pa, err)
		}
	}
	return nil
}

func (v *Vmalloc) Inject(s *Space, name string) error {
	switch name {
	case "vmalloc-guard-mapped":
		return mapScratch(s, s.region(mm.KindVmalloc).Start.Add(vmallocPages*page))
	case "no-invlpg":
		v.noFlush = true
		return nil
	case "vmalloc-misaligned":
		return mapScratch(s, s.region(mm.KindVmalloc).Start.Sub(page))
	case "ioremap-guard-mapped":
		return mapScratch(s, s.region(mm.KindVmalloc).Start.Add(ioremapOffset(0)+page))
	case "ioremap-cached":
		return s.AS.Protect(s.region(mm.KindVmalloc).Start.Add(ioremapOffset(1)), page, ioremapPerm)
	case "mmio-in-directmap":
		return s.AS.Map(s.DirectVA(apicDefaultPhysBase), apicDefaultPhysBase, page, mm.PageKernel, mm.Only(mm.Size4K))
	}
	return fmt.Errorf("vmalloc: no injection %q", name)
}

func (v *Vmalloc) Prove(p *Proof) {
	p.proveVmalloc()
	p.proveTLB(v.noFlush)
	p.proveIoremap()
	p.proveMMIONotDirect()
}

// proveVmalloc: at vmalloc_base (mm.rst's without KASLR, else as found),
// vmallocPages pages, each a frame no other is adjacent to, also at
// page_offset_base+pa, tagged with its index through page_offset_base,
// written through; then an unmapped guard page.
func (p *Proof) proveVmalloc() {
	const name = "region.vmalloc"
	if p.Bases.VmallocErr != nil {
		fail(p.R, name, "%v", p.Bases.VmallocErr)
		return
	}
	base := p.Bases.Vmalloc
	if spec := p.spec(mm.KindVmalloc); !p.Ref.KASLR && base != spec.Start {
		fail(p.R, name, "the first vmalloc leaf is at %v, not at VMALLOC_START %v", base, spec.Start)
		return
	}
	var frames []mm.PhysAddr
	err := func() error {
		for i := range vmallocPages {
			va := base.Add(uint64(i) * page)
			what := fmt.Sprintf("vmalloc page %d", i)
			t, err := p.expectLeaf(what, va, anyPA, mm.PageKernel)
			if err != nil {
				return err
			}
			for _, f := range frames {
				if t.PA == f.Add(page) || f == t.PA.Add(page) || f == t.PA {
					return fmt.Errorf("vmalloc frames %v and %v are adjacent or the same", f, t.PA)
				}
			}
			frames = append(frames, t.PA)
			if err := p.expectDirect(what, t.PA); err != nil {
				return err
			}
			got, err := read64(p.CPU, what, va)
			if err != nil {
				return err
			}
			if got != vmallocTag|uint64(i) {
				return fmt.Errorf("%s at %v reads %#x, not its tag %#x", what, va, got, vmallocTag|uint64(i))
			}
			if err := p.expectWriteThrough(what, va.Add(page/2), p.DirectVA(t.PA).Add(page/2)); err != nil {
				return err
			}
		}
		return p.expectUnmapped("the vmalloc guard page", base.Add(vmallocPages*page))
	}()
	if err != nil {
		fail(p.R, name, "%v", err)
		return
	}
	pass(p.R, name, "%d pages at vmalloc_base %v RW NX GLB over scattered frames %v, each also at page_offset_base+pa, tagged and written through; guard page %v unmapped",
		vmallocPages, base, frames, base.Add(vmallocPages*page))
}

// proveTLB maps a page at the next vmap area, reads it, remaps it to
// another frame and reads again: a forgotten invalidation leaves the old
// translation in the TLB. The expectation is the two values written.
func (p *Proof) proveTLB(noFlush bool) {
	const name = "tlb"
	s := p.Act
	va := s.region(mm.KindVmalloc).Start.Add(tlbPageOffset)
	a, errA := s.Tables.AllocFrame()
	b, errB := s.Tables.AllocFrame()
	if err := errors.Join(errA, errB); err != nil {
		fail(p.R, name, "scratch frames: %v", err)
		return
	}
	const va1, va2 = 0xaaaa_aaaa_aaaa_aaaa, 0xbbbb_bbbb_bbbb_bbbb
	s.Mem.Write64(a, va1)
	s.Mem.Write64(b, va2)
	err := s.AS.Map(va, a, page, mm.PageKernel, mm.Only(mm.Size4K))
	var first, second uint64
	if err == nil {
		first, err = read64(p.CPU, "the TLB page", va) // now in the TLB
	}
	if err == nil {
		s.TLB.Skip = noFlush
		err = errors.Join(s.AS.Unmap(va, page), s.AS.Map(va, b, page, mm.PageKernel, mm.Only(mm.Size4K)))
		s.TLB.Skip = false
		second, _ = read64(p.CPU, "the TLB page", va)
		err = errors.Join(err, s.AS.Unmap(va, page))
		s.TLB.InvalidatePage(va) // whatever the injection left
	}
	err = errors.Join(err, s.Tables.FreeFrame(a), s.Tables.FreeFrame(b))
	switch {
	case err != nil:
		fail(p.R, name, "%v", err)
	case first != va1 || second != va2:
		fail(p.R, name, "%v remapped from frame %v to %v, but the CPU read %#x then %#x: a stale TLB entry", va, a, b, first, uint64(second))
	default:
		pass(p.R, name, "%v remapped from frame %v to %v with INVLPG: the CPU read %#x then %#x", va, a, b, first, second)
	}
}

// proveIoremap checks region.ioremap: the LAPIC's frame (from
// IA32_APIC_BASE) and the IOAPIC's each mapped by exactly one leaf in the
// vmalloc area as found (vmalloc_base, mm.rst's size), a 4K page with
// ioremap's protection whose cache bits select UC- in the CPU's PAT,
// followed by an unmapped guard page; read through it, the device answers
// as it does through the fixmap (the LAPIC's ID against CPUID, both
// versions against QEMU's), which RAM would not.
func (p *Proof) proveIoremap() {
	const name = "region.ioremap"
	if p.Bases.VmallocErr != nil {
		fail(p.R, name, "%v", p.Bases.VmallocErr)
		return
	}
	area := p.foundArea(mm.KindVmalloc, p.Bases.Vmalloc)
	var parts []string
	err := func() error {
		apicPA, err := lapicBase(p.CPU)
		if err != nil {
			return err
		}
		for _, d := range []struct {
			what string
			pa   mm.PhysAddr
			regs func(CPU, string, mm.VirtAddr) (uint32, uint32, error)
		}{{"the LAPIC", apicPA, lapicRegs}, {"the IOAPIC", ioAPICDefaultPhysBase, ioapicRegs}} {
			var at []mm.VirtAddr
			for lf := range p.Live.Leaves(area) {
				if lf.PA <= d.pa && d.pa < lf.PA.Add(uint64(lf.Size)) {
					at = append(at, lf.VA)
				}
			}
			if len(at) != 1 {
				return fmt.Errorf("%s's frame %v is mapped %d times in the vmalloc area %v, want one ioremap", d.what, d.pa, len(at), area)
			}
			va := at[0]
			what := "the ioremap of " + d.what[len("the "):]
			if _, err := expectDevicePage(p, what, va, d.pa, ioremapPerm, ioremapCache, memUCMinus); err != nil {
				return err
			}
			if err := p.expectUnmapped(what+"'s guard page", va.Add(page)); err != nil {
				return err
			}
			id, ver, err := d.regs(p.CPU, d.what+" through its ioremap", va)
			if err != nil {
				return err
			}
			parts = append(parts, fmt.Sprintf("%s %v -> %v (ID %d, version %#x)", d.what[len("the "):], va, d.pa, id, ver))
		}
		return nil
	}()
	if err != nil {
		fail(p.R, name, "%v", err)
		return
	}
	_, i := patType(p.CPU, ioremapPerm|ioremapCache)
	pass(p.R, name, "ioremapped in the vmalloc area: %s, each %v (PAT entry %d: UC-, ioremap's _PAGE_CACHE_MODE_UC_MINUS) "+
		"and followed by an unmapped guard page; the LAPIC's ID = CPUID's initial APIC ID, versions QEMU's",
		strings.Join(parts, ", "), ioremapPerm|ioremapCache, i)
}

// proveMMIONotDirect checks mmio.directmap: the direct map as found
// (page_offset_base, mm.rst's size) has no leaf over a physical page
// outside RAM, as the PVH memory map gives it, but for the ISA range below
// 1 MiB, which init_mem_mapping maps whole; and the LAPIC's and IOAPIC's
// frames are no RAM, so no leaf of it covers them.
func (p *Proof) proveMMIONotDirect() {
	const name = "mmio.directmap"
	if p.Bases.PageOffsetErr != nil {
		fail(p.R, name, "%v", p.Bases.PageOffsetErr)
		return
	}
	spec := p.spec(mm.KindDirectMap)
	err := func() error {
		apicPA, err := lapicBase(p.CPU)
		if err != nil {
			return err
		}
		for _, d := range []struct {
			what string
			pa   mm.PhysAddr
		}{{"the LAPIC", apicPA}, {"the IOAPIC", ioAPICDefaultPhysBase}} {
			if err := notRAM(p.Ref, d.what, d.pa); err != nil {
				return err
			}
		}
		// The holes: everything from the ISA range's end to the end of the
		// direct map's region that is not RAM.
		at := isaEnd
		end := mm.PhysAddr(spec.Size)
		if p.Ref.KASLR && p.Bases.VmallocErr == nil && p.Bases.Vmalloc > p.Bases.PageOffset {
			// vmalloc follows the direct-map region, whose size KASLR
			// may set below mm.rst's 64 TB (32 PB).
			end = min(end, mm.PhysAddr(p.Bases.Vmalloc-p.Bases.PageOffset))
		}
		for _, r := range append(slices.Clone(p.Ref.RAM), mm.PhysRange{Start: end, End: end}) {
			if r.Start > at {
				hole := mm.VirtRange{Start: p.DirectVA(at), End: p.DirectVA(min(r.Start, end))}
				for lf := range p.Live.Leaves(hole) {
					return fmt.Errorf("the direct map's %v leaf at %v maps %v, outside RAM (the hole [%v, %v) of the PVH memory map)",
						lf.Size, lf.VA, lf.PA, at, min(r.Start, end))
				}
			}
			at = max(at, r.End)
			if at >= end {
				break
			}
		}
		return nil
	}()
	if err != nil {
		fail(p.R, name, "%v", err)
		return
	}
	pass(p.R, name, "no leaf of the direct map at page_offset_base %v covers a physical page outside RAM (the PVH memory map) "+
		"above the ISA range: device memory, the LAPIC and IOAPIC among it, is reached only through the fixmap and ioremap",
		p.Bases.PageOffset)
}
