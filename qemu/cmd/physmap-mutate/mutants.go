package main

// A mutant is one small change to physmap's source that a check, or the
// harness's verdict, must catch: Old must occur exactly once in File, and
// is replaced by New. Most mutate the checking code (a comparison flipped,
// a proof skipped, an expectation shifted); a few mutate the builder, to
// show that the proofs catch what the issue found them blind to.
type mutant struct {
	Name     string
	File     string
	Old, New string
	Why      string // what the mutant breaks, and what should catch it
}

// mutants is the suite. An equivalent mutant (one no test could tell from
// the original) does not belong here. Left out as equivalent:
//   - kaslr.memory without its "a base moved" rule: only a builder whose
//     randomization never reaches the tables trips it, and
//     kaslr-layout-emptied is that builder.
//   - expectLeaf ignoring U/S: region.vsyscall checks U/S twice (the leaf's
//     effective permissions and every level's entry), and either alone
//     fails vsyscall-no-user.
var mutants = []mutant{
	{"reference-drops-ram", "kernel/region/init_64.go",
		"want := union(directMapRAM(p.Ref.RAM))",
		"want := union(directMapRAM(p.Ref.RAM[:len(p.Ref.RAM)-1]))",
		"walk.directmap's reference loses its last RAM range: every boot fails it"},
	{"builder-drops-ram", "kernel/region/init_64.go",
		"return append([]mm.PhysRange{{Start: 0, End: isaEnd}}, ram...)",
		"return append([]mm.PhysRange{{Start: 0, End: isaEnd}}, ram[:max(len(ram)-1, 0)]...)",
		"the builder's direct map drops the last RAM range (the issue's example): walk.directmap, from the PVH map, catches it"},
	{"directmap-coverage-flipped", "kernel/region/init_64.go",
		"if covered != total {",
		"if covered > total {",
		"a hole in the direct map goes unnoticed: the directmap-hole injection must fail walk.directmap"},
	{"content-skipped", "kernel/region/head_64.go",
		"\tp.proveContent()\n",
		"\n",
		"content is never reported: the manifest is missing a check"},
	{"image-frame-shifted", "kernel/region/head_64.go",
		"\t\t\tif t.PA != pa {\n",
		"\t\t\tif t.PA != pa && t.PA != pa.Add(page) {\n",
		"walk.image accepts the next frame too: kernel-frame-off must still fail it"},
	{"module-any-frame", "kernel/region/module.go",
		"\t\t\tif t.PA != pg.pa {\n",
		"\t\t\tif false && t.PA != pg.pa {\n",
		"walk.module accepts any frame: module-data-frame-off must still fail it"},
	{"kaslr-alignment-ignored", "kernel/region/kaslr.go",
		"\t\tcase !r.base.IsAligned(kaslrAlign):\n",
		"\t\tcase false:\n",
		"kaslr.memory accepts a base off the 1 GiB grid: vmalloc-misaligned must fail it"},
	{"kaslr-layout-emptied", "mm/kaslr.go",
		"\t\tPageOffset: k.Regions[0].Base, DirectMapSize: k.Regions[0].Size,\n\t\tVmallocBase: k.Regions[1].Base, VmallocSize: k.Regions[1].Size,\n\t\tVmemmapBase: k.Regions[2].Base, VmemmapSize: k.Regions[2].Size,\n",
		"",
		"memory KASLR's bases never reach the layout (the issue's example): kaslr.memory, from the live tables, must fail every KASLR boot"},
	{"exec-not-run", "kernel/region/head_64.go",
		"\t\tif _, f := p.CPU.Call(at); f.Faulted {\n",
		"\t\tif false {\n",
		"exec.kernel no longer runs the RETs: text-nx must still fail it"},
	{"fault-nx-unchecked", "kernel/region/init_64.go",
		"\tif err := expectFault(what, f, amd64.PF_P|amd64.PF_I); err != nil {\n",
		"\tif err := expectFault(what, f, amd64.PF_P|amd64.PF_I); err != nil && false {\n",
		"fault.nx passes without a fault: directmap-exec must still fail it"},
	{"tlb-second-read-ignored", "kernel/region/vmalloc.go",
		"\tcase first != va1 || second != va2:\n",
		"\tcase first != va1:\n",
		"tlb ignores the read after the remap: no-invlpg must still fail it"},
	{"no-leaves-blind", "kernel/region/expect.go",
		"\tfor lf := range live.Leaves(mm.VirtRange{Start: reg.Start, End: reg.Last()}) {\n",
		"\tfor lf := range live.Leaves(mm.VirtRange{Start: reg.Start, End: reg.Start}) {\n",
		"region.guard and region.efi look at nothing: guard-mapped and efi-mapped must still fail them"},
	{"cpu-state-pge-ignored", "kernel/checks.go",
		"efer&amd64.EFER_NXE != 0 && cr0&amd64.CR0_WP != 0 && cr4&amd64.CR4_PGE != 0",
		"efer&amd64.EFER_NXE != 0 && cr0&amd64.CR0_WP != 0",
		"cpu.state forgets CR4.PGE: no-pge must still fail it"},
	{"mm-check-silenced", "kernel/region/dump_pagetables.go",
		"\tif ps := mm.Problems(p.Live, opt); len(ps) > 0 {\n",
		"\tif ps := mm.Problems(p.Live, opt); len(ps) > 1<<30 {\n",
		"mm.check reports nothing: module-pt-frame and directmap-exec must still fail it"},
	{"wx-kernel-half-ignored", "kernel/region/dump_pagetables.go",
		"wx == 0 && low == 0",
		"low == 0",
		"wx forgets the kernel half: directmap-exec must still fail it"},
	{"vmalloc-guard-unchecked", "kernel/region/vmalloc.go",
		"\t\treturn p.expectUnmapped(\"the vmalloc guard page\", base.Add(vmallocPages*page))\n",
		"\t\treturn nil\n",
		"region.vmalloc forgets the guard page: vmalloc-guard-mapped must still fail it"},
	{"ldt-write-unchecked", "kernel/region/ldt.go",
		"\t\treturn p.expectReadOnly(\"the LDT alias\", va)\n",
		"\t\treturn nil\n",
		"region.ldt no longer tries a write: no-wp must still fail it"},
	{"discover-any-leaf", "kernel/region/discover.go",
		"\t\tif lf.PA == 0 {\n",
		"\t\tif lf.PA == 0 || true {\n",
		"page_offset_base is taken from the first kernel-half leaf (the LDT remap's): walk.directmap fails every boot"},
	{"pvh-reserved-as-ram", "kernel/region/pvh.go",
		"\t\tif binary.LittleEndian.Uint32(e[16:]) != pvhTypeRAM || size == 0 {\n",
		"\t\tif size == 0 {\n",
		"the reference counts reserved ranges as RAM: QEMU's PVH map has none above the ISA range, so the parser's host test must catch it"},
	{"clock-upper-bound-dropped", "kernel/checks.go",
		"off >= -clockTolerance && off <= clockTolerance",
		"off >= -clockTolerance",
		"clock accepts a clock that runs fast: clock-fast must still fail it"},
	{"harness-ignores-missing", "qemu/expect.go",
		"\t\tif (e.passing() || e.Exact) && len(missing) > 0 {\n",
		"\t\tif false && len(missing) > 0 {\n",
		"the harness no longer fails a boot that lacks a manifest check: its host tests must catch it"},
	{"harness-ignores-extra-failures", "qemu/expect.go",
		"\t\tif len(other) > 0 {\n",
		"\t\tif false {\n",
		"an injection boot may fail more than it names: the host tests must catch it"},
}
