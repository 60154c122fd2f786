//go:build tamago

package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/boot"
	"github.com/physmap/physmap/kernel/dump"
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
func (k *kspace) showLayout(w io.Writer, runs []dump.Run) {
	fmt.Fprintf(w, "physmap: the %v kernel address space as built (mm.rst rows; \"mapped\" from the live tables)\n", k.as.Mode())
	fmt.Fprintf(w, "%s\n", strings.Repeat("=", 126))
	fmt.Fprintf(w, "    Start addr    |     End addr     |   Size   | %-56s | mapped\n", "VM area")
	fmt.Fprintf(w, "%s\n", strings.Repeat("=", 126))
	for _, reg := range k.layout.Regions {
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

// readBytes copies n bytes at va.
func readBytes(va mm.VirtAddr, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = *(*byte)(ptrAt(va.Add(uint64(i))))
	}
	return b
}

// showFirstInstruction prints the kernel's first instruction through its
// three aliases, the frame behind each, and checks they agree.
func (k *kspace) showFirstInstruction(r *report, live *mm.AddressSpace) {
	pa := k.img.text.Start
	fmt.Println("physmap: the kernel's first instruction, three ways:")
	var frames []mm.PhysAddr
	var insns []string
	for _, a := range []struct {
		name string
		va   mm.VirtAddr
	}{{"identity (low window)", mm.VirtAddr(pa)}, {"__START_KERNEL_map+pa", k.kernelVA(pa)}, {"page_offset_base+pa", k.directVA(pa)}} {
		t, err := live.Translate(a.va)
		if err != nil {
			r.fail("alias.first-insn", "%s %v: %v", a.name, a.va, err)
			return
		}
		insn := disasm(readBytes(a.va, 16), uint64(a.va))
		fmt.Printf("  %-22s %v -> frame %v (%v page, %v): %s\n", a.name, a.va, t.PA.AlignDown(page), t.Size, t.Attrs, insn)
		frames = append(frames, t.PA)
		insns = append(insns, insn)
	}
	same := frames[0] == frames[1] && frames[1] == frames[2] && insns[0] == insns[1] && insns[1] == insns[2]
	r.check("alias.first-insn", same, "one frame %v behind %v, %v and %v, decoding to %q", frames[0], mm.VirtAddr(pa), k.kernelVA(pa), k.directVA(pa), insns[0])
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
func (k *kspace) showAliases(runs []dump.Run) []dump.Alias {
	targets := []struct {
		what string
		r    mm.PhysRange
	}{
		{"kernel text", k.img.text}, {"kernel rodata", k.img.rodata}, {"kernel data+bss", k.img.data},
		{"module text", mm.PhysRange{Start: k.mod.textPA, End: k.mod.textPA.Add(page)}},
		{"module data", mm.PhysRange{Start: k.mod.dataPA, End: k.mod.dataPA.Add(page)}},
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

// show prints the layout, the first instruction, ptdump and the aliases,
// and writes the JSON dump of the live tables to the bulk channel.
func (k *kspace) show(r *report, live *mm.AddressSpace, ptdump string) {
	runs := dump.Runs(live, k.layout)
	k.showLayout(os.Stdout, runs)
	k.showFirstInstruction(r, live)
	if ptdump != "0" {
		fmt.Println("physmap: ptdump of the live tables (/sys/kernel/debug/page_tables/kernel format)")
		if err := mm.Ptdump(os.Stdout, live, mm.PtdumpOptions{Layout: k.layout, PhysAddr: ptdump == "phys"}); err != nil {
			r.fail("ptdump", "%v", err)
		}
	}
	aliases := k.showAliases(runs)
	d := &dump.Dump{Mode: live.Mode().Levels(), CR3: dump.Addr(amd64.ReadCR3() & amd64.CR3_ADDR_MASK),
		Regions: dump.RegionsOf(k.layout), Runs: runs, Aliases: aliases}
	if err := dump.Write(boot.Bulk, d); err != nil {
		r.fail("dump", "%v", err)
	}
	fmt.Printf("physmap: JSON dump of the live tables sent to the bulk channel (isa-debugcon, port %#x)\n", boot.DEBUGCON_PORT)
}
