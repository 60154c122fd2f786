//go:build tamago

package main

import (
	"errors"
	"fmt"

	"golang.org/x/arch/x86/x86asm"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/mm"
)

// canary is written through one alias and read back through the other.
const canary = 0x5048_5953_4d41_5021 // "!PAMSYHP"

// live opens the tables the CPU uses, from CR3, independently of the
// builder's bookkeeping.
func (k *kspace) live() *mm.AddressSpace {
	return mm.Open(k.as.Mode(), mm.PhysAddr(amd64.ReadCR3()&amd64.CR3_ADDR_MASK), k.mem)
}

// probe reads va, reporting a fault instead of dying of it.
func probe(va mm.VirtAddr) (uint64, error) {
	v, f := amd64.ProbeRead64(uint64(va))
	if f.Faulted {
		return 0, fmt.Errorf("reading %v: %v", va, f)
	}
	return v, nil
}

// pages calls fn for every 4 KiB page of r, stopping at the first error.
func pages(r mm.PhysRange, fn func(pa mm.PhysAddr) error) (n int, err error) {
	for pa := r.Start; pa < r.End; pa = pa.Add(page) {
		if err := fn(pa); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// proveWalk checks, on the live tables, that every image page translates to
// its own frame through the kernel text mapping, the direct map and the low
// window.
func (k *kspace) proveWalk(r *report, live *mm.AddressSpace) {
	n, err := pages(k.img.all(), func(pa mm.PhysAddr) error {
		for _, va := range []mm.VirtAddr{k.kernelVA(pa), k.directVA(pa), mm.VirtAddr(pa)} {
			t, err := live.Translate(va)
			if err != nil {
				return fmt.Errorf("%v (alias of %v): %w", va, pa, err)
			}
			if t.PA != pa {
				return fmt.Errorf("%v translates to %v, want %v", va, t.PA, pa)
			}
		}
		return nil
	})
	if err != nil {
		r.fail("walk.image", "%v", err)
		return
	}
	r.pass("walk.image", "%d image pages of %v, each the same frame at __START_KERNEL_map+pa, page_offset_base+pa and pa", n, k.img.all())
}

// proveDirectMap checks that the direct map at page_offset_base (the
// documented base, or the one memory KASLR chose) covers every RAM range
// exactly and nothing else.
func (k *kspace) proveDirectMap(r *report, live *mm.AddressSpace) {
	// The size in force: memory KASLR sizes the region to the RAM, and
	// beyond it lie the other regions' leaves.
	region, _ := k.layout.Region(mm.KindDirectMap)
	region.Start = k.wantPageOffset
	want := k.directMapRAM()
	var covered, total uint64
	for _, ram := range want {
		total += ram.Len()
	}
	var bad error
	for leaf := range live.Leaves(mm.VirtRange{Start: region.Start, End: region.Start.Add(region.Size)}) {
		pa := mm.PhysAddr(leaf.VA - region.Start)
		if leaf.PA != pa {
			bad = fmt.Errorf("leaf at %v maps %v, not page_offset_base+%v", leaf.VA, leaf.PA, pa)
			break
		}
		end := pa.Add(uint64(leaf.Size))
		inRAM := false
		for _, ram := range want {
			inRAM = inRAM || (ram.Start <= pa && end <= ram.End)
		}
		if !inRAM {
			bad = fmt.Errorf("leaf %v maps [%v, %v), which is not RAM", leaf.VA, pa, end)
			break
		}
		covered += uint64(leaf.Size)
	}
	switch {
	case bad != nil:
		r.fail("walk.directmap", "%v", bad)
	case covered != total:
		r.fail("walk.directmap", "page_offset_base %v maps %d MiB of the %d MiB of RAM (and the ISA range)", region.Start, covered>>20, total>>20)
	default:
		r.pass("walk.directmap", "page_offset_base %v maps all %d MiB of RAM and the ISA range, no hole mapped", region.Start, total>>20)
	}
}

// provePerms checks Linux's permissions on both aliases of the image.
func (k *kspace) provePerms(r *report, live *mm.AddressSpace) {
	type rule struct {
		name        string
		r           mm.PhysRange
		va          func(mm.PhysAddr) mm.VirtAddr
		write, exec bool
	}
	rules := []rule{
		{"kernel text", k.img.text, k.kernelVA, false, true},
		{"kernel rodata", k.img.rodata, k.kernelVA, false, false},
		{"kernel data", k.img.data, k.kernelVA, true, false},
		{"direct-map alias of text", k.img.text, k.directVA, false, false},
		{"direct-map alias of rodata", k.img.rodata, k.directVA, false, false},
		{"direct-map alias of data", k.img.data, k.directVA, true, false},
	}
	for _, ru := range rules {
		_, err := pages(ru.r, func(pa mm.PhysAddr) error {
			t, err := live.Translate(ru.va(pa))
			if err != nil {
				return err
			}
			w, x := t.Attrs&mm.AttrWrite != 0, t.Attrs&mm.AttrNX == 0
			if w != ru.write || x != ru.exec {
				return fmt.Errorf("%s at %v is %v, want write=%v exec=%v", ru.name, t.VA, t.Attrs, ru.write, ru.exec)
			}
			return nil
		})
		if err != nil {
			r.fail("walk.perms", "%v", err)
			return
		}
	}
	stext := k.kernelVA(k.img.text.Start)
	t, err := live.Translate(stext)
	if err != nil {
		r.fail("walk.perms", "_stext %v: %v", stext, err)
		return
	}
	va := k.directVA(t.PA)
	r.check("walk.perms", va != stext, "text RO+X, rodata RO+NX, data RW+NX, direct-map text and rodata RO+NX; _stext=%v __pa(_stext)=%v __va(__pa(_stext))=%v != _stext", stext, t.PA, va)
}

// proveContent compares every image page read through the kernel text
// mapping with the same page read through the direct map.
func (k *kspace) proveContent(r *report) {
	n, err := pages(k.img.all(), func(pa mm.PhysAddr) error {
		hi, lo := k.kernelVA(pa), k.directVA(pa)
		// Probe each alias once: a missing page is a FAIL, not a crash.
		if _, err := probe(hi); err != nil {
			return err
		}
		if _, err := probe(lo); err != nil {
			return err
		}
		for off := uint64(0); off < page; off += 8 {
			if a, b := read64(hi.Add(off)), read64(lo.Add(off)); a != b {
				return fmt.Errorf("%v holds %#x but %v holds %#x", hi.Add(off), a, lo.Add(off), b)
			}
		}
		return nil
	})
	if err != nil {
		r.fail("content", "%v", err)
		return
	}
	r.pass("content", "%d image pages read the same through __START_KERNEL_map and page_offset_base", n)
}

// proveWriteThrough writes a canary through the kernel text mapping of
// every data and bss page and reads it back through the direct map.
func (k *kspace) proveWriteThrough(r *report) {
	n, err := pages(k.img.data, func(pa mm.PhysAddr) error {
		hi, lo := k.kernelVA(pa), k.directVA(pa)
		if _, err := probe(lo); err != nil {
			return err
		}
		old, err := probe(hi)
		if err != nil {
			return err
		}
		if f := amd64.ProbeWrite64(uint64(hi), canary); f.Faulted {
			return fmt.Errorf("writing %v: %v", hi, f)
		}
		got := read64(lo)
		write64(hi, old)
		if got != canary {
			return fmt.Errorf("wrote %#x at %v, read %#x at %v", uint64(canary), hi, got, lo)
		}
		return nil
	})
	if err != nil {
		r.fail("write-through", "%v", err)
		return
	}
	r.pass("write-through", "a canary written at __START_KERNEL_map+pa read back at page_offset_base+pa on all %d data and bss pages", n)
}

// decode disassembles the instruction at va (read through the low window
// alias lowVA, which is always readable).
func decode(lowVA mm.VirtAddr) string { return disasm(readBytes(lowVA, 16), uint64(lowVA)) }

// disasm decodes the instruction at the start of b, located at pc.
func disasm(b []byte, pc uint64) string {
	inst, err := x86asm.Decode(b, 64)
	if err != nil {
		return fmt.Sprintf("(undecodable: %v)", err)
	}
	return x86asm.IntelSyntax(inst, pc, nil)
}

// proveExec calls RIPProbe through its kernel text mapping alias.
func (k *kspace) proveExec(r *report) {
	pa := mm.PhysAddr(amd64.RIPProbeAddr())
	va := k.kernelVA(pa)
	got, f := amd64.ProbeCall(uint64(va))
	want := uint64(va) + amd64.RIPProbeLen
	region, _ := k.layout.Region(mm.KindKernelText)
	switch {
	case f.Faulted:
		r.fail("exec.kernel", "calling %v: %v", va, f)
	case got != want || !region.Contains(mm.VirtAddr(got)):
		r.fail("exec.kernel", "RIPProbe at %v reported RIP %#x, want %#x", va, got, want)
	default:
		r.pass("exec.kernel", "RIPProbe (pa %v) called at %v ran there: RIP after its first instruction %#x", pa, va, got)
	}
}

// expectFault runs one access that must fault with the wanted error-code
// bits set, and names the fault.
func expectFault(r *report, name, what string, f amd64.Fault, want amd64.PFError, insnVA mm.VirtAddr) {
	if !f.Faulted {
		r.fail(name, "%s did not fault", what)
		return
	}
	if f.Code&want != want {
		r.fail(name, "%s faulted with %v (code %#x), want bits %v", what, f.Code, uint64(f.Code), want)
		return
	}
	r.pass(name, "%s: #PF cr2=%#x code=%#x (%v) at rip=%#x: %s", what, f.CR2, uint64(f.Code), f.Code, f.RIP, decode(insnVA))
}

// proveFaults provokes the three faults the layout promises.
func (k *kspace) proveFaults(r *report) {
	pa := mm.PhysAddr(amd64.RIPProbeAddr())
	_, f := amd64.ProbeCall(uint64(k.directVA(pa)))
	expectFault(r, "fault.nx", fmt.Sprintf("executing RIPProbe through the direct map at %v", k.directVA(pa)), f, amd64.PF_P|amd64.PF_I, mm.VirtAddr(pa))

	text := k.kernelVA(k.img.text.Start)
	b := *(*byte)(ptrAt(mm.VirtAddr(k.img.text.Start)))
	f = amd64.ProbeWrite8(uint64(text), b) // the byte already there: harmless if it lands
	expectFault(r, "fault.ro", fmt.Sprintf("writing kernel text at %v", text), f, amd64.PF_P|amd64.PF_W, mm.VirtAddr(f.RIP))

	guard, _ := k.layout.Region(mm.KindGuardHole)
	_, f = amd64.ProbeRead64(uint64(guard.Start))
	expectFault(r, "fault.guard", fmt.Sprintf("reading the guard hole at %v", guard.Start), f, 0, mm.VirtAddr(f.RIP))
	if f.Faulted && f.Code&amd64.PF_P != 0 {
		r.fail("fault.guard", "the guard hole fault says the page is present (%v)", f.Code)
	}
}

// proveTLB changes a live entry and checks the CPU sees the change: a
// forgotten invalidation leaves the old translation in the TLB.
func (k *kspace) proveTLB(r *report, skip bool) {
	vm, _ := k.layout.Region(mm.KindVmalloc)
	va := vm.Start
	a, errA := k.alloc.AllocFrame()
	b, errB := k.alloc.AllocFrame()
	if err := errors.Join(errA, errB); err != nil {
		r.fail("tlb", "scratch frames: %v", err)
		return
	}
	k.mem.Write64(a, 0xaaaa_aaaa_aaaa_aaaa)
	k.mem.Write64(b, 0xbbbb_bbbb_bbbb_bbbb)
	if err := k.as.Map(va, a, page, mm.PageKernel, mm.Only(mm.Size4K)); err != nil {
		r.fail("tlb", "map %v: %v", va, err)
		return
	}
	first := read64(va) // now in the TLB
	k.tlb.skip = skip
	err := errors.Join(k.as.Unmap(va, page), k.as.Map(va, b, page, mm.PageKernel, mm.Only(mm.Size4K)))
	k.tlb.skip = false
	second := read64(va)
	err = errors.Join(err, k.as.Unmap(va, page), k.alloc.FreeFrame(a), k.alloc.FreeFrame(b))
	switch {
	case err != nil:
		r.fail("tlb", "%v", err)
	case first != 0xaaaa_aaaa_aaaa_aaaa || second != 0xbbbb_bbbb_bbbb_bbbb:
		r.fail("tlb", "%v remapped from frame %v to %v, but the CPU read %#x then %#x: a stale TLB entry", va, a, b, first, second)
	default:
		r.pass("tlb", "%v remapped from frame %v to %v with INVLPG: the CPU read %#x then %#x", va, a, b, first, second)
	}
}

// proveStructure runs mm's checker and the W+X audit on the live tables.
func (k *kspace) proveStructure(r *report, live *mm.AddressSpace, physBits uint) {
	dm, _ := k.layout.Region(mm.KindDirectMap)
	opt := mm.CheckOptions{
		PhysBits: physBits,
		Owns:     k.alloc.Owns,
		Aliases:  []mm.VirtRange{{Start: dm.Start, End: dm.Start.Add(dm.Size)}, {Start: mm.VirtAddr(k.window.Start), End: mm.VirtAddr(k.window.End)}},
		Layout:   k.layout,
	}
	if err := mm.Check(live, opt); err != nil {
		r.fail("mm.check", "%v", err)
	} else {
		r.pass("mm.check", "%d table pages: reserved bits clear, huge pages aligned, no table shared or mapped outside the aliases, all owned, no W+X leaf", live.TablePages())
	}
	guard, _ := k.layout.Region(mm.KindGuardHole)
	half := mm.VirtRange{Start: guard.Start, End: mm.VirtAddr(^uint64(0) &^ (page - 1))}
	wx := mm.WXPages(live, half)
	fmt.Println(mm.WXReport(wx))
	low := mm.WXPages(live, mm.VirtRange{Start: mm.VirtAddr(k.window.Start), End: mm.VirtAddr(k.window.End)})
	fmt.Printf("physmap: low window %v: %s\n", k.window, mm.WXReport(low))
	r.check("wx", wx == 0 && low == 0, "%d W+X pages in the kernel half %v, %d in the low window", wx, half, low)
}
