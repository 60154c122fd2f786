package region

import (
	"fmt"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/mm"
)

// CPUEntryArea is the cpu_entry_area (arch/x86/mm/cpu_entry_area.c:
// setup_cpu_entry_area, arch/x86/include/asm/cpu_entry_area.h): at
// CPU_ENTRY_AREA_BASE a read-only alias of the IDT (CPU_ENTRY_AREA_RO_IDT),
// then CPU 0's area: a read-only alias of its GDT, its entry stack, its
// TSS, and IST exception stacks with unmapped guard pages between them.
// Every pte is global (cea_set_pte). physmap's TSS is one page (no I/O
// bitmap), built but not loaded with LTR: the GDT has no TSS descriptor,
// and LTR would write the descriptor's busy bit into a GDT that lies in
// read-only data.
type CPUEntryArea struct{}

// exceptionStackSize is EXCEPTION_STKSZ without KASAN: PAGE_SIZE <<
// EXCEPTION_STACK_ORDER (1), arch/x86/include/asm/page_64_types.h.
const exceptionStackSize = 2 * page

// exceptionStacks are the IST stacks of struct cea_exception_stacks in
// order, each below its guard page; TSS IST1 to IST4 point at their tops
// (IST_INDEX_DF, _NMI, _DB, _MCE).
var exceptionStacks = [...]string{"DF", "NMI", "DB", "MCE"}

// ceaLayout is where each piece of CPU 0's area lies, computed from the
// IDT's and GDT's sizes as SIDT and SGDT give them.
type ceaLayout struct {
	idt, gdt   mm.VirtAddr // the aliases of the tables' first pages
	idtPages   int
	gdtPages   int
	entryStack mm.VirtAddr
	tss        mm.VirtAddr
	stacks     [len(exceptionStacks)]mm.VirtAddr // each stack's lowest address
	guards     []mm.VirtAddr
}

// pagesSpanned is how many pages [lin, lin+limit] touches.
func pagesSpanned(lin uint64, limit uint16) int {
	first, last := lin/page, (lin+uint64(limit))/page
	return int(last - first + 1)
}

func layoutCEA(base mm.VirtAddr, c CPU) ceaLayout {
	idtBase, idtLimit := c.SIDT()
	gdtBase, gdtLimit := c.SGDT()
	// Linux's idt_table is one aligned page; TamaGo's IDT need not be
	// aligned, and then its alias takes two pages and CPU 0's area starts
	// one page later.
	l := ceaLayout{idt: base, idtPages: pagesSpanned(idtBase, idtLimit), gdtPages: pagesSpanned(gdtBase, gdtLimit)}
	l.gdt = base.Add(uint64(l.idtPages) * page)
	l.entryStack = l.gdt.Add(uint64(l.gdtPages) * page) // guarded below by the read-only GDT
	l.tss = l.entryStack.Add(page)
	va := l.tss.Add(page)
	for i := range l.stacks {
		l.guards = append(l.guards, va)
		l.stacks[i] = va.Add(page)
		va = va.Add(page + exceptionStackSize)
	}
	l.guards = append(l.guards, va) // IST_top_guard
	return l
}

func (a *CPUEntryArea) Populate(s *Space) error {
	l := layoutCEA(s.region(mm.KindCPUEntryArea).Start, s.CPU)
	idtBase, _ := s.CPU.SIDT()
	gdtBase, _ := s.CPU.SGDT()
	for _, alias := range []struct {
		what  string
		va    mm.VirtAddr
		lin   uint64
		pages int
	}{{"IDT", l.idt, idtBase, l.idtPages}, {"GDT", l.gdt, gdtBase, l.gdtPages}} {
		for i := range alias.pages {
			t, err := s.AS.Translate(mm.VirtAddr(alias.lin).AlignDown(page).Add(uint64(i) * page))
			if err != nil {
				return fmt.Errorf("the %s at %#x: %w", alias.what, alias.lin, err)
			}
			if err := s.AS.Map(alias.va.Add(uint64(i)*page), t.PA.AlignDown(page), page, mm.PageKernelRO, mm.Only(mm.Size4K)); err != nil {
				return err
			}
		}
	}
	frames, err := s.Frames.AllocScattered(2)
	if err != nil {
		return err
	}
	entryPA, tssPA := frames[0], frames[1]
	for _, pa := range frames {
		if err := writeBytes(s.CPU, "a cpu_entry_area frame", s.DirectVA(pa), zeroPage[:]); err != nil {
			return err
		}
	}
	// The TSS, written through the direct map: RSP0 at the top of the
	// entry stack (load_sp0 of cpu_entry_stack + 1), IST1-4 at the tops of
	// the exception stacks (tss_setup_ist), no I/O bitmap.
	tss := amd64.TSS64{IOMapBase: amd64.TSS64_SIZE}
	tss.RSP[0] = uint64(l.entryStack.Add(page))
	for i, st := range l.stacks {
		tss.IST[i] = uint64(st.Add(exceptionStackSize))
	}
	b := tss.Encode()
	if err := writeBytes(s.CPU, "the TSS", s.DirectVA(tssPA), b[:]); err != nil {
		return err
	}
	if err := s.AS.Map(l.entryStack, entryPA, page, mm.PageKernel, mm.Only(mm.Size4K)); err != nil {
		return err
	}
	if err := s.AS.Map(l.tss, tssPA, page, mm.PageKernelRO, mm.Only(mm.Size4K)); err != nil {
		return err
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
	return nil
}

func (a *CPUEntryArea) Inject(s *Space, name string) error {
	if name != "cpu-entry-gdt-writable" {
		return fmt.Errorf("cpu_entry_area: no injection %q", name)
	}
	l := layoutCEA(s.region(mm.KindCPUEntryArea).Start, s.CPU)
	return s.AS.Protect(l.gdt, uint64(l.gdtPages)*page, mm.PageKernel)
}

// Prove checks region.cpu_entry_area at the documented CPU_ENTRY_AREA_BASE.
// Expectations: the IDT and GDT the CPU uses (SIDT, SGDT) and their frames
// in the live tables; the TSS decoded from its alias, whose stack pointers
// must each end a mapped RW NX stack of the area below an unmapped page.
func (a *CPUEntryArea) Prove(p *Proof) {
	const name = "region.cpu_entry_area"
	base := p.spec(mm.KindCPUEntryArea).Start
	l := layoutCEA(base, p.CPU)
	idtBase, idtLimit := p.CPU.SIDT()
	gdtBase, gdtLimit := p.CPU.SGDT()
	var tss amd64.TSS64
	err := func() error {
		for _, alias := range []struct {
			what  string
			va    mm.VirtAddr
			lin   uint64
			limit uint16
			pages int
		}{{"IDT", l.idt, idtBase, idtLimit, l.idtPages}, {"GDT", l.gdt, gdtBase, gdtLimit, l.gdtPages}} {
			for i := range alias.pages {
				orig := mm.VirtAddr(alias.lin).AlignDown(page).Add(uint64(i) * page)
				t, err := p.Live.Translate(orig)
				if err != nil {
					return fmt.Errorf("the %s the CPU uses at %v: %w", alias.what, orig, err)
				}
				if _, err := expectLeaf(p.Live, "the "+alias.what+" alias", alias.va.Add(uint64(i)*page), t.PA.AlignDown(page), mm.PageKernelRO); err != nil {
					return err
				}
			}
			at := alias.va.Add(alias.lin % page)
			if err := p.sameBytes("the "+alias.what+" alias", at, mm.VirtAddr(alias.lin), int(alias.limit)+1); err != nil {
				return err
			}
		}
		if err := p.expectReadOnly("the GDT alias", l.gdt.Add(gdtBase%page)); err != nil {
			return err
		}
		t, err := expectLeaf(p.Live, "the TSS alias", l.tss, anyPA, mm.PageKernelRO)
		if err != nil {
			return err
		}
		if err := p.expectDirect("TSS", t.PA); err != nil {
			return err
		}
		raw, err := readBytes(p.CPU, "the TSS", l.tss, amd64.TSS64_SIZE)
		if err != nil {
			return err
		}
		tss = amd64.DecodeTSS64([amd64.TSS64_SIZE]byte(raw))
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
		return nil
	}()
	if err != nil {
		fail(p.R, name, "%v", err)
		return
	}
	pass(p.R, name, "IDT alias %v = SIDT %#x, GDT alias %v = SGDT %#x (%d bytes, ro, a write faults), TSS alias %v (RSP0 %#x, IST1-4 %#x..%#x), each stack top ends a RW NX stack written through, %d guard pages fault",
		l.idt.Add(idtBase%page), idtBase, l.gdt.Add(gdtBase%page), gdtBase, int(gdtLimit)+1, l.tss,
		tss.RSP[0], tss.IST[0], tss.IST[len(exceptionStacks)-1], len(l.guards))
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
		t, err := expectLeaf(p.Live, "a stack page", top.Sub(off), anyPA, mm.PageKernel)
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
