package linux

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/physmap/physmap/mm"
)

// Facts beyond the bases: each compares what the tables show with what
// the guest itself reported (/proc, kallsyms, its own variables).

// extents merges the leaves in r into maximal virtually contiguous ranges.
func (a *Analysis) extents(r mm.VirtRange, keep func(mm.Leaf) bool) []mm.VirtRange {
	var out []mm.VirtRange
	for lf := range a.AS.Leaves(r) {
		if keep != nil && !keep(lf) {
			continue
		}
		lr := lf.Range()
		if n := len(out); n > 0 && out[n-1].End == lr.Start {
			out[n-1].End = lr.End
			continue
		}
		out = append(out, lr)
	}
	return out
}

func regionRange(l *mm.Layout, k mm.RegionKind) mm.VirtRange {
	r, _ := l.Region(k)
	return mm.VirtRange{Start: r.Start, End: r.Start.Add(r.Size)}
}

// checkModuleExtents finds each loaded module from the tables alone: the
// mapped stretch of the module area holding its base must be exactly the
// core layout /proc/modules gives (its base and size), unmapped pages on
// both sides (module_alloc's areas end in a vmalloc guard page).
func (a *Analysis) checkModuleExtents() {
	if a.Guest == nil || len(a.Guest.Modules) == 0 {
		return
	}
	ext := a.extents(regionRange(a.Layout, mm.KindModules), nil)
	var parts []string
	ok := true
	for _, m := range a.Guest.Modules {
		want := mm.VirtRange{Start: m.Base, End: m.Base.Add(m.Size)}
		i := slices.IndexFunc(ext, func(e mm.VirtRange) bool { return e.Start <= m.Base && m.Base < e.End })
		switch {
		case i < 0:
			ok = false
			parts = append(parts, fmt.Sprintf("%s: nothing mapped at %v", m.Name, m.Base))
		case ext[i] != want:
			ok = false
			parts = append(parts, fmt.Sprintf("%s: tables map [%v, %v), /proc/modules says [%v, %v)", m.Name, ext[i].Start, ext[i].End, want.Start, want.End))
		default:
			parts = append(parts, fmt.Sprintf("%s [%v, %v)", m.Name, want.Start, want.End))
		}
	}
	a.fact("modules", ok, "%d mapped stretches in the module area; each module's is its /proc/modules base and size: %s", len(ext), strings.Join(parts, ", "))
}

// checkDirectMapRAM compares the physical ranges the direct map maps with
// /proc/iomem's System RAM plus the ISA range [0, 1 MiB), which Linux maps
// whole whatever its holes (arch/x86/mm/init.c: init_mem_mapping), each RAM
// range trimmed to whole pages as memblock keeps it. Every leaf must map
// page_offset_base + pa: device memory never appears there.
func (a *Analysis) checkDirectMapRAM() {
	if a.Guest == nil || len(a.Guest.RAM()) == 0 {
		return
	}
	dm := regionRange(a.Layout, mm.KindDirectMap)
	var got []mm.PhysRange
	misplaced := 0
	for lf := range a.AS.Leaves(dm) {
		if mm.VirtAddr(uint64(lf.VA)-uint64(lf.PA)) != dm.Start {
			misplaced++
			continue
		}
		end := lf.PA.Add(uint64(lf.Size))
		if n := len(got); n > 0 && got[n-1].End == lf.PA {
			got[n-1].End = end
			continue
		}
		got = append(got, mm.PhysRange{Start: lf.PA, End: end})
	}
	want := mergeRanges(append([]mm.PhysRange{{Start: 0, End: isaEnd}}, pageTrim(a.Guest.RAM())...))
	a.fact("directmap.ram", misplaced == 0 && slices.Equal(got, want),
		"the direct map at %v maps %s; System RAM and the ISA range are %s; %d leaves map another frame than page_offset_base + pa",
		dm.Start, rangesString(got), rangesString(want), misplaced)
}

// isaEnd is ISA_END_ADDRESS, the end of the legacy first 1 MiB
// (arch/x86/include/asm/e820/types.h).
const isaEnd mm.PhysAddr = 1 << 20

func pageTrim(rs []mm.PhysRange) []mm.PhysRange {
	var out []mm.PhysRange
	for _, r := range rs {
		t := mm.PhysRange{Start: r.Start.AlignUp(PageSize), End: r.End.AlignDown(PageSize)}
		if !t.Empty() {
			out = append(out, t)
		}
	}
	return out
}

func mergeRanges(rs []mm.PhysRange) []mm.PhysRange {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(x, y mm.PhysRange) int {
		switch {
		case x.Start < y.Start:
			return -1
		case x.Start > y.Start:
			return 1
		}
		return 0
	})
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

func rangesString(rs []mm.PhysRange) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.String())
	}
	return strings.Join(s, " ")
}

// checkRealMode finds the direct map's executable leaves and compares them
// with the real-mode trampoline's text as its header gives it: the
// variable real_mode_header points at struct real_mode_header, whose
// first two u32 are text_start and ro_end (arch/x86/include/asm/realmode.h),
// and set_real_mode_permissions makes [text_start, PAGE_ALIGN(ro_end))
// executable through the direct map (arch/x86/realmode/init.c).
func (a *Analysis) checkRealMode() {
	if a.Guest == nil {
		return
	}
	dm := regionRange(a.Layout, mm.KindDirectMap)
	exec := a.extents(dm, func(lf mm.Leaf) bool { return lf.Attrs&mm.AttrNX == 0 })
	hdr, err := a.variable("real_mode_header")
	if err != nil {
		if len(exec) > 0 {
			a.fact("realmode", false, "%d executable stretches in the direct map, and no real_mode_header to explain them: %v", len(exec), err)
		}
		return
	}
	b, err := a.readVA(mm.VirtAddr(hdr), 8)
	if err != nil {
		a.fact("realmode", false, "real_mode_header %#x: %v", hdr, err)
		return
	}
	textStart := mm.PhysAddr(binary.LittleEndian.Uint32(b[0:4]))
	roEnd := mm.PhysAddr(binary.LittleEndian.Uint32(b[4:8])).AlignUp(PageSize)
	want := []mm.VirtRange{{Start: dm.Start.Add(uint64(textStart)), End: dm.Start.Add(uint64(roEnd))}}
	var got []string
	for _, e := range exec {
		got = append(got, fmt.Sprintf("[%v, %v)", e.Start, e.End))
	}
	a.fact("realmode", slices.Equal(exec, want),
		"executable in the direct map: %s; the trampoline's text from *real_mode_header (%#x): text_start %v, ro_end %v",
		orNone(strings.Join(got, " ")), hdr, textStart, roEnd)
}

// checkIoremap holds every uncached leaf of the vmalloc area to
// /proc/vmallocinfo's ioremap areas: it lies in one and maps that area's
// physical address plus its offset.
func (a *Analysis) checkIoremap() {
	if a.Guest == nil {
		return
	}
	vm := regionRange(a.Layout, mm.KindVmalloc)
	n, bad := 0, 0
	var why []string
	for lf := range a.AS.Leaves(vm) {
		if lf.Attrs&(mm.AttrPCD|mm.AttrPWT) == 0 {
			continue
		}
		n++
		i := slices.IndexFunc(a.Guest.Ioremaps, func(io Ioremap) bool { return io.Range.Start <= lf.VA && lf.VA < io.Range.End })
		if i < 0 {
			bad++
			why = append(why, fmt.Sprintf("%v -> %v in no ioremap area", lf.VA, lf.PA))
			continue
		}
		io := a.Guest.Ioremaps[i]
		if want := io.PA.Add(uint64(lf.VA - io.Range.Start)); lf.PA != want {
			bad++
			why = append(why, fmt.Sprintf("%v -> %v, want %v", lf.VA, lf.PA, want))
		}
	}
	var areas []string
	for _, io := range a.Guest.Ioremaps {
		caller, _, _ := strings.Cut(io.Caller, "+")
		areas = append(areas, fmt.Sprintf("%s %v at %v", caller, io.PA, io.Range.Start))
	}
	if n == 0 && len(areas) == 0 {
		return
	}
	a.fact("ioremap", bad == 0, "%d uncached leaves in the vmalloc area, each in an ioremap area of /proc/vmallocinfo (%s)%s",
		n, orNone(strings.Join(areas, ", ")), optionalList("; ", why))
}

func optionalList(sep string, s []string) string {
	if len(s) == 0 {
		return ""
	}
	return sep + strings.Join(s, ", ")
}
