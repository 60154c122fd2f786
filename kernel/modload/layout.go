package modload

import (
	"debug/elf"
	"strings"

	"github.com/physmap/physmap/mm"
)

// PageSize is the granule each group is aligned to (PAGE_SIZE).
const PageSize = 4096

// maxLayout bounds the whole layout: Linux 6.1 keeps a layout's size in an
// unsigned int (struct module_layout, include/linux/module.h).
const maxLayout = 1<<32 - PageSize

// Group is one of the page-aligned runs layout_sections builds
// (kernel/module/main.c), in its order. With CONFIG_STRICT_MODULE_RWX
// (set in Debian's 6.1 config) each run starts on a page, so each can get
// its own permissions.
type Group int

// The groups, in layout order.
const (
	GroupText        Group = iota // SHF_ALLOC|SHF_EXECINSTR: RO+X
	GroupRodata                   // SHF_ALLOC without SHF_WRITE: RO+NX
	GroupROAfterInit              // SHF_RO_AFTER_INIT: RW+NX while init runs, then RO+NX
	GroupData                     // SHF_ALLOC|SHF_WRITE, .bss included: RW+NX
	NumGroups
)

// String returns the group's name as physmap prints it.
func (g Group) String() string {
	switch g {
	case GroupText:
		return "text"
	case GroupRodata:
		return "rodata"
	case GroupROAfterInit:
		return "ro_after_init"
	case GroupData:
		return "data"
	}
	return "group?"
}

// Attrs returns the permissions of the group's pages, as module_enable_ro,
// module_enable_nx and module_enable_x (kernel/module/strict_rwx.c) set
// them before init runs (afterInit false) and after it returned (true):
// only ro_after_init changes.
func (g Group) Attrs(afterInit bool) mm.Attr {
	switch g {
	case GroupText:
		return mm.PageKernelExec
	case GroupRodata:
		return mm.PageKernelRO
	case GroupROAfterInit:
		if afterInit {
			return mm.PageKernelRO
		}
	}
	return mm.PageKernel
}

// mask is one row of layout_sections' table: a section goes in the first
// group whose flags it has all of and none of whose exclusions.
type mask struct {
	group   Group
	need    uint64
	exclude uint64
}

// masks is layout_sections' table for x86-64, where ARCH_SHF_SMALL is 0:
// its fifth row ({SHF_ALLOC, 0}, "small data") then takes nothing the
// rows above left, so physmap has four.
var masks = []mask{
	{GroupText, uint64(elf.SHF_EXECINSTR | elf.SHF_ALLOC), 0},
	{GroupRodata, uint64(elf.SHF_ALLOC), uint64(elf.SHF_WRITE)},
	{GroupROAfterInit, shfROAfterInit | uint64(elf.SHF_ALLOC), 0},
	{GroupData, uint64(elf.SHF_WRITE | elf.SHF_ALLOC), 0},
}

// Section is one section placed in the layout.
type Section struct {
	Index  int    // its section header index
	Name   string // e.g. .text
	Group  Group
	Offset uint64 // from the module's base
	Size   uint64
	Align  uint64 // sh_addralign, 1 for 0
	NoBits bool   // SHT_NOBITS: zero-filled, no bytes in the object
}

// Extent is the page-aligned run of one group, from the module's base.
type Extent struct {
	Group  Group
	Offset uint64
	Size   uint64 // a multiple of PageSize; 0 for an empty group
}

// layout places the SHF_ALLOC sections as layout_sections does: for each
// group in order, every section that matches it, in section order, at the
// next offset aligned to its sh_addralign; each group ends on a page. It
// first makes module_enforce_rwx_sections' check and physmap's own:
// no init sections (physmap has no init layout), no per-CPU section, no
// compressed section, alignments that are powers of two up to a page.
func (o *Object) layout(sh []shdr) error {
	mod := o.name
	for i, s := range sh {
		name := o.names[i]
		// Linux sets SHF_RO_AFTER_INIT on these by name
		// (layout_and_allocate).
		if name == ".data..ro_after_init" || name == "__jump_table" {
			sh[i].flags |= shfROAfterInit
			s = sh[i]
		}
		if s.flags&uint64(elf.SHF_ALLOC) == 0 {
			continue
		}
		wx := uint64(elf.SHF_WRITE | elf.SHF_EXECINSTR)
		if s.flags&wx == wx {
			return linuxErr(mod, ENOEXEC, "%s: section %s (index %d) has invalid WRITE|EXEC flags", mod, name, i)
		}
		switch {
		case s.typ == elf.SHT_NULL:
			return ownErr(mod, ENOEXEC, "%s: section %d of type SHT_NULL is SHF_ALLOC", mod, i)
		case strings.HasPrefix(name, ".init"):
			return ownErr(mod, ENOEXEC, "%s: section %s (index %d) is an init section: physmap has no init layout", mod, name, i).
				withDetail("Linux lays .init* sections out in a second allocation and frees it once init returns (layout_sections, do_init_module); physmap's modules keep init in .text")
		case name == ".data..percpu":
			return ownErr(mod, ENOEXEC, "%s: section %s (index %d) is per-CPU data: physmap has no per-CPU areas", mod, name, i)
		case s.flags&uint64(elf.SHF_COMPRESSED) != 0:
			return ownErr(mod, ENOEXEC, "%s: section %s (index %d) is compressed", mod, name, i)
		case s.align > PageSize || s.align&(s.align-1) != 0:
			return ownErr(mod, ENOEXEC, "%s: section %s (index %d) is aligned to %d: physmap takes powers of two up to %d", mod, name, i, s.align, PageSize).
				withDetail("a module's base is only page-aligned, so a larger alignment could not hold")
		}
	}

	placed := make([]bool, len(sh))
	var size uint64
	for _, m := range masks {
		start := size
		for i, s := range sh {
			if placed[i] || s.flags&m.need != m.need || s.flags&m.exclude != 0 {
				continue
			}
			align := max(s.align, 1)
			off := (size + align - 1) &^ (align - 1)
			if off < size || s.size > maxLayout-off {
				return ownErr(mod, ENOEXEC, "%s: section %s (index %d) of %d bytes takes the layout beyond %d bytes", mod, o.names[i], i, s.size, uint64(maxLayout)).
					withDetail("Linux 6.1 keeps a module layout's size in an unsigned int (struct module_layout)")
			}
			placed[i] = true
			o.bySec[i] = len(o.sections)
			o.sections = append(o.sections, Section{
				Index: i, Name: o.names[i], Group: m.group, Offset: off, Size: s.size,
				Align: align, NoBits: s.typ == elf.SHT_NOBITS,
			})
			size = off + s.size
		}
		size = (size + PageSize - 1) &^ (PageSize - 1) // strict_align
		o.extents[m.group] = Extent{Group: m.group, Offset: start, Size: size - start}
	}
	o.size = size
	return nil
}
