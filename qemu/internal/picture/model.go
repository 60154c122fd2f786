package picture

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/physmap/physmap/kernel/dump"
	"github.com/physmap/physmap/mm"
)

// model is the dump digested for drawing: regions with what the live
// tables map in them, the runs to draw (a set of clones counts once), the
// clone sets, the aliases split into the pieces each region holds, and the
// low identity window.
type model struct {
	d        *dump.Dump
	mode     mm.Mode
	verdict  Verdict
	regions  []region
	runs     []run
	clones   []*cloneSet
	aliases  []*alias
	identity []mm.VirtRange // runs mapped at VA == PA, merged
}

type region struct {
	dump.Region
	hole     bool // an unused hole of Linux's table ("... " names)
	nonCanon bool // starts at a non-canonical address
	mapped   uint64
	pages    map[uint64]uint64 // page size -> leaves
	user     bool              // holds a leaf with USR
}

// run is one run of leaves to draw; the first of a clone set stands for
// the whole set.
type run struct {
	dump.Run
	perm  perm
	clone *cloneSet // set when the run is the first of a clone set
}

// cloneSet is a set of runs in one region that map the same frames with
// the same page size and flags at several VAs, as espfix maps its one
// ministack page again and again (arch/x86/kernel/espfix_64.c,
// init_espfix_ap): drawn once, labelled "N VAs -> 1 frame".
type cloneSet struct {
	first  dump.Run
	n      int
	stride uint64      // distance between consecutive clones; 0 if uneven
	last   mm.VirtAddr // start of the last clone
}

// end returns the end of the last clone (0 for the top of the space).
func (s *cloneSet) end() mm.VirtAddr {
	return s.last.Add(uint64(s.first.Size) * s.first.Count)
}

// frames returns how many distinct frames the set maps.
func (s *cloneSet) frames() uint64 { return s.first.Count }

// alias is one physical range of the dump's aliases with every virtual
// piece that maps part of it, found by inverting the runs.
type alias struct {
	letter string
	what   string
	pa     mm.PhysAddr
	len    uint64
	color  string
	parts  []aliasPart
}

// aliasPart is a virtual range mapping len bytes of an alias from pa on,
// VA and PA both contiguous.
type aliasPart struct {
	va     mm.VirtAddr
	pa     mm.PhysAddr
	len    uint64
	region int // index into model.regions
}

// perm is a leaf's permission class, which gives its colour.
type perm int

const (
	permRX perm = iota // read-only, executable: code
	permRO             // read-only, NX: constants
	permRW             // writable, NX: data
	permWX             // writable and executable: what the W+X audit forbids
)

func permOf(f dump.Flags) perm {
	switch {
	case f.Write && f.NX:
		return permRW
	case f.Write:
		return permWX
	case f.NX:
		return permRO
	}
	return permRX
}

func (p perm) String() string { return [...]string{"RX", "RO NX", "RW NX", "W+X"}[p] }

// aliasColors are the aliases' colours, in the order of the dump's aliases.
var aliasColors = []string{"#b3261e", "#8a5300", "#1b6e20", "#6a1b9a", "#00737d", "#5d4037", "#37474f"}

// newModel digests d.
func newModel(d *dump.Dump, verdict Verdict) (*model, error) {
	mode := mm.Mode(d.Mode)
	if !mode.Valid() {
		return nil, fmt.Errorf("dump: paging mode %d is neither 4 nor 5", d.Mode)
	}
	if len(d.Regions) == 0 {
		return nil, fmt.Errorf("dump: no regions")
	}
	m := &model{d: d, mode: mode, verdict: verdict}
	for i, r := range d.Regions {
		if i > 0 && r.Start != d.Regions[i-1].End {
			return nil, fmt.Errorf("dump: region %q starts at %#x, not where %q ends", r.Name, uint64(r.Start), d.Regions[i-1].Name)
		}
		m.regions = append(m.regions, region{Region: r, hole: strings.HasPrefix(r.Name, "..."),
			nonCanon: !mode.Canonical(mm.VirtAddr(r.Start)), pages: map[uint64]uint64{}})
	}
	if d.Regions[0].Start != 0 || d.Regions[len(d.Regions)-1].End != 0 {
		return nil, fmt.Errorf("dump: the regions do not cover the space from 0 to the top")
	}
	for i, r := range d.Runs {
		if i > 0 && r.VA < d.Runs[i-1].End() && d.Runs[i-1].End() != 0 {
			return nil, fmt.Errorf("dump: run at %#x is not after the run before it", uint64(r.VA))
		}
		ri := m.regionOf(mm.VirtAddr(r.VA))
		reg := &m.regions[ri]
		reg.mapped += uint64(r.Size) * r.Count
		reg.pages[uint64(r.Size)] += r.Count
		reg.user = reg.user || r.Flags.User
		if uint64(r.VA) == uint64(r.PA) {
			end := mm.VirtAddr(r.End())
			if n := len(m.identity); n > 0 && m.identity[n-1].End == mm.VirtAddr(r.VA) {
				m.identity[n-1].End = end
			} else {
				m.identity = append(m.identity, mm.VirtRange{Start: mm.VirtAddr(r.VA), End: end})
			}
		}
	}
	m.findClones()
	if err := m.findAliases(); err != nil {
		return nil, err
	}
	return m, nil
}

// regionOf returns the index of the region holding va.
func (m *model) regionOf(va mm.VirtAddr) int {
	i, _ := slices.BinarySearchFunc(m.regions, va, func(r region, va mm.VirtAddr) int {
		if r.End != 0 && mm.VirtAddr(r.End) <= va {
			return -1
		}
		if mm.VirtAddr(r.Start) > va {
			return 1
		}
		return 0
	})
	return min(i, len(m.regions)-1)
}

// cloneKey is what clones share.
type cloneKey struct {
	pa, size dump.Addr
	count    uint64
	level    string
	flags    dump.Flags
	region   int
}

// findClones groups the runs into clone sets and keeps one run of each set
// to draw.
func (m *model) findClones() {
	sets := map[cloneKey]*cloneSet{}
	members := map[cloneKey]int{}
	for _, r := range m.d.Runs {
		members[cloneKey{r.PA, r.Size, r.Count, r.Level, r.Flags, m.regionOf(mm.VirtAddr(r.VA))}]++
	}
	for _, r := range m.d.Runs {
		k := cloneKey{r.PA, r.Size, r.Count, r.Level, r.Flags, m.regionOf(mm.VirtAddr(r.VA))}
		if members[k] < 2 {
			m.runs = append(m.runs, run{Run: r, perm: permOf(r.Flags)})
			continue
		}
		s := sets[k]
		if s == nil {
			s = &cloneSet{first: r, n: 1, last: mm.VirtAddr(r.VA)}
			sets[k] = s
			m.clones = append(m.clones, s)
			m.runs = append(m.runs, run{Run: r, perm: permOf(r.Flags), clone: s})
			continue
		}
		step := uint64(mm.VirtAddr(r.VA) - s.last)
		switch {
		case s.n == 1:
			s.stride = step
		case step != s.stride:
			s.stride = 0
		}
		s.n++
		s.last = mm.VirtAddr(r.VA)
	}
}

// findAliases inverts the runs for every alias of the dump, and checks that
// each VA the dump lists for an alias is one the runs map into it.
func (m *model) findAliases() error {
	for i, a := range m.d.Aliases {
		if i >= 26 {
			return fmt.Errorf("dump: %d aliases, more than the picture has letters for", len(m.d.Aliases))
		}
		al := &alias{letter: string(rune('A' + i)), what: a.What, pa: mm.PhysAddr(a.PA), len: uint64(a.Len),
			color: aliasColors[i%len(aliasColors)]}
		lo, hi := al.pa, al.pa.Add(al.len)
		for _, r := range m.d.Runs {
			rlo := mm.PhysAddr(r.PA)
			rhi := rlo.Add(uint64(r.Size) * r.Count)
			if rhi <= lo || rlo >= hi {
				continue
			}
			s, e := max(rlo, lo), min(rhi, hi)
			va := mm.VirtAddr(r.VA).Add(uint64(s - rlo))
			reg := m.regionOf(va)
			if n := len(al.parts); n > 0 {
				p := &al.parts[n-1]
				if p.va.Add(p.len) == va && p.pa.Add(p.len) == s && p.region == reg {
					p.len += uint64(e - s)
					continue
				}
			}
			al.parts = append(al.parts, aliasPart{va: va, pa: s, len: uint64(e - s), region: reg})
		}
		for _, va := range a.VAs {
			if !slices.ContainsFunc(al.parts, func(p aliasPart) bool { return mm.VirtAddr(va) >= p.va && mm.VirtAddr(va) < p.va.Add(p.len) }) {
				return fmt.Errorf("dump: alias %q lists VA %#x, but no run maps it into [%#x, %#x)", a.What, uint64(va), uint64(lo), uint64(hi))
			}
		}
		m.aliases = append(m.aliases, al)
	}
	return nil
}

// partsIn returns the pieces of a that region ri holds, in VA order.
func (a *alias) partsIn(ri int) []aliasPart {
	var out []aliasPart
	for _, p := range a.parts {
		if p.region == ri {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(x, y aliasPart) int { return cmp.Compare(x.va, y.va) })
	return out
}

// cuts returns every address the scale must mark.
func (m *model) cuts() []mm.VirtAddr {
	cuts := []mm.VirtAddr{m.mode.UserEnd(), m.mode.KernelStart()}
	for _, r := range m.d.Regions {
		cuts = append(cuts, mm.VirtAddr(r.Start), mm.VirtAddr(r.End)) // End 0 is the top: already a cut
	}
	for _, r := range m.runs {
		cuts = append(cuts, mm.VirtAddr(r.VA), mm.VirtAddr(r.End()))
		if r.clone != nil {
			cuts = append(cuts, r.clone.end())
		}
	}
	for _, a := range m.aliases {
		for _, p := range a.parts {
			cuts = append(cuts, p.va, p.va.Add(p.len))
		}
	}
	return cuts
}

// regionSize returns a region's size for people.
func regionSize(r dump.Region) string {
	if r.End == 0 {
		return humanSize(-uint64(r.Start))
	}
	return humanSize(uint64(r.End - r.Start))
}

// pageCounts returns "5x1G + 510x2M + 1024x4K" for region r, biggest
// pages first.
func (r *region) pageCounts() string {
	sizes := make([]uint64, 0, len(r.pages))
	for s := range r.pages {
		sizes = append(sizes, s)
	}
	slices.Sort(sizes)
	slices.Reverse(sizes)
	parts := make([]string, len(sizes))
	for i, s := range sizes {
		parts[i] = fmt.Sprintf("%dx%s", r.pages[s], pageName(s))
	}
	return strings.Join(parts, " + ")
}

// pageName returns "4K", "2M" or "1G".
func pageName(size uint64) string {
	s := humanSize(size)
	return strings.TrimSuffix(strings.ReplaceAll(s, " ", ""), "iB")
}

var units = []struct {
	name  string
	shift uint
}{{"EiB", 60}, {"PiB", 50}, {"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}}

// humanSize writes n in the biggest binary unit it is a whole multiple of,
// below 10000 of them ("1520 MiB", "444 GiB"); else to one decimal, exact
// ("32.5 MiB") or marked approximate ("~10.0 MiB").
func humanSize(n uint64) string {
	for _, u := range units {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 && n>>u.shift < 10000 {
			return fmt.Sprintf("%d %s", n>>u.shift, u.name)
		}
	}
	for _, u := range units {
		if n >= 1<<u.shift {
			approx := "~"
			if n>>u.shift < 1<<60/10 && (n*10)%(1<<u.shift) == 0 {
				approx = ""
			}
			return fmt.Sprintf("%s%.1f %s", approx, float64(n)/float64(uint64(1)<<u.shift), u.name)
		}
	}
	return fmt.Sprintf("%d B", n)
}
