package region

import (
	"fmt"

	"github.com/physmap/physmap/mm"
)

// KASLR holds the randomized bases to Linux's rules. The random draw itself
// happens before anything is built (the kernel's placement); this entry
// only proves, from the bases found in the live tables, what memory KASLR
// (arch/x86/mm/kaslr.c: kernel_randomize_memory) and image KASLR (arch/x86/
// boot/compressed/kaslr.c: choose_random_location; arch/x86/kernel/
// module.c: get_module_load_offset) promise.
type KASLR struct{}

func (KASLR) Populate(*Space) error { return nil }

func (KASLR) Inject(_ *Space, name string) error {
	return fmt.Errorf("kaslr: no injection %q", name)
}

// The rules' constants, as Linux 6.1 has them with Debian's configuration.
const (
	kaslrAlign = uint64(mm.GB) // PUD_SIZE, the randomization granule
	// Image KASLR: the kernel text mapping is KERNEL_IMAGE_SIZE = 1 GiB
	// with CONFIG_RANDOMIZE_BASE; the image sits 2 MiB aligned
	// (CONFIG_PHYSICAL_ALIGN) at or above LOAD_PHYSICAL_ADDR.
	kaslrImageSize  = uint64(mm.GB)
	kaslrImageAlign = uint64(mm.Size2M)
	kaslrImageMin   = 16 << 20
	// get_module_load_offset: 1 to 1024 pages into the module area.
	kaslrModPages = 1024
)

// kaslrSizes are the three regions' sizes as Debian's 6.1 randomizes them:
// the direct map at its full 1 << (MAX_PHYSMEM_BITS - 40) TB (its measured
// bases fit no smaller region; upstream 6.1's kernel_randomize_memory
// would trim it to the RAM plus CONFIG_RANDOMIZE_MEMORY_PHYSICAL_PADDING:
// mm.TestMeasuredBases); vmalloc VMALLOC_SIZE_TB; vmemmap one struct page
// per frame of the direct map, in whole TB.
func kaslrSizes(mode mm.Mode) (direct, vmalloc, vmemmap uint64) {
	tb := uint64(mm.TB)
	directTB, vmallocTB := uint64(1)<<(46-40), uint64(32)
	if mode == mm.Mode5Level {
		directTB, vmallocTB = 1<<(52-40), 12800
	}
	vmemmapTB := (directTB*tb/page*structPageSize + tb - 1) / tb
	return directTB * tb, vmallocTB * tb, vmemmapTB * tb
}

// Prove checks kaslr.memory and kaslr.image, with KASLR on only.
func (KASLR) Prove(p *Proof) {
	if !p.Ref.KASLR {
		return
	}
	p.proveKASLRMemory()
	p.proveKASLRImage()
}

func (p *Proof) proveKASLRMemory() {
	const name = "kaslr.memory"
	b := p.Bases
	for _, err := range []error{b.PageOffsetErr, b.VmallocErr, b.VmemmapErr} {
		if err != nil {
			fail(p.R, name, "%v", err)
			return
		}
	}
	direct, vmalloc, vmemmap := kaslrSizes(p.Ref.Mode)
	start := p.spec(mm.KindDirectMap).Start
	end := p.spec(mm.KindCPUEntryArea).Start // vaddr_end
	regs := []struct {
		sym  string
		base mm.VirtAddr
		size uint64
		def  mm.VirtAddr
	}{
		{"page_offset_base", b.PageOffset, direct, start},
		{"vmalloc_base", b.Vmalloc, vmalloc, p.spec(mm.KindVmalloc).Start},
		{"vmemmap_base", b.Vmemmap, vmemmap, p.spec(mm.KindVmemmap).Start},
	}
	moved := false
	for i, r := range regs {
		switch {
		case !r.base.IsAligned(kaslrAlign):
			fail(p.R, name, "%s %v is not 1 GiB aligned", r.sym, r.base)
			return
		case r.base < start || r.base.Add(r.size) > end || r.base.Add(r.size) < r.base:
			fail(p.R, name, "%s [%v, %v) leaves kaslr.c's window [%v, %v)", r.sym, r.base, r.base.Add(r.size), start, end)
			return
		case i > 0 && r.base < regs[i-1].base.Add(regs[i-1].size+kaslrAlign):
			fail(p.R, name, "%s %v is not at least 1 GiB past %s's %d TB region, which ends at %v",
				r.sym, r.base, regs[i-1].sym, regs[i-1].size/uint64(mm.TB), regs[i-1].base.Add(regs[i-1].size))
			return
		}
		moved = moved || r.base != r.def
	}
	if !moved {
		fail(p.R, name, "page_offset_base, vmalloc_base and vmemmap_base are all at their documented bases: the randomization did not reach the tables")
		return
	}
	pass(p.R, name, "page_offset_base %v < vmalloc_base %v < vmemmap_base %v, found in the live tables: 1 GiB aligned, each at least 1 GiB past the last region's end (%d, %d, %d TB), inside [%v, %v)",
		b.PageOffset, b.Vmalloc, b.Vmemmap, direct/uint64(mm.TB), vmalloc/uint64(mm.TB), vmemmap/uint64(mm.TB), start, end)
}

func (p *Proof) proveKASLRImage() {
	const name = "kaslr.image"
	b := p.Bases
	for _, err := range []error{b.TextErr, b.ModuleErr} {
		if err != nil {
			fail(p.R, name, "%v", err)
			return
		}
	}
	kt := p.spec(mm.KindKernelText)
	mods := p.spec(mm.KindModules)
	im := p.Ref.Image
	physBase := im.Text.Start.AlignDown(kaslrImageAlign)
	slot := b.Text.Sub(uint64(im.Text.Start - physBase)) // where the 2 MiB-aligned image start lies
	imgEnd := b.Text.Add(uint64(im.Data.End - im.Text.Start))
	switch {
	case kt.Size != kaslrImageSize || mods.Start != kt.Start.Add(kt.Size):
		fail(p.R, name, "the documented kernel text mapping is %v+%#x with modules at %v: want 1 GiB with the modules right after", kt.Start, kt.Size, mods.Start)
	case !slot.IsAligned(kaslrImageAlign) || slot < kt.Start.Add(kaslrImageMin) || imgEnd > kt.Start.Add(kt.Size):
		fail(p.R, name, "the image at %v-%v (_text %v) is not in a 2 MB-aligned slot of [%v, %v)", slot, imgEnd, b.Text, kt.Start.Add(kaslrImageMin), kt.Start.Add(kt.Size))
	case b.Module < mods.Start.Add(page) || b.Module > mods.Start.Add(kaslrModPages*page):
		fail(p.R, name, "the module is at %v, MODULES_VADDR+%#x: want 1 to %d pages past MODULES_VADDR %v", b.Module, uint64(b.Module-mods.Start), kaslrModPages, mods.Start)
	default:
		pass(p.R, name, "_text at %v, its image in the 2 MB slot %v of the 1 GB kernel text mapping; the module at MODULES_VADDR+%#x (%v)",
			b.Text, slot, uint64(b.Module-mods.Start), b.Module)
	}
}
