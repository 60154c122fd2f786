package region

import (
	"fmt"
	"slices"

	"golang.org/x/arch/x86/x86asm"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/mm"
)

// DirectMap is the direct mapping of all physical memory at
// page_offset_base, built as init_mem_mapping does (arch/x86/mm/init.c):
// the ISA range, then every RAM range of the firmware's memory map, each
// split into 4K head, 2M, 1G (where CPUID has Page1GB), 2M, 4K tail by
// split_mem_range, RW+NX+global (PAGE_KERNEL); holes stay unmapped.
type DirectMap struct {
	// Plan is what was built, for the report's DirectMap lines and the
	// table footprint.
	Plan *mm.DirectMapPlan
}

// directMapRAM is what the builder maps: the ISA range and every RAM range
// of its memory map.
func directMapRAM(ram []mm.PhysRange) []mm.PhysRange {
	return append([]mm.PhysRange{{Start: 0, End: isaEnd}}, ram...)
}

func (d *DirectMap) Populate(s *Space) error {
	ram := directMapRAM(s.RAM)
	plan, err := mm.PlanDirectMap(s.AS.Mode(), s.Layout.PageOffset(), ram, s.Page1GB)
	if err != nil {
		return err
	}
	d.Plan = plan
	for _, r := range mm.SplitAtISAEnd(union(ram)) {
		s.logf("init_memory_mapping: [mem 0x%08x-0x%08x]", uint64(r.Start), uint64(r.End)-1)
	}
	for _, r := range plan.Runs {
		s.logf(" [mem 0x%08x-0x%08x] page %v", uint64(r.PA), uint64(r.PA)+r.Len-1, r.Size)
	}
	return plan.Build(s.AS, mm.PageKernel)
}

// Meminfo returns /proc/meminfo's DirectMap lines for the direct map as
// the tables in s hold it now: Linux's direct_pages_count starts from
// init_memory_mapping's leaves and follows every later split of a direct-map
// page (arch/x86/mm/pat/set_memory.c: __split_large_page), here the
// modules' read-only aliases; counting the leaves gives the same.
func (d *DirectMap) Meminfo(s *Space) string {
	r := s.region(mm.KindDirectMap)
	var n4, n2, n1 uint64
	for lf := range s.AS.Leaves(mm.VirtRange{Start: r.Start, End: r.Start.Add(r.Size)}) {
		switch lf.Size {
		case mm.Size4K:
			n4++
		case mm.Size2M:
			n2++
		case mm.Size1G:
			n1++
		}
	}
	return fmt.Sprintf("DirectMap4k: %8d kB\nDirectMap2M: %8d kB\nDirectMap1G: %8d kB\n", n4*4, n2*2048, n1*1024*1024)
}

func (d *DirectMap) Inject(s *Space, name string) error {
	switch name {
	case "directmap-hole":
		last := s.RAM[len(s.RAM)-1]
		size := uint64(mm.Size2M)
		pa := last.End.AlignDown(size) - mm.PhysAddr(size)
		return s.AS.Unmap(s.DirectVA(pa), size)
	case "directmap-exec":
		for _, r := range s.RAM {
			if err := s.AS.Protect(s.DirectVA(r.Start), r.Len(), mm.AttrWrite|mm.AttrGlobal); err != nil {
				return err
			}
		}
		return nil
	case "old-base":
		return shiftTopEntries(s, s.DirectVA(0), uint64(maxRAM(s.RAM)))
	}
	return fmt.Errorf("direct map: no injection %q", name)
}

// shiftTopEntries moves the top-level entries that map [va, va+n) one slot
// down, over whatever the slot below held: the direct map as it was before
// Linux 4.20 put the LDT remap below it.
func shiftTopEntries(s *Space, va mm.VirtAddr, n uint64) error {
	mode := s.AS.Mode()
	shift := mode.VABits() - 9
	slot := func(v mm.VirtAddr) uint64 { return uint64(v) >> shift & 511 }
	first, last := slot(va), slot(va.Add(n-1))
	if first == 0 {
		return fmt.Errorf("the direct map starts in top-level slot 0")
	}
	root := s.AS.Root()
	for i := first; i <= last; i++ {
		s.Mem.Write64(root.Add((i-1)*8), s.Mem.Read64(root.Add(i*8)))
	}
	s.Mem.Write64(root.Add(last*8), 0)
	s.TLB.FlushAll()
	return nil
}

// union sorts ranges and joins those that touch or overlap. It is the
// proofs' own, apart from mm's mergeRanges that the builder's plan uses, so
// that a bug in one cannot hide itself in the other's expectation.
func union(rs []mm.PhysRange) []mm.PhysRange {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b mm.PhysRange) int {
		switch {
		case a.Start < b.Start:
			return -1
		case a.Start > b.Start:
			return 1
		}
		return 0
	})
	var out []mm.PhysRange
	for _, r := range rs {
		if r.Empty() {
			continue
		}
		if n := len(out); n > 0 && r.Start <= out[n-1].End {
			out[n-1].End = max(out[n-1].End, r.End)
			continue
		}
		out = append(out, r)
	}
	return out
}

// Prove checks walk.directmap and fault.nx.
//
// walk.directmap's expectations: RAM from the reference (the PVH memory
// map, not the fw_cfg map the builder used), the ISA range Linux always
// maps, and page_offset_base as mm.rst documents it (with KASLR, the base
// found in the tables, which kaslr.memory holds to kaslr.c's rules).
func (d *DirectMap) Prove(p *Proof) {
	p.proveDirectMap()
	p.proveFaultNX()
}

func (p *Proof) proveDirectMap() {
	const name = "walk.directmap"
	if p.Bases.PageOffsetErr != nil {
		fail(p.R, name, "%v", p.Bases.PageOffsetErr)
		return
	}
	base := p.Bases.PageOffset
	spec := p.spec(mm.KindDirectMap)
	if !p.Ref.KASLR && base != spec.Start {
		fail(p.R, name, "page_offset_base is %v in the live tables (the first leaf mapping physical address 0), mm.rst's is %v", base, spec.Start)
		return
	}
	want := union(directMapRAM(p.Ref.RAM))
	var total uint64
	for _, r := range want {
		total += r.Len()
	}
	// With KASLR the direct map is sized to RAM, and the next region's
	// leaves may follow closely: look up to vmalloc_base as found.
	end := base.Add(spec.Size)
	if p.Ref.KASLR {
		end = base.Add(uint64(maxRAM(p.Ref.RAM)))
		if p.Bases.VmallocErr == nil && p.Bases.Vmalloc > end {
			end = p.Bases.Vmalloc
		}
	}
	var covered uint64
	j := 0
	for lf := range p.Live.Leaves(mm.VirtRange{Start: base, End: end}) {
		pa := mm.PhysAddr(lf.VA - base)
		if lf.VA < base || lf.PA != pa {
			fail(p.R, name, "the leaf at %v maps %v, not page_offset_base+%v", lf.VA, lf.PA, pa)
			return
		}
		last := pa.Add(uint64(lf.Size))
		for j < len(want) && want[j].End <= pa {
			j++
		}
		if j == len(want) || pa < want[j].Start || last > want[j].End {
			fail(p.R, name, "the %v leaf at %v maps [%v, %v), which is not RAM in the PVH memory map", lf.Size, lf.VA, pa, last)
			return
		}
		covered += uint64(lf.Size)
	}
	if covered != total {
		fail(p.R, name, "page_offset_base %v maps %s of the %s of RAM and ISA range the PVH memory map gives", base, humanSize(covered), humanSize(total))
		return
	}
	pass(p.R, name, "page_offset_base %v maps all %s of RAM in the PVH memory map and the ISA range, 1:1, no hole mapped", base, humanSize(total))
}

// proveFaultNX executes RIPProbe through the direct map: its alias there is
// NX, so the fetch must fault with P and I set.
func (p *Proof) proveFaultNX() {
	const name = "fault.nx"
	if p.Bases.PageOffsetErr != nil {
		fail(p.R, name, "%v", p.Bases.PageOffsetErr)
		return
	}
	pa := p.Ref.Image.RIPProbe
	va := p.DirectVA(pa)
	_, f := p.CPU.Call(va)
	what := fmt.Sprintf("executing RIPProbe through the direct map at %v", va)
	if err := expectFault(what, f, amd64.PF_P|amd64.PF_I); err != nil {
		fail(p.R, name, "%v", err)
		return
	}
	pass(p.R, name, "%s: #PF cr2=%#x code=%#x (%v): %s", what, f.CR2, uint64(f.Code), f.Code, p.decode(mm.VirtAddr(pa)))
}

// decode disassembles the instruction at va (read through the CPU).
func (p *Proof) decode(va mm.VirtAddr) string {
	b, err := readBytes(p.CPU, "an instruction", va, 16)
	if err != nil {
		return fmt.Sprintf("(unreadable: %v)", err)
	}
	return disasm(b, uint64(va))
}

// disasm decodes the instruction at the start of b, located at pc.
func disasm(b []byte, pc uint64) string {
	inst, err := x86asm.Decode(b, 64)
	if err != nil {
		return fmt.Sprintf("(undecodable: %v)", err)
	}
	return x86asm.IntelSyntax(inst, pc, nil)
}
