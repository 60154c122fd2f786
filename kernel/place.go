//go:build tamago

package main

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	mrand "math/rand/v2"

	"github.com/physmap/physmap/kernel/option"
	"github.com/physmap/physmap/kernel/region"
	"github.com/physmap/physmap/mm"
)

// Kernel image KASLR (Linux arch/x86/boot/compressed/kaslr.c): with
// CONFIG_RANDOMIZE_BASE the kernel text mapping is 1 GiB, the image sits in
// a random 2 MiB-aligned slot of it above LOAD_PHYSICAL_ADDR, and modules
// start a random 1 to 1024 pages into the module area
// (arch/x86/kernel/module.c: get_module_load_offset). physmap's physical
// placement is fixed: TamaGo runs the image where QEMU loaded it.
const (
	kaslrImageSize  = uint64(mm.GB)
	kaslrImageAlign = uint64(mm.Size2M)
	kaslrImageMin   = 16 << 20 // LOAD_PHYSICAL_ADDR
	kaslrModPages   = 1024
)

// place decides where the builder puts what Linux can randomize: the
// documented places, or KASLR's: the seed announced on out, the draws on
// log.
func place(out, log io.Writer, mode mm.Mode, maxPhys mm.PhysAddr, img region.Image, opt option.KASLR, cfg option.Config) region.Placement {
	def := mm.DefaultLayout(mode)
	kt, _ := def.Region(mm.KindKernelText)
	p := region.Placement{ImagePA: img.All().Start.AlignDown(kaslrImageAlign)}
	p.ImageVA = kt.Start.Add(uint64(p.ImagePA))
	// KERNEL_IMAGE_SIZE: 1 GiB in Debian's configuration, KASLR or not;
	// mm.rst's 512 MiB with physmap.config=mmrst.
	p.Layout.KernelImageSize = cfg.KernelImageSize()
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
	fmt.Fprintf(out, "kaslr: seed %#x from %s (boot with physmap.kaslr=%#x to repeat this layout)\n", seed, src, seed)

	p.Seed = seed
	p.KASLR = mm.RandomizeMemory(mode, maxPhys, rng.Uint64)
	p.Layout = p.KASLR.LayoutOptions()
	p.Layout.KernelImageSize = cfg.KernelImageSize()
	for _, reg := range p.KASLR.Regions {
		fmt.Fprintf(log, "kaslr: %-16s %v, %d TB, %d bits of entropy (%d possible bases)\n", reg.Symbol, reg.Base, reg.Size/uint64(mm.TB), reg.EntropyBits(), reg.Choices)
	}

	span := uint64(img.All().End.AlignUp(kaslrImageAlign) - p.ImagePA)
	slots := (kaslrImageSize-kaslrImageMin-span)/kaslrImageAlign + 1
	p.ImageVA = kt.Start.Add(kaslrImageMin + rng.Uint64N(slots)*kaslrImageAlign)
	fmt.Fprintf(log, "kaslr: kernel image  %v (physical placement fixed at %v), %d bits of entropy (%d slots)\n", p.ImageVA, p.ImagePA, bits.Len64(slots)-1, slots)
	p.ModuleOffset = (rng.Uint64N(kaslrModPages) + 1) * uint64(mm.Size4K)
	fmt.Fprintf(log, "kaslr: module base   MODULES_VADDR+%#x, %d bits of entropy (%d offsets)\n", p.ModuleOffset, bits.Len64(kaslrModPages)-1, kaslrModPages)
	return p
}
