package shell

import (
	"fmt"
	"strings"

	"github.com/physmap/physmap/mm"
)

// shortNames are the regions' short names, in the layout's order; holes
// have none.
var shortNames = []struct {
	name string
	kind mm.RegionKind
}{
	{"user", mm.KindUser},
	{"guard", mm.KindGuardHole},
	{"ldt", mm.KindLDTRemap},
	{"direct", mm.KindDirectMap},
	{"vmalloc", mm.KindVmalloc},
	{"vmemmap", mm.KindVmemmap},
	{"kasan", mm.KindKASAN},
	{"cpu_entry_area", mm.KindCPUEntryArea},
	{"espfix", mm.KindESPFix},
	{"efi", mm.KindEFI},
	{"text", mm.KindKernelText},
	{"modules", mm.KindModules},
	{"fixmap", mm.KindFixmap},
	{"vsyscall", mm.KindVsyscall},
}

// shortName returns the short name of a region kind, "" for a hole.
func shortName(k mm.RegionKind) string {
	for _, n := range shortNames {
		if n.kind == k {
			return n.name
		}
	}
	return ""
}

// shortNameList is the short names as help and errors list them.
func shortNameList() string {
	names := make([]string, len(shortNames))
	for i, n := range shortNames {
		names[i] = n.name
	}
	return strings.Join(names, ", ")
}

// findRegion finds a region by short name, Linux symbol, ptdump marker or
// mm.rst description, ignoring case, or by an address expression in it
// (_stext, 0xffffffffa0000123).
func (s *Shell) findRegion(cmd, name string) (mm.Region, error) {
	l := s.m.Layout()
	for _, n := range shortNames {
		if strings.EqualFold(n.name, name) {
			if r, ok := l.Region(n.kind); ok {
				return r, nil
			}
			return mm.Region{}, errorf(cmd, name, ErrNoRegion, "this layout has no %s region (KASLR's layouts drop the KASAN shadow)", n.name)
		}
	}
	for _, r := range l.Regions {
		for _, n := range []string{r.Symbol, r.Marker, r.EndMarker, r.Name} {
			if n != "" && strings.EqualFold(n, name) {
				return r, nil
			}
		}
	}
	if !strings.Contains(name, " ") {
		if va, err := s.parseVA(cmd, name); err == nil {
			return l.Find(va), nil
		}
	}
	var known []string
	for _, n := range shortNames {
		known = append(known, n.name)
	}
	for _, r := range l.Regions {
		known = append(known, r.Symbol, r.Marker)
	}
	hint := ""
	if sug := suggest(name, known); sug != "" {
		hint = fmt.Sprintf("did you mean %s? ", sug)
	}
	return mm.Region{}, errorf(cmd, name, ErrNoRegion, "no region %q: %sgive one of %s, or a marker, description, symbol or address (help ptdump)",
		name, hint, shortNameList())
}

// regionName names a region with its Linux symbol, if it has one.
func regionName(r mm.Region) string {
	if r.Symbol != "" && !strings.Contains(r.Name, r.Symbol) {
		return fmt.Sprintf("%s (%s)", r.Name, r.Symbol)
	}
	return r.Name
}
