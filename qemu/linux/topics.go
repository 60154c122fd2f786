package linux

import (
	"fmt"
	"strings"

	"github.com/physmap/physmap/kernel/dump"
	"github.com/physmap/physmap/mm"
)

// runAt returns the run of d mapping va.
func runAt(d *dump.Dump, va mm.VirtAddr) (dump.Run, bool) {
	for _, r := range d.Runs {
		if dump.Addr(va) >= r.VA && dump.Addr(va) < r.End() {
			return r, true
		}
	}
	return dump.Run{}, false
}

// leafString says how va is mapped in d: "4K ro GLB NX", or "not mapped".
func leafString(d *dump.Dump, va mm.VirtAddr) string {
	r, ok := runAt(d, va)
	if !ok {
		return "not mapped"
	}
	return fmt.Sprintf("%v %s", mm.PageSize(r.Size), permString(r.Flags))
}

// physmapAlias returns the PA of physmap's alias entry what and the VA of
// its alias in the region named region.
//
// what "module text" stands for the first module's text frame, which
// physmap's dump names after the module ("reloc text").
func physmapAlias(d *dump.Dump, what, region string) (mm.PhysAddr, mm.VirtAddr, bool) {
	for _, a := range d.Aliases {
		module := what == "module text" && !strings.HasPrefix(a.What, "kernel ") && strings.HasSuffix(a.What, " text")
		if a.What != what && !module {
			continue
		}
		for _, va := range a.VAs {
			if r, ok := runAt(d, mm.VirtAddr(va)); ok && r.Region == region {
				return mm.PhysAddr(a.PA), mm.VirtAddr(va), true
			}
		}
		return mm.PhysAddr(a.PA), 0, true
	}
	return 0, 0, false
}

// globalShare says how much of a dump's kernel half is mapped global.
func globalShare(d *dump.Dump, mode mm.Mode) string {
	ks := dump.Addr(mode.KernelStart())
	var all, glb uint64
	for _, r := range d.Runs {
		if r.VA < ks {
			continue
		}
		n := uint64(r.Size) * r.Count
		all += n
		if r.Flags.Global {
			glb += n
		}
	}
	return fmt.Sprintf("%s of %s global", humanBytes(glb), humanBytes(all))
}

// Topics are the differences that are not one region's: where the image
// sits, how the direct map starts, the permissions of direct-map aliases,
// the global bit under PTI, Linux's DirectMap counters.
func Topics(a *Analysis, pd *dump.Dump, ri RunInfo) []Difference {
	var out []Difference
	add := func(key, what, p, l string) {
		if p != l {
			out = append(out, Difference{Key: key, What: what, Physmap: p, Linux: l})
		}
	}
	dmName := mustRegion(a.Layout, mm.KindDirectMap).Name
	b := a.Bases
	if pd != nil && b.TextPA != 0 {
		// The image's physical placement.
		if pa, _, ok := physmapAlias(pd, "kernel text", dmName); ok {
			align := func(pa mm.PhysAddr) string {
				if pa.IsAligned(uint64(mm.Size2M)) {
					return fmt.Sprintf("%v, 2 MiB aligned", pa)
				}
				return fmt.Sprintf("%v, not 2 MiB aligned", pa)
			}
			// Where each kernel sits differs by design; whether it is
			// 2 MiB aligned is the fact compared.
			if pa.IsAligned(uint64(mm.Size2M)) != b.TextPA.IsAligned(uint64(mm.Size2M)) {
				out = append(out, Difference{Key: "text:align", What: "kernel text's first frame", Physmap: align(pa), Linux: align(b.TextPA)})
			}
			// The direct-map alias of the image's first text frame.
			_, pva, _ := physmapAlias(pd, "kernel text", dmName)
			add("text:directmap-alias", "direct-map alias of the first text frame", leafString(pd, pva), leafString(a.Dump, a.directVA(b.TextPA)))
		}
		// The first 2 MiB of the direct map (arch/x86/mm/init.c:
		// split_mem_range maps the range below the first 2 MiB
		// boundary with 4K pages).
		pdm, _ := findRegion(pd, dmName)
		add("directmap:first", "the leaf at page_offset_base", leafString(pd, mm.VirtAddr(pdm.Start)), leafString(a.Dump, a.directVA(0)))
	}
	if pd != nil && a.Guest != nil && len(a.Guest.Modules) > 0 {
		m := a.Guest.Modules[0]
		if tx, ok := m.Sections[".text"]; ok {
			if t, err := a.AS.Translate(tx); err == nil {
				if _, pva, ok := physmapAlias(pd, "module text", dmName); ok && pva != 0 {
					add("modules:directmap-alias", "direct-map alias of module text", leafString(pd, pva), leafString(a.Dump, a.directVA(t.PA)))
				}
			}
		}
	}
	if pd != nil && ri.PTI {
		out = append(out, Difference{Key: "pti:global", What: "kernel-half leaves mapped global (G) under Linux's pti=on",
			Physmap: globalShare(pd, a.Mode), Linux: globalShare(a.Dump, a.Mode)})
	}
	out = append(out, a.meminfoDifferences()...)
	return out
}

func mustRegion(l *mm.Layout, k mm.RegionKind) mm.Region {
	r, _ := l.Region(k)
	return r
}

func findRegion(d *dump.Dump, name string) (dump.Region, bool) {
	for _, r := range d.Regions {
		if r.Name == name {
			return r, true
		}
	}
	return dump.Region{}, false
}

// HighMapSplits counts the 2 MiB stretches of the kernel text mapping that
// its tables map with 4K pages.
func (a *Analysis) HighMapSplits() uint64 {
	kt := mustRegion(a.Layout, mm.KindKernelText)
	seen := map[mm.VirtAddr]bool{}
	for lf := range a.AS.Leaves(mm.VirtRange{Start: kt.Start, End: kt.Start.Add(kt.Size)}) {
		if lf.Size == mm.Size4K {
			seen[lf.VA.AlignDown(uint64(mm.Size2M))] = true
		}
	}
	return uint64(len(seen))
}

// Meminfo is Linux's DirectMap counters against what its tables hold.
type Meminfo struct {
	Name     string // DirectMap4k, DirectMap2M, DirectMap1G
	Linux    uint64 // kB, /proc/meminfo
	Tables   uint64 // kB of direct-map leaves of that size
	Expected uint64 // kB Linux's accounting would give: see MeminfoModel
	Have     bool   // /proc/meminfo had the line
}

// MeminfoModel says how Linux's counters relate to its tables.
const MeminfoModel = "direct_pages_count (arch/x86/mm/pat/set_memory.c) counts direct-map leaves, but " +
	"__split_large_page also counts a split of the kernel text mapping (virt_addr_valid accepts its addresses), " +
	"so DirectMap4k = the direct map's 4K + 2048 kB per 2 MiB stretch of the kernel text mapping in 4K pages, and " +
	"DirectMap2M = the direct map's 2M - as much"

// Meminfo compares the DirectMap lines with the tables.
func (a *Analysis) Meminfo() []Meminfo {
	if a.Guest == nil {
		return nil
	}
	split := a.HighMapSplits() * uint64(mm.Size2M>>10)
	var out []Meminfo
	for _, m := range []struct {
		name   string
		tables uint64
		extra  int64
	}{{"DirectMap4k", a.Direct.K4, int64(split)}, {"DirectMap2M", a.Direct.M2, -int64(split)}, {"DirectMap1G", a.Direct.G1, 0}} {
		v, ok := a.Guest.Meminfo[m.name]
		out = append(out, Meminfo{Name: m.name, Linux: v, Tables: m.tables, Expected: uint64(int64(m.tables) + m.extra), Have: ok})
	}
	return out
}

// meminfoDifferences lists the counters that disagree with the model:
// DirectMap1G above the tables has a key of its own, ":over".
func (a *Analysis) meminfoDifferences() []Difference {
	var out []Difference
	for _, m := range a.Meminfo() {
		if !m.Have || m.Linux == m.Expected {
			continue
		}
		key := "meminfo:" + m.Name
		if m.Linux > m.Expected {
			key += ":over"
		}
		out = append(out, Difference{Key: key, What: "/proc/meminfo " + m.Name + " against the direct map's leaves",
			Physmap: fmt.Sprintf("%d kB", m.Expected), Linux: fmt.Sprintf("%d kB", m.Linux), Labels: [2]string{"from the tables", "/proc/meminfo"}})
	}
	return out
}

// trim shortens s to n characters.
func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.TrimSpace(s[:n-3]) + "..."
}
