package region

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/physmap/physmap/mm"
)

// Fixmap is the fixmap (arch/x86/include/asm/fixmap.h): compile-time slots
// counted down from FIXADDR_TOP, fix_to_virt(i) = FIXADDR_TOP - i*PAGE_SIZE,
// where FIXADDR_TOP = round_up(VSYSCALL_ADDR + PAGE_SIZE, PMD_SIZE) -
// PAGE_SIZE. The first slot is VSYSCALL_PAGE; the others lie below it.
// physmap uses two more, as text_poke did before Linux 5.x moved it to a
// temporary mm: a writable alias of the page(s) of kernel text being
// patched, mapped only for the copy.
type Fixmap struct {
	noFlush bool // the poke-no-flush injection
}

// fixmapSlots computes FIXADDR_TOP and the two poke slots below the
// vsyscall slot.
func fixmapSlots(vsyscall mm.VirtAddr) (poke0, poke1 mm.VirtAddr) {
	top := vsyscall.Add(page).AlignUp(uint64(mm.Size2M)).Sub(page)
	vs := uint64(top-vsyscall) / page // VSYSCALL_PAGE
	at := func(i uint64) mm.VirtAddr { return top.Sub(i * page) }
	return at(vs + 2), at(vs + 1)
}

func (f *Fixmap) Populate(s *Space) error {
	fm := s.region(mm.KindFixmap)
	p0, p1 := fixmapSlots(s.region(mm.KindVsyscall).Start)
	for _, va := range []mm.VirtAddr{p0, p1} {
		if !fm.Contains(va) {
			return fmt.Errorf("fixmap slot %v lies outside the fixmap %v-%v", va, fm.Start, fm.Last())
		}
	}
	return nil
}

func (f *Fixmap) Inject(s *Space, name string) error {
	if name != "poke-no-flush" {
		return fmt.Errorf("fixmap: no injection %q", name)
	}
	f.noFlush = true
	return nil
}

// pokeDelta is added to RIPProbe's LEA displacement by the text_poke
// proof: patched, RIPProbe returns its address + 7 + pokeDelta.
const pokeDelta = 0x2a000

// ripProbeDisp is the offset of the disp32 in RIPProbe's LEA RAX,
// [RIP+disp] (48 8d 05 disp32).
const ripProbeDisp = 3

// textPoke writes b over kernel text at addr the way text_poke did with
// fixmap slots: map the text's frame(s) writable at the slots, copy
// through that alias, clear the slots and flush (unless the injection
// skips it), serialise, then check the CPU can no longer reach the slots:
// a stale TLB entry would leave a writable alias of kernel text behind.
func (f *Fixmap) textPoke(p *Proof, addr mm.VirtAddr, b []byte, noFlush bool) error {
	s := p.Act
	p0, p1 := fixmapSlots(p.spec(mm.KindVsyscall).Start)
	first, last := addr.AlignDown(page), addr.Add(uint64(len(b)-1)).AlignDown(page)
	slots := []mm.VirtAddr{p0}
	if last != first {
		slots = append(slots, p1)
	}
	for i, slot := range slots {
		t, err := p.Live.Translate(first.Add(uint64(i) * page)) // virt_to_page
		if err != nil {
			return err
		}
		if err := s.AS.Map(slot, t.PA.AlignDown(page), page, mm.PageKernel, mm.Only(mm.Size4K)); err != nil {
			return fmt.Errorf("set_fixmap %v: %w", slot, err)
		}
	}
	// The slots are adjacent, POKE1 above POKE0: one linear copy.
	err := writeBytes(p.CPU, "kernel text through the fixmap", p0.Add(uint64(addr-first)), b)
	s.TLB.Skip = noFlush
	for _, slot := range slots {
		err = errors.Join(err, s.AS.Unmap(slot, page))
	}
	s.TLB.Skip = false
	if err != nil {
		return fmt.Errorf("clear_fixmap: %w", err)
	}
	p.CPU.CPUID(0, 0) // sync_core: CPUID serialises (SDM Vol. 3A 9.1.3)
	for _, slot := range slots {
		var q [8]byte
		if _, fault := p.CPU.Read(slot, q[:]); !fault.Faulted {
			s.TLB.InvalidatePage(slot) // the flush that was missing, so nothing stays writable
			return fmt.Errorf("the text_poke slot %v still reads through a stale TLB entry after clear_fixmap: a writable alias of kernel text outlived the patch", slot)
		}
	}
	got, err := readBytes(p.CPU, "patched text", addr, len(b))
	if err != nil {
		return err
	}
	if !bytes.Equal(got, b) {
		return fmt.Errorf("kernel text at %v reads % x after the poke, want % x", addr, got, b)
	}
	return nil
}

// Prove patches RIPProbe's LEA displacement through the fixmap, runs it
// through the kernel text mapping, and puts it back. Expectation: the
// value RIPProbe must return at its address, with and without the delta.
func (f *Fixmap) Prove(p *Proof) {
	const name = "region.fixmap.text_poke"
	if p.Bases.TextErr != nil {
		fail(p.R, name, "%v", p.Bases.TextErr)
		return
	}
	kva := p.KernelVA(p.Ref.Image.RIPProbe)
	disp := kva.Add(ripProbeDisp)
	orig, err := readBytes(p.CPU, "RIPProbe", disp, 4)
	if err != nil {
		fail(p.R, name, "%v", err)
		return
	}
	d := binary.LittleEndian.Uint32(orig)
	patched := binary.LittleEndian.AppendUint32(nil, d+pokeDelta)
	want := uint64(kva) + RIPProbeLen + uint64(int64(int32(d)))
	var got1, got2 uint64
	err = f.textPoke(p, disp, patched, f.noFlush)
	if err == nil {
		var fl1 error
		if r, ft := p.CPU.Call(kva); ft.Faulted {
			fl1 = fmt.Errorf("calling RIPProbe at %v: %v", kva, ft)
		} else {
			got1 = r
		}
		err = fl1
	}
	err = errors.Join(err, f.textPoke(p, disp, orig, false))
	if err == nil {
		if r, ft := p.CPU.Call(kva); ft.Faulted {
			err = fmt.Errorf("calling RIPProbe at %v: %v", kva, ft)
		} else {
			got2 = r
		}
	}
	p0, _ := fixmapSlots(p.spec(mm.KindVsyscall).Start)
	switch {
	case err != nil:
		fail(p.R, name, "%v", err)
	case got1 != want+pokeDelta:
		fail(p.R, name, "patched RIPProbe at %v returned %#x, want %#x", kva, got1, want+pokeDelta)
	case got2 != want:
		fail(p.R, name, "restored RIPProbe at %v returned %#x, want %#x", kva, got2, want)
	default:
		if err := p.expectUnmapped("FIX_TEXT_POKE0", p0); err != nil {
			fail(p.R, name, "%v", err)
			return
		}
		pass(p.R, name, "RIPProbe's displacement at %v (ro x) patched % x -> % x through FIX_TEXT_POKE0 %v (RW NX), cleared with INVLPG: the call at %v returned %#x = +%#x, then %#x once restored; the slot faults again",
			disp, orig, patched, p0, kva, got1, pokeDelta, got2)
	}
}
