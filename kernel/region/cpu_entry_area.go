package region

import (
	"encoding/binary"
	"fmt"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/mm"
)

// CPUEntryArea is the cpu_entry_area as Linux 6.1 builds and uses it for
// one CPU (arch/x86/mm/cpu_entry_area.c: setup_cpu_entry_area,
// arch/x86/include/asm/cpu_entry_area.h: struct cpu_entry_area,
// arch/x86/kernel/idt.c: idt_map_in_cea, arch/x86/kernel/cpu/common.c:
// cpu_init): at CPU_ENTRY_AREA_BASE the read-only alias of the IDT, then
// CPU 0's area: the GDT (read-only), the entry stack, the TSS with its I/O
// bitmap (read-only, 5 pages), and the exception stacks of #DF, NMI, #DB
// and #MC, 2 pages each between unmapped guard pages; every pte global
// (cea_set_pte). The CPU uses it: IDTR is the IDT alias, GDTR the GDT
// alias, TR a TSS descriptor (GDT_ENTRY_TSS) whose base is the TSS alias,
// and the IDT's #DF, NMI, #DB and #MC gates switch to their IST stacks.
// physmap copies TamaGo's IDT and GDT into page-aligned frames, as Linux's
// idt_table and gdt_page are, adding the TSS descriptor and the gates' IST
// fields.
type CPUEntryArea struct {
	// IDTPA and GDTPA are the frames of the IDT and GDT the CPU was
	// switched to; OrigIDT is the IDT TamaGo set up, what the copy must
	// hold but for the IST fields.
	IDTPA, GDTPA mm.PhysAddr
	OrigIDT      uint64
	IDTLimit     uint16
}

// The layout of struct cpu_entry_area for CPU 0, from CPU_ENTRY_AREA_BASE:
// the read-only IDT page (CPU_ENTRY_AREA_RO_IDT), then the per-CPU area.
const (
	ceaIDT        = 0x0000
	ceaGDT        = 0x1000
	ceaEntryStack = 0x2000
	ceaTSS        = 0x3000
	ceaTSSPages   = 5 // sizeof(struct tss_struct): the hardware TSS and the I/O bitmap
	ceaStacks     = ceaTSS + ceaTSSPages*page
	// ceaPages is what Linux 6.1 maps for one CPU without SEV-ES (no #VC
	// stacks) and without the DS feature (no debug store).
	ceaPages = 1 + 1 + 1 + ceaTSSPages + len(exceptionStacks)*int(exceptionStackSize/page)
)

// exceptionStackSize is EXCEPTION_STKSZ without KASAN: PAGE_SIZE <<
// EXCEPTION_STACK_ORDER (1), arch/x86/include/asm/page_64_types.h.
const exceptionStackSize = 2 * page

// exceptionStacks are the IST stacks of struct cea_exception_stacks in
// order, each above its guard page, with the vector whose gate uses it:
// TSS IST1 to IST4 point at their tops (IST_INDEX_DF, _NMI, _DB, _MCE;
// arch/x86/include/asm/page_64_types.h, arch/x86/kernel/idt.c: ist_idts).
var exceptionStacks = [...]struct {
	name   string
	vector int
}{{"DF", 8}, {"NMI", 2}, {"DB", 1}, {"MCE", 18}}

// gdtEntryTSS is GDT_ENTRY_TSS (arch/x86/include/asm/segment.h, 64-bit):
// the TSS descriptor's index, selector 0x40; gdtEntries is GDT_ENTRIES.
const (
	gdtEntryTSS = 8
	gdtEntries  = 16
)

// ceaLayout is where each piece of CPU 0's area lies.
type ceaLayout struct {
	idt, gdt, entryStack, tss mm.VirtAddr
	stacks                    [len(exceptionStacks)]mm.VirtAddr // each stack's lowest address
	guards                    []mm.VirtAddr
}

func layoutCEA(base mm.VirtAddr) ceaLayout {
	l := ceaLayout{idt: base.Add(ceaIDT), gdt: base.Add(ceaGDT), entryStack: base.Add(ceaEntryStack), tss: base.Add(ceaTSS)}
	va := base.Add(ceaStacks)
	for i := range l.stacks {
		l.guards = append(l.guards, va)
		l.stacks[i] = va.Add(page)
		va = va.Add(page + exceptionStackSize)
	}
	l.guards = append(l.guards, va) // VC_stack_guard: no #VC stack without SEV-ES
	return l
}

// istOf returns the IST index Linux's gate for vector v uses, 0 for none.
func istOf(v int) uint8 {
	for i, st := range exceptionStacks {
		if st.vector == v {
			return uint8(i + 1)
		}
	}
	return 0
}

func (a *CPUEntryArea) Populate(s *Space) error {
	l := layoutCEA(s.region(mm.KindCPUEntryArea).Start)
	idtBase, idtLimit := s.CPU.SIDT()
	gdtBase, gdtLimit := s.CPU.SGDT()
	if int(idtLimit)+1 > int(page) || int(gdtLimit)+1 > gdtEntryTSS*8 {
		return fmt.Errorf("cpu_entry_area: TamaGo's IDT (%d bytes) or GDT (%d bytes) does not fit Linux's layout", int(idtLimit)+1, int(gdtLimit)+1)
	}
	a.OrigIDT, a.IDTLimit = idtBase, idtLimit

	// The IDT: TamaGo's gates, with Linux's IST stacks for #DF, NMI, #DB
	// and #MC, in a page of its own.
	idt, err := readBytes(s.CPU, "the IDT", mm.VirtAddr(idtBase), int(idtLimit)+1)
	if err != nil {
		return err
	}
	for _, st := range exceptionStacks {
		if off := st.vector * amd64.GATE_SIZE; off+amd64.GATE_SIZE <= len(idt) {
			g := amd64.DecodeGate(binary.LittleEndian.Uint64(idt[off:]), binary.LittleEndian.Uint64(idt[off+8:]))
			g.IST = istOf(st.vector)
			lo, hi := g.Encode()
			binary.LittleEndian.PutUint64(idt[off:], lo)
			binary.LittleEndian.PutUint64(idt[off+8:], hi)
		}
	}
	// The GDT: TamaGo's descriptors at their selectors, the TSS
	// descriptor at GDT_ENTRY_TSS.
	gdt, err := readBytes(s.CPU, "the GDT", mm.VirtAddr(gdtBase), int(gdtLimit)+1)
	if err != nil {
		return err
	}
	gdt = append(gdt, make([]byte, gdtEntries*8-len(gdt))...)
	// Linux's user segments at their entries (gdt_page, common.c), for
	// SYSRET and IRET to ring 3.
	for _, d := range []struct {
		entry int
		flags uint16
	}{
		{amd64.GDT_ENTRY_DEFAULT_USER32_CS, amd64.DESC_USER32_CS},
		{amd64.GDT_ENTRY_DEFAULT_USER_DS, amd64.DESC_USER_DS},
		{amd64.GDT_ENTRY_DEFAULT_USER_CS, amd64.DESC_USER_CS},
	} {
		binary.LittleEndian.PutUint64(gdt[d.entry*8:], amd64.SegmentDescriptor(d.flags, 0, 0xfffff))
	}
	lo, hi := amd64.TSSDescriptor{Base: uint64(l.tss), Limit: amd64.TSS64_SIZE - 1, Type: amd64.TSS_TYPE_AVAILABLE, Present: true}.Encode()
	binary.LittleEndian.PutUint64(gdt[gdtEntryTSS*8:], lo)
	binary.LittleEndian.PutUint64(gdt[gdtEntryTSS*8+8:], hi)

	// The TSS: RSP0 at the top of the entry stack (cpu_init's load_sp0),
	// IST1-4 at the tops of the exception stacks (tss_setup_ist), the I/O
	// bitmap offset beyond the limit: no port is allowed.
	tss := amd64.TSS64{IOMapBase: amd64.TSS64_SIZE}
	tss.RSP[0] = uint64(l.entryStack.Add(page))
	for i, st := range l.stacks {
		tss.IST[i] = uint64(st.Add(exceptionStackSize))
	}
	tssBytes := tss.Encode()

	single := func(what string, content []byte) (mm.PhysAddr, error) {
		pa, err := s.Frames.AllocFrame()
		if err != nil {
			return 0, err
		}
		if err := writeBytes(s.CPU, what, s.DirectVA(pa), zeroPage[:]); err != nil {
			return 0, err
		}
		return pa, writeBytes(s.CPU, what, s.DirectVA(pa), content)
	}
	if a.IDTPA, err = single("the IDT", idt); err != nil {
		return err
	}
	if a.GDTPA, err = single("the GDT", gdt); err != nil {
		return err
	}
	entryPA, err := single("the entry stack", nil)
	if err != nil {
		return err
	}
	tssPA, err := s.Frames.AllocAligned(ceaTSSPages, page)
	if err != nil {
		return err
	}
	for i := range ceaTSSPages {
		if err := writeBytes(s.CPU, "the TSS", s.DirectVA(tssPA.Add(uint64(i)*page)), zeroPage[:]); err != nil {
			return err
		}
	}
	if err := writeBytes(s.CPU, "the TSS", s.DirectVA(tssPA), tssBytes[:]); err != nil {
		return err
	}
	for _, m := range []struct {
		va    mm.VirtAddr
		pa    mm.PhysAddr
		len   uint64
		attrs mm.Attr
	}{
		{l.idt, a.IDTPA, page, mm.PageKernelRO},
		{l.gdt, a.GDTPA, page, mm.PageKernelRO},
		{l.entryStack, entryPA, page, mm.PageKernel},
		{l.tss, tssPA, ceaTSSPages * page, mm.PageKernelRO},
	} {
		if err := s.AS.Map(m.va, m.pa, m.len, m.attrs, mm.Only(mm.Size4K)); err != nil {
			return err
		}
	}
	for _, st := range l.stacks {
		pa, err := s.Frames.AllocAligned(int(exceptionStackSize/page), page)
		if err != nil {
			return err
		}
		if err := s.AS.Map(st, pa, exceptionStackSize, mm.PageKernel, mm.Only(mm.Size4K)); err != nil {
			return err
		}
	}
	// cea_set_pte makes every present pte global, PTI or not: the area
	// is mapped alike in the kernel's tables and PTI's user copies.
	area := s.region(mm.KindCPUEntryArea)
	if err := s.AS.SetGlobal(area.Start, area.Size, true); err != nil {
		return err
	}

	// Switch the CPU to it as cpu_init does: the GDT through its writable
	// direct-map alias for LTR, which marks the descriptor busy
	// (load_direct_gdt, load_TR_desc), then the read-only alias
	// (load_fixmap_gdt); the IDT through its read-only alias.
	s.CPU.LGDT(uint64(s.DirectVA(a.GDTPA)), gdtEntries*8-1)
	s.CPU.LTR(gdtEntryTSS * 8)
	s.CPU.LGDT(uint64(l.gdt), gdtEntries*8-1)
	s.CPU.LIDT(uint64(l.idt), idtLimit)
	s.logf("physmap: cpu_entry_area in use: IDTR %v, GDTR %v, TR %#x (TSS at %v)", l.idt, l.gdt, gdtEntryTSS*8, l.tss)
	return nil
}

func (a *CPUEntryArea) Inject(s *Space, name string) error {
	l := layoutCEA(s.region(mm.KindCPUEntryArea).Start)
	switch name {
	case "cpu-entry-gdt-writable":
		return s.AS.Protect(l.gdt, page, mm.PageKernel)
	case "cpu-entry-idt-low":
		// The CPU back on TamaGo's IDT in the low window (the tables
		// untouched).
		s.CPU.LIDT(a.OrigIDT, a.IDTLimit)
		return nil
	case "cpu-entry-ist-off":
		// #DF's gate without its IST stack (bits 32-34), written past
		// the IDT alias's read-only pte.
		va := l.idt.Add(uint64(exceptionStacks[0].vector * amd64.GATE_SIZE))
		g, err := read64(s.CPU, "the #DF gate", va)
		if err != nil {
			return err
		}
		return patchReadOnly(s.CPU, "the #DF gate", va, binary.LittleEndian.AppendUint64(nil, g&^(7<<32)))
	}
	return fmt.Errorf("cpu_entry_area: no injection %q", name)
}

// Prove checks region.cpu_entry_area at the documented CPU_ENTRY_AREA_BASE
// from what the CPU says it uses: IDTR and GDTR must be the read-only
// aliases at their documented places; TR must select a busy TSS descriptor
// in that GDT whose base is the TSS alias; the IDT's gates must be the
// ones TamaGo set up, with Linux's IST index on #DF, NMI, #DB and #MC; the
// TSS's stack pointers must each end a mapped RW NX stack of the area
// below an unmapped page; the area must hold Linux's 16 pages; and a
// write to the GDT alias must fault, delivered through that IDT.
func (a *CPUEntryArea) Prove(p *Proof) {
	const name = "region.cpu_entry_area"
	base := p.spec(mm.KindCPUEntryArea).Start
	l := layoutCEA(base)
	idtBase, idtLimit := p.CPU.SIDT()
	gdtBase, gdtLimit := p.CPU.SGDT()
	tr := p.CPU.STR()
	var tss amd64.TSS64
	var desc amd64.TSSDescriptor
	err := func() error {
		if mm.VirtAddr(idtBase) != l.idt || mm.VirtAddr(gdtBase) != l.gdt {
			return fmt.Errorf("IDTR %#x and GDTR %#x, want the cpu_entry_area's IDT %v and GDT %v", idtBase, gdtBase, l.idt, l.gdt)
		}
		for _, t := range []struct {
			what string
			va   mm.VirtAddr
		}{{"IDT", l.idt}, {"GDT", l.gdt}} {
			if _, err := p.expectLeaf("the "+t.what+" alias", t.va, anyPA, mm.PageKernelRO); err != nil {
				return err
			}
		}
		// Every gate as TamaGo set it up, but the IST field.
		n := int(min(idtLimit, a.IDTLimit)) + 1
		got, err := readBytes(p.CPU, "the IDT", l.idt, n)
		if err != nil {
			return err
		}
		orig, err := readBytes(p.CPU, "TamaGo's IDT", mm.VirtAddr(a.OrigIDT), n)
		if err != nil {
			return err
		}
		for v := 0; (v+1)*amd64.GATE_SIZE <= n; v++ {
			g := amd64.DecodeGate(binary.LittleEndian.Uint64(got[v*16:]), binary.LittleEndian.Uint64(got[v*16+8:]))
			o := amd64.DecodeGate(binary.LittleEndian.Uint64(orig[v*16:]), binary.LittleEndian.Uint64(orig[v*16+8:]))
			want := o
			if o.Present {
				want.IST = istOf(v)
			}
			if g != want {
				return fmt.Errorf("IDT gate %d is %+v, want %+v", v, g, want)
			}
		}
		raw, err := readBytes(p.CPU, "the TSS descriptor", l.gdt.Add(uint64(tr&^7)), 16)
		if err != nil {
			return err
		}
		desc = amd64.DecodeTSSDescriptor(binary.LittleEndian.Uint64(raw), binary.LittleEndian.Uint64(raw[8:]))
		if tr == 0 || int(tr)+15 > int(gdtLimit) || desc.Type != amd64.TSS_TYPE_BUSY || !desc.Present || mm.VirtAddr(desc.Base) != l.tss || desc.Limit < amd64.TSS64_SIZE-1 {
			return fmt.Errorf("TR %#x selects %+v, want a busy TSS at %v", tr, desc, l.tss)
		}
		for i := range ceaTSSPages {
			t, err := p.expectLeaf("a TSS page", l.tss.Add(uint64(i)*page), anyPA, mm.PageKernelRO)
			if err != nil {
				return err
			}
			if err := p.expectDirect("TSS", t.PA); err != nil {
				return err
			}
		}
		tb, err := readBytes(p.CPU, "the TSS", l.tss, amd64.TSS64_SIZE)
		if err != nil {
			return err
		}
		tss = amd64.DecodeTSS64([amd64.TSS64_SIZE]byte(tb))
		tops := []uint64{tss.RSP[0]}
		tops = append(tops, tss.IST[:len(exceptionStacks)]...)
		for i, top := range tops {
			if err := p.expectStackTop(mm.VirtAddr(top), i == 0); err != nil {
				return err
			}
		}
		for _, g := range l.guards {
			if err := p.expectUnmapped("an exception-stack guard page", g); err != nil {
				return err
			}
		}
		r := p.spec(mm.KindCPUEntryArea)
		pages := 0
		for lf := range p.Live.Leaves(mm.VirtRange{Start: r.Start, End: r.Start.Add(r.Size)}) {
			pages += int(uint64(lf.Size) / page)
		}
		if pages != ceaPages {
			return fmt.Errorf("the cpu_entry_area maps %d pages, Linux 6.1's for one CPU %d", pages, ceaPages)
		}
		// A #PF now goes through the IDT alias.
		return p.expectReadOnly("the GDT alias", l.gdt)
	}()
	if err != nil {
		fail(p.R, name, "%v", err)
		return
	}
	pass(p.R, name, "IDTR %#x, GDTR %#x, TR %#x -> busy TSS at %v (RSP0 %#x, IST1-4 %#x..%#x on #DF, NMI, #DB, #MC); %d pages as Linux maps them, the IDT, GDT and TSS ro; each stack ends a RW NX stack; %d guard pages and a write to the GDT fault, delivered through this IDT",
		idtBase, gdtBase, tr, l.tss, tss.RSP[0], tss.IST[0], tss.IST[len(exceptionStacks)-1], ceaPages, len(l.guards))
}

// expectStackTop checks that top ends a stack in the live tables: the
// pages below it (one for the entry stack, exceptionStackSize for the
// others) are RW NX global and written through to page_offset_base+pa,
// and the page at top is not mapped.
func (p *Proof) expectStackTop(top mm.VirtAddr, entry bool) error {
	size := exceptionStackSize
	if entry {
		size = page
	}
	if !top.IsAligned(page) {
		return fmt.Errorf("stack top %v is not page aligned", top)
	}
	for off := uint64(page); off <= size; off += page {
		t, err := p.expectLeaf("a stack page", top.Sub(off), anyPA, mm.PageKernel)
		if err != nil {
			return err
		}
		if err := p.expectDirect("stack", t.PA); err != nil {
			return err
		}
		if err := p.expectWriteThrough("a stack page", top.Sub(off-page+8), p.DirectVA(t.PA).Add(page-8)); err != nil {
			return err
		}
	}
	if entry {
		return nil // the TSS's read-only alias follows the entry stack
	}
	return p.expectUnmapped("the guard page above a stack", top)
}
