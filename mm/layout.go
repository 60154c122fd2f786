package mm

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// RegionKind identifies a region of the Linux x86-64 address space.
type RegionKind uint8

// Region kinds, in the order they appear in the layout.
const (
	KindUser         RegionKind = iota // user-space virtual memory
	KindNonCanonical                   // the hole between the canonical halves
	KindGuardHole                      // guard hole, reserved for a hypervisor
	KindLDTRemap                       // LDT remap for PTI
	KindDirectMap                      // direct mapping of all physical memory
	KindHole                           // unused hole
	KindVmalloc                        // vmalloc/ioremap space
	KindVmemmap                        // virtual memory map (struct page array)
	KindKASAN                          // KASAN shadow memory
	KindCPUEntryArea                   // cpu_entry_area
	KindESPFix                         // %esp fixup stacks
	KindEFI                            // EFI region mapping space
	KindKernelText                     // kernel text mapping (__START_KERNEL_map)
	KindModules                        // module mapping space
	KindFixmap                         // fixmap
	KindVsyscall                       // legacy vsyscall page
)

// Region is one row of the layout. Size is in bytes; the last region ends
// at the top of the 64-bit space, so regions carry a size rather than an
// exclusive end.
type Region struct {
	Kind      RegionKind
	Start     VirtAddr
	Size      uint64
	Name      string // description, as in Linux's mm.rst
	Symbol    string // Linux's name for the base, if it has one
	Marker    string // ptdump marker printed at Start, if any
	EndMarker string // ptdump marker printed at the end, if any
}

// Last returns the last address of the region.
func (r Region) Last() VirtAddr { return r.Start.Add(r.Size - 1) }

// Contains reports whether va lies in r.
func (r Region) Contains(va VirtAddr) bool { return va >= r.Start && va <= r.Last() }

// Layout is the Linux x86-64 kernel address space for one paging mode, as
// data (Documentation/arch/x86/x86_64/mm.rst).
type Layout struct {
	Mode    Mode
	Regions []Region // ordered, covering the whole 64-bit space
}

// Byte units of the layout tables.
const (
	kB = uint64(1) << 10
	MB = kB << 10
	GB = MB << 10
	TB = GB << 10
	PB = TB << 10
)

// kernelSpaceMarker is where ptdump prints "Kernel Space"
// (arch/x86/mm/dump_pagetables.c: 1UL << 63).
const kernelSpaceMarker = VirtAddr(1) << 63

// defaultFixmapStart is this project's stand-in for FIXADDR_START, which
// depends on the kernel configuration ("~0.5 MB" below the vsyscall page).
const defaultFixmapStart = VirtAddr(0xffffffffff580000)

// The part of the layout from fffffc0000000000 up, the same in both modes.
var layoutTail = []Region{
	{Kind: KindHole, Start: 0xfffffc0000000000, Size: 2 * TB, Name: "... unused hole (vaddr_end for KASLR)"},
	{Kind: KindCPUEntryArea, Start: 0xfffffe0000000000, Size: TB / 2, Name: "cpu_entry_area mapping", Symbol: "CPU_ENTRY_AREA_BASE", Marker: "CPU entry Area"},
	{Kind: KindHole, Start: 0xfffffe8000000000, Size: TB / 2, Name: "... unused hole"},
	{Kind: KindESPFix, Start: 0xffffff0000000000, Size: TB / 2, Name: "%esp fixup stacks", Symbol: "ESPFIX_BASE_ADDR", Marker: "ESPfix Area"},
	{Kind: KindHole, Start: 0xffffff8000000000, Size: 444 * GB, Name: "... unused hole"},
	{Kind: KindEFI, Start: 0xffffffef00000000, Size: 64 * GB, Name: "EFI region mapping space", Symbol: "EFI_VA_END", Marker: "EFI Runtime Services"},
	{Kind: KindHole, Start: 0xffffffff00000000, Size: 2 * GB, Name: "... unused hole"},
	{Kind: KindKernelText, Start: 0xffffffff80000000, Size: 512 * MB, Name: "kernel text mapping, mapped to physical address 0", Symbol: "__START_KERNEL_map", Marker: "High Kernel Mapping"},
	{Kind: KindModules, Start: 0xffffffffa0000000, Size: 1520 * MB, Name: "module mapping space", Symbol: "MODULES_VADDR", Marker: "Modules", EndMarker: "End Modules"},
	{Kind: KindHole, Start: 0xffffffffff000000, Size: uint64(defaultFixmapStart - 0xffffffffff000000), Name: "... unused hole"},
	{Kind: KindFixmap, Start: defaultFixmapStart, Size: uint64(0xffffffffff600000 - defaultFixmapStart), Name: "kernel-internal fixmap range, variable size and offset", Symbol: "FIXADDR_START", Marker: "Fixmap Area"},
	{Kind: KindVsyscall, Start: 0xffffffffff600000, Size: 4 * kB, Name: "legacy vsyscall ABI", Symbol: "VSYSCALL_ADDR"},
	{Kind: KindHole, Start: 0xffffffffff601000, Size: 0xffffffffffe00000 - 0xffffffffff601000, Name: "... unused hole (fixmap top)"},
	{Kind: KindHole, Start: 0xffffffffffe00000, Size: 2 * MB, Name: "... unused hole"},
}

// layout4 is the documented 4-level layout (48-bit addresses).
var layout4 = append([]Region{
	{Kind: KindUser, Start: 0, Size: 128 * TB, Name: "user-space virtual memory, different per mm", Marker: "User Space"},
	{Kind: KindNonCanonical, Start: 0x0000800000000000, Size: 0xffff800000000000 - 0x0000800000000000, Name: "... huge, almost 64 bits wide hole of non-canonical virtual memory addresses"},
	{Kind: KindGuardHole, Start: 0xffff800000000000, Size: 8 * TB, Name: "... guard hole, also reserved for hypervisor", Symbol: "GUARD_HOLE_BASE_ADDR"},
	{Kind: KindLDTRemap, Start: 0xffff880000000000, Size: TB / 2, Name: "LDT remap for PTI", Symbol: "LDT_BASE_ADDR", Marker: "LDT remap"},
	{Kind: KindDirectMap, Start: 0xffff888000000000, Size: 64 * TB, Name: "direct mapping of all physical memory (page_offset_base)", Symbol: "page_offset_base", Marker: "Low Kernel Mapping"},
	{Kind: KindHole, Start: 0xffffc88000000000, Size: TB / 2, Name: "... unused hole"},
	{Kind: KindVmalloc, Start: 0xffffc90000000000, Size: 32 * TB, Name: "vmalloc/ioremap space (vmalloc_base)", Symbol: "vmalloc_base", Marker: "vmalloc() Area"},
	{Kind: KindHole, Start: 0xffffe90000000000, Size: 1 * TB, Name: "... unused hole"},
	{Kind: KindVmemmap, Start: 0xffffea0000000000, Size: 1 * TB, Name: "virtual memory map (vmemmap_base)", Symbol: "vmemmap_base", Marker: "Vmemmap"},
	{Kind: KindHole, Start: 0xffffeb0000000000, Size: 1 * TB, Name: "... unused hole"},
	{Kind: KindKASAN, Start: 0xffffec0000000000, Size: 16 * TB, Name: "KASAN shadow memory", Symbol: "KASAN_SHADOW_START", Marker: "KASAN shadow", EndMarker: "KASAN shadow end"},
}, layoutTail...)

// layout5 is the documented 5-level layout (57-bit addresses).
var layout5 = append([]Region{
	{Kind: KindUser, Start: 0, Size: 64 * PB, Name: "user-space virtual memory, different per mm", Marker: "User Space"},
	{Kind: KindNonCanonical, Start: 0x0100000000000000, Size: 0xff00000000000000 - 0x0100000000000000, Name: "... huge, still almost 64 bits wide hole of non-canonical virtual memory addresses"},
	{Kind: KindGuardHole, Start: 0xff00000000000000, Size: 4 * PB, Name: "... guard hole, also reserved for hypervisor", Symbol: "GUARD_HOLE_BASE_ADDR"},
	{Kind: KindLDTRemap, Start: 0xff10000000000000, Size: PB / 4, Name: "LDT remap for PTI", Symbol: "LDT_BASE_ADDR", Marker: "LDT remap"},
	{Kind: KindDirectMap, Start: 0xff11000000000000, Size: 32 * PB, Name: "direct mapping of all physical memory (page_offset_base)", Symbol: "page_offset_base", Marker: "Low Kernel Mapping"},
	{Kind: KindHole, Start: 0xff91000000000000, Size: 3*PB + 3*PB/4, Name: "... unused hole"},
	{Kind: KindVmalloc, Start: 0xffa0000000000000, Size: 12*PB + PB/2, Name: "vmalloc/ioremap space (vmalloc_base)", Symbol: "vmalloc_base", Marker: "vmalloc() Area"},
	{Kind: KindHole, Start: 0xffd2000000000000, Size: PB / 2, Name: "... unused hole"},
	{Kind: KindVmemmap, Start: 0xffd4000000000000, Size: PB / 2, Name: "virtual memory map (vmemmap_base)", Symbol: "vmemmap_base", Marker: "Vmemmap"},
	{Kind: KindHole, Start: 0xffd6000000000000, Size: 2*PB + PB/4, Name: "... unused hole"},
	{Kind: KindKASAN, Start: 0xffdf000000000000, Size: 0xfffffc0000000000 - 0xffdf000000000000, Name: "KASAN shadow memory", Symbol: "KASAN_SHADOW_START", Marker: "KASAN shadow", EndMarker: "KASAN shadow end"},
}, layoutTail...)

// LayoutOptions moves the regions Linux moves. The zero value gives the
// documented layout.
type LayoutOptions struct {
	// Bases of the regions memory KASLR randomizes (arch/x86/mm/kaslr.c);
	// 0 keeps the documented base.
	PageOffset, VmallocBase, VmemmapBase VirtAddr
	// Their sizes; 0 keeps the documented size.
	DirectMapSize, VmallocSize, VmemmapSize uint64
	// KernelImageSize is the kernel text mapping's size: 512 MiB, or 1 GiB
	// with CONFIG_RANDOMIZE_BASE; the module area starts where it ends.
	KernelImageSize uint64
	// FixmapStart stands in for FIXADDR_START; 0 keeps this package's default.
	FixmapStart VirtAddr
	// NoKASAN drops the KASAN shadow (KASAN and memory KASLR exclude each
	// other: the randomized regions may use its space).
	NoKASAN bool
}

// DefaultLayout returns the documented layout of mode.
//
// Precondition: mode is valid.
func DefaultLayout(mode Mode) *Layout { return NewLayout(mode, LayoutOptions{}) }

// NewLayout returns the layout of mode with the changes of opt; the holes
// between regions are recomputed when anything moved. The result is not
// validated: a layout whose regions overlap is representable (fault
// injection uses one), and Validate says what is wrong with it.
//
// Precondition: mode is valid.
func NewLayout(mode Mode, opt LayoutOptions) *Layout {
	mode.mustValid()
	src := layout4
	if mode == Mode5Level {
		src = layout5
	}
	l := &Layout{Mode: mode, Regions: slices.Clone(src)}
	if opt == (LayoutOptions{}) {
		return l
	}
	var rs []Region
	for _, r := range l.Regions {
		switch r.Kind {
		case KindHole:
			continue
		case KindKASAN:
			if opt.NoKASAN {
				continue
			}
		case KindDirectMap:
			r.Start, r.Size = or(opt.PageOffset, r.Start), orSize(opt.DirectMapSize, r.Size)
		case KindVmalloc:
			r.Start, r.Size = or(opt.VmallocBase, r.Start), orSize(opt.VmallocSize, r.Size)
		case KindVmemmap:
			r.Start, r.Size = or(opt.VmemmapBase, r.Start), orSize(opt.VmemmapSize, r.Size)
		case KindKernelText:
			r.Size = orSize(opt.KernelImageSize, r.Size)
		case KindModules:
			end := r.Start.Add(r.Size)
			r.Start = src[slices.IndexFunc(src, func(x Region) bool { return x.Kind == KindKernelText })].Start.Add(orSize(opt.KernelImageSize, 512*MB))
			r.Size = uint64(end - r.Start)
		case KindFixmap:
			end := r.Start.Add(r.Size)
			r.Start = or(opt.FixmapStart, r.Start)
			r.Size = uint64(end - r.Start)
		}
		rs = append(rs, r)
	}
	slices.SortStableFunc(rs, func(a, b Region) int { return cmp.Compare(a.Start, b.Start) })
	l.Regions = l.Regions[:0]
	next := VirtAddr(0)
	for i, r := range rs {
		if i > 0 && r.Start > next {
			l.Regions = append(l.Regions, Region{Kind: KindHole, Start: next, Size: uint64(r.Start - next), Name: "... unused hole"})
		}
		l.Regions = append(l.Regions, r)
		next = r.Start.Add(r.Size)
	}
	if next != 0 {
		l.Regions = append(l.Regions, Region{Kind: KindHole, Start: next, Size: uint64(-next), Name: "... unused hole"})
	}
	return l
}

func or(v, def VirtAddr) VirtAddr {
	if v == 0 {
		return def
	}
	return v
}

func orSize(v, def uint64) uint64 {
	if v == 0 {
		return def
	}
	return v
}

// Region returns the first region of kind k.
func (l *Layout) Region(k RegionKind) (Region, bool) {
	for _, r := range l.Regions {
		if r.Kind == k {
			return r, true
		}
	}
	return Region{}, false
}

// Lookup returns the region whose Symbol, Marker or Name is name, e.g.
// "page_offset_base", "Modules" or "cpu_entry_area mapping".
func (l *Layout) Lookup(name string) (Region, bool) {
	for _, r := range l.Regions {
		if r.Symbol == name || r.Marker == name || r.Name == name {
			return r, true
		}
	}
	return Region{}, false
}

// Find returns the region holding va.
func (l *Layout) Find(va VirtAddr) Region {
	for _, r := range l.Regions {
		if r.Contains(va) {
			return r
		}
	}
	panic("mm: layout does not cover " + va.String()) // Validate rules this out
}

// PageOffset returns the direct-map base, page_offset_base.
func (l *Layout) PageOffset() VirtAddr {
	r, _ := l.Region(KindDirectMap)
	return r.Start
}

// Marker is a ptdump section marker: "---[ Name ]---" is printed when a
// dump reaches Start.
type Marker struct {
	Start VirtAddr
	Name  string
	// MaxLines, if set, caps the ptdump lines of the stretch the marker
	// starts, the rest counted in one "... N entries skipped ..." line, as
	// dump_pagetables.c's address_markers cap the ESPfix area at 16.
	MaxLines int
}

// espfixMaxLines is the ESPfix area's max_lines in address_markers
// (arch/x86/mm/dump_pagetables.c).
const espfixMaxLines = 16

// Markers returns the ptdump markers of the layout in address order, as
// Linux's arch/x86/mm/dump_pagetables.c places them.
func (l *Layout) Markers() []Marker {
	var ms []Marker
	for _, r := range l.Regions {
		if r.Marker != "" {
			m := Marker{Start: r.Start, Name: r.Marker}
			if r.Kind == KindESPFix {
				m.MaxLines = espfixMaxLines
			}
			ms = append(ms, m)
		}
		if r.EndMarker != "" {
			ms = append(ms, Marker{Start: r.Start.Add(r.Size), Name: r.EndMarker})
		}
	}
	ms = append(ms, Marker{Start: kernelSpaceMarker, Name: "Kernel Space"})
	slices.SortStableFunc(ms, func(a, b Marker) int { return cmp.Compare(a.Start, b.Start) })
	return ms
}

// Validate checks that the regions are ordered, contiguous and
// non-overlapping from 0 to the top of the space, 4 KiB aligned, canonical
// in the layout's mode (but for the non-canonical hole, which must be
// exactly that), and that the randomized regions are 1 GiB aligned.
func (l *Layout) Validate() error {
	var errs []error
	bad := func(r Region, format string, args ...any) {
		errs = append(errs, fmt.Errorf("layout %v: region %q at %v: %s", l.Mode, r.Name, r.Start, fmt.Sprintf(format, args...)))
	}
	next := VirtAddr(0)
	for i, r := range l.Regions {
		switch {
		case r.Size == 0:
			bad(r, "empty")
		case r.Start < next && i > 0:
			bad(r, "overlaps the region before, which ends at %v", next-1)
		case r.Start > next:
			bad(r, "leaves a gap after %v", next-1)
		}
		if !r.Start.IsAligned(frameSize) || r.Size%frameSize != 0 {
			bad(r, "not 4 KiB aligned")
		}
		switch r.Kind {
		case KindNonCanonical:
			if r.Start != l.Mode.UserEnd() || r.Last() != l.Mode.KernelStart()-1 {
				bad(r, "is not the non-canonical hole of %v mode", l.Mode)
			}
		default:
			if !l.Mode.Canonical(r.Start) || !l.Mode.Canonical(r.Last()) ||
				(r.Start < l.Mode.UserEnd()) != (r.Last() < l.Mode.UserEnd()) {
				bad(r, "not canonical in %v mode", l.Mode)
			}
		}
		switch r.Kind {
		case KindDirectMap, KindVmalloc, KindVmemmap:
			if !r.Start.IsAligned(GB) {
				bad(r, "base not 1 GiB aligned")
			}
		}
		next = r.Start.Add(r.Size)
		if next == 0 && i != len(l.Regions)-1 {
			bad(r, "reaches the top of the space before the last region")
			break
		}
	}
	if len(l.Regions) > 0 && next != 0 {
		errs = append(errs, fmt.Errorf("layout %v: regions end at %v, not at the top of the space", l.Mode, next))
	}
	return errors.Join(errs...)
}

// WriteTable prints the layout in the shape of Linux's mm.rst: start,
// offset from the top (or bottom) of the space, end (inclusive), size,
// description.
func (l *Layout) WriteTable(w io.Writer) error {
	var b strings.Builder
	rule := strings.Repeat("=", 120) + "\n"
	b.WriteString(rule)
	b.WriteString("    Start addr    |   Offset   |     End addr     |  Size   | VM area description\n")
	b.WriteString(rule)
	for _, r := range l.Regions {
		fmt.Fprintf(&b, " %016x | %10s | %016x | %7s | %s\n",
			uint64(r.Start), offsetString(r.Start), uint64(r.Last()), sizeString(r.Size), r.Name)
	}
	b.WriteString(strings.Repeat("_", 120) + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

var byteUnits = []struct {
	size uint64
	name string
}{{1 << 60, "EB"}, {PB, "PB"}, {TB, "TB"}, {GB, "GB"}, {MB, "MB"}, {kB, "kB"}}

// exactIn formats n/unit if it has at most two decimals.
func exactIn(n, unit uint64) (string, bool) {
	q := n / (unit / 4)
	if unit < 4 || n%(unit/4) != 0 {
		return "", false
	}
	s := strconv.FormatFloat(float64(q)/4, 'f', -1, 64)
	return s, true
}

// sizeString writes n bytes in the largest unit that holds it exactly with
// at most two decimals and below 2048 ("0.5 TB", "1520 MB"; fractions below
// 1 only from MB up), else approximately in the largest unit reached
// ("~8 PB").
func sizeString(n uint64) string {
	for _, u := range byteUnits {
		low := u.size
		if u.size >= MB {
			low = u.size / 4
		}
		if n >= low && n/u.size < 2048 {
			if s, ok := exactIn(n, u.size); ok {
				return s + " " + u.name
			}
		}
	}
	for _, u := range byteUnits {
		if n >= u.size {
			q := n / u.size
			if n%u.size >= u.size/2 {
				q++
			}
			return fmt.Sprintf("~%d %s", q, u.name)
		}
	}
	return fmt.Sprintf("%d B", n)
}

// offsetString writes a as a distance from the bottom ("+128 TB") or, in
// the upper half, from the top ("-119.5 TB") of the 64-bit space.
func offsetString(a VirtAddr) string {
	if a == 0 {
		return "0"
	}
	sign, n := "+", uint64(a)
	if a >= kernelSpaceMarker {
		sign, n = "-", uint64(-a)
	}
	s := sizeString(n)
	if strings.HasPrefix(s, "~") {
		return "~" + sign + s[1:]
	}
	return sign + s
}
