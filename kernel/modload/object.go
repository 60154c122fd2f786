package modload

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"slices"
	"strings"
)

// Object is a module parsed, checked and laid out, not yet placed: every
// check that does not depend on the base address or on the loaded modules
// has passed. An Object is never changed after Parse, so it can be linked
// at several bases.
type Object struct {
	name     string
	modinfo  []string
	sections []Section         // placed sections, in layout order
	bySec    map[int]int       // section index -> index in sections
	extents  [NumGroups]Extent // the page-aligned runs, in group order
	size     uint64            // the whole layout, a multiple of the page size
	dataLen  [NumGroups]uint64 // bytes of each group that are not all zero
	data     [][]byte          // each section's bytes (nil for NOBITS)
	names    []string          // each section's name
	syms     []symbol          // the symbol table, index 0 included
	relas    []rela            // the relocations of placed sections, in Linux's order
	exports  []export          // the __ksymtab entries
	init     int               // symbol index of init_module, 0 if none
	exit     int               // symbol index of cleanup_module, 0 if none
	undef    []string          // non-weak undefined symbol names, sorted
}

// symbol is one entry of the module's symbol table.
type symbol struct {
	name  string
	bind  elf.SymBind
	typ   elf.SymType
	shndx elf.SectionIndex
	value uint64
	size  uint64
}

// rela is one relocation of a placed section.
type rela struct {
	sec    int // section index of the section patched
	off    uint64
	typ    elf.R_X86_64
	sym    int
	addend int64
}

// export is one __ksymtab entry: its name and the relocation that gives
// its value.
type export struct {
	name  string
	value int // index in relas
}

// Name returns the module's name, from name= in .modinfo.
func (o *Object) Name() string { return o.name }

// Modinfo returns the values of tag in .modinfo ("license", "description").
func (o *Object) Modinfo(tag string) []string {
	var vals []string
	for _, kv := range o.modinfo {
		if v, ok := strings.CutPrefix(kv, tag+"="); ok {
			vals = append(vals, v)
		}
	}
	return vals
}

// Size returns the bytes the module occupies: the sum of its page-aligned
// extents, the size of the one virtual range its base starts.
func (o *Object) Size() uint64 { return o.size }

// Extents returns the page-aligned run of each group, in layout order
// (text, rodata, ro_after_init, data); an empty group has Size 0.
func (o *Object) Extents() []Extent { return o.extents[:] }

// Sections returns the sections placed in the layout, in layout order.
func (o *Object) Sections() []Section { return slices.Clone(o.sections) }

// Exports returns the names the module exports, in __ksymtab order.
func (o *Object) Exports() []string {
	names := make([]string, len(o.exports))
	for i, e := range o.exports {
		names[i] = e.name
	}
	return names
}

// Undefined returns the names the module needs from the kernel or other
// modules (weak ones left out), sorted.
func (o *Object) Undefined() []string { return slices.Clone(o.undef) }

// RelocCount is how many relocations of one type the module's placed
// sections have.
type RelocCount struct {
	Type  elf.R_X86_64
	Count int
}

// RelocCounts returns the relocations the loader applies, by type in
// type order.
func (o *Object) RelocCounts() []RelocCount {
	n := map[elf.R_X86_64]int{}
	for _, r := range o.relas {
		n[r.typ]++
	}
	var out []RelocCount
	for t, c := range n {
		out = append(out, RelocCount{t, c})
	}
	slices.SortFunc(out, func(a, b RelocCount) int { return int(a.Type) - int(b.Type) })
	return out
}

// Parse checks a module object and lays it out. It makes the checks Linux
// 6.1 makes before it allocates anything (elf_validity_check,
// setup_load_info, module_enforce_rwx_sections), those of
// simplify_symbols and apply_relocate_add that do not depend on where the
// module goes (a symbol's section index, an unknown relocation type), and
// physmap's own bounds checks, which Linux leaves to the module's
// signature. Any malformed input gives an *Error, never a panic.
//
// The Object refers to data's section bytes: data must not change while
// the Object is used (the kernel's are embedded, hence read-only).
func Parse(data []byte) (*Object, error) {
	sh, shstrndx, err := checkELF(data)
	if err != nil {
		return nil, err
	}
	f, ferr := elf.NewFile(bytes.NewReader(data))
	if ferr != nil {
		return nil, wrapELF("", ferr)
	}
	shstr := sectionData(data, sh[shstrndx])
	o := &Object{bySec: map[int]int{}}
	o.names = make([]string, len(sh))
	o.data = make([][]byte, len(sh))
	for i, s := range sh {
		o.names[i] = sectionName(shstr, s.name)
		o.data[i] = sectionData(data, s)
	}

	// The name, from .modinfo, whose SHF_ALLOC the loader drops, as it
	// does __versions' (rewrite_section_headers).
	for i := range sh {
		switch o.names[i] {
		case ".modinfo":
			o.modinfo = append(o.modinfo, modinfo(o.data[i])...)
			sh[i].flags &^= uint64(elf.SHF_ALLOC)
		case "__versions":
			sh[i].flags &^= uint64(elf.SHF_ALLOC)
		}
	}
	if names := o.Modinfo("name"); len(names) > 0 {
		o.name = names[0]
	}
	if !validName(o.name) {
		return nil, ownErr("", ENOEXEC, "%s: no valid module name (name=%q)", displayName(""), o.name).
			withDetail("Linux takes the name from name= in .modinfo, which modpost writes; physmap's module header writes it from KBUILD_MODNAME")
	}
	mod := o.name

	symtab := -1
	for i, s := range sh {
		if s.typ == elf.SHT_SYMTAB {
			symtab = i
			break
		}
	}
	if symtab < 0 {
		return nil, linuxErr(mod, ENOEXEC, "%s: module has no symbols (stripped?)", mod)
	}

	if err := o.layout(sh); err != nil {
		return nil, err
	}
	if err := o.readSymbols(f, sh); err != nil {
		return nil, err
	}
	if err := o.readRelocations(sh); err != nil {
		return nil, err
	}
	if err := o.readExports(); err != nil {
		return nil, err
	}
	o.sizeData()
	return o, nil
}

// readSymbols reads the symbol table through debug/elf and makes the
// checks of simplify_symbols that do not need the other modules.
func (o *Object) readSymbols(f *elf.File, sh []shdr) error {
	mod := o.name
	syms, err := f.Symbols()
	if err != nil {
		return wrapELF(mod, err)
	}
	o.syms = make([]symbol, 1, len(syms)+1)
	for _, s := range syms {
		o.syms = append(o.syms, symbol{
			name: s.Name, bind: elf.ST_BIND(s.Info), typ: elf.ST_TYPE(s.Info),
			shndx: s.Section, value: s.Value, size: s.Size,
		})
	}
	undef := map[string]bool{}
	for i := 1; i < len(o.syms); i++ {
		s := o.syms[i]
		switch {
		case s.shndx == elf.SHN_COMMON:
			if strings.HasPrefix(s.name, "__gnu_lto") {
				continue
			}
			return linuxErr(mod, ENOEXEC, "%s: please compile with -fno-common", mod).
				withDetail("common symbol %s", s.name)
		case s.shndx == elf.SHN_ABS, s.shndx == shnLivepatch:
		case s.shndx == elf.SHN_UNDEF:
			if s.bind != elf.STB_WEAK {
				undef[s.name] = true
			}
		case int(s.shndx) >= len(sh):
			return linuxErr(mod, ENOEXEC, "%s: Symbol %s has an invalid section index %d (max %d)", mod, s.name, s.shndx, len(sh)-1)
		}
		switch s.name {
		case "init_module", "cleanup_module":
			if sec, ok := o.symSection(s); !ok || !o.isPlaced(sec) || o.group(sec) != GroupText {
				return ownErr(mod, ENOEXEC, "%s: %s is not defined in the module's text", mod, s.name)
			}
			if s.name == "init_module" {
				o.init = i
			} else {
				o.exit = i
			}
		}
	}
	for n := range undef {
		o.undef = append(o.undef, n)
	}
	slices.Sort(o.undef)
	return nil
}

// shnLivepatch is SHN_LIVEPATCH (include/uapi/linux/elf.h), which
// simplify_symbols leaves to livepatch; physmap keeps such a symbol's
// value as it is, as it does an SHN_ABS one.
const shnLivepatch elf.SectionIndex = 0xff20

// symSection returns the section a symbol is defined in, in the order of
// simplify_symbols' cases: false for an undefined, absolute, common or
// livepatch symbol.
func (o *Object) symSection(s symbol) (int, bool) {
	switch s.shndx {
	case elf.SHN_UNDEF, elf.SHN_ABS, elf.SHN_COMMON, shnLivepatch:
		return 0, false
	}
	if int(s.shndx) >= len(o.names) {
		return 0, false
	}
	return int(s.shndx), true
}

// symName names symbol i for messages: its name, or its section's for a
// section symbol.
func (o *Object) symName(i int) string {
	s := o.syms[i]
	if s.typ == elf.STT_SECTION && int(s.shndx) < len(o.names) {
		return o.names[s.shndx]
	}
	if s.name == "" {
		return "(unnamed)"
	}
	return s.name
}

// fieldSize returns the bytes a relocation type writes; ok is false for a
// type apply_relocate_add does not know.
func fieldSize(t elf.R_X86_64) (int, bool) {
	switch t {
	case elf.R_X86_64_NONE:
		return 0, true
	case elf.R_X86_64_64, elf.R_X86_64_PC64:
		return 8, true
	case elf.R_X86_64_32, elf.R_X86_64_32S, elf.R_X86_64_PC32, elf.R_X86_64_PLT32:
		return 4, true
	}
	return 0, false
}

// readRelocations reads the RELA sections that patch placed sections, in
// the order apply_relocations visits them (kernel/module/main.c): by
// section index, skipping those whose target is not SHF_ALLOC.
func (o *Object) readRelocations(sh []shdr) error {
	mod := o.name
	le := binary.LittleEndian
	for i := 1; i < len(sh); i++ {
		s := sh[i]
		if s.typ != elf.SHT_RELA && s.typ != elf.SHT_REL {
			continue
		}
		target := int(s.info)
		if target >= len(sh) || sh[target].flags&uint64(elf.SHF_ALLOC) == 0 {
			continue
		}
		if s.typ == elf.SHT_REL {
			return linuxErr(mod, ENOEXEC, "module %s: REL relocation unsupported", mod)
		}
		if s.size%relaSize != 0 {
			return ownErr(mod, ENOEXEC, "%s: relocation section %s is %d bytes, not a multiple of %d", mod, o.names[i], s.size, relaSize)
		}
		ts := o.sections[o.bySec[target]]
		b := o.data[i]
		for off := 0; off < len(b); off += relaSize {
			info := le.Uint64(b[off+8:])
			r := rela{
				sec:    target,
				off:    le.Uint64(b[off:]),
				typ:    elf.R_X86_64(uint32(info)),
				sym:    int(info >> 32),
				addend: int64(le.Uint64(b[off+16:])),
			}
			if info>>32 >= uint64(len(o.syms)) {
				return ownErr(mod, ENOEXEC, "%s: relocation %d of %s refers to symbol %d of %d", mod, off/relaSize, o.names[i], info>>32, len(o.syms))
			}
			n, known := fieldSize(r.typ)
			if !known {
				return linuxErr(mod, ENOEXEC, "%s: Unknown rela relocation: %d", mod, uint32(info)).
					withDetail("relocation %d of %s, at %s+%#x against %s", off/relaSize, o.names[i], ts.Name, r.off, o.symName(r.sym))
			}
			if r.off > ts.Size || uint64(n) > ts.Size-r.off {
				return ownErr(mod, ENOEXEC, "%s: %v at %s+%#x writes %d bytes beyond the section's %#x", mod, r.typ, ts.Name, r.off, n, ts.Size)
			}
			if sec, ok := o.symSection(o.syms[r.sym]); ok {
				if !o.isPlaced(sec) {
					return ownErr(mod, ENOEXEC, "%s: %v at %s+%#x refers to %s in %s, a section that is not loaded", mod, r.typ, ts.Name, r.off, o.symName(r.sym), o.names[sec])
				}
			}
			o.relas = append(o.relas, r)
		}
	}
	return nil
}

// ksymSize is sizeof(struct physmap_ksym) (kernel/modules/physmap_module.h):
// the exported symbol's address, then its name's.
const ksymSize = 16

// readExports reads __ksymtab, the table EXPORT_SYMBOL builds. Each entry
// is two pointers, each filled by an R_X86_64_64 relocation: the first
// names the exported symbol, the second a string in the module.
func (o *Object) readExports() error {
	mod := o.name
	tab := -1
	for _, s := range o.sections {
		if s.Name == "__ksymtab" {
			tab = s.Index
		}
	}
	if tab < 0 {
		return nil
	}
	size := o.sections[o.bySec[tab]].Size
	if size%ksymSize != 0 {
		return ownErr(mod, ENOEXEC, "%s: __ksymtab is %d bytes, not a multiple of %d", mod, size, ksymSize)
	}
	at := map[uint64]int{}
	for i, r := range o.relas {
		if r.sec == tab {
			at[r.off] = i
		}
	}
	seen := map[string]bool{}
	for off := uint64(0); off < size; off += ksymSize {
		vi, okv := at[off]
		ni, okn := at[off+8]
		if !okv || !okn || o.relas[vi].typ != elf.R_X86_64_64 || o.relas[ni].typ != elf.R_X86_64_64 {
			return ownErr(mod, ENOEXEC, "%s: __ksymtab entry %d lacks the two R_X86_64_64 relocations of its value and name", mod, off/ksymSize)
		}
		nr := o.relas[ni]
		ns := o.syms[nr.sym]
		name, ok := "", false
		if sec, def := o.symSection(ns); def {
			name, ok = cString(o.data[sec], ns.value+uint64(nr.addend))
		}
		if !ok || name == "" {
			return ownErr(mod, ENOEXEC, "%s: the name of __ksymtab entry %d is not a string in the module", mod, off/ksymSize)
		}
		if seen[name] {
			return ownErr(mod, ENOEXEC, "%s: exports %s twice", mod, name)
		}
		seen[name] = true
		o.exports = append(o.exports, export{name: name, value: vi})
	}
	return nil
}

// sizeData finds how much of each group is not all zero: up to the end of
// its last section with bytes in the file, or of a relocated field in a
// NOBITS section. The rest is zero, as move_module's memset leaves it.
func (o *Object) sizeData() {
	for _, s := range o.sections {
		if !s.NoBits {
			o.grow(s.Group, s.Offset+s.Size)
		}
	}
	for _, r := range o.relas {
		s := o.sections[o.bySec[r.sec]]
		if s.NoBits {
			n, _ := fieldSize(r.typ)
			o.grow(s.Group, s.Offset+r.off+uint64(n))
		}
	}
}

func (o *Object) grow(g Group, end uint64) {
	if n := end - o.extents[g].Offset; n > o.dataLen[g] {
		o.dataLen[g] = n
	}
}

// isPlaced reports whether section index i is in the layout.
func (o *Object) isPlaced(i int) bool { _, ok := o.bySec[i]; return ok }

// group returns the group section index i was placed in.
//
// Precondition: section i is placed.
func (o *Object) group(i int) Group { return o.sections[o.bySec[i]].Group }
