//go:build tamago

package main

import (
	"fmt"
	"runtime/goos"
	"unsafe"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/boot"
	"github.com/physmap/physmap/mm"
)

// isaEnd is the end of the ISA range below 1 MiB, which Linux's direct map
// covers whole whatever the firmware says about it.
const isaEnd mm.PhysAddr = 1 << 20

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

// page is the small page size, as a length.
const page = uint64(mm.Size4K)

// image is the running executable's layout in physical memory.
type image struct {
	text, rodata, data mm.PhysRange // code; read-only data; data and bss
}

func (im image) all() mm.PhysRange { return mm.PhysRange{Start: im.text.Start, End: im.data.End} }

func readImage() image {
	text, etext, rodata, noptrdata, end := amd64.Image()
	return image{
		text:   mm.PhysRange{Start: mm.PhysAddr(text).AlignDown(page), End: mm.PhysAddr(etext).AlignUp(page)},
		rodata: mm.PhysRange{Start: mm.PhysAddr(rodata).AlignDown(page), End: mm.PhysAddr(noptrdata).AlignDown(page)},
		data:   mm.PhysRange{Start: mm.PhysAddr(noptrdata).AlignDown(page), End: mm.PhysAddr(end).AlignUp(page)},
	}
}

// kspace is the kernel address space physmap builds: the Linux layout plus
// the low window the TamaGo runtime runs in.
type kspace struct {
	as     *mm.AddressSpace
	layout *mm.Layout
	mem    *physMem
	tlb    *skippingTLB
	alloc  *mm.Memblock
	plan   *mm.DirectMapPlan
	img    image
	mod    *module
	reg    *regions     // the other regions of the layout (regions.go)
	window mm.PhysRange // the runtime's memory, identity mapped
	pool   mm.PhysRange // where table frames come from, inside window
	// frames hands out the RAM frames the module and the regions are
	// backed by: all RAM but the ISA range and the runtime's window.
	frames *mm.Memblock
	ram    []mm.PhysRange
	// The page_offset_base in force (documented, or KASLR's), which a
	// layout built elsewhere (the old-base injection) does not match.
	wantPageOffset mm.VirtAddr
	place          placement
}

// directMapRAM is what the direct map covers: the ISA range and every RAM
// range, sorted, with ranges that touch or overlap joined.
func (k *kspace) directMapRAM() []mm.PhysRange {
	out := []mm.PhysRange{{Start: 0, End: isaEnd}}
	for _, r := range k.ram { // sorted: boot.MemoryMap.Validate passed
		last := &out[len(out)-1]
		if r.Start <= last.End {
			last.End = max(last.End, r.End)
			continue
		}
		out = append(out, r)
	}
	return out
}

// kernelVA is an image frame's address in the kernel text mapping: where
// __START_KERNEL_map maps physical address 0, or with KASLR the image's
// randomly chosen slot (Linux's __START_KERNEL_map + pa - phys_base).
func (k *kspace) kernelVA(pa mm.PhysAddr) mm.VirtAddr {
	return k.place.imageVA.Add(uint64(pa - k.place.imagePA))
}

// directVA is __va(pa).
func (k *kspace) directVA(pa mm.PhysAddr) mm.VirtAddr { return k.layout.PageOffset().Add(uint64(pa)) }

// buildKernelSpace builds the tables; it does not load them.
// pageOffset, when not 0, overrides the placement's direct-map base in the
// layout built (the old-base injection).
func buildKernelSpace(memmap boot.MemoryMap, mode mm.Mode, page1G bool, p placement, pageOffset mm.VirtAddr) (*kspace, error) {
	opts := p.layout
	want := mm.NewLayout(mode, opts).PageOffset()
	if pageOffset != 0 {
		opts.PageOffset = pageOffset
	}
	k := &kspace{
		layout:         mm.NewLayout(mode, opts),
		place:          p,
		mem:            &physMem{},
		tlb:            &skippingTLB{TLB: mm.NopTLB},
		img:            readImage(),
		window:         mm.PhysRange{Start: mm.PhysAddr(goos.RamStart), End: mm.PhysAddr(goos.RamStart + goos.RamSize)},
		ram:            memmap.RAM(),
		wantPageOffset: want,
	}
	var maxPhys mm.PhysAddr
	for _, r := range k.ram {
		maxPhys = max(maxPhys, r.End)
	}
	size := tablePoolSize(maxPhys)
	pool := make([]byte, size+page)
	start := mm.PhysAddr(uintptr(unsafe.Pointer(&pool[0]))).AlignUp(page)
	tablePool = pool
	k.pool = mm.PhysRange{Start: start, End: start.Add(size)}
	k.alloc = mm.NewMemblock([]mm.PhysRange{k.pool}, nil)
	k.frames = mm.NewMemblock(k.ram, []mm.PhysRange{{Start: 0, End: isaEnd}, k.window})
	var err error
	if k.as, err = mm.New(mode, k.mem, k.alloc, k.tlb); err != nil {
		return nil, err
	}

	// The direct map: RW, NX, global, split as Linux splits it.
	if k.plan, err = mm.PlanDirectMap(mode, k.layout.PageOffset(), k.directMapRAM(), page1G); err != nil {
		return nil, err
	}
	for _, r := range k.directMapRAM() {
		fmt.Printf("init_memory_mapping: [mem 0x%08x-0x%08x]\n", uint64(r.Start), uint64(r.End)-1)
	}
	for _, r := range k.plan.Runs {
		fmt.Printf(" [mem 0x%08x-0x%08x] page %v\n", uint64(r.PA), uint64(r.PA)+r.Len-1, r.Size)
	}
	if err := k.plan.Build(k.as, mm.PageKernel); err != nil {
		return nil, fmt.Errorf("direct map: %w", err)
	}
	phase("directmap")

	// The kernel image at __START_KERNEL_map + pa, with Linux's
	// permissions.
	sizes := mm.Only(mm.Size4K) | mm.Only(mm.Size2M)
	for _, s := range []struct {
		r     mm.PhysRange
		attrs mm.Attr
	}{{k.img.text, mm.PageKernelExec}, {k.img.rodata, mm.PageKernelRO}, {k.img.data, mm.PageKernel}} {
		if err := k.as.Map(k.kernelVA(s.r.Start), s.r.Start, s.r.Len(), s.attrs, sizes); err != nil {
			return nil, fmt.Errorf("kernel image %v: %w", s.r, err)
		}
	}
	// As Linux's cpa_process_alias keeps the aliases of a frame in step,
	// the direct-map aliases of text and rodata are read-only too.
	for _, ro := range []mm.PhysRange{k.img.text, k.img.rodata} {
		if err := k.as.Protect(k.directVA(ro.Start), ro.Len(), mm.PageKernelRO); err != nil {
			return nil, fmt.Errorf("direct-map alias of %v: %w", ro, err)
		}
	}

	// The low window TamaGo's runtime runs in, identity mapped: its code
	// RO+X, its read-only data RO+NX, everything else (data, bss, heap,
	// stacks) RW+NX. Not global: it is physmap's departure from Linux.
	low := []struct {
		r     mm.PhysRange
		attrs mm.Attr
	}{
		{mm.PhysRange{Start: k.window.Start, End: k.img.text.Start}, mm.AttrWrite | mm.AttrNX},
		{k.img.text, 0},
		{k.img.rodata, mm.AttrNX},
		{mm.PhysRange{Start: k.img.data.Start, End: k.window.End}, mm.AttrWrite | mm.AttrNX},
	}
	for _, s := range low {
		if s.r.Empty() {
			continue
		}
		if err := k.as.Map(mm.VirtAddr(s.r.Start), s.r.Start, s.r.Len(), s.attrs, sizes); err != nil {
			return nil, fmt.Errorf("low window %v: %w", s.r, err)
		}
	}
	return k, nil
}

// tablePool keeps the table memory referenced for good.
var tablePool []byte

// activate loads the tables into CR3. From here on every change to an entry
// asks the CPU's TLB for an invalidation.
func (k *kspace) activate() {
	amd64.WriteCR3(uint64(k.as.Root()))
	k.tlb.TLB = cpuTLB{}
}
