//go:build tamago

package main

import (
	"fmt"

	"github.com/physmap/physmap/mm"
)

// The virtual memory map: Linux's array of struct page, one 64-byte
// descriptor per 4 KiB frame at vmemmap_base + pfn*64 (pfn_to_page with
// CONFIG_SPARSEMEM_VMEMMAP). It is populated one memory section at a time,
// only for sections that hold memory, with a 2 MiB page where a 2 MiB
// frame can be had and 4 KiB pages otherwise (vmemmap_populate_hugepages
// falling back to vmemmap_populate_basepages, arch/x86/mm/init_64.c).
const (
	structPageSize = 64 // sizeof(struct page) on x86-64
	// sectionShift is SECTION_SIZE_BITS (arch/x86/include/asm/
	// sparsemem.h): 128 MiB sections, whose descriptors fill exactly one
	// 2 MiB page.
	sectionShift      = 27
	pfnsPerSection    = 1 << (sectionShift - 12)
	sectionMemmapSize = pfnsPerSection * structPageSize
	framesPerMemmap   = int(sectionMemmapSize / page)
)

// physmap's page descriptor: the pfn in the first quadword, flags in the
// second; the rest stays as the firmware left it (zero).
const (
	descPFN   = 0 // quadword indices
	descFlags = 1
	// descHole marks a descriptor of a section's frame that is not RAM
	// (Linux marks those PG_reserved).
	descHole = 1
)

// memSection is one present section's piece of the memory map.
type memSection struct {
	nr     uint64        // section number: pfn >> (sectionShift-12)
	huge   mm.PhysAddr   // its 2 MiB backing frame, or 0
	frames []mm.PhysAddr // its 4 KiB backing frames when there is no huge one
}

// backing returns the physical address of byte off of the section's
// descriptors.
func (s *memSection) backing(off uint64) mm.PhysAddr {
	if s.huge != 0 {
		return s.huge.Add(off)
	}
	return s.frames[off/page].Add(off % page)
}

// vmemmap is the populated memory map.
type vmemmap struct {
	base     mm.VirtAddr
	sections []*memSection
	huge     int // sections backed by a 2 MiB page
}

// descVA is pfn_to_page(pfn).
func (v *vmemmap) descVA(pfn uint64) mm.VirtAddr { return v.base.Add(pfn * structPageSize) }

func (k *kspace) populateVmemmap() error {
	v := &k.reg.vmemmap
	v.base = k.region(mm.KindVmemmap).Start
	ram := k.directMapRAM()
	for _, r := range ram {
		first, last := uint64(r.Start)>>sectionShift, (uint64(r.End)-1)>>sectionShift
		for nr := first; nr <= last; nr++ {
			if n := len(v.sections); n > 0 && v.sections[n-1].nr >= nr {
				continue // shared with the range before
			}
			s, err := k.populateSection(v, nr)
			if err != nil {
				return fmt.Errorf("section %d: %w", nr, err)
			}
			v.sections = append(v.sections, s)
		}
	}
	// Each descriptor gets its pfn, through the direct map, one backing
	// frame (64 descriptors) at a time; frames of a section that are not
	// RAM are marked as holes. Sections and ranges ascend, so one cursor j
	// into ram serves them all.
	j := 0
	for _, s := range v.sections {
		pfn0 := s.nr * pfnsPerSection
		for off := uint64(0); off < sectionMemmapSize; off += page {
			d := descFrame(k.directVA(s.backing(off)))
			pfn := pfn0 + off/structPageSize
			lo, hi := mm.PhysAddr(pfn<<12), mm.PhysAddr((pfn+descsPerFrame)<<12)
			for j < len(ram) && ram[j].End <= lo {
				j++
			}
			if j < len(ram) && ram[j].Start <= lo && hi <= ram[j].End {
				for e := range d { // all RAM: the common case, kept tight
					d[e][descPFN] = pfn + uint64(e)
					d[e][descFlags] = 0
				}
				continue
			}
			for e := range d {
				pa, flags := mm.PhysAddr((pfn+uint64(e))<<12), uint64(descHole)
				for _, r := range ram[j:] {
					if r.Contains(pa) {
						flags = 0
					}
				}
				d[e][descPFN] = pfn + uint64(e)
				d[e][descFlags] = flags
			}
		}
	}
	return nil
}

// descsPerFrame is how many descriptors one 4 KiB frame holds.
const descsPerFrame = page / structPageSize

// descFrame views the 4 KiB of descriptors at va as an array, indexed by
// descriptor and then by quadword.
func descFrame(va mm.VirtAddr) *[descsPerFrame][structPageSize / 8]uint64 {
	return (*[descsPerFrame][structPageSize / 8]uint64)(ptrAt(va))
}

// populateSection backs and maps one section's descriptors.
func (k *kspace) populateSection(v *vmemmap, nr uint64) (*memSection, error) {
	s := &memSection{nr: nr}
	va := v.descVA(nr * pfnsPerSection)
	if pa, err := k.frames.AllocAligned(framesPerMemmap, uint64(mm.Size2M)); err == nil {
		s.huge = pa
		v.huge++
		return s, k.as.Map(va, pa, sectionMemmapSize, mm.PageKernel, mm.Only(mm.Size2M))
	}
	for i := 0; i < framesPerMemmap; i++ {
		pa, err := k.frames.AllocFrame()
		if err != nil {
			return nil, err
		}
		s.frames = append(s.frames, pa)
		if err := k.as.Map(va.Add(uint64(i)*page), pa, page, mm.PageKernel, mm.Only(mm.Size4K)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// vmemmapSamples are the pfns whose descriptors the proof walks: in every
// RAM range its first, last and middle frames and the quarter points.
func (k *kspace) vmemmapSamples() []uint64 {
	var out []uint64
	for _, r := range k.directMapRAM() {
		first, last := uint64(r.Start)>>12, (uint64(r.End)-1)>>12
		span := last - first
		for _, p := range []uint64{first, first + span/4, first + span/2, first + 3*span/4, last} {
			if n := len(out); n == 0 || out[n-1] != p {
				out = append(out, p)
			}
		}
	}
	return out
}

func (k *kspace) proveVmemmap(r *report, live *mm.AddressSpace) {
	v := &k.reg.vmemmap
	samples := k.vmemmapSamples()
	high, checkedLeaves := 0, 0
	err := func() error {
		// Sampled pfns by an independent walk: the descriptor's address
		// translates to a frame whose direct-map alias holds the pfn.
		for _, pfn := range samples {
			va := v.descVA(pfn)
			t, err := k.expectLeaf(live, fmt.Sprintf("descriptor of pfn %#x", pfn), va, noPA, mm.PageKernel)
			if err != nil {
				return err
			}
			if got := read64(k.directVA(t.PA).Add(8 * descPFN)); got != pfn {
				return fmt.Errorf("vmemmap_base+pfn*64 = %v for pfn %#x translates to %v, whose page_offset_base alias holds pfn %#x", va, pfn, t.PA, got)
			}
			got, err := probe(va)
			if err != nil {
				return err
			}
			if got != pfn {
				return fmt.Errorf("the CPU reads pfn %#x at %v, the descriptor of pfn %#x", got, va, pfn)
			}
			if pfn<<12 >= 4<<30 {
				high++
			}
		}
		// Every leaf lies over a present section, and every present
		// section is mapped whole: holes stay unmapped.
		present := map[uint64]bool{}
		for _, s := range v.sections {
			present[s.nr] = true
		}
		// and the CPU reads, at the first descriptor of every leaf, the
		// pfn that descriptor stands for: one read per leaf, so the proof
		// costs in proportion to the leaves, not to the bytes of RAM.
		reg := k.region(mm.KindVmemmap)
		var mapped uint64
		leaves := 0
		for lf := range live.Leaves(mm.VirtRange{Start: reg.Start, End: reg.Start.Add(reg.Size)}) {
			nr := uint64(lf.VA-v.base) / sectionMemmapSize
			if !present[nr] {
				return fmt.Errorf("a %v leaf at %v maps the descriptors of section %d, which holds no RAM", lf.Size, lf.VA, nr)
			}
			mapped += uint64(lf.Size)
			leaves++
			pfn := uint64(lf.VA-v.base) / structPageSize
			got, err := probe(lf.VA.Add(8 * descPFN))
			if err != nil {
				return err
			}
			if got != pfn {
				return fmt.Errorf("the CPU reads pfn %#x at %v, the first descriptor of a %v leaf, which stands for pfn %#x", got, lf.VA, lf.Size, pfn)
			}
		}
		if want := uint64(len(v.sections)) * sectionMemmapSize; mapped != want {
			return fmt.Errorf("%d KiB of the memory map mapped, want %d KiB for %d sections", mapped>>10, want>>10, len(v.sections))
		}
		checkedLeaves = leaves
		return nil
	}()
	if err != nil {
		r.fail("region.vmemmap", "%v", err)
		return
	}
	r.pass("region.vmemmap", "vmemmap_base %v: %d sections present (%d in 2 MiB pages, %d in 4 KiB), %d MiB of descriptors; vmemmap_base+pfn*64 holds pfn for %d sampled pfns (%d above 4 GiB) by walk, and at the first descriptor of each of the %d leaves by the CPU; no leaf over a hole",
		v.base, len(v.sections), v.huge, len(v.sections)-v.huge, uint64(len(v.sections))*sectionMemmapSize>>20, len(samples), high, checkedLeaves)
}

// injectVmemmapOffByOne backs the page holding a sampled descriptor with
// the frame after its own (splitting the 2 MiB page around it).
func (k *kspace) injectVmemmapOffByOne() error {
	v := &k.reg.vmemmap
	samples := k.vmemmapSamples()
	va := v.descVA(samples[len(samples)/2]).AlignDown(page)
	t, err := k.as.Translate(va)
	if err != nil {
		return err
	}
	if err := k.as.Unmap(va, page); err != nil {
		return err
	}
	return k.as.Map(va, t.PA.Add(page), page, mm.PageKernel, mm.Only(mm.Size4K))
}
