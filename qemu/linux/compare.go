package linux

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/physmap/physmap/kernel/dump"
	"github.com/physmap/physmap/mm"
)

// Side is one kernel's view of one region: where it starts and what its
// live tables map there.
type Side struct {
	Present bool // the kernel's layout has the region
	Start   mm.VirtAddr
	Size    uint64
	Bytes   uint64                 // mapped
	Pages   map[mm.PageSize]uint64 // leaves per page size
	Perms   map[string]uint64      // bytes per permission string
}

// Row is one region of the side-by-side table.
type Row struct {
	Name    string
	ID      string // short name, the key of differences: "directmap", "modules", ...
	Hole    bool
	Physmap Side
	Linux   Side
}

// regionIDs are the short names of mm's region kinds.
var regionIDs = map[mm.RegionKind]string{
	mm.KindUser: "user", mm.KindNonCanonical: "noncanonical", mm.KindGuardHole: "guard", mm.KindLDTRemap: "ldt",
	mm.KindDirectMap: "directmap", mm.KindHole: "hole", mm.KindVmalloc: "vmalloc", mm.KindVmemmap: "vmemmap",
	mm.KindKASAN: "kasan", mm.KindCPUEntryArea: "cpu_entry_area", mm.KindESPFix: "espfix", mm.KindEFI: "efi",
	mm.KindKernelText: "text", mm.KindModules: "modules", mm.KindFixmap: "fixmap", mm.KindVsyscall: "vsyscall",
}

// stats sums the runs of d that start in [start, start+size).
func stats(d *dump.Dump, start mm.VirtAddr, size uint64) Side {
	s := Side{Present: true, Start: start, Size: size, Pages: map[mm.PageSize]uint64{}, Perms: map[string]uint64{}}
	last := start.Add(size - 1)
	for _, r := range d.Runs {
		va := mm.VirtAddr(r.VA)
		if va < start || va > last {
			continue
		}
		n := uint64(r.Size) * r.Count
		s.Bytes += n
		s.Pages[mm.PageSize(r.Size)] += r.Count
		s.Perms[permString(r.Flags)] += n
	}
	return s
}

// Rows builds the side-by-side table: one row per region of Linux's
// layout, holes only where either kernel maps something.
func Rows(linux *mm.Layout, ld, pd *dump.Dump) []Row {
	var rows []Row
	for _, r := range linux.Regions {
		row := Row{Name: r.Name, ID: regionIDs[r.Kind], Hole: r.Kind == mm.KindHole || r.Kind == mm.KindNonCanonical}
		row.Linux = stats(ld, r.Start, r.Size)
		if pd != nil {
			if row.Hole {
				// What physmap maps in the same stretch, outside its
				// own regions.
				row.Physmap = stats(holesOnly(pd), r.Start, r.Size)
			} else if i := slices.IndexFunc(pd.Regions, func(p dump.Region) bool { return p.Name == r.Name }); i >= 0 {
				p := pd.Regions[i]
				row.Physmap = stats(pd, mm.VirtAddr(p.Start), uint64(p.End-p.Start))
			}
		}
		if row.Hole && row.Linux.Bytes == 0 && row.Physmap.Bytes == 0 {
			continue
		}
		rows = append(rows, row)
	}
	return rows
}

// holesOnly keeps the runs of d that lie in none of its named regions.
func holesOnly(d *dump.Dump) *dump.Dump {
	out := &dump.Dump{Mode: d.Mode, Regions: d.Regions}
	for _, r := range d.Runs {
		if strings.HasPrefix(r.Region, "...") {
			out.Runs = append(out.Runs, r)
		}
	}
	return out
}

// Kind says why a difference is expected.
type Kind string

// The kinds of documented differences.
const (
	// Deliberate: physmap is not Linux there on purpose, and its README
	// says so.
	Deliberate Kind = "deliberate"
	// Pending: physmap should do as Linux does; issue 12 tracks it.
	Pending Kind = "pending (issue 12)"
	// LinuxOnly: a mechanism of Linux that physmap does not model, or the
	// history of a running Linux (what it allocated and freed); not a
	// layout difference, but one issue 12 should know about.
	LinuxOnly Kind = "Linux only"
	// LinuxOwn: Linux's own report disagrees with its own tables.
	LinuxOwn Kind = "Linux's own accounting"
)

// Departure is a documented difference: one line why.
type Departure struct {
	// Key is the difference's key, "REGION:ASPECT[:DETAIL]"; a key ending
	// in ":*" matches every key with that prefix.
	Key string
	// When limits the departure to some boots: "" always, "pti" with
	// Linux's pti=on, "kaslr" with KASLR, "nokaslr" without.
	When string
	Kind Kind
	Why  string
}

// applies reports whether d is in force for a run.
func (d Departure) applies(ri RunInfo) bool {
	switch d.When {
	case "":
		return true
	case "pti":
		return ri.PTI
	case "kaslr":
		return ri.KASLR
	case "nokaslr":
		return !ri.KASLR
	}
	return false
}

// matches reports whether d documents key.
func (d Departure) matches(key string) bool {
	if prefix, ok := strings.CutSuffix(d.Key, "*"); ok {
		return strings.HasPrefix(key, prefix)
	}
	return d.Key == key
}

// Difference is one way physmap and Linux differ.
type Difference struct {
	Key            string
	What           string
	Physmap, Linux string     // the two values
	Labels         [2]string  // names of the two values; empty: physmap, Linux
	Departure      *Departure // nil: unexplained
}

// labels returns the names of the two values.
func (d Difference) labels() (string, string) {
	if d.Labels[0] == "" {
		return "physmap", "Linux"
	}
	return d.Labels[0], d.Labels[1]
}

// sizeCompared lists the regions whose mapped bytes are structure, not
// content: the same RAM, or a fixed set of pages per CPU. The others
// (vmalloc, modules, the image) hold what each kernel allocated or linked.
var sizeCompared = map[string]bool{
	"directmap": true, "vmemmap": true, "cpu_entry_area": true, "espfix": true, "ldt": true, "vsyscall": true,
}

// randomized lists the regions memory KASLR moves.
var randomized = map[string]bool{"directmap": true, "vmalloc": true, "vmemmap": true}

// Compare lists the differences of rows and of the topics that are not a
// region, each matched to a departure of table in force for ri.
func Compare(rows []Row, topics []Difference, ri RunInfo, table []Departure) []Difference {
	var out []Difference
	add := func(key, what, p, l string) {
		out = append(out, Difference{Key: key, What: what, Physmap: p, Linux: l})
	}
	for _, r := range rows {
		p, l := r.Physmap, r.Linux
		if r.Hole {
			if p.Bytes != 0 || l.Bytes != 0 {
				add("hole:mapped", fmt.Sprintf("leaves in the hole at %v", l.Start), mapped(p), mapped(l))
			}
			continue
		}
		key := func(aspect string) string { return r.ID + ":" + aspect }
		if !p.Present {
			add(key("region"), r.Name+": region", "absent", "present")
			continue
		}
		if p.Start != l.Start && !(ri.KASLR && randomized[r.ID]) {
			add(key("base"), r.Name+": start", p.Start.String(), l.Start.String())
		}
		switch {
		case (p.Bytes == 0) != (l.Bytes == 0):
			add(key("mapped"), r.Name+": mapped", mapped(p), mapped(l))
			continue
		case p.Bytes == 0:
			continue
		}
		if sizeCompared[r.ID] && p.Bytes != l.Bytes {
			add(key("size"), r.Name+": bytes mapped", humanBytes(p.Bytes)+" in "+PageMix(p), humanBytes(l.Bytes)+" in "+PageMix(l))
		}
		for _, ps := range []mm.PageSize{mm.Size1G, mm.Size2M, mm.Size4K} {
			if (p.Pages[ps] == 0) != (l.Pages[ps] == 0) {
				add(key("page:"+ps.String()), r.Name+": "+ps.String()+" pages", count(p.Pages[ps]), count(l.Pages[ps]))
			}
		}
		pp, lp := normPerms(p.Perms, ri.PTI), normPerms(l.Perms, ri.PTI)
		perms := slices.Sorted(maps.Keys(pp))
		for k := range lp {
			if _, ok := pp[k]; !ok {
				perms = append(perms, k)
			}
		}
		slices.Sort(perms)
		for _, k := range perms {
			if (pp[k] == 0) != (lp[k] == 0) {
				add(key("perm:"+k), r.Name+": leaves "+k, bytesOrNone(pp[k]), bytesOrNone(lp[k]))
			}
		}
	}
	out = append(out, topics...)
	for i := range out {
		out[i].Departure = explain(out[i].Key, ri, table)
	}
	return out
}

// Unused returns the departures of table in force for ri that no
// difference matched: resolved since they were written, or not shown by
// this machine.
func Unused(diffs []Difference, ri RunInfo, table []Departure) []Departure {
	var out []Departure
	for i, d := range table {
		if !d.applies(ri) {
			continue
		}
		if !slices.ContainsFunc(diffs, func(x Difference) bool { return x.Departure == &table[i] }) {
			out = append(out, d)
		}
	}
	return out
}

// explain finds the departure documenting key: the first in force that
// matches it, an exact key before a prefix.
func explain(key string, ri RunInfo, table []Departure) *Departure {
	for _, exact := range []bool{true, false} {
		for i, d := range table {
			if d.applies(ri) && d.matches(key) && exact == !strings.HasSuffix(d.Key, "*") {
				return &table[i]
			}
		}
	}
	return nil
}

// normPerms returns perms keyed as compared: under PTI without GLB, which
// Linux then clears almost everywhere (the pti:global topic says how much).
func normPerms(perms map[string]uint64, pti bool) map[string]uint64 {
	if !pti {
		return perms
	}
	out := map[string]uint64{}
	for k, n := range perms {
		out[strings.Replace(k, " GLB", "", 1)] += n
	}
	return out
}

func count(n uint64) string {
	if n == 0 {
		return "none"
	}
	return fmt.Sprintf("%d", n)
}

func bytesOrNone(n uint64) string {
	if n == 0 {
		return "none"
	}
	return humanBytes(n)
}

func mapped(s Side) string {
	if !s.Present {
		return "no such region"
	}
	if s.Bytes == 0 {
		return "nothing"
	}
	return humanBytes(s.Bytes)
}

func pageSet(s Side) string {
	var out []string
	for _, ps := range []mm.PageSize{mm.Size1G, mm.Size2M, mm.Size4K} {
		if s.Pages[ps] > 0 {
			out = append(out, ps.String())
		}
	}
	return strings.Join(out, "+")
}

func permSet(s Side) string {
	return strings.Join(slices.Sorted(maps.Keys(s.Perms)), ", ")
}

// PageMix writes a side's leaves as "1x1G, 510x2M, 1024x4K".
func PageMix(s Side) string {
	var out []string
	for _, ps := range []mm.PageSize{mm.Size1G, mm.Size2M, mm.Size4K} {
		if n := s.Pages[ps]; n > 0 {
			out = append(out, fmt.Sprintf("%dx%v", n, ps))
		}
	}
	return strings.Join(out, ", ")
}

// PermMix writes a side's permissions, most bytes first, with their bytes.
func PermMix(s Side) string {
	keys := slices.Collect(maps.Keys(s.Perms))
	slices.SortFunc(keys, func(a, b string) int {
		if c := cmp.Compare(s.Perms[b], s.Perms[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	var out []string
	for _, k := range keys {
		out = append(out, fmt.Sprintf("%s %s", k, humanBytes(s.Perms[k])))
	}
	return strings.Join(out, ", ")
}

// humanBytes writes n in the largest unit it is a whole number of, as
// physmap's layout table does ("35748 kB", "2 GB").
func humanBytes(n uint64) string {
	switch {
	case n == 0:
		return "0"
	case n%(1<<40) == 0:
		return fmt.Sprintf("%d TB", n>>40)
	case n%(1<<30) == 0:
		return fmt.Sprintf("%d GB", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%d MB", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%d kB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
