package region

import (
	"encoding/binary"
	"fmt"
	"slices"

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
	// Deferred is the descriptors left for DeferredInit: those of RAM
	// frames from first_deferred_pfn on; DeferredDone says it ran.
	Deferred     mm.PhysRange
	DeferredDone bool
	// backing is where each section's descriptors live, for DeferredInit.
	backing map[uint64]sectionMap
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

// The zones' ends (arch/x86/include/asm/dma.h: MAX_DMA_PFN, MAX_DMA32_PFN):
// ZONE_DMA below 16 MiB, ZONE_DMA32 below 4 GiB, ZONE_NORMAL above.
const (
	zoneDMAEnd   = 16 << 20
	zoneDMA32End = 4 << 30
)

// firstDeferredPFN is first_deferred_pfn as Linux 6.1 with
// CONFIG_DEFERRED_STRUCT_PAGE_INIT (Debian's config has it) sets it for
// ram (sorted, joined), one node: memmap_init initialises the descriptors
// of every zone but the node's last whole, and of the last only its first
// section's worth of RAM frames, up to the next section boundary; the rest
// wait for deferred_init_memmap (mm/page_alloc.c: defer_init). ok is false
// when nothing is deferred.
func firstDeferredPFN(ram []mm.PhysRange) (pfn uint64, ok bool) {
	if len(ram) == 0 {
		return 0, false
	}
	top := uint64(ram[len(ram)-1].End) - 1
	var zone uint64 // the last zone's first byte
	switch {
	case top >= zoneDMA32End:
		zone = zoneDMA32End
	case top >= zoneDMAEnd:
		zone = zoneDMAEnd
	}
	seen := uint64(0) // RAM frames of the zone before this range
	for _, r := range ram {
		lo, hi := max(uint64(r.Start), zone)>>12, uint64(r.End)>>12
		if lo >= hi {
			continue
		}
		// defer_init counts the frame it is given before it tests: the
		// first frame past pfnsPerSection, on a section boundary.
		at := lo
		if seen < pfnsPerSection {
			at = lo + pfnsPerSection - seen
		}
		if at = (at + pfnsPerSection - 1) &^ (pfnsPerSection - 1); at < hi {
			return at, true
		}
		seen += hi - lo
	}
	return 0, false
}

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
	v.backing = map[uint64]sectionMap{}
	v.Deferred, v.DeferredDone = mm.PhysRange{}, false
	if pfn, ok := firstDeferredPFN(ram); ok {
		v.Deferred = mm.PhysRange{Start: mm.PhysAddr(pfn << 12), End: ram[len(ram)-1].End}
	}
	sections := sectionsOf(ram)
	// One buffer for all the sections' descriptors, 2 MiB aligned, as
	// sparse_buffer_init takes one for a node (mm/sparse.c), mapped with
	// 2 MiB pages a run of consecutive sections at a time.
	if buf, err := s.Frames.AllocAligned(len(sections)*framesPerMemmap, uint64(mm.Size2M)); err == nil {
		for i := 0; i < len(sections); {
			j := i + 1
			for j < len(sections) && sections[j] == sections[j-1]+1 {
				j++
			}
			va, pa := base.Add(sections[i]*sectionMemmapSize), buf.Add(uint64(i)*sectionMemmapSize)
			if err := s.AS.Map(va, pa, uint64(j-i)*sectionMemmapSize, mm.PageKernel, mm.Only(mm.Size2M)); err != nil {
				return err
			}
			for k := i; k < j; k++ {
				v.backing[sections[k]] = sectionMap{huge: buf.Add(uint64(k) * sectionMemmapSize), isHuge: true}
			}
			i = j
		}
		v.Huge = len(sections)
	} else {
		// No such buffer: each section on its own, one 2 MiB frame or
		// 4 KiB frames (vmemmap_populate_hugepages falling back to
		// vmemmap_populate_basepages).
		for _, nr := range sections {
			va := base.Add(nr * sectionMemmapSize)
			if pa, err := s.Frames.AllocAligned(framesPerMemmap, uint64(mm.Size2M)); err == nil {
				if err := s.AS.Map(va, pa, sectionMemmapSize, mm.PageKernel, mm.Only(mm.Size2M)); err != nil {
					return err
				}
				v.backing[nr] = sectionMap{huge: pa, isHuge: true}
				v.Huge++
				continue
			}
			var frames []mm.PhysAddr
			for i := range framesPerMemmap {
				pa, err := s.Frames.AllocFrame()
				if err != nil {
					return fmt.Errorf("section %d: %w", nr, err)
				}
				if err := s.AS.Map(va.Add(uint64(i)*page), pa, page, mm.PageKernel, mm.Only(mm.Size4K)); err != nil {
					return err
				}
				frames = append(frames, pa)
			}
			v.backing[nr] = sectionMap{frames: frames}
		}
	}
	for _, nr := range sections {
		v.Sections++
		if _, err := v.initSection(s, ram, nr, false); err != nil {
			return err
		}
	}
	return nil
}

// sectionMap is where a section's descriptors live: one 2 MiB frame, or
// framesPerMemmap 4 KiB ones.
type sectionMap struct {
	huge   mm.PhysAddr
	isHuge bool
	frames []mm.PhysAddr
}

// frame returns the i-th 4 KiB frame of the section's descriptors.
func (m sectionMap) frame(i int) mm.PhysAddr {
	if m.isHuge {
		return m.huge.Add(uint64(i) * page)
	}
	return m.frames[i]
}

// initSection writes section nr's descriptors through the direct map, one
// backing frame (64 descriptors) at a time: each gets its pfn, a hole's
// PG_reserved too. At boot (deferred false) a frame of only deferred RAM
// descriptors is left as the allocator gave it; deferred true writes just
// those frames. It returns how many frames it wrote.
func (v *Vmemmap) initSection(s *Space, ram []mm.PhysRange, nr uint64, deferred bool) (int, error) {
	whole := v.sectionDeferred(ram, nr)
	if whole && !deferred {
		return 0, nil // at boot, a section of deferred RAM is not looked at
	}
	written := 0
	pfn0 := nr * pfnsPerSection
	for i := range framesPerMemmap {
		pa := v.backing[nr].frame(i)
		first := pfn0 + uint64(i)*descsPerFrame
		isDeferred := whole || v.deferred(ram, first) && v.deferred(ram, first+descsPerFrame-1)
		if isDeferred != deferred {
			continue
		}
		// Most frames' 64 descriptors lie in one RAM range: then none
		// is a hole, and no descriptor needs a look of its own.
		allRAM := oneRange(ram, mm.PhysAddr(first<<12), mm.PhysAddr((first+descsPerFrame-1)<<12))
		// Each descriptor whole, as __init_single_page zeroes its struct
		// page (mm_zero_struct_page) before setting it: the backing
		// frames are not zeroed (sparse_buffer_init's
		// memblock_alloc_exact_nid_raw).
		va := s.DirectVA(pa)
		if f := s.CPU.FillPage(va, func(p *[page]byte) {
			for d := range uint64(descsPerFrame) {
				desc := (*[structPageSize]byte)(p[d*structPageSize:])
				pfn := first + d
				binary.LittleEndian.PutUint64(desc[0:], pfn)
				clear(desc[8:])
				if !allRAM && !inRAM(ram, mm.PhysAddr(pfn<<12)) {
					desc[8] = descHole // the flags' low byte
				}
			}
		}); f.Faulted {
			return written, &FaultError{What: "writing page descriptors", VA: va, Fault: f}
		}
		written++
	}
	return written, nil
}

// deferred says whether pfn's descriptor waits for DeferredInit: a RAM
// frame at or above first_deferred_pfn (holes are initialised at boot, as
// memmap_init's init_unavailable_range does).
func (v *Vmemmap) deferred(ram []mm.PhysRange, pfn uint64) bool {
	return v.Deferred.Contains(mm.PhysAddr(pfn<<12)) && inRAM(ram, mm.PhysAddr(pfn<<12))
}

// sectionDeferred says whether all of section nr's descriptors wait for
// DeferredInit: the section lies in one RAM range, from first_deferred_pfn
// on. Most sections of a large machine do, and need no look frame by frame.
func (v *Vmemmap) sectionDeferred(ram []mm.PhysRange, nr uint64) bool {
	start := mm.PhysAddr(nr << sectionShift)
	last := start.Add(1<<sectionShift - 1)
	return v.Deferred.Contains(start) && v.Deferred.Contains(last) && oneRange(ram, start, last)
}

// oneRange reports whether first and last lie in the same one of the
// sorted, joined ranges.
func oneRange(ram []mm.PhysRange, first, last mm.PhysAddr) bool {
	i := rangeOf(ram, first)
	return i >= 0 && i == rangeOf(ram, last)
}

// DeferredInit writes the descriptors left at boot, as
// deferred_init_memmap does (page_alloc_init_late, before Linux starts
// init); physmap runs it after the verdict. It returns how many frames'
// descriptors it wrote.
func (v *Vmemmap) DeferredInit(s *Space) (int, error) {
	if v.DeferredDone || v.Deferred.Len() == 0 {
		return 0, nil
	}
	ram := union(directMapRAM(s.RAM))
	n := 0
	for _, nr := range sectionsOf(ram) {
		frames, err := v.initSection(s, ram, nr, true)
		n += frames * int(descsPerFrame)
		if err != nil {
			return n, err
		}
	}
	v.DeferredDone = true
	return n, nil
}

// rangeOf returns the index of the sorted, joined range pa lies in, or -1.
func rangeOf(ram []mm.PhysRange, pa mm.PhysAddr) int {
	i, _ := slices.BinarySearchFunc(ram, pa, func(r mm.PhysRange, pa mm.PhysAddr) int {
		switch {
		case r.End <= pa:
			return -1
		case r.Start > pa:
			return 1
		}
		return 0
	})
	if i < len(ram) && ram[i].Contains(pa) {
		return i
	}
	return -1
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
// RAM range its first, last and middle frames and the quarter points, and
// the last frame before first_deferred_pfn, the last written at boot.
func vmemmapSamples(ram []mm.PhysRange) []uint64 {
	var out []uint64
	joined := union(ram)
	for _, r := range joined {
		first, last := uint64(r.Start)>>12, (uint64(r.End)-1)>>12
		span := last - first
		out = append(out, first, first+span/4, first+span/2, first+3*span/4, last)
	}
	if fd, ok := firstDeferredPFN(joined); ok {
		out = append(out, fd-1)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// lastBootSample is the last sampled pfn whose descriptor is written at
// boot: the one the injection moves, which the proof reads before
// deferred_init_memmap has run.
func lastBootSample(ram []mm.PhysRange) uint64 {
	samples := vmemmapSamples(ram)
	fd, ok := firstDeferredPFN(union(ram))
	for i := len(samples) - 1; i > 0; i-- {
		if !ok || samples[i] < fd {
			return samples[i]
		}
	}
	return samples[0]
}

func (v *Vmemmap) Inject(s *Space, name string) error {
	if name == "vmemmap-deferred-early" {
		// The first deferred descriptor gets its pfn before
		// deferred_init_memmap: memory, not the plan.
		fd, ok := firstDeferredPFN(union(directMapRAM(s.RAM)))
		if !ok {
			return fmt.Errorf("vmemmap: nothing is deferred with this RAM")
		}
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], fd)
		return writeBytes(s.CPU, "a deferred page descriptor", s.region(mm.KindVmemmap).Start.Add(fd*structPageSize), b[:])
	}
	if name != "vmemmap-off-by-one" {
		return fmt.Errorf("vmemmap: no injection %q", name)
	}
	va := s.region(mm.KindVmemmap).Start.Add(lastBootSample(directMapRAM(s.RAM)) * structPageSize).AlignDown(page)
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
	// Before DeferredInit, the descriptors of RAM frames from
	// first_deferred_pfn on (from the reference's memory map) must not
	// hold their pfn yet: they wait, as Linux's wait for
	// deferred_init_memmap.
	joined := union(ram)
	fd, deferring := firstDeferredPFN(joined)
	pending := func(pfn uint64) bool {
		return deferring && !v.DeferredDone && pfn >= fd && inRAM(joined, mm.PhysAddr(pfn<<12))
	}
	high, leaves, waiting, checked := 0, 0, 0, 0
	err := func() error {
		// Sampled pfns by a walk: the descriptor's address translates to a
		// frame whose direct-map alias holds the pfn, and the CPU reads it
		// there too.
		for _, pfn := range samples {
			va := base.Add(pfn * structPageSize)
			t, err := p.expectLeaf(fmt.Sprintf("the descriptor of pfn %#x", pfn), va, anyPA, mm.PageKernel)
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
			if pending(pfn) {
				if got == pfn {
					return fmt.Errorf("the descriptor of pfn %#x, at or above first_deferred_pfn %#x, holds its pfn before deferred_init_memmap", pfn, fd)
				}
				continue
			}
			checked++
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
			if pending(pfn) {
				if got == pfn {
					return fmt.Errorf("the %v leaf at %v, the descriptors of pfn %#x on, at or above first_deferred_pfn %#x, holds its pfn before deferred_init_memmap", lf.Size, lf.VA, pfn, fd)
				}
				waiting++
				continue
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
	deferred := ""
	switch {
	case deferring && !v.DeferredDone:
		deferred = fmt.Sprintf("; from first_deferred_pfn %#x the descriptors of RAM wait for deferred_init_memmap (CONFIG_DEFERRED_STRUCT_PAGE_INIT): the first descriptor of none of those %d leaves holds its pfn yet", fd, waiting)
	case deferring:
		deferred = fmt.Sprintf("; those from first_deferred_pfn %#x on were written after the verdict, as deferred_init_memmap writes them", fd)
	}
	firsts := "each leaf's first descriptor"
	if waiting > 0 {
		firsts = "the first descriptor of each leaf written at boot"
	}
	pass(p.R, name, "vmemmap_base %v: the %d sections with RAM mapped whole (%s of descriptors in %d leaves), %s holds its pfn; vmemmap_base+pfn*64 holds pfn for %d sampled pfns (%d above 4 GB); no leaf over a hole%s",
		base, len(sections), humanSize(uint64(len(sections))*sectionMemmapSize), leaves, firsts, checked, high, deferred)
}
