package modload

import (
	"debug/elf"
	"encoding/binary"
	"slices"

	"github.com/physmap/physmap/mm"
)

// Symbol is a name and its address.
type Symbol struct {
	Name string
	Addr mm.VirtAddr
}

// SymbolTable is what the loader needs of the kernel's exported symbols:
// the address of a name in the kernel text mapping. Linux resolves
// modules against the symbols the kernel exports with EXPORT_SYMBOL
// (__ksymtab), not against all of kallsyms.
type SymbolTable interface {
	Lookup(name string) (mm.VirtAddr, bool)
}

// Symbols is a [SymbolTable] over a list; the first entry of a name wins.
type Symbols []Symbol

// Lookup returns the address of the first entry named name.
func (s Symbols) Lookup(name string) (mm.VirtAddr, bool) {
	for _, e := range s {
		if e.Name == name {
			return e.Addr, true
		}
	}
	return 0, false
}

// GroupImage is one group's pages as linked for a base: Size bytes at VA,
// of which the first len(Data) are given and the rest are zero. The
// caller copies Data into frames it zeroed, as move_module copies each
// section into memory it cleared.
type GroupImage struct {
	Group Group
	VA    mm.VirtAddr
	Size  uint64 // a multiple of PageSize; 0 for an empty group
	Data  []byte // len(Data) <= Size
}

// Pages returns the number of pages the group spans.
func (g *GroupImage) Pages() int { return int(g.Size / PageSize) }

// Page returns the given bytes of page i: up to PageSize, fewer or none
// where the rest of the page is zero.
//
// Precondition: 0 <= i < g.Pages().
func (g *GroupImage) Page(i int) []byte {
	lo := uint64(i) * PageSize
	if lo >= uint64(len(g.Data)) {
		return nil
	}
	return g.Data[lo:min(lo+PageSize, uint64(len(g.Data)))]
}

// Image is a module linked for one base address: every symbol resolved,
// every relocation applied, nothing yet in memory. Only the caller's
// mapping of it can fail after [Registry.Link] returns an Image.
type Image struct {
	obj     *Object
	reg     *Registry
	Base    mm.VirtAddr
	Groups  [NumGroups]GroupImage
	exports []Symbol
	symbols []Symbol // the module's own, by address
	uses    []*Module
	init    mm.VirtAddr
	exit    mm.VirtAddr
	applied int
}

// Name returns the module's name.
func (img *Image) Name() string { return img.obj.name }

// Object returns what was linked.
func (img *Image) Object() *Object { return img.obj }

// Range returns the virtual range the module occupies.
func (img *Image) Range() mm.VirtRange {
	return mm.VirtRange{Start: img.Base, End: img.Base.Add(img.obj.size)}
}

// Exports returns the symbols the module exports, read back from its
// relocated __ksymtab, in table order.
func (img *Image) Exports() []Symbol { return slices.Clone(img.exports) }

// Symbols returns the module's own named symbols (functions and data, local
// ones too) with their addresses, in address order: what Linux keeps for
// a module's kallsyms.
func (img *Image) Symbols() []Symbol { return slices.Clone(img.symbols) }

// Symbol returns the address of one of the module's own symbols.
func (img *Image) Symbol(name string) (mm.VirtAddr, bool) {
	for _, s := range img.symbols {
		if s.Name == name {
			return s.Addr, true
		}
	}
	return 0, false
}

// Init returns the address of init_module (what module_init names), false
// if the module has none.
func (img *Image) Init() (mm.VirtAddr, bool) { return img.init, img.init != 0 }

// Exit returns the address of cleanup_module (what module_exit names),
// false if the module has none.
func (img *Image) Exit() (mm.VirtAddr, bool) { return img.exit, img.exit != 0 }

// Applied returns the number of relocations applied.
func (img *Image) Applied() int { return img.applied }

// Uses returns the names of the loaded modules whose exports the module
// uses: the modules it depends on.
func (img *Image) Uses() []string { return names(img.uses) }

// Link places o at base and resolves and relocates it against the kernel's
// symbols and the exports of the modules in r, without changing r or o:
// the same object can be tried at several bases. It refuses a base that
// is not page-aligned or from which the module does not fit in area (a
// section too big for the area: -ENOMEM, as module_alloc fails), a name
// already loaded, an export the kernel or a module already has
// (verify_exported_symbols), undefined symbols nothing provides
// (simplify_symbols), a relocation target that is not zero, and, as a
// *PlacementError listing all of them, the relocations that cannot reach
// from base.
//
// Link allocates no frame and maps nothing; it is the last step before
// the caller does.
func (r *Registry) Link(o *Object, base mm.VirtAddr, area mm.VirtRange) (*Image, error) {
	mod := o.name
	if !base.IsAligned(PageSize) {
		return nil, ownErr(mod, EINVAL, "%s: base %v is not page-aligned", mod, base)
	}
	if end := base.Add(o.size); base < area.Start || end < base || end > area.End {
		return nil, ownErr(mod, ENOMEM, "%s: %s at %v do not fit in %v (err %d)", mod, bytesText(o.size), base, area, -int(ENOMEM)).
			withDetail("Linux's module_alloc fails, and the load with -ENOMEM, for a module the module area cannot hold (arch/x86/kernel/module.c)")
	}
	if r.Find(mod) != nil {
		return nil, ownErr(mod, EEXIST, "%s: a module of this name is loaded (err %d)", mod, -int(EEXIST))
	}
	if err := r.checkExports(o); err != nil {
		return nil, err
	}

	img := &Image{obj: o, reg: r, Base: base}
	vals := make([]mm.VirtAddr, len(o.syms))
	from := make([]string, len(o.syms))
	var unknown []string
	for i := 1; i < len(o.syms); i++ {
		s := o.syms[i]
		if s.shndx == elf.SHN_UNDEF {
			addr, owner, ok := r.resolve(s.name)
			switch {
			case ok:
				vals[i], from[i] = addr, "kernel"
				if owner != nil {
					from[i] = owner.Name()
					if !slices.Contains(img.uses, owner) {
						img.uses = append(img.uses, owner)
					}
				}
			case s.bind != elf.STB_WEAK && !slices.Contains(unknown, s.name):
				unknown = append(unknown, s.name)
			}
			continue
		}
		vals[i] = mm.VirtAddr(s.value)
		if sec, ok := o.symSection(s); ok && o.isPlaced(sec) {
			vals[i] = base.Add(o.sections[o.bySec[sec]].Offset + s.value)
		}
	}
	if len(unknown) > 0 {
		return nil, &UnknownSymbolError{Module: mod, Names: unknown}
	}

	for g := range NumGroups {
		ext := o.extents[g]
		data := make([]byte, o.dataLen[g])
		for _, s := range o.sections {
			if s.Group == g && !s.NoBits {
				copy(data[s.Offset-ext.Offset:], o.data[s.Index])
			}
		}
		img.Groups[g] = GroupImage{Group: g, VA: base.Add(ext.Offset), Size: ext.Size, Data: data}
	}

	var overflows []*Error
	for _, rl := range o.relas {
		n, _ := fieldSize(rl.typ)
		if n == 0 {
			continue // R_X86_64_NONE
		}
		sec := o.sections[o.bySec[rl.sec]]
		at := sec.Offset - o.extents[sec.Group].Offset + rl.off
		field := img.Groups[sec.Group].Data[at : at+uint64(n)]
		rel := &Reloc{
			Type: rl.typ, Section: sec.Name, Offset: rl.off,
			Symbol: o.symName(rl.sym), From: from[rl.sym],
			S: vals[rl.sym], A: rl.addend, P: base.Add(sec.Offset + rl.off),
		}
		rel.Val = value(rl.typ, rel.S, rel.A, rel.P)
		if !zero(field) {
			e := linuxErr(mod, ENOEXEC, "x86/modules: Skipping invalid relocation target, existing value is nonzero for type %d, loc %v, val %x", uint32(rl.typ), rel.P, rel.Val).
				withDetail("%v: the field already holds % x", rel, field)
			e.Reloc = rel
			return nil, e
		}
		store(field, rel.Val)
		img.applied++
		if !fits(rl.typ, rel.Val) {
			overflows = append(overflows, overflowErr(mod, rel))
		}
	}
	if len(overflows) > 0 {
		return nil, &PlacementError{Module: mod, Base: base, Overflows: overflows}
	}

	for _, e := range o.exports {
		rl := o.relas[e.value]
		sec := o.sections[o.bySec[rl.sec]]
		at := sec.Offset - o.extents[sec.Group].Offset + rl.off
		va := mm.VirtAddr(binary.LittleEndian.Uint64(img.Groups[sec.Group].Data[at:]))
		img.exports = append(img.exports, Symbol{Name: e.name, Addr: va})
	}
	for i := 1; i < len(o.syms); i++ {
		s := o.syms[i]
		sec, ok := o.symSection(s)
		if !ok || !o.isPlaced(sec) || s.name == "" || s.typ == elf.STT_SECTION || s.typ == elf.STT_FILE ||
			s.value > o.sections[o.bySec[sec]].Size {
			continue
		}
		img.symbols = append(img.symbols, Symbol{Name: s.name, Addr: vals[i]})
	}
	slices.SortStableFunc(img.symbols, func(a, b Symbol) int {
		switch {
		case a.Addr < b.Addr:
			return -1
		case a.Addr > b.Addr:
			return 1
		}
		return 0
	})
	if o.init != 0 {
		img.init = vals[o.init]
	}
	if o.exit != 0 {
		img.exit = vals[o.exit]
	}
	return img, nil
}
