//go:build tamago

package main

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math/bits"
	mrand "math/rand/v2"

	"github.com/physmap/physmap/boot"
	"github.com/physmap/physmap/kernel/option"
	"github.com/physmap/physmap/mm"
)

// Kernel image KASLR (Linux arch/x86/boot/compressed/kaslr.c): with
// CONFIG_RANDOMIZE_BASE the kernel text mapping is 1 GiB, the image sits in
// a random 2 MiB-aligned slot of it above LOAD_PHYSICAL_ADDR, and modules
// start a random 1 to 1024 pages into the module area
// (arch/x86/kernel/module.c).
const (
	kaslrImageSize  = uint64(mm.GB)
	kaslrImageAlign = uint64(mm.Size2M)
	kaslrImageMin   = 16 << 20 // LOAD_PHYSICAL_ADDR
	kaslrModPages   = 1024
)

// placement is where the regions Linux can randomize go.
type placement struct {
	layout mm.LayoutOptions
	// imagePA is the image's 2 MiB-aligned physical base and imageVA
	// where the kernel text mapping maps it.
	imagePA mm.PhysAddr
	imageVA mm.VirtAddr
	// moduleOffset is where the module loads in the module area.
	moduleOffset uint64
	kaslr        *mm.MemoryKASLR // nil without KASLR
}

// place decides the placement: the documented one, or KASLR's.
func place(r *report, mode mm.Mode, memmap boot.MemoryMap, img image, opt option.KASLR) placement {
	def := mm.DefaultLayout(mode)
	kt, _ := def.Region(mm.KindKernelText)
	p := placement{imagePA: img.all().Start.AlignDown(kaslrImageAlign)}
	p.imageVA = kt.Start.Add(uint64(p.imagePA))
	if !opt.On {
		return p
	}
	seed, src := opt.Seed, "physmap.kaslr"
	if !opt.Seeded {
		var b [8]byte
		rand.Read(b[:]) // TamaGo's RNG: RDRAND
		seed, src = binary.LittleEndian.Uint64(b[:]), "RDRAND"
	}
	rng := mrand.New(mrand.NewPCG(seed, seed^0x7068_7973_6d61_7021))
	fmt.Printf("kaslr: seed %#x from %s (boot with physmap.kaslr=%#x to repeat this layout)\n", seed, src, seed)

	var maxPhys mm.PhysAddr
	for _, ram := range memmap.RAM() {
		maxPhys = max(maxPhys, ram.End)
	}
	p.kaslr = mm.RandomizeMemory(mode, maxPhys, rng.Uint64)
	p.layout = p.kaslr.LayoutOptions()
	p.layout.KernelImageSize = kaslrImageSize
	for _, reg := range p.kaslr.Regions {
		fmt.Printf("kaslr: %-16s %v, %d TB, %d bits of entropy (%d possible bases)\n", reg.Symbol, reg.Base, reg.Size/uint64(mm.TB), reg.EntropyBits(), reg.Choices)
	}

	span := uint64(img.all().End.AlignUp(kaslrImageAlign) - p.imagePA)
	slots := (kaslrImageSize-kaslrImageMin-span)/kaslrImageAlign + 1
	p.imageVA = kt.Start.Add(kaslrImageMin + rng.Uint64N(slots)*kaslrImageAlign)
	fmt.Printf("kaslr: kernel image  %v (phys %v), %d bits of entropy (%d slots)\n", p.imageVA, p.imagePA, bits.Len64(slots)-1, slots)
	p.moduleOffset = (rng.Uint64N(kaslrModPages) + 1) * page
	fmt.Printf("kaslr: module base   MODULES_VADDR+%#x, %d bits of entropy (%d offsets)\n", p.moduleOffset, bits.Len64(kaslrModPages)-1, kaslrModPages)
	return p
}

// proveKASLR checks Linux's invariants on the placement in force.
func (k *kspace) proveKASLR(r *report, p placement) {
	if p.kaslr == nil {
		return
	}
	if err := p.kaslr.Check(); err != nil {
		r.fail("kaslr.memory", "%v", err)
	} else {
		b := p.kaslr.Regions
		r.pass("kaslr.memory", "page_offset_base %v < vmalloc_base %v < vmemmap_base %v: 1 GiB aligned, at least 1 GiB apart, inside [%v, %v), direct map %d TB for RAM to %v",
			b[0].Base, b[1].Base, b[2].Base, p.kaslr.Start, p.kaslr.End, b[0].Size/uint64(mm.TB), p.kaslr.MaxPhys)
	}
	kt, _ := k.layout.Region(mm.KindKernelText)
	imgEnd := k.kernelVA(k.img.all().End)
	mod, _ := k.layout.Region(mm.KindModules)
	switch {
	case kt.Size != kaslrImageSize || mod.Start != kt.Start.Add(kt.Size):
		r.fail("kaslr.image", "kernel text mapping %v+%#x and modules at %v: want 1 GiB with the modules right after", kt.Start, kt.Size, mod.Start)
	case !p.imageVA.IsAligned(kaslrImageAlign) || p.imageVA < kt.Start.Add(kaslrImageMin) || imgEnd > kt.Start.Add(kt.Size):
		r.fail("kaslr.image", "image slot %v..%v is not a 2 MiB-aligned slot of [%v, %v)", p.imageVA, imgEnd, kt.Start.Add(kaslrImageMin), kt.Start.Add(kt.Size))
	case p.moduleOffset < page || p.moduleOffset > kaslrModPages*page || k.mod.text != mod.Start.Add(p.moduleOffset):
		r.fail("kaslr.image", "module at %v, want MODULES_VADDR %v plus 1 to %d pages", k.mod.text, mod.Start, kaslrModPages)
	default:
		r.pass("kaslr.image", "image at %v in a 2 MiB slot of the 1 GiB kernel text mapping, modules from %v, this module at MODULES_VADDR+%#x", p.imageVA, mod.Start, p.moduleOffset)
	}
}
