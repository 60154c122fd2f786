//go:build tamago

package main

import (
	"fmt"
	"io"
	"os"
	"runtime/goos"
	"unsafe"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/boot"
	"github.com/physmap/physmap/kernel/modules"
	"github.com/physmap/physmap/kernel/option"
	"github.com/physmap/physmap/kernel/programs"
	"github.com/physmap/physmap/kernel/region"
	"github.com/physmap/physmap/kernel/selftest"
	"github.com/physmap/physmap/mm"
)

// page is the small page size, as a length.
const page = uint64(mm.Size4K)

// The memory page tables (and the proofs' scratch frames) come from: a
// page-aligned piece of the runtime's heap, so the tables stay reachable
// through the low window whatever a fault injection does to the direct
// map. It is tablePoolBase plus tablePoolPerGB for every GiB of address
// space up to the highest RAM address: with 2 MiB pages the direct map
// needs one pmd table per GiB (and vmemmap one per 64 GiB); twice that
// leaves room for the splits the proofs make.
const (
	tablePoolBase  = 2 << 20
	tablePoolPerGB = 2 * page
)

// tablePoolSize returns the pool's size for RAM ending at maxPhys.
func tablePoolSize(maxPhys mm.PhysAddr) uint64 {
	return tablePoolBase + (uint64(maxPhys)+uint64(mm.GB)-1)/uint64(mm.GB)*tablePoolPerGB
}

// tablePool keeps the table memory referenced for good.
var tablePool []byte

// isaEnd is the end of the ISA range, which no allocator hands out.
const isaEnd mm.PhysAddr = 1 << 20

// readImage returns the image's sections from the linker's symbols.
func readImage() region.Image {
	text, etext, rodata, noptrdata, end := amd64.Image()
	im := region.Image{
		Text:     mm.PhysRange{Start: mm.PhysAddr(text).AlignDown(page), End: mm.PhysAddr(etext).AlignUp(page)},
		Rodata:   mm.PhysRange{Start: mm.PhysAddr(rodata).AlignDown(page), End: mm.PhysAddr(noptrdata).AlignDown(page)},
		Data:     mm.PhysRange{Start: mm.PhysAddr(noptrdata).AlignDown(page), End: mm.PhysAddr(end).AlignUp(page)},
		RIPProbe: mm.PhysAddr(amd64.RIPProbeAddr()),
	}
	if t, ok := amd64.PTIEntryText(); ok {
		im.EntryText = mm.PhysRange{Start: mm.PhysAddr(t.Start), End: mm.PhysAddr(t.End)}
	}
	return im
}

// pageOffsetBase is the kernel variable modules read as page_offset_base
// (arch/x86/kernel/head64.c): the modules region writes the direct map's
// base into it before the first module's init runs. Go code never reads it.
var pageOffsetBase uint64

// kernelExports returns the symbols the kernel exports to modules, at their
// frames in the image (the Go linker's addresses in the identity window).
func kernelExports() []region.KernelSymbol {
	return []region.KernelSymbol{
		{Name: region.SymPageOffsetBase, PA: mm.PhysAddr(uintptr(unsafe.Pointer(&pageOffsetBase)))},
		{Name: region.SymConsoleWrite, PA: mm.PhysAddr(boot.ConsoleWriteCAddr())},
	}
}

// moduleObjects returns the embedded module objects.
func moduleObjects() []region.ModuleObject {
	var out []region.ModuleObject
	for _, o := range modules.Objects() {
		out = append(out, region.ModuleObject{File: o.File, Data: o.Data})
	}
	return out
}

// runtimeWindow is TamaGo's memory: image, heap and stacks.
func runtimeWindow() mm.PhysRange {
	return mm.PhysRange{Start: mm.PhysAddr(goos.RamStart), End: mm.PhysAddr(goos.RamStart + goos.RamSize)}
}

// build builds the kernel address space on ram, loads it into CR3 and
// populates the regions that need it live. log receives the boot log.
func build(mode mm.Mode, ram []mm.PhysRange, page1G bool, opts option.Options, cfg selftest.Config, log io.Writer) (*region.Space, error) {
	cpu := hwCPU{}
	img := readImage()
	var maxPhys mm.PhysAddr
	for _, r := range ram {
		maxPhys = max(maxPhys, r.End)
	}
	p := place(os.Stdout, log, mode, maxPhys, img, opts.KASLR, opts.Config)

	size := tablePoolSize(maxPhys)
	pool := make([]byte, size+page)
	start := mm.PhysAddr(uintptr(unsafe.Pointer(&pool[0]))).AlignUp(page)
	tablePool = pool
	window := runtimeWindow()
	tlb := &region.SkipTLB{TLB: mm.NopTLB}
	s := &region.Space{
		Layout:  mm.NewLayout(mode, p.Layout),
		Mem:     &physMem{},
		Tables:  mm.NewMemblock([]mm.PhysRange{{Start: start, End: start.Add(size)}}, nil),
		Frames:  mm.NewMemblock(ram, []mm.PhysRange{{Start: 0, End: isaEnd}, window}),
		CPU:     cpu,
		TLB:     tlb,
		Image:   img,
		Window:  window,
		Place:   p,
		RAM:     ram,
		Page1GB: page1G,
		Log:     log,
		Config:  cfg,
		Exports: kernelExports(),
		Modules: moduleObjects(),
		Ring3:   hwRing3{},
		Program: programs.Probe(),
		Console: os.Stdout,
	}
	var err error
	if s.AS, err = mm.New(mode, s.Mem, s.Tables, tlb); err != nil {
		return nil, err
	}
	s.Attach(region.New())
	if err := s.Populate(true); err != nil {
		return nil, err
	}
	phase("image")
	// Live from here: every change to an entry asks the CPU's TLB for an
	// invalidation.
	cpu.LoadCR3(s.AS.Root())
	tlb.TLB = cpu
	if cfg.SMEP {
		cpu.SetCR4(cpu.CR4() | amd64.CR4_SMEP)
	}
	if cfg.SMAP {
		cpu.SetCR4(cpu.CR4() | amd64.CR4_SMAP)
	}
	phase("cr3")
	if err := s.Populate(false); err != nil {
		return nil, err
	}
	phase("regions")
	if got := cpu.CR3(); got != s.AS.Root() {
		return nil, fmt.Errorf("CR3 holds %v after loading %v", got, s.AS.Root())
	}
	return s, nil
}

// enableCPU turns on what the layout relies on, as Linux does: NX bits
// honoured (EFER.NXE), read-only pages enforced on the kernel too (CR0.WP)
// and global pages (CR4.PGE).
// CR4.PGE only where CPUID has it: setting it elsewhere would #GP, and
// cpu.state then reports it off.
func enableCPU(f amd64.Features) {
	amd64.Wrmsr(amd64.MSR_EFER, amd64.Rdmsr(amd64.MSR_EFER)|amd64.EFER_NXE)
	amd64.WriteCR0(amd64.ReadCR0() | amd64.CR0_WP)
	if f.PGE {
		amd64.WriteCR4(amd64.ReadCR4() | amd64.CR4_PGE)
	}
}
