//go:build tamago

package main

import (
	"fmt"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/boot"
	"github.com/physmap/physmap/kernel/option"
	"github.com/physmap/physmap/mm"
)

// oldPageOffset is page_offset_base before Linux 4.20 moved it for the LDT
// remap: the old-base injection builds the direct map there.
const oldPageOffset mm.VirtAddr = 0xffff_8800_0000_0000

// enableCPU turns on what the layout relies on: NX bits honoured
// (EFER.NXE), read-only pages enforced on the kernel too (CR0.WP) and
// global pages (CR4.PGE); then reports the state read back.
func enableCPU(r *report) {
	amd64.Wrmsr(amd64.MSR_EFER, amd64.Rdmsr(amd64.MSR_EFER)|amd64.EFER_NXE)
	amd64.WriteCR0(amd64.ReadCR0() | amd64.CR0_WP)
	amd64.WriteCR4(amd64.ReadCR4() | amd64.CR4_PGE)
	efer, cr0, cr4 := amd64.Rdmsr(amd64.MSR_EFER), amd64.ReadCR0(), amd64.ReadCR4()
	r.check("cpu.state", efer&amd64.EFER_NXE != 0 && cr0&amd64.CR0_WP != 0 && cr4&amd64.CR4_PGE != 0,
		"EFER.NXE=%d CR0.WP=%d CR4.PGE=%d", bit(efer&amd64.EFER_NXE), bit(cr0&amd64.CR0_WP), bit(cr4&amd64.CR4_PGE))
}

// injections corrupt the live tables before the proofs run, each to show
// that a named check catches it.
var injections = map[string]string{
	"kernel-frame-off": "walk.image",     // one kernel-image entry points one frame off
	"directmap-hole":   "walk.directmap", // 2 MiB of RAM missing from the direct map
	"directmap-exec":   "walk.perms",     // the direct map without NX
	"text-writable":    "walk.perms",     // kernel text writable through __START_KERNEL_map
	"no-invlpg":        "tlb",            // a changed entry without TLB invalidation
	"module-pt-frame":  "walk.module",    // a module page backed by a page-table frame
	"kaslr-misaligned": "kaslr.memory",   // vmalloc_base off the 1 GiB grid (with physmap.kaslr)
	"old-base":         "walk.directmap", // the direct map at the pre-4.20 base

	// The other regions (regions*.go).
	"vmemmap-off-by-one":     "region.vmemmap",          // one vmemmap page backed by the frame after its own
	"cpu-entry-gdt-writable": "region.cpu_entry_area",   // the cpu_entry_area's GDT alias writable
	"vsyscall-no-user":       "region.vsyscall",         // the vsyscall page without U/S
	"poke-no-flush":          "region.fixmap.text_poke", // text_poke's fixmap slot cleared without INVLPG
}

// inject applies a named corruption to the live tables.
func (k *kspace) inject(name string) error {
	switch name {
	case "kernel-frame-off":
		va := k.kernelVA(k.img.data.Start)
		t, err := k.as.Translate(va)
		if err != nil {
			return err
		}
		if t.Level != mm.PTE {
			return fmt.Errorf("%v is mapped by a %v leaf, not a pte", va, t.Size)
		}
		step := t.Path()[t.NSteps-1]
		k.mem.Write64(step.Table.Add(uint64(step.Index)*8), uint64(step.Entry)+page)
		amd64.Invlpg(uint64(va))
		return nil
	case "directmap-hole":
		last := k.ram[len(k.ram)-1]
		size := uint64(mm.Size2M)
		pa := mm.PhysAddr(uint64(last.End.AlignDown(size)) - size)
		return k.as.Unmap(k.directVA(pa), uint64(mm.Size2M))
	case "directmap-exec":
		dm, _ := k.layout.Region(mm.KindDirectMap)
		for _, r := range k.directMapRAM() {
			if err := k.as.Protect(dm.Start.Add(uint64(r.Start)), r.Len(), mm.AttrWrite|mm.AttrGlobal); err != nil {
				return err
			}
		}
		return nil
	case "module-pt-frame":
		if err := k.as.Unmap(k.mod.data, page); err != nil {
			return err
		}
		return k.as.Map(k.mod.data, k.as.Root(), page, mm.PageKernel, mm.Only(mm.Size4K))
	case "text-writable":
		return k.as.Protect(k.kernelVA(k.img.text.Start), k.img.text.Len(), mm.AttrWrite|mm.AttrGlobal)
	case "vmemmap-off-by-one", "cpu-entry-gdt-writable", "vsyscall-no-user", "poke-no-flush":
		return k.injectRegion(name)
	}
	return nil // no-invlpg and old-base act elsewhere
}

// proveLayout builds the Linux layout, switches CR3 to it and proves it.
func proveLayout(r *report, memmap boot.MemoryMap, opts option.Options, physBits uint) {
	inject := opts.Inject
	if _, ok := injections[inject]; inject != "" && !ok {
		r.fail("inject", "unknown injection %q; known: %s", inject, injectionNames())
		return
	}
	f := amd64.ReadFeatures(amd64.Cpuid)
	if !f.NX {
		// An NX bit with EFER.NXE unavailable is a reserved bit: the first
		// walk through such a table would fault.
		r.fail("layout.build", "not built: the CPU has no NX, so Linux's NX permissions cannot be expressed")
		return
	}
	memmap = clampToPhysBits(r, memmap, physBits)
	if err := amd64.InstallFaultHandler(); err != nil {
		r.fail("fault.handler", "%v", err)
		return
	}
	enableCPU(r)
	mode := mm.Mode4Level
	if amd64.ReadCR4()&amd64.CR4_LA57 != 0 {
		mode = mm.Mode5Level
	}
	base := mm.VirtAddr(0)
	if inject == "old-base" {
		base = oldPageOffset
	}
	p := place(r, mode, memmap, readImage(), opts.KASLR)
	if inject == "kaslr-misaligned" {
		if p.kaslr == nil {
			r.fail("inject", "kaslr-misaligned needs physmap.kaslr=on or a seed")
			return
		}
		// vmalloc_base 4 KiB off its 1 GiB grid.
		p.kaslr.Regions[1].Base = p.kaslr.Regions[1].Base.Add(page)
		p.layout.VmallocBase = p.kaslr.Regions[1].Base
	}
	k, err := buildKernelSpace(memmap, mode, f.Page1GB, p, base)
	if err != nil {
		r.fail("layout.build", "%v", err)
		return
	}
	phase("image")
	fmt.Print(k.plan.Meminfo())
	k.activate()
	phase("cr3")
	if err := k.loadModule(); err != nil {
		r.fail("layout.build", "module: %v", err)
		return
	}
	phase("module")
	if err := k.populateRegions(); err != nil {
		r.fail("layout.build", "regions: %v", err)
		return
	}
	phase("regions")
	r.pass("layout.build", "%v tables at %v live in CR3: %d table pages (the direct map alone needs at least %d)",
		mode, k.as.Root(), k.as.TablePages(), k.plan.MinTablePages)
	built, builtPhysBits = k, physBits // for the shell
	if inject != "" {
		if err := k.inject(inject); err != nil {
			r.fail("inject", "%s: %v", inject, err)
			return
		}
		fmt.Printf("physmap: injected %s\n", inject)
	}
	live := k.live()
	k.prove(r, live, physBits, inject == "no-invlpg")
	phase("proofs")
	k.printFootprint()
	k.show(r, live, opts.Ptdump)
}

// prove runs every proof on the live tables: at boot, and again from the
// shell's selftest command.
func (k *kspace) prove(r *report, live *mm.AddressSpace, physBits uint, skipInvlpg bool) {
	k.proveWalk(r, live)
	k.proveDirectMap(r, live)
	k.provePerms(r, live)
	k.proveContent(r)
	k.proveWriteThrough(r)
	k.proveExec(r)
	k.proveKASLR(r, k.place)
	k.proveModule(r, live)
	k.proveRegions(r, live)
	k.proveFaults(r)
	k.proveTLB(r, skipInvlpg)
	k.proveStructure(r, live, physBits)
}

func injectionNames() string {
	names := ""
	for _, n := range []string{"kernel-frame-off", "directmap-hole", "directmap-exec", "text-writable", "no-invlpg", "module-pt-frame", "old-base", "kaslr-misaligned",
		"vmemmap-off-by-one", "cpu-entry-gdt-writable", "vsyscall-no-user", "poke-no-flush"} {
		if names != "" {
			names += ","
		}
		names += n
	}
	return names
}

// clampToPhysBits drops the RAM a CPU with physBits physical address bits
// (MAXPHYADDR, CPUID 0x80000008) cannot address: a page-table entry with a
// higher address has reserved bits set. Linux likewise ignores such
// memory; physmap also fails a check, since the machine is misconfigured.
func clampToPhysBits(r *report, memmap boot.MemoryMap, physBits uint) boot.MemoryMap {
	if physBits == 0 || physBits >= mm.MaxPhysBits {
		return memmap
	}
	limit := mm.PhysAddr(1) << physBits
	var out boot.MemoryMap
	var lost uint64
	for _, e := range memmap {
		if e.Range.End > limit && e.Type == boot.E820_RAM {
			lost += uint64(e.Range.End - max(e.Range.Start, limit))
		}
		if e.Range.Start >= limit {
			continue
		}
		e.Range.End = min(e.Range.End, limit)
		out = append(out, e)
	}
	if lost == 0 {
		r.pass("ram.physbits", "all RAM lies below %v, the limit of this CPU's %d physical address bits", limit, physBits)
		return memmap
	}
	r.fail("ram.physbits", "%d MiB of RAM lie at or above %v, beyond this CPU's %d physical address bits (CPUID 0x80000008): left unmapped", lost>>20, limit, physBits)
	return out
}
