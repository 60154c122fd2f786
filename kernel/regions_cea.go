//go:build tamago

package main

import (
	"bytes"
	"fmt"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/mm"
)

// The cpu_entry_area (arch/x86/mm/cpu_entry_area.c, arch/x86/include/asm/
// cpu_entry_area.h): at CPU_ENTRY_AREA_BASE a read-only alias of the IDT
// (CPU_ENTRY_AREA_RO_IDT), then one area per CPU holding read-only
// aliases of its GDT and TSS, its entry (trampoline) stack and its IST
// exception stacks with unmapped guard pages between them. Every pte is
// global (cea_set_pte). physmap builds CPU 0's area; its TSS is one page
// (no I/O bitmap), which physmap builds but does not load with LTR: the
// GDT has no TSS descriptor, and LTR would write the descriptor's busy bit
// into a GDT that lies in read-only data.

// exceptionStackSize is EXCEPTION_STKSZ without KASAN: PAGE_SIZE <<
// EXCEPTION_STACK_ORDER (1), arch/x86/include/asm/page_64_types.h.
const exceptionStackSize = 2 * page

// exceptionStacks are the IST stacks of struct cea_exception_stacks in
// order, each below its guard page; TSS IST1 to IST4 point at their tops
// (IST_INDEX_DF, _NMI, _DB, _MCE).
var exceptionStacks = [...]string{"DF", "NMI", "DB", "MCE"}

// ceaStack is one exception stack.
type ceaStack struct {
	va mm.VirtAddr // its lowest address
	pa mm.PhysAddr // its frames, contiguous
}

func (s ceaStack) top() mm.VirtAddr { return s.va.Add(exceptionStackSize) }

// cpuEntryArea is CPU 0's cpu_entry_area as built.
type cpuEntryArea struct {
	idt, gdt        descAlias
	entryStack, tss mm.VirtAddr
	entryPA, tssPA  mm.PhysAddr
	stacks          [len(exceptionStacks)]ceaStack
	guards          []mm.VirtAddr // the unmapped pages between and above the stacks
	tssWant         amd64.TSS64
}

// descAlias is a read-only alias of a descriptor table: the pages holding
// [lin, lin+limit], found by the tables being built (the GDT and IDT live
// in the identity-mapped runtime window).
type descAlias struct {
	va     mm.VirtAddr   // the alias of the first page
	frames []mm.PhysAddr // the frames of the pages, in order
}

func (k *kspace) descAlias(what string, va mm.VirtAddr, lin uint64, limit uint16) (descAlias, error) {
	a := descAlias{va: va}
	first, last := mm.VirtAddr(lin).AlignDown(page), mm.VirtAddr(lin+uint64(limit)).AlignDown(page)
	for p := first; p <= last; p = p.Add(page) {
		t, err := k.as.Translate(p)
		if err != nil {
			return a, fmt.Errorf("the %s at %#x: %w", what, lin, err)
		}
		a.frames = append(a.frames, t.PA.AlignDown(page))
	}
	return a, nil
}

// size returns the alias's length.
func (a descAlias) size() uint64 { return uint64(len(a.frames)) * page }

func (k *kspace) populateCEA() error {
	c := &k.reg.cea
	base := k.region(mm.KindCPUEntryArea).Start
	// CPU_ENTRY_AREA_RO_IDT. Linux's idt_table is one aligned page;
	// TamaGo's IDT need not be aligned, and then its alias takes two
	// pages and the per-CPU area starts one page later.
	idtBase, idtLimit := amd64.Sidt()
	var err error
	if c.idt, err = k.descAlias("IDT", base, idtBase, idtLimit); err != nil {
		return err
	}
	gdtBase, gdtLimit := amd64.Sgdt()
	if c.gdt, err = k.descAlias("GDT", base.Add(c.idt.size()), gdtBase, gdtLimit); err != nil {
		return err
	}
	c.entryStack = c.gdt.va.Add(c.gdt.size()) // entry_stack_page, guarded below by the read-only GDT
	c.tss = c.entryStack.Add(page)
	frames, err := k.frames.AllocScattered(2)
	if err != nil {
		return err
	}
	c.entryPA, c.tssPA = frames[0], frames[1]
	k.zeroFrame(c.entryPA)
	k.zeroFrame(c.tssPA)

	va := c.tss.Add(page)
	for i := range c.stacks {
		c.guards = append(c.guards, va)
		pa, err := k.frames.AllocAligned(int(exceptionStackSize/page), page)
		if err != nil {
			return err
		}
		c.stacks[i] = ceaStack{va: va.Add(page), pa: pa}
		va = va.Add(page + exceptionStackSize)
	}
	c.guards = append(c.guards, va) // IST_top_guard

	// The TSS, written through the direct map: RSP0 at the top of the
	// entry stack (Linux's load_sp0 of cpu_entry_stack + 1), IST1-4 at
	// the tops of the exception stacks (tss_setup_ist), no I/O bitmap.
	c.tssWant = amd64.TSS64{IOMapBase: amd64.TSS64_SIZE}
	c.tssWant.RSP[0] = uint64(c.entryStack.Add(page))
	for i, s := range c.stacks {
		c.tssWant.IST[i] = uint64(s.top())
	}
	b := c.tssWant.Encode()
	writeBytes(k.directVA(c.tssPA), b[:])

	maps := []struct {
		va    mm.VirtAddr
		pa    mm.PhysAddr
		n     uint64
		attrs mm.Attr
	}{
		{c.entryStack, c.entryPA, page, mm.PageKernel},
		{c.tss, c.tssPA, page, mm.PageKernelRO},
	}
	for _, a := range []descAlias{c.idt, c.gdt} {
		for i, pa := range a.frames {
			if err := k.as.Map(a.va.Add(uint64(i)*page), pa, page, mm.PageKernelRO, mm.Only(mm.Size4K)); err != nil {
				return err
			}
		}
	}
	for _, s := range c.stacks {
		maps = append(maps, struct {
			va    mm.VirtAddr
			pa    mm.PhysAddr
			n     uint64
			attrs mm.Attr
		}{s.va, s.pa, exceptionStackSize, mm.PageKernel})
	}
	for _, m := range maps {
		if err := k.as.Map(m.va, m.pa, m.n, m.attrs, mm.Only(mm.Size4K)); err != nil {
			return err
		}
	}
	return nil
}

// sameBytes compares n bytes at an alias with the bytes at the original.
func sameBytes(what string, alias, orig mm.VirtAddr, n int) error {
	for _, va := range []mm.VirtAddr{alias, orig} {
		if _, err := probe(va.AlignDown(8)); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	a, b := readBytes(alias, n), readBytes(orig, n)
	if !bytes.Equal(a, b) {
		return fmt.Errorf("the %s alias at %v differs from the %s at %v", what, alias, what, orig)
	}
	return nil
}

func (k *kspace) proveCEA(r *report, live *mm.AddressSpace) {
	c := &k.reg.cea
	var gdtBase, idtBase uint64
	var gdtLimit, idtLimit uint16
	err := func() error {
		for _, a := range []struct {
			what string
			a    descAlias
		}{{"IDT alias", c.idt}, {"GDT alias", c.gdt}} {
			for i, pa := range a.a.frames {
				if _, err := k.expectLeaf(live, a.what, a.a.va.Add(uint64(i)*page), pa, mm.PageKernelRO); err != nil {
					return err
				}
			}
		}
		if _, err := k.expectLeaf(live, "entry stack", c.entryStack, c.entryPA, mm.PageKernel); err != nil {
			return err
		}
		if _, err := k.expectLeaf(live, "TSS alias", c.tss, c.tssPA, mm.PageKernelRO); err != nil {
			return err
		}
		// The descriptor tables the CPU uses, read through SGDT's and
		// SIDT's bases, and through their aliases.
		gdtBase, gdtLimit = amd64.Sgdt()
		if err := sameBytes("GDT", c.gdt.va.Add(gdtBase%page), mm.VirtAddr(gdtBase), int(gdtLimit)+1); err != nil {
			return err
		}
		idtBase, idtLimit = amd64.Sidt()
		if err := sameBytes("IDT", c.idt.va.Add(idtBase%page), mm.VirtAddr(idtBase), int(idtLimit)+1); err != nil {
			return err
		}
		if err := expectReadOnly("the GDT alias", c.gdt.va.Add(gdtBase%page)); err != nil {
			return err
		}
		// The TSS alias shows the TSS frame, and the TSS points into
		// this area.
		if err := expectDirect(k, live, "TSS", c.tssPA); err != nil {
			return err
		}
		if err := sameBytes("TSS", c.tss, k.directVA(c.tssPA), amd64.TSS64_SIZE); err != nil {
			return err
		}
		var raw [amd64.TSS64_SIZE]byte
		copy(raw[:], readBytes(c.tss, amd64.TSS64_SIZE))
		if got := amd64.DecodeTSS64(raw); got != c.tssWant {
			return fmt.Errorf("the TSS alias holds %+v, want %+v", got, c.tssWant)
		}
		// Stacks: mapped RW+NX, written through, guarded.
		stacks := []ceaStack{{va: c.entryStack, pa: c.entryPA}}
		stacks = append(stacks, c.stacks[:]...)
		for i, s := range stacks {
			size := exceptionStackSize
			if i == 0 {
				size = page
			}
			for off := uint64(0); off < size; off += page {
				if _, err := k.expectLeaf(live, "stack page", s.va.Add(off), s.pa.Add(off), mm.PageKernel); err != nil {
					return err
				}
			}
			top, lo := s.va.Add(size-8), k.directVA(s.pa.Add(size-8))
			if f := amd64.ProbeWrite64(uint64(top), canary); f.Faulted {
				return fmt.Errorf("pushing on the stack at %v: %v", top, f)
			}
			got := read64(lo)
			write64(top, 0)
			if got != canary {
				return fmt.Errorf("canary written at %v read %#x at page_offset_base+pa %v", top, got, lo)
			}
		}
		for _, g := range c.guards {
			if err := expectUnmapped(live, "an exception-stack guard page", g); err != nil {
				return err
			}
		}
		return nil
	}()
	if err != nil {
		r.fail("region.cpu_entry_area", "%v", err)
		return
	}
	r.pass("region.cpu_entry_area", "IDT alias %v = SIDT %#x, GDT alias %v = SGDT %#x (%d bytes, ro, a write faults), TSS alias %v = frame %v (RSP0 %#x, IST1-4 %#x..%#x), entry stack and %d exception stacks RW NX written through, %d guard pages fault",
		c.idt.va.Add(idtBase%page), idtBase, c.gdt.va.Add(gdtBase%page), gdtBase, int(gdtLimit)+1, c.tss, c.tssPA,
		c.tssWant.RSP[0], c.tssWant.IST[0], c.tssWant.IST[len(exceptionStacks)-1], len(exceptionStacks), len(c.guards))
}
