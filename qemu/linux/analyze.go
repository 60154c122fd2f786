package linux

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"golang.org/x/arch/x86/x86asm"

	"github.com/physmap/physmap/kernel/dump"
	"github.com/physmap/physmap/mm"
)

// Addresses of the Linux x86-64 layout the analysis needs beyond mm's
// table (arch/x86/include/asm/page_64_types.h, pgtable_64_types.h).
const (
	startKernelMap mm.VirtAddr = 0xffffffff80000000 // __START_KERNEL_map
	// kaslrEnd is CPU_ENTRY_AREA_BASE, where memory KASLR's window ends
	// (arch/x86/mm/kaslr.c: vaddr_end).
	kaslrEnd        mm.VirtAddr = 0xfffffe0000000000
	imageSize512M               = 512 << 20
	imageSize1G                 = 1 << 30
	structPageBytes             = 64 // sizeof(struct page) on x86-64
)

// ErrAnalysis wraps a failure that stops the analysis: tables that cannot
// be read.
var ErrAnalysis = errors.New("analysis")

// Fact is one thing the analysis established about the Linux guest, from
// two sources that must agree; OK is false when they do not.
type Fact struct {
	Name   string
	OK     bool
	Detail string
}

// Bases are where Linux put its regions, each from the sources named.
type Bases struct {
	// The variables memory KASLR sets, read from guest memory at their
	// kallsyms addresses through the tables (0 when not known).
	PageOffset, VmallocBase, VmemmapBase mm.VirtAddr
	// PageOffsetTables is page_offset_base found from the tables alone:
	// the VA-PA offset most bytes of the kernel half map with, below
	// the cpu_entry_area.
	PageOffsetTables mm.VirtAddr
	// Text is _text from kallsyms, TextTables the VA in the kernel text
	// mapping that maps TextPA, /proc/iomem's "Kernel code" start.
	Text, TextTables mm.VirtAddr
	TextPA           mm.PhysAddr
	PhysBase         uint64 // the variable phys_base
	KernelImageSize  uint64
	ImageSizeWhy     string
	Randomized       bool // booted without nokaslr: the bases are KASLR's
}

// Insn is the kernel's first instruction seen one way.
type Insn struct {
	Way   string
	VA    mm.VirtAddr // 0 for the physical read
	Frame mm.PhysAddr
	Page  mm.PageSize
	Attrs mm.Attr
	Bytes []byte
	Text  string
}

// AliasGroup is a set of frames that the same regions map, with the same
// permissions.
type AliasGroup struct {
	Frames  uint64
	Where   []string      // "kernel text mapping ro GLB x", ..., sorted
	Example mm.PhysAddr   // one frame of the group
	VAs     []mm.VirtAddr // every VA of Example
}

// AliasReport inverts the tables for one physical range.
type AliasReport struct {
	What   string
	Range  mm.PhysRange
	Groups []AliasGroup
}

// DirectMapCount is the direct map's leaves in kB per size, as
// /proc/meminfo's DirectMap4k, DirectMap2M and DirectMap1G name them.
type DirectMapCount struct {
	K4, M2, G1 uint64
}

// Analysis is what the host learned from a Linux guest's live tables.
type Analysis struct {
	Mode     mm.Mode
	Regs     Registers
	Root     mm.PhysAddr
	RootNote string
	Mem      *GuestMem
	AS       *mm.AddressSpace
	Guest    *Guest // nil when only the machine was inspected
	Layout   *mm.Layout
	Bases    Bases
	Dump     *dump.Dump // the live tables in the shape of physmap's dump
	Facts    []Fact
	Problems []ProblemGroup
	WXKernel uint64 // W+X 4 KiB pages in the kernel half
	WXUser   uint64
	Tables   int // table pages reachable from the root
	Direct   DirectMapCount
	Insns    []Insn
	Aliases  []AliasReport
	Notes    []string // what the analysis could not establish, for people
	config   []byte   // the kernel's .config, nil if unknown
}

// ProblemGroup is mm.Check's problems of one kind in one region, and why
// Linux has them, if that is known.
type ProblemGroup struct {
	What    string
	Region  string
	Count   int
	Example mm.Problem
	Why     string // empty: unexplained
}

// Analyze walks the tables CR3 points at with package mm. guest, from the
// /init's marked lines, may be nil (a machine inspected without it).
func Analyze(mem *GuestMem, regs Registers, guest *Guest, config []byte) (*Analysis, error) {
	mode, err := regs.Mode()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAnalysis, err)
	}
	a := &Analysis{Mode: mode, Regs: regs, Mem: mem, Guest: guest, Root: regs.Root(), config: config}
	if regs.CR3&ptiUserBit != 0 && guest != nil && guest.DmesgHas("page tables isolation: enabled") {
		a.RootNote = fmt.Sprintf("CR3 %#x selects PTI's user copy of the pgd; the kernel's is 4 KiB below", regs.CR3)
		a.Root = mm.PhysAddr(regs.CR3 & cr3AddrMsk &^ ptiUserBit)
	}
	if _, err := mem.Read(a.Root, PageSize); err != nil {
		return nil, fmt.Errorf("%w: CR3 %#x: the top-level table at %v cannot be read: %v", ErrAnalysis, regs.CR3, a.Root, err)
	}
	a.AS = mm.Open(mode, a.Root, mem)

	a.findBases(config)
	a.Layout = a.linuxLayout()
	a.Dump = &dump.Dump{Mode: int(mode), CR3: dump.Addr(a.Root), Regions: dump.RegionsOf(a.Layout), Runs: dump.Runs(a.AS, a.Layout)}
	a.Tables = a.AS.TablePages()
	if err := mem.Err(); err != nil {
		return nil, fmt.Errorf("%w: walking the tables at %v: %v", ErrAnalysis, a.Root, err)
	}
	a.checkRoot()
	a.checkBases()
	a.countDirectMap()
	a.firstInstruction()
	a.checkModules()
	a.checkModuleExtents()
	a.checkDirectMapRAM()
	a.checkRealMode()
	a.checkIoremap()
	a.audit()
	a.invertAliases()
	if err := mem.Err(); err != nil {
		a.fact("memory", false, "a read of guest memory failed, results after it are suspect: %v", err)
	} else {
		a.fact("memory", true, "%d frames read from %s, none failed", len(mem.Pages()), mem.Source())
	}
	return a, nil
}

func (a *Analysis) fact(name string, ok bool, format string, args ...any) {
	a.Facts = append(a.Facts, Fact{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)})
}

// Failed lists the facts that do not hold.
func (a *Analysis) Failed() []Fact {
	var out []Fact
	for _, f := range a.Facts {
		if !f.OK {
			out = append(out, f)
		}
	}
	return out
}

// readVA reads n bytes at va through the tables.
func (a *Analysis) readVA(va mm.VirtAddr, n int) ([]byte, error) {
	var out []byte
	for len(out) < n {
		t, err := a.AS.Translate(va)
		if err != nil {
			return nil, err
		}
		k := min(n-len(out), PageSize-int(uint64(va)%PageSize))
		b, err := a.Mem.Read(t.PA, k)
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
		va = va.Add(uint64(k))
	}
	return out, nil
}

// variable reads a u64 kernel variable at its kallsyms address.
func (a *Analysis) variable(name string) (uint64, error) {
	if a.Guest == nil {
		return 0, fmt.Errorf("no kallsyms")
	}
	va, ok := a.Guest.Symbol(name)
	if !ok {
		return 0, fmt.Errorf("%s not in kallsyms (not root, or kptr_restrict=2?)", name)
	}
	b, err := a.readVA(va, 8)
	if err != nil {
		return 0, fmt.Errorf("%s at %v: %v", name, va, err)
	}
	return binary.LittleEndian.Uint64(b), nil
}

// directMapBase is where mm.rst puts page_offset_base: the lowest base
// memory KASLR can choose.
func directMapBase(mode mm.Mode) mm.VirtAddr { return mm.DefaultLayout(mode).PageOffset() }

// findBases fills a.Bases from kallsyms, guest variables and the tables.
func (a *Analysis) findBases(config []byte) {
	b := &a.Bases
	g := a.Guest
	b.Randomized = g != nil && !slices.Contains(strings.Fields(g.Cmdline), "nokaslr")
	if v, err := a.variable("page_offset_base"); err == nil {
		b.PageOffset = mm.VirtAddr(v)
	}
	if v, err := a.variable("vmalloc_base"); err == nil {
		b.VmallocBase = mm.VirtAddr(v)
	}
	if v, err := a.variable("vmemmap_base"); err == nil {
		b.VmemmapBase = mm.VirtAddr(v)
	}
	if v, err := a.variable("phys_base"); err == nil {
		b.PhysBase = v
	}

	// page_offset_base from the tables: the offset VA-PA covering the
	// most bytes in memory KASLR's window.
	bytesAt := map[mm.VirtAddr]uint64{}
	for lf := range a.AS.Leaves(mm.VirtRange{Start: directMapBase(a.Mode), End: kaslrEnd}) {
		bytesAt[lf.VA-mm.VirtAddr(lf.PA)] += uint64(lf.Size)
	}
	var best uint64
	for off, n := range bytesAt {
		if n > best || (n == best && off < b.PageOffsetTables) {
			b.PageOffsetTables, best = off, n
		}
	}

	if g == nil && b.PageOffsetTables != 0 && b.PageOffsetTables != directMapBase(a.Mode) {
		// No command line to read: the tables say the direct map moved.
		b.Randomized = true
	}
	if g != nil {
		b.Text, _ = g.Symbol("_text")
		if r, ok := g.IOMemNamed("Kernel code"); ok {
			b.TextPA = r.Start
			for lf := range a.AS.Leaves(mm.VirtRange{Start: startKernelMap, End: startKernelMap.Add(imageSize1G)}) {
				if r.Start >= lf.PA && r.Start < lf.PA.Add(uint64(lf.Size)) {
					b.TextTables = lf.VA.Add(uint64(r.Start - lf.PA))
					break
				}
			}
		}
	}

	// KERNEL_IMAGE_SIZE, which places MODULES_VADDR
	// (arch/x86/include/asm/page_64_types.h): 1 GiB with
	// CONFIG_RANDOMIZE_BASE, else 512 MiB.
	switch {
	case config != nil && ConfigValue(config, "RANDOMIZE_BASE") == "y":
		b.KernelImageSize, b.ImageSizeWhy = imageSize1G, "CONFIG_RANDOMIZE_BASE=y in the kernel's config"
	case config != nil:
		b.KernelImageSize, b.ImageSizeWhy = imageSize512M, "CONFIG_RANDOMIZE_BASE unset in the kernel's config"
	case g != nil && len(g.Modules) > 0 && g.Modules[0].Base >= startKernelMap.Add(imageSize1G):
		b.KernelImageSize, b.ImageSizeWhy = imageSize1G, "the loaded modules lie above __START_KERNEL_map + 1 GiB"
	default:
		b.KernelImageSize, b.ImageSizeWhy = imageSize512M, "mm.rst's default (no kernel config, no module seen)"
	}
}

// linuxLayout is mm's layout moved to the bases found.
func (a *Analysis) linuxLayout() *mm.Layout {
	b := a.Bases
	def := mm.DefaultLayout(a.Mode)
	opt := mm.LayoutOptions{KernelImageSize: b.KernelImageSize}
	po := b.PageOffset
	if po == 0 {
		po = b.PageOffsetTables
	}
	if b.Randomized {
		// The three regions are anywhere in the window, in this order
		// (arch/x86/mm/kaslr.c): each ends where the next begins, at
		// most its documented size.
		opt.NoKASAN = true
		size := func(k mm.RegionKind, start, next mm.VirtAddr) uint64 {
			r, _ := def.Region(k)
			if start == 0 || next <= start {
				return r.Size
			}
			return min(r.Size, uint64(next-start))
		}
		opt.PageOffset, opt.VmallocBase, opt.VmemmapBase = po, b.VmallocBase, b.VmemmapBase
		opt.DirectMapSize = size(mm.KindDirectMap, po, b.VmallocBase)
		opt.VmallocSize = size(mm.KindVmalloc, b.VmallocBase, b.VmemmapBase)
		opt.VmemmapSize = size(mm.KindVmemmap, b.VmemmapBase, kaslrEnd)
	}
	l := mm.NewLayout(a.Mode, opt)
	if err := l.Validate(); err != nil {
		// Bases that make no layout: keep the documented one, and say so.
		if a.Guest == nil {
			// Only page_offset_base is known, from the tables: not
			// enough to place the other randomized regions.
			a.Notes = append(a.Notes, fmt.Sprintf("the direct map found at %v, without kallsyms for vmalloc_base and vmemmap_base, makes no valid layout (%v): region names are mm.rst's", po, err))
		} else {
			a.fact("layout", false, "the bases found make no valid layout (%v); using mm.rst's", err)
		}
		return mm.NewLayout(a.Mode, mm.LayoutOptions{KernelImageSize: b.KernelImageSize})
	}
	return l
}

// checkRoot compares the kernel half of the walked pgd with init_top_pgt,
// which every pgd copies (arch/x86/mm/pgtable.c: pgd_ctor).
func (a *Analysis) checkRoot() {
	init, ok := a.Guest.symbolPA(a, "init_top_pgt")
	if !ok {
		return
	}
	if init == a.Root {
		a.fact("root", true, "CR3 %#x is init_top_pgt (__pa %v): the kernel's own pgd", a.Regs.CR3, init)
		return
	}
	mine, err1 := a.Mem.Read(a.Root.Add(PageSize/2), PageSize/2)
	theirs, err2 := a.Mem.Read(init.Add(PageSize/2), PageSize/2)
	if err1 != nil || err2 != nil {
		a.fact("root", false, "cannot read the kernel halves of %v and init_top_pgt %v", a.Root, init)
		return
	}
	same := bytes.Equal(mine, theirs)
	a.fact("root", same, "CR3 %#x is a process's pgd %v; its kernel half (entries 256-511) %s init_top_pgt's at %v",
		a.Regs.CR3, a.Root, map[bool]string{true: "equals", false: "differs from"}[same], init)
}

// symbolPA returns __pa_symbol of a kallsyms name, through the tables.
func (g *Guest) symbolPA(a *Analysis, name string) (mm.PhysAddr, bool) {
	if g == nil {
		return 0, false
	}
	va, ok := g.Symbol(name)
	if !ok {
		return 0, false
	}
	t, err := a.AS.Translate(va)
	if err != nil {
		return 0, false
	}
	return t.PA, true
}

func (a *Analysis) checkBases() {
	b := a.Bases
	if b.PageOffset != 0 {
		a.fact("page_offset_base", b.PageOffset == b.PageOffsetTables,
			"the variable holds %v; the tables map the most RAM at VA-PA offset %v", b.PageOffset, b.PageOffsetTables)
	}
	if a.Guest == nil {
		return
	}
	if b.Text != 0 && b.TextPA != 0 {
		a.fact("_text", b.Text == b.TextTables,
			"kallsyms says %v; the kernel text mapping maps iomem's \"Kernel code\" start %v at %v", b.Text, b.TextPA, b.TextTables)
		// __pa_symbol(x) = x - __START_KERNEL_map + phys_base
		// (arch/x86/include/asm/page_64.h: __phys_addr_symbol).
		want := mm.PhysAddr(uint64(b.Text-startKernelMap) + b.PhysBase)
		a.fact("phys_base", want == b.TextPA, "_text - __START_KERNEL_map + phys_base = %v - %v + %#x = %v; iomem's \"Kernel code\" starts at %v",
			b.Text, startKernelMap, b.PhysBase, want, b.TextPA)
	}
	if b.VmemmapBase != 0 && b.TextPA != 0 {
		// vmemmap's struct page of a frame: vmemmap_base + pfn * 64
		// (include/asm-generic/memory_model.h: __pfn_to_page).
		va := b.VmemmapBase.Add(uint64(b.TextPA) / PageSize * structPageBytes)
		t, err := a.AS.Translate(va)
		a.fact("vmemmap_base", err == nil, "struct page of _text's frame %v at vmemmap_base + pfn*64 = %v: %s", b.TextPA, va, translation(t, err))
	}
	if b.VmallocBase != 0 {
		r, _ := a.Layout.Region(mm.KindVmalloc)
		n := 0
		for range a.AS.Leaves(mm.VirtRange{Start: r.Start, End: r.Start.Add(r.Size)}) {
			n++
		}
		a.fact("vmalloc_base", n > 0, "%d pages mapped in [%v, %v), the vmalloc area from the variable", n, r.Start, r.Start.Add(r.Size))
	}
}

func translation(t mm.Translation, err error) string {
	if err != nil {
		return "not mapped"
	}
	return fmt.Sprintf("-> %v (%v page, %v)", t.PA, t.Size, t.Attrs)
}

// countDirectMap counts the direct map's leaves as
// arch/x86/mm/pat/set_memory.c's direct_pages_count would if it followed
// every split and merge.
func (a *Analysis) countDirectMap() {
	r, _ := a.Layout.Region(mm.KindDirectMap)
	for lf := range a.AS.Leaves(mm.VirtRange{Start: r.Start, End: r.Start.Add(r.Size)}) {
		kb := uint64(lf.Size) >> 10
		switch lf.Size {
		case mm.Size4K:
			a.Direct.K4 += kb
		case mm.Size2M:
			a.Direct.M2 += kb
		case mm.Size1G:
			a.Direct.G1 += kb
		}
	}
}

// firstInstruction reads _text's first bytes three ways: through _text,
// through the direct map alias page_offset_base + __pa(_text), and from
// guest RAM at iomem's "Kernel code" start.
func (a *Analysis) firstInstruction() {
	b := a.Bases
	if b.Text == 0 || b.TextPA == 0 {
		return
	}
	po := b.PageOffset
	if po == 0 {
		po = b.PageOffsetTables
	}
	const n = 16
	for _, w := range []struct {
		way string
		va  mm.VirtAddr
	}{{"_text (kallsyms)", b.Text}, {"page_offset_base+pa", po.Add(uint64(b.TextPA))}} {
		t, err := a.AS.Translate(w.va)
		if err != nil {
			a.fact("first-insn", false, "%s %v: %v", w.way, w.va, err)
			return
		}
		bs, err := a.readVA(w.va, n)
		if err != nil {
			a.fact("first-insn", false, "%s %v: %v", w.way, w.va, err)
			return
		}
		a.Insns = append(a.Insns, Insn{Way: w.way, VA: w.va, Frame: t.PA.AlignDown(PageSize), Page: t.Size, Attrs: t.Attrs, Bytes: bs, Text: disasm(bs, uint64(w.va))})
	}
	bs, err := a.Mem.Read(b.TextPA, n)
	if err != nil {
		a.fact("first-insn", false, "physical %v: %v", b.TextPA, err)
		return
	}
	a.Insns = append(a.Insns, Insn{Way: "physical (iomem)", Frame: b.TextPA, Bytes: bs, Text: disasm(bs, uint64(b.Text))})
	same := bytes.Equal(a.Insns[0].Bytes, a.Insns[1].Bytes) && bytes.Equal(a.Insns[1].Bytes, a.Insns[2].Bytes) &&
		a.Insns[0].Frame == a.Insns[1].Frame && a.Insns[1].Frame == b.TextPA.AlignDown(PageSize)
	a.fact("first-insn", same, "one frame %v behind %v and %v, the same %d bytes as guest RAM there, decoding to %q",
		b.TextPA.AlignDown(PageSize), a.Insns[0].VA, a.Insns[1].VA, n, a.Insns[0].Text)
}

func disasm(b []byte, pc uint64) string {
	inst, err := x86asm.Decode(b, 64)
	if err != nil {
		return fmt.Sprintf("(undecodable: %v)", err)
	}
	return x86asm.IntelSyntax(inst, pc, nil)
}

// Module section permissions with CONFIG_STRICT_MODULE_RWX
// (kernel/module/strict_rwx.c: module_enable_ro, module_enable_nx): text
// read-only and executable, rodata read-only, data writable, all but text
// NX.
var sectionPerms = map[string]struct{ write, nx bool }{
	".text": {false, false}, ".rodata": {false, true}, ".data": {true, true}, ".bss": {true, true},
}

// checkModules finds each loaded module in the tables and checks its
// sections' permissions, and its text's direct-map alias.
func (a *Analysis) checkModules() {
	if a.Guest == nil {
		return
	}
	mods, _ := a.Layout.Region(mm.KindModules)
	for _, name := range slices.Sorted(maps.Keys(a.Guest.Insmod)) {
		if !a.Guest.Insmod[name] {
			a.fact("module."+name, false, "insmod %s failed in the guest", name)
		}
	}
	for _, m := range a.Guest.Modules {
		t, err := a.AS.Translate(m.Base)
		if err != nil || !mods.Contains(m.Base) {
			a.fact("module."+m.Name, false, "/proc/modules base %v: %s, module area [%v, %v]", m.Base, translation(t, err), mods.Start, mods.Last())
			continue
		}
		var parts []string
		ok := true
		names := make([]string, 0, len(m.Sections))
		for s := range m.Sections {
			names = append(names, s)
		}
		slices.Sort(names)
		for _, s := range names {
			want, known := sectionPerms[s]
			if !known {
				continue
			}
			st, err := a.AS.Translate(m.Sections[s])
			if err != nil {
				ok = false
				parts = append(parts, fmt.Sprintf("%s %v not mapped", s, m.Sections[s]))
				continue
			}
			good := (st.Attrs&mm.AttrWrite != 0) == want.write && (st.Attrs&mm.AttrNX != 0) == want.nx
			ok = ok && good
			parts = append(parts, fmt.Sprintf("%s %v %s", s, m.Sections[s], permString(dump.FlagsOf(st.Attrs))))
		}
		if tx, has := m.Sections[".text"]; has {
			if tt, err := a.AS.Translate(tx); err == nil {
				dva := a.directVA(tt.PA)
				dt, err := a.AS.Translate(dva)
				parts = append(parts, fmt.Sprintf("text frame %v also at %v %s", tt.PA.AlignDown(PageSize), dva, aliasPerm(dt, err)))
			}
		}
		a.fact("module."+m.Name, ok, "%d bytes at %v (%v page): %s", m.Size, m.Base, t.Size, strings.Join(parts, ", "))
	}
}

func aliasPerm(t mm.Translation, err error) string {
	if err != nil {
		return "(not mapped)"
	}
	return permString(dump.FlagsOf(t.Attrs))
}

// directVA is page_offset_base + pa.
func (a *Analysis) directVA(pa mm.PhysAddr) mm.VirtAddr {
	r, _ := a.Layout.Region(mm.KindDirectMap)
	return r.Start.Add(uint64(pa))
}

// audit runs the W+X count and mm.Check, configured for Linux: its tables
// may be mapped by the direct map and by the kernel text mapping (the
// kernel's own tables, init_top_pgt and level*_pgt, are in its data and
// bss).
func (a *Analysis) audit() {
	ks := a.Mode.KernelStart()
	a.WXKernel = mm.WXPages(a.AS, mm.VirtRange{Start: ks, End: ^mm.VirtAddr(0) &^ (PageSize - 1)})
	a.WXUser = mm.WXPages(a.AS, mm.VirtRange{Start: 0, End: a.Mode.UserEnd()})
	if g := a.Guest; g != nil {
		linuxPassed := g.DmesgHas(mm.WXReport(0))
		linuxSaid := g.DmesgHas("Checked W+X mappings")
		if linuxSaid {
			a.fact("wx", linuxPassed == (a.WXKernel == 0), "%d W+X pages in the kernel half now; Linux's own audit at boot: %q",
				a.WXKernel, map[bool]string{true: mm.WXReport(0), false: "FAILED"}[linuxPassed])
		}
	}
	dm, _ := a.Layout.Region(mm.KindDirectMap)
	kt, _ := a.Layout.Region(mm.KindKernelText)
	opt := mm.CheckOptions{
		Aliases: []mm.VirtRange{{Start: dm.Start, End: dm.Start.Add(dm.Size)}, {Start: kt.Start, End: kt.Start.Add(kt.Size)}},
		Layout:  a.Layout,
	}
	if a.Guest != nil {
		opt.PhysBits = a.Guest.PhysBits
	}
	a.Problems = groupProblems(mm.Problems(a.AS, opt), a.Layout)
	unexplained := 0
	total := 0
	for _, g := range a.Problems {
		total += g.Count
		if g.Why == "" {
			unexplained += g.Count
		}
	}
	a.fact("mm.check", unexplained == 0, "%d table pages; %d problems, %d of them unexplained (aliases allowed: direct map, kernel text mapping; MAXPHYADDR %d)",
		a.Tables, total, unexplained, opt.PhysBits)
}

// problemWhy explains mm.Check's problems that Linux has by design, keyed
// by region kind and the start of the problem text.
var problemWhy = []struct {
	kind   mm.RegionKind
	prefix string
	why    string
}{
	{mm.KindESPFix, "table page", "espfix shares its pmd page among ESPFIX_PUD_CLONES pud entries and its pte page among ESPFIX_PMD_CLONES pmd entries, so every 64 KiB step of the stack pointer reaches the same page (arch/x86/kernel/espfix_64.c: init_espfix_ap)"},
}

func groupProblems(ps []mm.Problem, l *mm.Layout) []ProblemGroup {
	var out []ProblemGroup
	for _, p := range ps {
		what := p.What
		// Group "table page 0x... referenced twice (also for va ...)" and
		// the like by their words, not their numbers.
		key := strings.Join(slices.DeleteFunc(strings.Fields(what), func(w string) bool {
			return strings.HasPrefix(w, "0x") || strings.HasPrefix(w, "(0x")
		}), " ")
		key = strings.TrimSuffix(key, " (also for va")
		r := l.Find(p.VA)
		i := slices.IndexFunc(out, func(g ProblemGroup) bool { return g.What == key && g.Region == r.Name })
		if i < 0 {
			g := ProblemGroup{What: key, Region: r.Name, Example: p}
			for _, w := range problemWhy {
				if r.Kind == w.kind && strings.HasPrefix(what, w.prefix) {
					g.Why = w.why
				}
			}
			out = append(out, g)
			i = len(out) - 1
		}
		out[i].Count++
	}
	return out
}

// invertAliases lists, for the image and each module, every kernel-half VA
// of each frame.
func (a *Analysis) invertAliases() {
	g := a.Guest
	if g == nil {
		return
	}
	if text, ok := g.symbolPA(a, "_text"); ok {
		if endVA, ok := g.Symbol("_end"); ok && a.Bases.Text != 0 && endVA > a.Bases.Text {
			r := mm.PhysRange{Start: text, End: text.Add(uint64(endVA - a.Bases.Text)).AlignUp(PageSize)}
			a.Aliases = append(a.Aliases, a.aliasesOf("_text.._end", r))
		}
	}
	for _, m := range g.Modules {
		// A module's core layout is virtually contiguous, its frames
		// anywhere: invert each page.
		var frames []mm.PhysRange
		for va := m.Base; va < m.Base.Add(m.Size); va = va.Add(PageSize) {
			if t, err := a.AS.Translate(va); err == nil {
				fr := t.PA.AlignDown(PageSize)
				frames = append(frames, mm.PhysRange{Start: fr, End: fr.Add(PageSize)})
			}
		}
		rep := AliasReport{What: "module " + m.Name, Range: mm.PhysRange{}}
		for _, fr := range frames {
			one := a.aliasesOf("", fr)
			for _, gr := range one.Groups {
				i := slices.IndexFunc(rep.Groups, func(x AliasGroup) bool { return slices.Equal(x.Where, gr.Where) })
				if i < 0 {
					rep.Groups = append(rep.Groups, gr)
				} else {
					rep.Groups[i].Frames += gr.Frames
				}
			}
		}
		a.Aliases = append(a.Aliases, rep)
	}
}

// piece is part of a run that maps some of the range being inverted.
type piece struct {
	pa, end mm.PhysAddr
	va      mm.VirtAddr // VA of pa
	label   string
}

// aliasesOf groups the frames of r by the regions and permissions that map
// them.
func (a *Analysis) aliasesOf(what string, r mm.PhysRange) AliasReport {
	ks := dump.Addr(a.Mode.KernelStart())
	var ps []piece
	bounds := []mm.PhysAddr{r.Start, r.End}
	for _, cr := range a.Dump.Runs {
		lo, hi := mm.PhysAddr(cr.PA), mm.PhysAddr(cr.PAEnd())
		if cr.VA < ks || hi <= r.Start || lo >= r.End {
			continue
		}
		s, e := max(lo, r.Start), min(hi, r.End)
		for _, run := range dump.Expand([]dump.Run{cr}) {
			ps = append(ps, piece{pa: s, end: e, va: mm.VirtAddr(run.VA).Add(uint64(s - lo)), label: run.Region + " " + permString(run.Flags)})
		}
		bounds = append(bounds, s, e)
	}
	slices.Sort(bounds)
	bounds = slices.Compact(bounds)
	rep := AliasReport{What: what, Range: r}
	for i := 0; i+1 < len(bounds); i++ {
		lo, hi := bounds[i], bounds[i+1]
		if lo < r.Start || hi > r.End {
			continue
		}
		var where []string
		var vas []mm.VirtAddr
		for _, p := range ps {
			if p.pa <= lo && p.end >= hi {
				where = append(where, p.label)
				vas = append(vas, p.va.Add(uint64(lo-p.pa)))
			}
		}
		slices.Sort(where)
		slices.Sort(vas)
		frames := uint64(hi-lo) / PageSize
		j := slices.IndexFunc(rep.Groups, func(g AliasGroup) bool { return slices.Equal(g.Where, where) })
		if j < 0 {
			rep.Groups = append(rep.Groups, AliasGroup{Frames: frames, Where: where, Example: lo, VAs: vas})
		} else {
			rep.Groups[j].Frames += frames
		}
	}
	slices.SortStableFunc(rep.Groups, func(x, y AliasGroup) int { return cmp.Compare(y.Frames, x.Frames) })
	return rep
}

// permString writes a leaf's effective permissions as Linux's ptdump
// columns do, blanks dropped: "RW GLB NX", "ro GLB x", "USR ro NX".
func permString(f dump.Flags) string {
	var p []string
	if f.User {
		p = append(p, "USR")
	}
	p = append(p, map[bool]string{true: "RW", false: "ro"}[f.Write])
	if f.PWT {
		p = append(p, "PWT")
	}
	if f.PCD {
		p = append(p, "PCD")
	}
	if f.PAT {
		p = append(p, "PAT")
	}
	if f.Global {
		p = append(p, "GLB")
	}
	p = append(p, map[bool]string{true: "NX", false: "x"}[f.NX])
	return strings.Join(p, " ")
}
