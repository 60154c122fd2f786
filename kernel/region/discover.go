package region

import (
	"encoding/binary"
	"fmt"

	"github.com/physmap/physmap/mm"
)

// Bases are Linux's randomizable bases as found in the live tables, each
// with the error that kept it from being found. Proofs use them instead of
// the builder's placement, and the KASLR and direct-map proofs hold them to
// Linux's rules.
type Bases struct {
	// PageOffset is page_offset_base: the first kernel-half leaf that maps
	// physical address 0.
	PageOffset    mm.VirtAddr
	PageOffsetErr error
	// Text is _text's address in the kernel text mapping: the one leaf
	// there that maps the image's first frame.
	Text    mm.VirtAddr
	TextErr error
	// Vmalloc is vmalloc_base: the lowest leaf above the direct map (and
	// below vmemmap) in memory KASLR's window; physmap's first vmalloc
	// area starts there, as Linux's first vmap area starts at
	// VMALLOC_START.
	Vmalloc    mm.VirtAddr
	VmallocErr error
	// Vmemmap is vmemmap_base: pfn_to_page(0), found as the first leaf
	// above the direct map whose descriptors hold consecutive pfns.
	Vmemmap    mm.VirtAddr
	VmemmapErr error
	// Module is the module area's first mapped page.
	Module    mm.VirtAddr
	ModuleErr error
}

// errNotFound is wrapped by the discovery errors.
var errNotFound = fmt.Errorf("not found in the live tables")

// Discover finds the bases in the live tables, using only the reference
// (the documented layout to know where to look, RAM to know how far the
// direct map reaches) and reads through the CPU.
func Discover(live *mm.AddressSpace, c CPU, ref Reference) Bases {
	var b Bases
	mode := live.Mode()
	half := mm.VirtRange{Start: mm.VirtAddr(^uint64(0) << (mode.VABits() - 1)), End: mm.VirtAddr(^uint64(0) &^ (page - 1))}

	b.PageOffsetErr = fmt.Errorf("page_offset_base: no kernel-half leaf maps physical address 0: %w", errNotFound)
	for lf := range live.Leaves(half) {
		if lf.PA == 0 {
			b.PageOffset, b.PageOffsetErr = lf.VA, nil
			break
		}
	}

	kt, _ := ref.Spec.Region(mm.KindKernelText)
	text := ref.Image.Text.Start
	b.TextErr = fmt.Errorf("_text: no leaf of the kernel text mapping %v-%v maps the image's first frame %v: %w", kt.Start, kt.Last(), text, errNotFound)
	found := 0
	for lf := range live.Leaves(mm.VirtRange{Start: kt.Start, End: kt.Start.Add(kt.Size)}) {
		if lf.PA <= text && text < lf.PA.Add(uint64(lf.Size)) {
			va := lf.VA.Add(uint64(text - lf.PA))
			found++
			if found == 1 {
				b.Text, b.TextErr = va, nil
			} else {
				b.TextErr = fmt.Errorf("_text: the image's first frame %v is mapped at %v and at %v in the kernel text mapping", text, b.Text, va)
			}
		}
	}

	mod, _ := ref.Spec.Region(mm.KindModules)
	b.ModuleErr = fmt.Errorf("the module area %v-%v holds no leaf: %w", mod.Start, mod.Last(), errNotFound)
	for lf := range live.Leaves(mm.VirtRange{Start: mod.Start, End: mod.Start.Add(mod.Size)}) {
		b.Module, b.ModuleErr = lf.VA, nil
		break
	}

	// vmalloc and vmemmap: above the direct map, below the end of memory
	// KASLR's window (CPU_ENTRY_AREA_BASE).
	cea, _ := ref.Spec.Region(mm.KindCPUEntryArea)
	lo := ref.Spec.PageOffset()
	if b.PageOffsetErr == nil {
		lo = b.PageOffset.Add(uint64(maxRAM(ref.RAM)))
	}
	b.VmemmapErr = fmt.Errorf("vmemmap_base: no leaf in %v-%v holds page descriptors: %w", lo, cea.Start, errNotFound)
	b.VmallocErr = fmt.Errorf("vmalloc_base: no leaf in %v-%v below vmemmap: %w", lo, cea.Start, errNotFound)
	var first []mm.Leaf
	for lf := range live.Leaves(mm.VirtRange{Start: lo, End: cea.Start}) {
		if lf.VA < lo {
			continue // a huge leaf of the direct map straddling lo
		}
		if len(first) < 16 {
			first = append(first, lf)
		}
		var d [structPageSize + 8]byte
		if _, f := c.Read(lf.VA, d[:]); f.Faulted {
			continue
		}
		pfn, next := binary.LittleEndian.Uint64(d[0:]), binary.LittleEndian.Uint64(d[structPageSize:])
		if next == pfn+1 && uint64(lf.VA) >= pfn*structPageSize {
			b.Vmemmap, b.VmemmapErr = lf.VA.Sub(pfn*structPageSize), nil
			break
		}
	}
	for _, lf := range first {
		if b.VmemmapErr == nil && lf.VA >= b.Vmemmap {
			break
		}
		b.Vmalloc, b.VmallocErr = lf.VA, nil
		break
	}
	return b
}

// maxRAM is the end of the highest RAM range (the ISA range counts).
func maxRAM(ram []mm.PhysRange) mm.PhysAddr {
	end := isaEnd
	for _, r := range ram {
		end = max(end, r.End)
	}
	return end
}
