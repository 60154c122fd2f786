package mm

import (
	"errors"
	"fmt"
	"math/bits"
)

// Memory KASLR (CONFIG_RANDOMIZE_MEMORY, Linux arch/x86/mm/kaslr.c): the
// direct map, vmalloc and vmemmap are placed, in that order, at random
// 1 GiB-aligned bases between page_offset_base's documented base and the
// cpu_entry_area.

// KASLR constants from Linux.
const (
	// structPageSize is sizeof(struct page) on x86-64.
	structPageSize = 64
	// kaslrAlign is PUD_SIZE, the randomization granule.
	kaslrAlign = uint64(GB)
	// kaslrEnd is CPU_ENTRY_AREA_BASE, the end of the window.
	kaslrEnd VirtAddr = 0xfffffe0000000000
)

// KASLRRegion is one randomized region.
type KASLRRegion struct {
	Kind   RegionKind
	Symbol string // Linux's variable: page_offset_base, vmalloc_base, vmemmap_base
	Base   VirtAddr
	Size   uint64 // whole TB
	// Choices is how many bases the draw could have given this region,
	// given the earlier draws: its entropy is log2(Choices) bits.
	Choices uint64
}

// EntropyBits is log2(Choices), rounded down.
func (r KASLRRegion) EntropyBits() int { return bits.Len64(r.Choices) - 1 }

// MemoryKASLR is the outcome of one randomization.
type MemoryKASLR struct {
	Mode       Mode
	Start, End VirtAddr // the window
	MaxPhys    PhysAddr // highest RAM address + 1 that sized the direct map
	Regions    [3]KASLRRegion
}

// RandomizeMemory places the three regions as kernel_randomize_memory does,
// drawing from rand, for RAM ending at maxPhys.
//
// Precondition: mode is valid.
func RandomizeMemory(mode Mode, maxPhys PhysAddr, rand func() uint64) *MemoryKASLR {
	mode.mustValid()
	def := DefaultLayout(mode)
	k := &MemoryKASLR{Mode: mode, Start: def.PageOffset(), End: kaslrEnd, MaxPhys: maxPhys}

	// The direct map at its full size, 1 << (MAX_PHYSMEM_BITS - TB_SHIFT)
	// TB (46 bits, 52 with LA57), as Debian's 6.1 measurably keeps it.
	// Upstream 6.1's kernel_randomize_memory trims it to the RAM plus
	// CONFIG_RANDOMIZE_MEMORY_PHYSICAL_PADDING (10 TB in Debian's
	// config); but the bases Debian's 6.1.172 draws under QEMU with 2 GiB
	// of RAM (TestMeasuredBases) fit its arithmetic in 4-level mode only
	// with a region of 60 to 64 TB, not 11. Which change in Debian's tree
	// does this was not identified; physmap follows the measurement.
	directTB := uint64(1) << (46 - 40)
	vmallocTB := uint64(32)
	if mode == Mode5Level {
		directTB, vmallocTB = 1<<(52-40), 12800
	}
	// vmemmap: one struct page per 4 KiB of the direct map, in whole TB.
	vmemmapTB := (directTB*uint64(TB)/frameSize*structPageSize + uint64(TB) - 1) / uint64(TB)
	k.Regions = [3]KASLRRegion{
		{Kind: KindDirectMap, Symbol: "page_offset_base", Size: directTB * uint64(TB)},
		{Kind: KindVmalloc, Symbol: "vmalloc_base", Size: vmallocTB * uint64(TB)},
		{Kind: KindVmemmap, Symbol: "vmemmap_base", Size: vmemmapTB * uint64(TB)},
	}

	// Linux subtracts only the sizes, then steps at least 1 GiB past each
	// region: when the last draw is near its maximum, the last region
	// ends up to 2 GiB past vaddr_end, in the cpu_entry_area. physmap
	// reserves those gaps first, so every draw stays in the window.
	remain := uint64(k.End-k.Start) - uint64(len(k.Regions)-1)*kaslrAlign
	for _, r := range k.Regions {
		remain -= r.Size
	}
	vaddr := k.Start
	for i := range k.Regions {
		r := &k.Regions[i]
		span := remain / uint64(len(k.Regions)-i)
		r.Choices = span/kaslrAlign + 1
		entropy := (rand() % (span + 1)) &^ (kaslrAlign - 1)
		vaddr = vaddr.Add(entropy)
		r.Base = vaddr
		vaddr = vaddr.Add(r.Size).Add(1).AlignUp(kaslrAlign)
		remain -= entropy
	}
	return k
}

// Drawable reports whether RandomizeMemory could have drawn bases (the
// direct map's, vmalloc's, vmemmap's) for RAM ending at maxPhys: each 1 GiB
// aligned, and each no further past the end of the region before it (or
// the window's start) than that region's share of the entropy left.
func Drawable(mode Mode, maxPhys PhysAddr, bases [3]VirtAddr) error {
	k := RandomizeMemory(mode, maxPhys, func() uint64 { return 0 })
	remain := uint64(k.End-k.Start) - uint64(len(k.Regions)-1)*kaslrAlign
	for _, r := range k.Regions {
		remain -= r.Size
	}
	vaddr := k.Start
	for i, b := range bases {
		r := k.Regions[i]
		span := remain / uint64(len(k.Regions)-i)
		if b < vaddr || !b.IsAligned(kaslrAlign) || uint64(b-vaddr) > span {
			return fmt.Errorf("%w: %v %v is not a base the draw gives: it must be 1 GiB aligned in [%v, %v]", ErrKASLR, r.Symbol, b, vaddr, vaddr.Add(span))
		}
		remain -= uint64(b - vaddr)
		vaddr = b.Add(r.Size).Add(1).AlignUp(kaslrAlign)
	}
	return nil
}

// LayoutOptions returns the layout with the randomized regions; KASAN is
// left out, as Linux disables memory KASLR under KASAN.
func (k *MemoryKASLR) LayoutOptions() LayoutOptions {
	return LayoutOptions{
		PageOffset: k.Regions[0].Base, DirectMapSize: k.Regions[0].Size,
		VmallocBase: k.Regions[1].Base, VmallocSize: k.Regions[1].Size,
		VmemmapBase: k.Regions[2].Base, VmemmapSize: k.Regions[2].Size,
		NoKASAN: true,
	}
}

// Errors of Check.
var ErrKASLR = errors.New("memory KASLR invariant broken")

// Check verifies the invariants Linux's randomization guarantees: the
// regions in order, 1 GiB aligned, at least 1 GiB apart, inside the window,
// and the direct map large enough for all RAM.
func (k *MemoryKASLR) Check() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrKASLR}, args...)...))
	}
	for i, r := range k.Regions {
		end := r.Base.Add(r.Size)
		if !r.Base.IsAligned(kaslrAlign) {
			bad("%v base %v is not 1 GiB aligned", r.Symbol, r.Base)
		}
		if r.Base < k.Start || end > k.End || end < r.Base {
			bad("%v [%v, %v) leaves the window [%v, %v)", r.Symbol, r.Base, end, k.Start, k.End)
		}
		if i > 0 {
			prev := k.Regions[i-1]
			if gap := r.Base - prev.Base.Add(prev.Size); r.Base < prev.Base.Add(prev.Size) || uint64(gap) < kaslrAlign {
				bad("%v at %v is not at least 1 GiB after %v, which ends at %v", r.Symbol, r.Base, prev.Symbol, prev.Base.Add(prev.Size))
			}
		}
	}
	if k.Regions[0].Size < uint64(k.MaxPhys) {
		bad("the direct map (%d TB) is smaller than RAM (up to %v)", k.Regions[0].Size/uint64(TB), k.MaxPhys)
	}
	return errors.Join(errs...)
}
