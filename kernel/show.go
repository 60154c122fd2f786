//go:build tamago

package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/physmap/physmap/amd64"
	"golang.org/x/arch/x86/x86asm"

	"github.com/physmap/physmap/kernel/dump"
	"github.com/physmap/physmap/kernel/region"
	"github.com/physmap/physmap/mm"
)

// humanSize prints a byte count in the largest binary unit that divides it.
func humanSize(n uint64) string {
	for _, u := range []struct {
		size uint64
		name string
	}{{mm.PB, "PB"}, {mm.TB, "TB"}, {mm.GB, "GB"}, {mm.MB, "MB"}, {1 << 10, "kB"}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d %s", n/u.size, u.name)
		}
	}
	if n >= 1<<60 {
		return fmt.Sprintf("~%.4g EB", float64(n)/float64(1<<60))
	}
	if n >= mm.TB {
		return fmt.Sprintf("%.1f TB", float64(n)/float64(mm.TB))
	}
	return fmt.Sprintf("%d B", n)
}

// showLayout prints the layout in force in the shape of mm.rst, with what
// the live tables map in each region.
func (k *kernel) showLayout(w io.Writer, runs []dump.Run) {
	fmt.Fprintf(w, "physmap: the %v kernel address space as built (mm.rst rows; \"mapped\" from the live tables)\n", k.space.AS.Mode())
	fmt.Fprintf(w, "%s\n", strings.Repeat("=", 126))
	fmt.Fprintf(w, "    Start addr    |     End addr     |   Size   | %-56s | mapped\n", "VM area")
	fmt.Fprintf(w, "%s\n", strings.Repeat("=", 126))
	for _, reg := range k.space.Layout.Regions {
		var bytes, leaves uint64
		sizes := map[uint64]uint64{}
		for _, r := range runs {
			if mm.VirtAddr(r.VA) >= reg.Start && mm.VirtAddr(r.VA) <= reg.Last() {
				bytes += uint64(r.Size) * r.Count
				leaves += r.Count
				sizes[uint64(r.Size)] += r.Count
			}
		}
		what := "-"
		if leaves > 0 {
			var parts []string
			for _, s := range []mm.PageSize{mm.Size1G, mm.Size2M, mm.Size4K} {
				if n := sizes[uint64(s)]; n > 0 {
					parts = append(parts, fmt.Sprintf("%d x %v", n, s))
				}
			}
			what = fmt.Sprintf("%s in %s", humanSize(bytes), strings.Join(parts, ", "))
		}
		name := reg.Name
		if len(name) > 56 {
			name = name[:53] + "..."
		}
		fmt.Fprintf(w, " %016x | %016x | %8s | %-56s | %s\n", uint64(reg.Start), uint64(reg.Last()), humanSize(reg.Size), name, what)
	}
	fmt.Fprintf(w, "%s\n", strings.Repeat("_", 126))
}

// showFirstInstruction prints the kernel's first instruction through its
// three aliases and the frame behind each (alias.first-insn proves it).
func (k *kernel) showFirstInstruction(live *mm.AddressSpace) {
	pa := k.ref.Image.Text.Start
	fmt.Println("physmap: the kernel's first instruction, three ways:")
	for _, a := range []struct {
		name string
		va   mm.VirtAddr
	}{{"identity (low window)", mm.VirtAddr(pa)}, {"_text", k.bases.Text}, {"page_offset_base+pa", k.bases.PageOffset.Add(uint64(pa))}} {
		t, err := live.Translate(a.va)
		if err != nil {
			fmt.Printf("  %-22s %v: %v\n", a.name, a.va, err)
			continue
		}
		b := make([]byte, 16)
		if _, f := (hwCPU{}).Read(a.va, b); f.Faulted {
			fmt.Printf("  %-22s %v: %v\n", a.name, a.va, f)
			continue
		}
		fmt.Printf("  %-22s %v -> frame %v (%v page, %v): %s\n", a.name, a.va, t.PA.AlignDown(page), t.Size, t.Attrs, disasm(b, uint64(a.va)))
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

// aliasesOf returns every virtual range of the live tables that maps part of
// pr, in VA order.
func aliasesOf(runs []dump.Run, pr mm.PhysRange) []mm.VirtRange {
	var out []mm.VirtRange
	for _, r := range runs {
		lo, hi := mm.PhysAddr(r.PA), mm.PhysAddr(r.PA).Add(uint64(r.Size)*r.Count)
		if hi <= pr.Start || lo >= pr.End {
			continue
		}
		s, e := max(lo, pr.Start), min(hi, pr.End)
		out = append(out, mm.VirtRange{Start: mm.VirtAddr(r.VA).Add(uint64(s - lo)), End: mm.VirtAddr(r.VA).Add(uint64(e - lo))})
	}
	return out
}

// showAliases prints, for the image and the module, each physical range
// with every virtual range that maps it, found by inverting the live tables.
func (k *kernel) showAliases(runs []dump.Run) []dump.Alias {
	im := k.ref.Image
	mod := region.Find[*region.Modules](k.space)
	targets := []struct {
		what string
		r    mm.PhysRange
	}{
		{"kernel text", im.Text}, {"kernel rodata", im.Rodata}, {"kernel data+bss", im.Data},
		{"module text", mm.PhysRange{Start: mod.TextPA, End: mod.TextPA.Add(page)}},
		{"module data", mm.PhysRange{Start: mod.DataPA, End: mod.DataPA.Add(page)}},
	}
	fmt.Println("physmap: aliases (physical range <- every virtual range mapping it)")
	var out []dump.Alias
	for _, t := range targets {
		vas := aliasesOf(runs, t.r)
		a := dump.Alias{What: t.what, PA: dump.Addr(t.r.Start), Len: dump.Addr(t.r.Len())}
		var parts []string
		for _, v := range merge(vas) {
			parts = append(parts, v.String())
			a.VAs = append(a.VAs, dump.Addr(v.Start))
		}
		fmt.Printf("  %-16s %v <- %s\n", t.what, t.r, strings.Join(parts, ", "))
		out = append(out, a)
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

// show prints the layout, the first instruction, ptdump, the W+X audit,
// the aliases and the JSON dump of the live tables.
func (k *kernel) show(r *report, ptdump string) {
	live := k.live()
	layout := k.space.Layout
	runs := dump.Runs(live, layout)
	k.showLayout(os.Stdout, runs)
	k.showFirstInstruction(live)
	if ptdump != "0" {
		fmt.Println("physmap: ptdump of the live tables (/sys/kernel/debug/page_tables/kernel format)")
		if err := mm.Ptdump(os.Stdout, live, mm.PtdumpOptions{Layout: layout, PhysAddr: ptdump == "phys"}); err != nil {
			r.fail("ptdump", "%v", err)
		}
	}
	for _, l := range region.Find[*region.Audit](k.space).WXLines {
		fmt.Println(l)
	}
	aliases := k.showAliases(runs)
	d := &dump.Dump{Mode: live.Mode().Levels(), CR3: dump.Addr(amd64.ReadCR3() & amd64.CR3_ADDR_MASK),
		Regions: dump.RegionsOf(layout), Runs: runs, Aliases: aliases}
	if err := dump.Write(os.Stdout, d); err != nil {
		r.fail("dump", "%v", err)
	}
}
