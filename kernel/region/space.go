package region

import (
	"fmt"
	"io"

	"github.com/physmap/physmap/kernel/selftest"
	"github.com/physmap/physmap/mm"
)

// page is the small page size, as a length.
const page = uint64(mm.Size4K)

// isaEnd is the end of the ISA range below 1 MiB, which Linux's direct map
// covers whole whatever the firmware says (init_mem_mapping maps
// [0, ISA_END_ADDRESS) first).
const isaEnd mm.PhysAddr = 1 << 20

// Image is the running executable's sections in physical memory, from the
// linker's symbols: code; read-only data; data and bss.
type Image struct {
	Text, Rodata, Data mm.PhysRange
	// RIPProbe is the physical address of a routine that returns its own
	// address plus RIPProbeLen, whichever alias it is called through.
	RIPProbe mm.PhysAddr
	// EntryText is the entry text PTI's user copy maps, from the
	// linker's symbols around it (amd64.PTIEntryText).
	EntryText mm.PhysRange
}

// RIPProbeLen is the length of RIPProbe's first instruction, LEA RAX,
// [RIP+0].
const RIPProbeLen = 7

// All is the whole image.
func (im Image) All() mm.PhysRange { return mm.PhysRange{Start: im.Text.Start, End: im.Data.End} }

// Placement is where the builder puts what Linux can randomize: the
// documented places, or KASLR's. Proofs never read it.
type Placement struct {
	Layout mm.LayoutOptions
	// ImagePA is the image's 2 MiB-aligned physical base, ImageVA where
	// the kernel text mapping maps it.
	ImagePA mm.PhysAddr
	ImageVA mm.VirtAddr
	// ModuleOffset is where the module loads in the module area.
	ModuleOffset uint64
	KASLR        *mm.MemoryKASLR // nil without KASLR
	// Seed is the KASLR seed the placement was drawn from (with KASLR),
	// for the later draws Linux makes with kaslr_get_random_long
	// (poking_init's poking_addr).
	Seed uint64
}

// Space is the kernel address space as the builder makes it: the tables,
// where their frames come from, and the plan. Regions populate it; proofs
// use it only to act (remap a page, patch text), never as an expectation.
type Space struct {
	AS     *mm.AddressSpace
	Layout *mm.Layout // the layout built, placement applied
	Mem    mm.PhysMem // table memory
	// Tables hands out page-table frames (and the proofs' scratch
	// frames); Frames the RAM frames regions fill.
	Tables, Frames *mm.Memblock
	CPU            CPU
	TLB            *SkipTLB // the TLB AS flushes through
	Image          Image
	Window         mm.PhysRange // the runtime's memory, identity mapped
	Place          Placement
	// RAM is the builder's RAM: fw_cfg's etc/e820, clamped to the CPU's
	// physical address width.
	RAM     []mm.PhysRange
	Page1GB bool
	// Log receives the boot log's lines (init_memory_mapping, ...).
	Log io.Writer
	// Verbose asks for the full boot log.
	Verbose bool
	// Config is the configuration the kernel acts on, as its config line
	// states it (vsyscall=, PTI).
	Config selftest.Config
	// Exports are the kernel's symbols for modules (page_offset_base,
	// physmap_console_write), and Modules the objects to load.
	Exports []KernelSymbol
	Modules []ModuleObject
	// Ring3 enters and leaves user mode; Program is the probe
	// executable the processes run (kernel/programs). Without them the
	// user region builds nothing.
	Ring3   Ring3
	Program []byte
	// Console receives what processes write, and the kernel's lines
	// about them.
	Console io.Writer

	regions []Entry
}

// KernelVA is where the builder maps an image frame in the kernel text
// mapping: Linux's __START_KERNEL_map + pa - phys_base, shifted by the
// image's KASLR slot.
func (s *Space) KernelVA(pa mm.PhysAddr) mm.VirtAddr {
	return s.Place.ImageVA.Add(uint64(pa - s.Place.ImagePA))
}

// DirectVA is the builder's __va(pa).
func (s *Space) DirectVA(pa mm.PhysAddr) mm.VirtAddr { return s.Layout.PageOffset().Add(uint64(pa)) }

// region returns the built layout's region of kind k; every layout has
// them all.
func (s *Space) region(k mm.RegionKind) mm.Region {
	r, ok := s.Layout.Region(k)
	if !ok {
		panic(fmt.Sprintf("region: layout has no region of kind %d", k))
	}
	return r
}

// logf writes one line of the boot log.
func (s *Space) logf(format string, args ...any) {
	if s.Log != nil {
		fmt.Fprintf(s.Log, format+"\n", args...)
	}
}

// Reference holds the expectations proofs compare with, each from a source
// apart from the builder's.
type Reference struct {
	Mode mm.Mode
	// RAM is the PVH start_info memory map's RAM, sorted, not joined,
	// clamped to PhysBits: a second firmware table, read by a second
	// parser (the builder uses fw_cfg's etc/e820).
	RAM []mm.PhysRange
	// PhysBits is MAXPHYADDR from CPUID 0x80000008.
	PhysBits uint
	// Image is the image's sections from the linker's symbols.
	Image Image
	// Window is the runtime's memory window, TamaGo's RamStart and
	// RamSize.
	Window mm.PhysRange
	// Spec is mm.rst's documented layout for the mode (the kernel text
	// mapping 1 GiB when KASLR is on, as with CONFIG_RANDOMIZE_BASE).
	Spec *mm.Layout
	// KASLR says memory and image KASLR were asked for.
	KASLR bool
	// Config is the boot's configuration as its config line states it,
	// which the harness holds to the command line: which of map_vsyscall's
	// modes, whether PTI is on.
	Config selftest.Config
	// Exports are the frames of the symbols the kernel exports to
	// modules, from the Go linker.
	Exports []KernelSymbol
}

// Export returns the frame of an exported kernel symbol.
func (r Reference) Export(name string) (mm.PhysAddr, bool) {
	for _, e := range r.Exports {
		if e.Name == name {
			return e.PA, true
		}
	}
	return 0, false
}

// Reporter receives check results.
type Reporter interface {
	Check(name string, ok bool, format string, args ...any)
}

func pass(r Reporter, name, format string, args ...any) { r.Check(name, true, format, args...) }
func fail(r Reporter, name, format string, args ...any) { r.Check(name, false, format, args...) }

// Proof is what proofs work from: the tables in CR3, the bases found in
// them, the reference, and the CPU.
type Proof struct {
	Live  *mm.AddressSpace
	CPU   CPU
	Ref   Reference
	Bases Bases
	R     Reporter
	// Act is the builder's space, for proofs that change the tables (the
	// TLB proof remaps a page, text_poke patches text). Never an
	// expectation.
	Act *Space
}

// DirectVA is page_offset_base+pa with the base found in the live tables.
func (p *Proof) DirectVA(pa mm.PhysAddr) mm.VirtAddr { return p.Bases.PageOffset.Add(uint64(pa)) }

// KernelVA is where the live tables map an image frame in the kernel text
// mapping: _text's address found there plus the frame's offset in the
// image.
func (p *Proof) KernelVA(pa mm.PhysAddr) mm.VirtAddr {
	return p.Bases.Text.Add(uint64(pa - p.Ref.Image.Text.Start))
}

// spec returns the documented region of kind k.
func (p *Proof) spec(k mm.RegionKind) mm.Region {
	r, ok := p.Ref.Spec.Region(k)
	if !ok {
		panic(fmt.Sprintf("region: spec has no region of kind %d", k))
	}
	return r
}

// foundArea is the range a proof searches for the leaves of the region of
// kind k, whose base it found at base in the live tables. Without KASLR
// that is mm.rst's region. With KASLR, a region keeps mm.rst's size only
// as far as the next region as found (vmalloc ends at vmemmap_base, and
// vmemmap at CPU_ENTRY_AREA_BASE, the end of kernel_randomize_memory's
// window in arch/x86/mm/kaslr.c): a base drawn near the window's end
// would otherwise put the end past 2^64 and wrap the range to nothing.
func (p *Proof) foundArea(k mm.RegionKind, base mm.VirtAddr) mm.VirtRange {
	spec := p.spec(k)
	if !p.Ref.KASLR {
		return mm.VirtRange{Start: base, End: base.Add(spec.Size)}
	}
	limit := p.spec(mm.KindCPUEntryArea).Start
	if k == mm.KindVmalloc && p.Bases.VmemmapErr == nil && p.Bases.Vmemmap > base {
		limit = p.Bases.Vmemmap
	}
	end := base.Add(spec.Size)
	if end < base || end > limit {
		end = limit
	}
	return mm.VirtRange{Start: base, End: end}
}

// Entry pairs a registry entry with its type.
type Entry struct {
	Spec selftest.Region
	Impl Region
}

// Region is one region of the layout: it populates its part of the tables,
// proves it on the live ones, and applies its injections.
type Region interface {
	// Populate builds the region in s. Early regions run before the
	// tables are loaded into CR3, the others after.
	Populate(s *Space) error
	// Prove reports each of the region's checks once.
	Prove(p *Proof)
	// Inject applies the named injection, one of the region's; it may
	// take effect during Prove (a skipped flush).
	Inject(s *Space, name string) error
}
