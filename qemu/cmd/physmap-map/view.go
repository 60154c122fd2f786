package main

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/physmap/physmap/kernel/dump"
	"github.com/physmap/physmap/mm"
)

// directMapSymbol names the region whose VAs are page_offset_base + pa: the
// arrows of the picture end there.
const directMapSymbol = "page_offset_base"

// view is the dump digested for drawing: regions with their text, runs with
// their permission class, and the alias arrows.
type view struct {
	d        *dump.Dump
	mode     mm.Mode
	regions  []regionView
	runs     []runView
	arrows   []arrow
	identity []mm.VirtRange // runs mapped at VA == PA, merged
	sc       *Scale
}

type regionView struct {
	dump.Region
	hole        bool // an unused hole of Linux's table ("... " names)
	nonCanon    bool // starts at a non-canonical address
	lines       []line
	mappedBytes uint64
}

type runView struct {
	dump.Run
	perm perm
}

// arrow joins an alias's source (the kernel image or module mapping) to its
// direct-map alias, and on to its identity alias when there is one.
type arrow struct {
	what     string
	pa       mm.PhysAddr
	len      uint64
	src, dst mm.VirtAddr
	ident    mm.VirtAddr
	hasIdent bool
	color    string
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

// line is one line of a region's label: spans of text, each with a CSS
// class.
type line []span

type span struct{ class, text, color string }

// arrowColors are the arrows' colours, in the order of the dump's aliases.
var arrowColors = []string{"#b3261e", "#9a5b00", "#2e7d32", "#6a1b9a", "#00838f", "#5d4037", "#37474f"}

// The scale and the label metrics, in SVG pixels.
var scaleParams = ScaleParams{MinPiece: 17, PerDoubling: 1.05, Cut: 72}

const lineHeight = 15

// newView digests d.
func newView(d *dump.Dump) (*view, error) {
	mode := mm.Mode(d.Mode)
	if !mode.Valid() {
		return nil, fmt.Errorf("dump: paging mode %d is neither 4 nor 5", d.Mode)
	}
	if len(d.Regions) == 0 {
		return nil, fmt.Errorf("dump: no regions")
	}
	v := &view{d: d, mode: mode}
	for _, r := range d.Runs {
		v.runs = append(v.runs, runView{Run: r, perm: permOf(r.Flags)})
		if uint64(r.VA) == uint64(r.PA) {
			end := mm.VirtAddr(r.End())
			if n := len(v.identity); n > 0 && v.identity[n-1].End == mm.VirtAddr(r.VA) {
				v.identity[n-1].End = end
			} else {
				v.identity = append(v.identity, mm.VirtRange{Start: mm.VirtAddr(r.VA), End: end})
			}
		}
	}
	var direct *dump.Region
	for i, r := range d.Regions {
		rv := regionView{Region: r, hole: strings.HasPrefix(r.Name, "..."), nonCanon: !mode.Canonical(mm.VirtAddr(r.Start))}
		for _, run := range d.Runs {
			if v.contains(r, mm.VirtAddr(run.VA)) {
				rv.mappedBytes += uint64(run.Size) * run.Count
			}
		}
		v.regions = append(v.regions, rv)
		if r.Symbol == directMapSymbol {
			direct = &d.Regions[i]
		}
	}
	for i, a := range d.Aliases {
		var srcs []mm.VirtAddr
		var dst, ident mm.VirtAddr
		var hasDst, hasIdent bool
		for _, va := range a.VAs {
			switch {
			case direct != nil && v.contains(*direct, mm.VirtAddr(va)):
				dst, hasDst = mm.VirtAddr(va), true
			case uint64(va) == uint64(a.PA):
				ident, hasIdent = mm.VirtAddr(va), true
			default:
				srcs = append(srcs, mm.VirtAddr(va))
			}
		}
		if !hasDst {
			return nil, fmt.Errorf("dump: alias %q (pa %#x) has no direct-map VA", a.What, uint64(a.PA))
		}
		for _, src := range srcs {
			v.arrows = append(v.arrows, arrow{what: a.What, pa: mm.PhysAddr(a.PA), len: uint64(a.Len), src: src, dst: dst,
				ident: ident, hasIdent: hasIdent, color: arrowColors[i%len(arrowColors)]})
		}
	}
	slices.SortStableFunc(v.arrows, func(a, b arrow) int { return cmp.Compare(a.src, b.src) })
	for i := range v.regions {
		v.regions[i].lines = v.regionLines(&v.regions[i])
	}
	v.sc = NewScale(mode, scaleParams, v.cuts(), v.floors())
	return v, nil
}

// contains reports whether va lies in r (End 0 is the top of the space).
func (v *view) contains(r dump.Region, va mm.VirtAddr) bool {
	return va >= mm.VirtAddr(r.Start) && (r.End == 0 || va < mm.VirtAddr(r.End))
}

// cuts returns every address the scale must mark.
func (v *view) cuts() []mm.VirtAddr {
	cuts := []mm.VirtAddr{v.mode.UserEnd(), v.mode.KernelStart()}
	add := func(a dump.Addr) { cuts = append(cuts, mm.VirtAddr(a)) }
	for _, r := range v.d.Regions {
		add(r.Start)
		add(r.End) // 0 for the top of the space: already a cut
	}
	for _, r := range v.d.Runs {
		add(r.VA)
		add(r.End())
	}
	for _, a := range v.d.Aliases {
		for _, va := range a.VAs {
			add(va)
			add(va + a.Len)
		}
	}
	return cuts
}

// floors makes every region tall enough for its label.
func (v *view) floors() []Floor {
	var fs []Floor
	for _, r := range v.regions {
		if r.nonCanon {
			continue
		}
		fs = append(fs, Floor{Start: mm.VirtAddr(r.Start), End: mm.VirtAddr(r.End), Min: float64(len(r.lines))*lineHeight + 5})
	}
	return fs
}

// regionLines returns the label of a region: its name and size, its Linux
// symbol and ptdump marker, and what the live tables map in it.
func (v *view) regionLines(r *regionView) []line {
	size := regionSize(r.Region)
	if r.nonCanon {
		return nil // drawn as the cut band
	}
	if r.hole {
		name := strings.TrimSpace(strings.TrimPrefix(r.Name, "..."))
		l := line{{"hole", name, ""}, {"holesize", "  " + size, ""}}
		if r.Symbol != "" {
			l = append(l, span{"holesize", "  " + r.Symbol, ""})
		}
		return []line{l}
	}
	lines := []line{{{"name", r.Name, ""}, {"size", "  " + size, ""}}}
	var meta []string
	if r.Symbol != "" && !strings.Contains(r.Name, r.Symbol) {
		meta = append(meta, r.Symbol)
	}
	if r.Marker != "" {
		meta = append(meta, "ptdump: ---[ "+r.Marker+" ]---")
	}
	if r.mappedBytes == 0 {
		meta = append(meta, "nothing mapped")
	}
	if len(meta) > 0 {
		lines = append(lines, line{{"meta", strings.Join(meta, " · "), ""}})
	}
	if r.mappedBytes > 0 {
		lines = append(lines, line{{"mapped", "mapped: " + humanSize(r.mappedBytes) + " in " + v.pageCounts(r.Region), ""}})
	}
	for _, a := range v.arrows {
		if v.contains(r.Region, a.src) {
			lines = append(lines, line{{"aliasline", fmt.Sprintf("■ %s: PA %#x, %s → %#x", a.what, uint64(a.pa), humanSize(a.len), uint64(a.dst)), a.color}})
		}
	}
	for _, w := range v.identity {
		if v.contains(r.Region, w.Start) {
			lines = append(lines, line{{"ident", fmt.Sprintf("identity window [%#x, %#x): VA = PA, %s", uint64(w.Start), uint64(w.End), humanSize(uint64(w.End-w.Start))), ""}})
		}
	}
	return lines
}

// pageCounts returns "5×1G + 511×2M + 512×4K" for the leaves in r, biggest
// pages first.
func (v *view) pageCounts(r dump.Region) string {
	counts := map[uint64]uint64{}
	for _, run := range v.d.Runs {
		if v.contains(r, mm.VirtAddr(run.VA)) {
			counts[uint64(run.Size)] += run.Count
		}
	}
	sizes := make([]uint64, 0, len(counts))
	for s := range counts {
		sizes = append(sizes, s)
	}
	slices.Sort(sizes)
	slices.Reverse(sizes)
	parts := make([]string, len(sizes))
	for i, s := range sizes {
		parts[i] = fmt.Sprintf("%d×%s", counts[s], pageName(s))
	}
	return strings.Join(parts, " + ")
}

// regionSize returns a region's size for people.
func regionSize(r dump.Region) string {
	if r.End == 0 {
		return humanSize(-uint64(r.Start))
	}
	return humanSize(uint64(r.End - r.Start))
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
// ("32.5 MiB") or marked approximate ("≈10.0 MiB").
func humanSize(n uint64) string {
	for _, u := range units {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 && n>>u.shift < 10000 {
			return fmt.Sprintf("%d %s", n>>u.shift, u.name)
		}
	}
	for _, u := range units {
		if n >= 1<<u.shift {
			approx := "≈"
			if n>>u.shift < 1<<60/10 && (n*10)%(1<<u.shift) == 0 {
				approx = ""
			}
			return fmt.Sprintf("%s%.1f %s", approx, float64(n)/float64(uint64(1)<<u.shift), u.name)
		}
	}
	return fmt.Sprintf("%d B", n)
}
