package region

import (
	"encoding/binary"
	"fmt"

	"github.com/physmap/physmap/mm"
)

// Vmemmap is the virtual memory map: Linux's array of struct page, one
// 64-byte descriptor per 4 KiB frame at vmemmap_base + pfn*64 (pfn_to_page
// with CONFIG_SPARSEMEM_VMEMMAP). It is populated one memory section at a
// time, only for sections that hold memory, with a 2 MiB page where a
// 2 MiB frame can be had and 4 KiB pages otherwise (vmemmap_populate_
// hugepages falling back to vmemmap_populate_basepages, arch/x86/mm/
// init_64.c). physmap's descriptor holds the pfn in its first quadword and
// flags in its second; the rest stays zero.
type Vmemmap struct {
	// Sections and Huge count the sections populated and those backed by
	// a 2 MiB page, for the report.
	Sections, Huge int
}

const (
	structPageSize = 64 // sizeof(struct page) on x86-64
	// sectionShift is SECTION_SIZE_BITS (arch/x86/include/asm/
	// sparsemem.h): 128 MiB sections, whose descriptors fill exactly one
	// 2 MiB page.
	sectionShift      = 27
	pfnsPerSection    = 1 << (sectionShift - 12)
	sectionMemmapSize = pfnsPerSection * structPageSize
	framesPerMemmap   = int(sectionMemmapSize / page)
	descsPerFrame     = page / structPageSize
	// descHole marks a descriptor of a frame that is not RAM (Linux marks
	// those PG_reserved).
	descHole = 1
)

// sectionsOf returns the numbers of the sections that hold RAM, ascending.
func sectionsOf(ram []mm.PhysRange) []uint64 {
	var out []uint64
	for _, r := range union(ram) {
		first, last := uint64(r.Start)>>sectionShift, (uint64(r.End)-1)>>sectionShift
		for nr := first; nr <= last; nr++ {
			if n := len(out); n == 0 || out[n-1] < nr {
				out = append(out, nr)
			}
		}
	}
	return out
}

func (v *Vmemmap) Populate(s *Space) error {
	ram := union(directMapRAM(s.RAM))
	base := s.region(mm.KindVmemmap).Start
	buf := make([]byte, page)
	for _, nr := range sectionsOf(ram) {
		va := base.Add(nr * sectionMemmapSize)
		// Back the section: one 2 MiB frame, or 4 KiB frames.
		var backing []mm.PhysAddr
		if pa, err := s.Frames.AllocAligned(framesPerMemmap, uint64(mm.Size2M)); err == nil {
			if err := s.AS.Map(va, pa, sectionMemmapSize, mm.PageKernel, mm.Only(mm.Size2M)); err != nil {
				return err
			}
			for i := range framesPerMemmap {
				backing = append(backing, pa.Add(uint64(i)*page))
			}
			v.Huge++
		} else {
			for i := range framesPerMemmap {
				pa, err := s.Frames.AllocFrame()
				if err != nil {
					return fmt.Errorf("section %d: %w", nr, err)
				}
				if err := s.AS.Map(va.Add(uint64(i)*page), pa, page, mm.PageKernel, mm.Only(mm.Size4K)); err != nil {
					return err
				}
				backing = append(backing, pa)
			}
		}
		v.Sections++
		// Each descriptor gets its pfn, written through the direct map
		// one backing frame (64 descriptors) at a time.
		pfn0 := nr * pfnsPerSection
		for i, pa := range backing {
			for d := range descsPerFrame {
				pfn := pfn0 + uint64(i)*descsPerFrame + d
				flags := uint64(descHole)
				if inRAM(ram, mm.PhysAddr(pfn<<12)) {
					flags = 0
				}
				binary.LittleEndian.PutUint64(buf[d*structPageSize:], pfn)
				binary.LittleEndian.PutUint64(buf[d*structPageSize+8:], flags)
			}
			if err := writeBytes(s.CPU, "page descriptors", s.DirectVA(pa), buf); err != nil {
				return err
			}
		}
	}
	return nil
}

// inRAM reports whether pa lies in one of the sorted, joined ranges.
func inRAM(ram []mm.PhysRange, pa mm.PhysAddr) bool {
	for _, r := range ram {
		if r.Contains(pa) {
			return true
		}
		if r.Start > pa {
			break
		}
	}
	return false
}

// vmemmapSamples are the pfns whose descriptors the proof walks: in every
// RAM range its first, last and middle frames and the quarter points.
func vmemmapSamples(ram []mm.PhysRange) []uint64 {
	var out []uint64
	for _, r := range union(ram) {
		first, last := uint64(r.Start)>>12, (uint64(r.End)-1)>>12
		span := last - first
		for _, pfn := range []uint64{first, first + span/4, first + span/2, first + 3*span/4, last} {
			if n := len(out); n == 0 || out[n-1] != pfn {
				out = append(out, pfn)
			}
		}
	}
	return out
}

func (v *Vmemmap) Inject(s *Space, name string) error {
	if name != "vmemmap-off-by-one" {
		return fmt.Errorf("vmemmap: no injection %q", name)
	}
	samples := vmemmapSamples(directMapRAM(s.RAM))
	va := s.region(mm.KindVmemmap).Start.Add(samples[len(samples)/2] * structPageSize).AlignDown(page)
	t, err := s.AS.Translate(va)
	if err != nil {
		return err
	}
	return remapPage(s, va, t.PA.Add(page))
}

// Prove checks region.vmemmap. Expectations: the sections that hold RAM in
// the reference's memory map, the pfn each descriptor stands for, and
// vmemmap_base from mm.rst (with KASLR, as found in the tables).
func (v *Vmemmap) Prove(p *Proof) {
	const name = "region.vmemmap"
	if p.Bases.VmemmapErr != nil {
		fail(p.R, name, "%v", p.Bases.VmemmapErr)
		return
	}
	base := p.Bases.Vmemmap
	spec := p.spec(mm.KindVmemmap)
	if !p.Ref.KASLR && base != spec.Start {
		fail(p.R, name, "vmemmap_base is %v in the live tables (pfn 0's descriptor), mm.rst's is %v", base, spec.Start)
		return
	}
	ram := directMapRAM(p.Ref.RAM)
	sections := sectionsOf(ram)
	present := make(map[uint64]bool, len(sections))
	for _, nr := range sections {
		present[nr] = true
	}
	samples := vmemmapSamples(ram)
	high, leaves := 0, 0
	err := func() error {
		// Sampled pfns by a walk: the descriptor's address translates to a
		// frame whose direct-map alias holds the pfn, and the CPU reads it
		// there too.
		for _, pfn := range samples {
			va := base.Add(pfn * structPageSize)
			t, err := expectLeaf(p.Live, fmt.Sprintf("the descriptor of pfn %#x", pfn), va, anyPA, mm.PageKernel)
			if err != nil {
				return err
			}
			if p.Bases.PageOffsetErr != nil {
				return p.Bases.PageOffsetErr
			}
			got, err := read64(p.CPU, "a page descriptor's alias", p.DirectVA(t.PA))
			if err != nil {
				return err
			}
			if got != pfn {
				return fmt.Errorf("vmemmap_base+pfn*64 = %v for pfn %#x translates to %v, whose page_offset_base alias holds pfn %#x", va, pfn, t.PA, got)
			}
			if got, err = read64(p.CPU, "a page descriptor", va); err != nil {
				return err
			}
			if got != pfn {
				return fmt.Errorf("the CPU reads pfn %#x at %v, the descriptor of pfn %#x", got, va, pfn)
			}
			if pfn<<12 >= 4<<30 {
				high++
			}
		}
		// Every leaf lies over a section with RAM, every such section is
		// mapped whole, and the CPU reads, at each leaf's first
		// descriptor, the pfn it stands for.
		var mapped uint64
		for lf := range p.Live.Leaves(p.foundArea(mm.KindVmemmap, base)) {
			if lf.VA < base {
				return fmt.Errorf("a %v leaf at %v straddles vmemmap_base %v", lf.Size, lf.VA, base)
			}
			nr := uint64(lf.VA-base) / sectionMemmapSize
			if !present[nr] {
				return fmt.Errorf("a %v leaf at %v maps the descriptors of section %d, which holds no RAM", lf.Size, lf.VA, nr)
			}
			mapped += uint64(lf.Size)
			leaves++
			pfn := uint64(lf.VA-base) / structPageSize
			got, err := read64(p.CPU, "a page descriptor", lf.VA)
			if err != nil {
				return err
			}
			if got != pfn {
				return fmt.Errorf("the CPU reads pfn %#x at %v, the first descriptor of a %v leaf, which stands for pfn %#x", got, lf.VA, lf.Size, pfn)
			}
		}
		if want := uint64(len(sections)) * sectionMemmapSize; mapped != want {
			return fmt.Errorf("%d KiB of the memory map mapped, want %d KiB for the %d sections with RAM", mapped>>10, want>>10, len(sections))
		}
		return nil
	}()
	if err != nil {
		fail(p.R, name, "%v", err)
		return
	}
	pass(p.R, name, "vmemmap_base %v: the %d sections with RAM mapped whole (%s of descriptors in %d leaves), each leaf's first descriptor holds its pfn; vmemmap_base+pfn*64 holds pfn for %d sampled pfns (%d above 4 GB); no leaf over a hole",
		base, len(sections), humanSize(uint64(len(sections))*sectionMemmapSize), leaves, len(samples), high)
}
