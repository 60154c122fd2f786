package shell

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/hbollon/go-edlib"

	"github.com/physmap/physmap/mm"
)

// Symbol is a named virtual address: one of the kernel image's (_text,
// _stext, _etext, __start_rodata, _end, ...) or a loaded module's, as the
// kernel supplies them through Machine.Symbols. The layout's own symbols
// (page_offset_base, __START_KERNEL_map, MODULES_VADDR, ...) come from
// mm.Layout and need not be supplied.
type Symbol struct {
	Name string
	VA   mm.VirtAddr
	// End, if set, bounds what the symbol names: an address at or past it
	// is not symbol+offset (a module's symbols end with its range).
	End mm.VirtAddr
}

// symtab is every symbol the shell knows: the layout's and the machine's.
type symtab struct {
	layout, machine []Symbol
}

// layoutSymbols returns the layout's symbols: each region's base under
// Linux's name for it (the value of page_offset_base, not the variable's
// address), and the macros Linux defines from them.
func layoutSymbols(l *mm.Layout) []Symbol {
	var out []Symbol
	for _, r := range l.Regions {
		if r.Symbol != "" {
			out = append(out, Symbol{Name: r.Symbol, VA: r.Start})
		}
		// arch/x86/include/asm/page_64_types.h and pgtable_64_types.h,
		// with CONFIG_DYNAMIC_MEMORY_LAYOUT: PAGE_OFFSET is
		// page_offset_base, VMALLOC_START vmalloc_base, VMALLOC_END its
		// last byte, VMEMMAP_START vmemmap_base; MODULES_END ends the
		// module area.
		switch r.Kind {
		case mm.KindDirectMap:
			out = append(out, Symbol{Name: "PAGE_OFFSET", VA: r.Start})
		case mm.KindVmalloc:
			out = append(out, Symbol{Name: "VMALLOC_START", VA: r.Start}, Symbol{Name: "VMALLOC_END", VA: r.Last()})
		case mm.KindVmemmap:
			out = append(out, Symbol{Name: "VMEMMAP_START", VA: r.Start})
		case mm.KindModules:
			out = append(out, Symbol{Name: "MODULES_END", VA: r.Start.Add(r.Size)})
		}
	}
	return out
}

// symbols returns the symbol table of the machine as it is now.
func (s *Shell) symbols() symtab {
	return symtab{layout: layoutSymbols(s.m.Layout()), machine: s.m.Symbols()}
}

// all returns every symbol, the layout's first.
func (t symtab) all() []Symbol { return append(slices.Clone(t.layout), t.machine...) }

// lookup finds a symbol by its exact name (symbols are case-sensitive);
// the layout's come first.
func (t symtab) lookup(name string) (Symbol, bool) {
	for _, sym := range t.all() {
		if sym.Name == name {
			return sym, true
		}
	}
	return Symbol{}, false
}

// nearest returns the symbol closest at or below va; of several at one
// address, the machine's first (fake_module_init rather than
// MODULES_VADDR), then the first given.
func (t symtab) nearest(va mm.VirtAddr) (Symbol, bool) {
	var best Symbol
	found := false
	for _, sym := range append(slices.Clone(t.machine), t.layout...) {
		if sym.VA <= va && (sym.End == 0 || va < sym.End) && (!found || sym.VA > best.VA) {
			best, found = sym, true
		}
	}
	return best, found
}

// sorted returns the symbols by address, then name.
func (t symtab) sorted() []Symbol {
	out := t.all()
	slices.SortStableFunc(out, func(a, b Symbol) int {
		return cmp.Or(cmp.Compare(a.VA, b.VA), strings.Compare(a.Name, b.Name))
	})
	return out
}

// maxSuggestDistance is how many edits from a known name a misspelt one
// may be and still get a "did you mean".
const maxSuggestDistance = 2

// suggest returns the known name closest to name, ignoring case, within
// maxSuggestDistance edits (one for short names), or "".
func suggest(name string, known []string) string {
	best, dist := "", -1
	for _, k := range known {
		limit := maxSuggestDistance
		if len(k) < 5 {
			limit = 1
		}
		if d := len(name) - len(k); d > limit || -d > limit {
			continue
		}
		d := edlib.OSADamerauLevenshteinDistance(strings.ToLower(name), strings.ToLower(k))
		if d <= limit && (dist < 0 || d < dist) {
			best, dist = k, d
		}
	}
	return best
}

// unknown is the message for a name that is no symbol.
func (t symtab) unknown(name string) string {
	var names []string
	for _, sym := range t.all() {
		names = append(names, sym.Name)
	}
	if s := suggest(name, names); s != "" {
		return fmt.Sprintf("%q is not a hex address or a known symbol: did you mean %s? (sym lists them)", name, s)
	}
	return fmt.Sprintf("%q is not a hex address or a known symbol (sym lists them)", name)
}
