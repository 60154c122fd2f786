//go:build tamago

package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/arch/x86/x86asm"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/boot"
	"github.com/physmap/physmap/kernel/dump"
	"github.com/physmap/physmap/kernel/modload"
	"github.com/physmap/physmap/kernel/option"
	"github.com/physmap/physmap/kernel/region"
	"github.com/physmap/physmap/kernel/selftest"
	"github.com/physmap/physmap/mm"
)

// humanSize prints sizes as mm.rst and Linux's tools do.
var humanSize = region.HumanSize

// regionLabel is a region's short label for the report: what it is and,
// where Linux names its base, that name.
var regionLabel = map[mm.RegionKind]string{
	mm.KindUser:         "user half (physmap's low window)",
	mm.KindGuardHole:    "guard hole",
	mm.KindLDTRemap:     "LDT remap, LDT_BASE_ADDR",
	mm.KindDirectMap:    "direct map, page_offset_base",
	mm.KindVmalloc:      "vmalloc, vmalloc_base",
	mm.KindVmemmap:      "struct pages, vmemmap_base",
	mm.KindKASAN:        "KASAN shadow",
	mm.KindCPUEntryArea: "cpu_entry_area",
	mm.KindESPFix:       "espfix stacks",
	mm.KindEFI:          "EFI runtime services",
	mm.KindKernelText:   "kernel text, __START_KERNEL_map",
	mm.KindModules:      "modules, MODULES_VADDR",
	mm.KindFixmap:       "fixmap, FIXADDR_START",
	mm.KindVsyscall:     "vsyscall page, VSYSCALL_ADDR",
}

// mappedIn sums the runs that start in reg: "2 GB in 1 x 1G, 510 x 2M".
func mappedIn(runs []dump.Run, reg mm.Region) string {
	var bytes, leaves uint64
	sizes := map[uint64]uint64{}
	for _, r := range runs {
		if mm.VirtAddr(r.VA) >= reg.Start && mm.VirtAddr(r.VA) <= reg.Last() {
			bytes += uint64(r.Size) * r.Count
			leaves += r.Count
			sizes[uint64(r.Size)] += r.Count
		}
	}
	if leaves == 0 {
		return "-"
	}
	var parts []string
	for _, s := range []mm.PageSize{mm.Size1G, mm.Size2M, mm.Size4K} {
		if n := sizes[uint64(s)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d x %v", n, s))
		}
	}
	return fmt.Sprintf("%s in %s", humanSize(bytes), strings.Join(parts, ", "))
}

// showRegions prints each region of the layout in force (holes left out)
// with where it starts and what the live tables map there, within the
// console's width.
func (k *kernel) showRegions(w io.Writer, runs []dump.Run) {
	fmt.Fprintf(w, "physmap: the %v address space the CPU walks, region by region:\n", k.space.AS.Mode())
	fmt.Fprintf(w, "  %-34s %-16s  %s\n", "region", "starts at", "mapped (from the live tables)")
	for _, reg := range k.space.Layout.Regions {
		label, ok := regionLabel[reg.Kind]
		if !ok {
			continue // a hole
		}
		fmt.Fprintf(w, "  %-34s %016x  %s\n", label, uint64(reg.Start), mappedIn(runs, reg))
	}
	fmt.Fprintln(w, layoutNote(k.space))
}

// layoutNote says which kernel configuration the layout is, and so where
// MODULES_VADDR is: __START_KERNEL_map + KERNEL_IMAGE_SIZE
// (arch/x86/include/asm/page_64_types.h, pgtable_64_types.h).
func layoutNote(s *region.Space) string {
	kt, _ := s.Layout.Region(mm.KindKernelText)
	mods, _ := s.Layout.Region(mm.KindModules)
	if s.Config.Layout == string(option.ConfigMMRST) {
		return fmt.Sprintf("  layout: mm.rst's (physmap.config=mmrst): a %s kernel text mapping, MODULES_VADDR %#x", humanSize(kt.Size), uint64(mods.Start))
	}
	return fmt.Sprintf("  layout: Debian's 6.1: CONFIG_RANDOMIZE_BASE makes KERNEL_IMAGE_SIZE %s, so MODULES_VADDR is %#x", humanSize(kt.Size), uint64(mods.Start))
}

// showLayout prints the layout in force in the full shape of mm.rst, with
// what the live tables map in each region (physmap.verbose=1, and the
// shell's regions -all).
func (k *kernel) showLayout(w io.Writer, runs []dump.Run) {
	fmt.Fprintf(w, "physmap: the %v kernel address space as built (mm.rst rows; \"mapped\" from the live tables)\n", k.space.AS.Mode())
	fmt.Fprintf(w, "%s\n", strings.Repeat("=", 126))
	fmt.Fprintf(w, "    Start addr    |     End addr     |   Size   | %-56s | mapped\n", "VM area")
	fmt.Fprintf(w, "%s\n", strings.Repeat("=", 126))
	for _, reg := range k.space.Layout.Regions {
		name := reg.Name
		if len(name) > 56 {
			name = name[:53] + "..."
		}
		fmt.Fprintf(w, " %016x | %016x | %8s | %-56s | %s\n", uint64(reg.Start), uint64(reg.Last()), humanSize(reg.Size), name, mappedIn(runs, reg))
	}
	fmt.Fprintf(w, "%s\n", strings.Repeat("_", 126))
}

// showFirstInstruction prints the kernel's first instruction through its
// three addresses and the frame behind each (alias.first-insn proves it).
func (k *kernel) showFirstInstruction(live *mm.AddressSpace) {
	pa := k.ref.Image.Text.Start
	b := make([]byte, 16)
	insn := "(unreadable)"
	if _, f := (hwCPU{}).Read(mm.VirtAddr(pa), b); !f.Faulted {
		insn = disasm(b, uint64(pa))
	}
	fmt.Printf("physmap: the kernel's first instruction, %s, at three addresses:\n", insn)
	for _, a := range []struct {
		name string
		va   mm.VirtAddr
	}{{"identity (low window)", mm.VirtAddr(pa)}, {"_text", k.bases.Text}, {"page_offset_base+pa", k.bases.PageOffset.Add(uint64(pa))}} {
		t, err := live.Translate(a.va)
		if err != nil {
			fmt.Printf("  %-22s %#18x: %v\n", a.name, uint64(a.va), err)
			continue
		}
		fmt.Printf("  %-22s %#18x -> frame %v, %v page, %v\n", a.name, uint64(a.va), t.PA.AlignDown(page), t.Size, t.Attrs)
	}
}

// disasm decodes the instruction at the start of b, located at pc.
func disasm(b []byte, pc uint64) string {
	inst, err := x86asm.Decode(b, 64)
	if err != nil {
		return fmt.Sprintf("(undecodable: %v)", err)
	}
	return x86asm.IntelSyntax(inst, pc, nil)
}

// descriptorRegs reads IDTR, GDTR and TR for the dump, the TSS
// descriptor's base and limit read from the GDT in use.
func descriptorRegs() (idtr, gdtr *dump.DescReg, tr *dump.TaskReg) {
	ib, il := amd64.Sidt()
	gb, gl := amd64.Sgdt()
	idtr = &dump.DescReg{Base: dump.Addr(ib), Limit: dump.Addr(il)}
	gdtr = &dump.DescReg{Base: dump.Addr(gb), Limit: dump.Addr(gl)}
	sel := amd64.Str()
	if sel == 0 || int(sel&^7)+15 > int(gl) {
		return idtr, gdtr, &dump.TaskReg{Selector: dump.Addr(sel)}
	}
	lo := *(*uint64)(amd64.Ptr(gb + uint64(sel&^7)))
	hi := *(*uint64)(amd64.Ptr(gb + uint64(sel&^7) + 8))
	t := amd64.DecodeTSSDescriptor(lo, hi)
	return idtr, gdtr, &dump.TaskReg{Selector: dump.Addr(sel), Base: dump.Addr(t.Base), Limit: dump.Addr(t.Limit)}
}

// aliasesOf returns every virtual range of the live tables that maps part of
// pr, in VA order.
func aliasesOf(runs []dump.Run, pr mm.PhysRange) []mm.VirtRange {
	var out []mm.VirtRange
	for _, r := range runs {
		lo, hi := mm.PhysAddr(r.PA), mm.PhysAddr(r.PAEnd())
		if hi <= pr.Start || lo >= pr.End {
			continue
		}
		if r.Stride != 0 { // clones: each leaf maps the same frames
			s, e := max(lo, pr.Start), min(hi, pr.End)
			for i := range r.Count {
				va := mm.VirtAddr(r.Leaf(i).VA)
				out = append(out, mm.VirtRange{Start: va.Add(uint64(s - lo)), End: va.Add(uint64(e - lo))})
			}
			continue
		}
		s, e := max(lo, pr.Start), min(hi, pr.End)
		out = append(out, mm.VirtRange{Start: mm.VirtAddr(r.VA).Add(uint64(s - lo)), End: mm.VirtAddr(r.VA).Add(uint64(e - lo))})
	}
	return out
}

// showAliases prints, for the image and the module, each physical range
// with every virtual range that maps it, found by inverting the live
// tables, one per line with the region it lies in.
func (k *kernel) showAliases(w io.Writer, runs []dump.Run) []dump.Alias {
	im := k.ref.Image
	targets := []struct {
		what string
		r    mm.PhysRange
	}{
		{"kernel text", im.Text}, {"kernel rodata", im.Rodata}, {"kernel data+bss", im.Data},
	}
	fmt.Fprintln(w, "physmap: every virtual address of the image's and the modules' frames, from the live tables:")
	var out []dump.Alias
	for _, t := range targets {
		a := dump.Alias{What: t.what, PA: dump.Addr(t.r.Start), Len: dump.Addr(t.r.Len())}
		fmt.Fprintf(w, "  %-16s %v, %s, at:\n", t.what, t.r, humanSize(t.r.Len()))
		for _, v := range merge(aliasesOf(runs, t.r)) {
			a.VAs = append(a.VAs, dump.Addr(v.Start))
			label := regionLabel[k.space.Layout.Find(v.Start).Kind]
			fmt.Fprintf(w, "      0x%016x  %s, %s\n", uint64(v.Start), label, humanSize(v.Len()))
		}
		out = append(out, a)
	}
	// A module's frames are scattered: one line per frame, its addresses
	// in the module area and in the direct map.
	for _, lm := range region.Find[*region.Modules](k.space).Loaded {
		lm.Pages(func(g modload.Group, _ mm.VirtAddr, pa mm.PhysAddr) {
			r := mm.PhysRange{Start: pa, End: pa.Add(page)}
			what := fmt.Sprintf("%s %v", lm.Img.Name(), g)
			a := dump.Alias{What: what, PA: dump.Addr(pa), Len: dump.Addr(page)}
			var at []string
			for _, v := range merge(aliasesOf(runs, r)) {
				a.VAs = append(a.VAs, dump.Addr(v.Start))
				at = append(at, fmt.Sprintf("%#x", uint64(v.Start)))
			}
			fmt.Fprintf(w, "  %-19s %#x at %s\n", what, uint64(pa), strings.Join(at, ", "))
			out = append(out, a)
		})
	}
	return out
}

// merge joins adjacent virtual ranges.
func merge(vs []mm.VirtRange) []mm.VirtRange {
	var out []mm.VirtRange
	for _, v := range vs {
		if n := len(out); n > 0 && out[n-1].End == v.Start {
			out[n-1].End = v.End
			continue
		}
		out = append(out, v)
	}
	return out
}

// showAnswer says, from what the checks proved, what the seed question
// asked: whether all RAM is mapped in the kernel half, so that the kernel's
// own frames appear twice. It says nothing the checks did not prove.
func (k *kernel) showAnswer(r *report) {
	passed := func(names ...string) bool {
		for _, n := range names {
			ok := false
			for _, res := range r.tally.Results {
				if res.Check == n {
					ok = res.Verdict == selftest.Pass
				}
			}
			if !ok {
				return false
			}
		}
		return true
	}
	// What the direct map covers: the ISA range and the RAM.
	var ram uint64
	for _, rr := range joined(append([]mm.PhysRange{{Start: 0, End: isaEnd}}, k.ref.RAM...)) {
		ram += rr.Len()
	}
	if !passed("walk.directmap", "walk.image", "content", "module.load") {
		fmt.Println("physmap: the checks behind the answer did not all pass: see the FAIL lines")
		return
	}
	answer := fmt.Sprintf("physmap: yes: all %s of RAM (and the ISA range) is mapped at page_offset_base %#x, so every frame, the kernel's own included, has an address in the kernel half; "+
		"the kernel image's %d frames appear there at least twice (at _text %#x and in the direct map), and each module's too (in the module area and the direct map).",
		humanSize(ram), uint64(k.bases.PageOffset), k.ref.Image.All().Len()/page, uint64(k.bases.Text))
	for _, w := range selftest.Wrap(answer, selftest.Width) {
		fmt.Println(w)
	}
	if !passed("module.load", "module.reloc", "module.reach") {
		return
	}
	// Isn't mapping the modules again redundant? What module.load,
	// module.reloc and module.reach proved says why not.
	frames := 0
	for _, lm := range region.Find[*region.Modules](k.space).Loaded {
		lm.Pages(func(modload.Group, mm.VirtAddr, mm.PhysAddr) { frames++ })
	}
	answer = fmt.Sprintf("physmap: and mapping the modules again is not redundant: their code is linked for the top 2 GB "+
		"(-mcmodel=kernel: 32S and PC32 relocations), and the direct map is %s below _text, where the loader refused them; "+
		"it maps their %d frames as one 1:1 run of physical memory, where a module needs one contiguous range over scattered frames; "+
		"and it is NX (writable for data), where module text must be read-only and executable.",
		region.DistText(k.bases.Text, k.bases.PageOffset), frames)
	for _, w := range selftest.Wrap(answer, selftest.Width) {
		fmt.Println(w)
	}
}

// show prints the report's end: the aliases, the regions, the first
// instruction and the answer; with physmap.ptdump the ptdump and the W+X
// audit; with physmap.verbose the full mm.rst table; and the JSON dump of
// the live tables.
func (k *kernel) show(r *report, log io.Writer, ptdump string) {
	live := k.live()
	layout := k.space.Layout
	runs := dump.Runs(live, layout)
	k.showLayout(log, runs)
	if ptdump != "0" {
		fmt.Println("physmap: ptdump of the live tables (/sys/kernel/debug/page_tables/kernel format)")
		if err := mm.Ptdump(os.Stdout, live, mm.PtdumpOptions{Layout: layout, PhysAddr: ptdump == "phys"}); err != nil {
			r.fail("ptdump", "%v", err)
		}
		for _, l := range region.Find[*region.Audit](k.space).WXLines {
			fmt.Println(l)
		}
	}
	aliases := k.showAliases(os.Stdout, runs)
	if k.opts.MM == "0" {
		d := &dump.Dump{Mode: live.Mode().Levels(), CR3: dump.Addr(amd64.ReadCR3() & amd64.CR3_ADDR_MASK),
			Regions: dump.RegionsOf(layout), Runs: runs, Aliases: aliases, Checks: r.times}
		d.IDTR, d.GDTR, d.TR = descriptorRegs()
		if err := dump.Write(boot.Bulk, d); err != nil {
			r.fail("dump", "%v", err)
		}
		fmt.Printf("physmap: JSON dump of the live tables sent to the bulk channel (isa-debugcon, port %#x)\n", boot.DEBUGCON_PORT)
	}
	k.showRegions(os.Stdout, runs)
	k.showFirstInstruction(live)
	k.showAnswer(r)
}

// deferredInit writes the page descriptors the boot left for
// deferred_init_memmap, after the verdict (Linux writes them before it
// starts init; physmap's processes use no struct page), and says what it
// cost. It reports whether that went well.
func (k *kernel) deferredInit() bool {
	v := region.Find[*region.Vmemmap](k.space)
	if v == nil {
		return true
	}
	t0 := time.Now()
	n, err := v.DeferredInit(k.space)
	if err != nil {
		fmt.Printf("physmap: deferred_init_memmap: %v\n", err)
		return false
	}
	if n > 0 {
		fmt.Printf("physmap: deferred_init_memmap, after the verdict: the descriptors of %d frames (%s of RAM) from first_deferred_pfn %#x written in %v\n",
			n, humanSize(uint64(n)*page), uint64(v.Deferred.Start)>>12, time.Since(t0).Round(time.Millisecond))
	}
	return true
}
