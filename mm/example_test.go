package mm_test

import (
	"fmt"
	"os"

	"github.com/physmap/physmap/mm"
)

// Build a direct map for a small machine in simulated memory and walk one
// address the way a kernel's "walk VA" command would.
func Example() {
	tables := mm.PhysRange{Start: 0x7_4000_0000, End: 0x7_4100_0000}
	mem := mm.NewSparseMem(tables)
	frames := mm.NewMemblock([]mm.PhysRange{tables}, nil)
	as, err := mm.New(mm.Mode4Level, mem, frames, mm.NopTLB)
	if err != nil {
		panic(err)
	}
	layout := mm.DefaultLayout(as.Mode())
	ram := []mm.PhysRange{{Start: 0, End: 0x9fc00}, {Start: 0x10_0000, End: 0x1_4000_0000}}
	plan, err := mm.PlanDirectMap(as.Mode(), layout.PageOffset(), ram, true)
	if err != nil {
		panic(err)
	}
	if err := plan.Build(as, mm.PageKernel); err != nil {
		panic(err)
	}
	fmt.Printf("tables %d (minimum %d)\n", as.TablePages(), plan.MinTablePages)
	fmt.Print(plan.Meminfo())

	tr, err := as.Translate(layout.PageOffset().Add(0x1234_5678))
	if err != nil {
		panic(err)
	}
	for _, s := range tr.Path() {
		fmt.Printf("%v %v[%d] = %#016x\n", s.Level, s.Table, s.Index, uint64(s.Entry))
	}
	fmt.Printf("-> %v, %v page, %v\n", tr.PA, tr.Size, tr.Attrs)

	live := mm.Open(mm.Mode4Level, as.Root(), mem) // e.g. from CR3
	if err := mm.Check(live, mm.CheckOptions{Owns: frames.Owns}); err != nil {
		fmt.Println(err)
	}
	fmt.Println(mm.WXReport(mm.AllWXPages(live)))
	// Output:
	// tables 4 (minimum 4)
	// DirectMap4k:     1660 kB
	// DirectMap2M:  1046528 kB
	// DirectMap1G:  4194304 kB
	// pgd 0x740000000[273] = 0x0000000740001023
	// pud 0x740001000[0] = 0x0000000740002023
	// pmd 0x740002000[145] = 0x80000000122001a3
	// -> 0x12345678, 2M page, RW GLB NX
	// x86/mm: Checked W+X mappings: passed, no W+X pages found.
}

func ExamplePtdump() {
	mem := mm.NewSparseMem(mm.PhysRange{Start: 0x7_4000_0000, End: 0x7_4010_0000})
	frames := mm.NewMemblock([]mm.PhysRange{{Start: 0x7_4000_0000, End: 0x7_4010_0000}}, nil)
	as, _ := mm.New(mm.Mode5Level, mem, frames, mm.NopTLB)
	text, _ := mm.DefaultLayout(mm.Mode5Level).Region(mm.KindKernelText)
	as.Map(text.Start, 0x100_0000, 4<<20, mm.PageKernelExec, mm.AllowAll)
	// An empty layout keeps only the "Kernel Space" marker.
	mm.Ptdump(os.Stdout, as, mm.PtdumpOptions{Layout: &mm.Layout{Mode: mm.Mode5Level}})
	// Output:
	// 0x0000000000000000-0x0100000000000000          64P                               pgd
	// ---[ Kernel Space ]---
	// 0xff00000000000000-0xffff000000000000       65280T                               pgd
	// 0xffff000000000000-0xffffff8000000000      261632G                               p4d
	// 0xffffff8000000000-0xffffffff80000000         510G                               pud
	// 0xffffffff80000000-0xffffffff80400000           4M     ro         PSE     GLB x  pmd
	// 0xffffffff80400000-0xffffffffc0000000        1020M                               pmd
	// 0xffffffffc0000000-0x0000000000000000           1G                               pud
}
