package mm

import (
	"fmt"
	"slices"
)

// DirectMapRun is a run of equally sized leaves of the direct map:
// [VA, VA+Len) maps [PA, PA+Len) with pages of Size.
type DirectMapRun struct {
	VA   VirtAddr
	PA   PhysAddr
	Len  uint64
	Size PageSize
}

// Pages returns the number of leaves in the run.
func (r DirectMapRun) Pages() uint64 { return r.Len / uint64(r.Size) }

// DirectMapPlan is the direct map Linux would build for a memory map: the
// leaves, how many of each size (/proc/meminfo's DirectMap4k, 2M, 1G) and
// the fewest table pages that hold them.
type DirectMapPlan struct {
	Mode Mode
	Base VirtAddr       // page_offset_base
	Runs []DirectMapRun // in address order
	// Leaves of each size.
	Pages4K, Pages2M, Pages1G uint64
	// MinTablePages counts the table pages the leaves need, from the root
	// down, with no table shared with anything else.
	MinTablePages uint64
}

// PlanDirectMap computes the direct map of the RAM ranges at base +
// physical address, splitting each range as Linux's split_mem_range does
// (arch/x86/mm/init.c): 4 KiB pages up to the first 2 MiB boundary, 2 MiB
// pages up to the first 1 GiB boundary, 1 GiB pages (if page1G, the CPU's
// Page1GB flag), then 2 MiB and 4 KiB pages for the tail. Only RAM is
// mapped: holes between ranges stay unmapped. Ranges are trimmed to whole
// frames, sorted, and joined where they touch or overlap; the caller adds
// any non-RAM range it wants mapped as RAM (such as the ISA range below
// 1 MiB). No leaf crosses 1 MiB: init_mem_mapping maps the ISA range
// [0, ISA_END_ADDRESS) with a call of its own and the RAM above it with
// others (arch/x86/mm/init.c), so a range from 0 is split there and its
// first 2 MiB are 4 KiB pages. A base that is not 1 GiB (2 MiB) aligned
// rules out 1 GiB (2 MiB) pages, since virtual and physical alignment must
// agree.
func PlanDirectMap(mode Mode, base VirtAddr, ram []PhysRange, page1G bool) (*DirectMapPlan, error) {
	mode.mustValid()
	if !base.IsAligned(frameSize) {
		return nil, opErr("plan direct map", base, NoLevel, ErrMisaligned)
	}
	var rs []PhysRange
	for _, r := range ram {
		r = PhysRange{r.Start.AlignUp(frameSize), r.End.AlignDown(frameSize)}
		if r.Empty() {
			continue
		}
		if uint64(r.End) > 1<<MaxPhysBits {
			return nil, opErr("plan direct map", base, NoLevel, fmt.Errorf("%w: %v", ErrPhysRange, r))
		}
		rs = append(rs, r)
	}
	rs = SplitAtISAEnd(mergeRanges(rs))
	p := &DirectMapPlan{Mode: mode, Base: base}
	if len(rs) == 0 {
		p.MinTablePages = 1
		return p, nil
	}
	last := base.Add(uint64(rs[len(rs)-1].End) - 1)
	if last < base || !mode.Canonical(base) || !mode.Canonical(last) ||
		(base < mode.UserEnd()) != (last < mode.UserEnd()) {
		return nil, opErr("plan direct map", base, NoLevel, ErrNonCanonical)
	}
	use2M := base.IsAligned(uint64(Size2M))
	use1G := page1G && base.IsAligned(uint64(Size1G))
	add := func(start, end PhysAddr, size PageSize) {
		if end <= start {
			return
		}
		if n := len(p.Runs); n > 0 {
			r := &p.Runs[n-1]
			if r.Size == size && r.PA.Add(r.Len) == start {
				r.Len += uint64(end - start)
				return
			}
		}
		p.Runs = append(p.Runs, DirectMapRun{VA: base.Add(uint64(start)), PA: start, Len: uint64(end - start), Size: size})
	}
	for _, r := range rs {
		pos := r.Start
		step := func(limit PhysAddr, size PageSize) {
			limit = min(max(limit, pos), r.End)
			add(pos, limit, size)
			pos = limit
		}
		if !use2M {
			step(r.End, Size4K)
			continue
		}
		step(pos.AlignUp(uint64(Size2M)), Size4K)
		if use1G {
			step(min(pos.AlignUp(uint64(Size1G)), r.End.AlignDown(uint64(Size2M))), Size2M)
			step(r.End.AlignDown(uint64(Size1G)), Size1G)
		}
		step(r.End.AlignDown(uint64(Size2M)), Size2M)
		step(r.End, Size4K)
	}
	for _, r := range p.Runs {
		switch r.Size {
		case Size4K:
			p.Pages4K += r.Pages()
		case Size2M:
			p.Pages2M += r.Pages()
		case Size1G:
			p.Pages1G += r.Pages()
		}
	}
	p.MinTablePages = minTablePages(mode, p.Runs)
	return p, nil
}

// ISAEnd is ISA_END_ADDRESS, the end of the legacy ISA range below 1 MiB
// (arch/x86/include/asm/e820/types.h).
const ISAEnd PhysAddr = 1 << 20

// SplitAtISAEnd splits the sorted ranges at ISA_END_ADDRESS, as
// init_mem_mapping's separate calls for the ISA range and the RAM above it
// do.
func SplitAtISAEnd(rs []PhysRange) []PhysRange {
	var out []PhysRange
	for _, r := range rs {
		if r.Start < ISAEnd && r.End > ISAEnd {
			out = append(out, PhysRange{r.Start, ISAEnd}, PhysRange{ISAEnd, r.End})
			continue
		}
		out = append(out, r)
	}
	return out
}

// minTablePages counts, for each table height, the distinct table-sized
// blocks of address space that hold a leaf at that height or below.
func minTablePages(mode Mode, runs []DirectMapRun) uint64 {
	n := uint64(1) // the root
	for h := 0; h < mode.Levels()-1; h++ {
		block := uint64(1) << shiftH(h+1)
		counted := false
		var lastBlock uint64
		for _, r := range runs {
			if r.Size.Level() > Level(h) {
				continue
			}
			first, end := uint64(r.VA)/block, uint64(r.VA.Add(r.Len-1))/block
			if counted && first == lastBlock {
				first++
			}
			if end >= first {
				n += end - first + 1
			}
			lastBlock, counted = end, true
		}
	}
	return n
}

// Build maps every run of the plan into as with attrs, each with exactly
// its planned page size.
func (p *DirectMapPlan) Build(as *AddressSpace, attrs Attr) error {
	for _, r := range p.Runs {
		if err := as.Map(r.VA, r.PA, r.Len, attrs, Only(r.Size)); err != nil {
			return err
		}
	}
	return nil
}

// Meminfo returns the plan's sizes in the shape of /proc/meminfo.
func (p *DirectMapPlan) Meminfo() string {
	return fmt.Sprintf("DirectMap4k: %8d kB\nDirectMap2M: %8d kB\nDirectMap1G: %8d kB\n",
		p.Pages4K*4, p.Pages2M*2048, p.Pages1G*1024*1024)
}

// Covers reports whether every frame of ram is in the plan (used by
// self-tests to compare a live direct map with its plan).
func (p *DirectMapPlan) Covers(pa PhysAddr) bool {
	i, found := slices.BinarySearchFunc(p.Runs, pa, func(r DirectMapRun, pa PhysAddr) int {
		switch {
		case r.PA.Add(r.Len) <= pa:
			return -1
		case r.PA > pa:
			return 1
		}
		return 0
	})
	return found && i < len(p.Runs)
}
