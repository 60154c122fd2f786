package region

import (
	"bytes"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"

	"github.com/physmap/physmap/mm"
)

// ESPFix is the espfix area as init_espfix_bsp, init_espfix_random and
// init_espfix_ap build it for CPU 0 (arch/x86/kernel/espfix_64.c). IRET to
// a 16-bit stack restores only SP's low 16 bits, so the entry code writes
// the IRET frame into a 64-byte ministack through the page's writable
// direct-map alias and returns on a read-only alias whose bits 16-31 match
// the user's ESP: the page is mapped at 65536 places 64 KiB apart in a
// 4 GiB window, through 32 ptes of one pte page (PTE_STRIDE apart), all 512
// entries of one pmd page pointing at it, and ESPFIX_PUD_CLONES (4) pud
// entries pointing at that pmd page. Where in the ESPFIX_PGD slot the
// window lies and which 64-byte slot CPU 0 uses come from
// init_espfix_random's page_random and slot_random.
//
// Departure: Linux draws them from RDRAND on every boot, KASLR or not;
// physmap draws them from the KASLR seed with KASLR, and without it uses 0
// for both, so that boots without KASLR (and the README's samples) are the
// same every time: the window then starts at ESPFIX_BASE_ADDR.
type ESPFix struct {
	pa   mm.PhysAddr
	addr mm.VirtAddr // espfix_base_addr(0): CPU 0's ministack
}

const (
	espfixStackSize      = 8 * 8                           // ESPFIX_STACK_SIZE
	espfixStacksPerPage  = page / espfixStackSize          // ESPFIX_STACKS_PER_PAGE: 64
	espfixPageSpace      = 1 << (39 - 12 - 16)             // ESPFIX_PAGE_SPACE: 2048 (P4D_SHIFT 39)
	espfixStride         = 64 << 10                        // PTE_STRIDE pages: 64 KiB
	espfixPTEClones      = 512 / (espfixStride >> 12)      // ESPFIX_PTE_CLONES: 32
	espfixPMDClones      = 512                             // ESPFIX_PMD_CLONES
	espfixPUDClones      = 65536 / (espfixPTEClones * 512) // ESPFIX_PUD_CLONES: 4
	espfixClones         = espfixPTEClones * espfixPMDClones * espfixPUDClones
	espfixWindow         = uint64(espfixPUDClones) << 30 // the 4 GiB the clones span
	espfixRandomConstant = 0x6573_7066_6978_5f36         // physmap's stream id for the draw
)

// espfixPerm is the clones' protection: __PAGE_KERNEL_RO.
const espfixPerm = mm.PageKernelRO

// espfixTableProt is PGTABLE_PROT for the pud and pmd entries above the
// ministack: (_KERNPG_TABLE & ~_PAGE_RW) | _PAGE_NX.
func espfixTableProt(e mm.Entry) mm.Entry { return e&^mm.RW | mm.NX }

// espfixFrame is a stand-in IRET frame (RIP, CS, RFLAGS, RSP, SS), as the
// entry code writes it into CPU 0's ministack.
func espfixFrame() []byte {
	var b []byte
	for _, v := range []uint64{0x401000, 0x23, 0x202, 0xfffc, 0x2b} {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b
}

// espfixBaseAddr is espfix_base_addr(0) for page_random and slot_random:
// the page number and slot, with the address bits above 15 moved up by 16
// so that bits 16-31 are free for the clones.
func espfixBaseAddr(base mm.VirtAddr, pageRandom, slotRandom uint64) mm.VirtAddr {
	addr := pageRandom<<12 + slotRandom*espfixStackSize
	addr = addr&0xffff | (addr&^0xffff)<<16
	return base.Add(addr)
}

func (e *ESPFix) Populate(s *Space) error {
	var pageRandom, slotRandom uint64
	if s.Place.KASLR != nil {
		r := mrand.New(mrand.NewPCG(s.Place.Seed, espfixRandomConstant)).Uint64()
		slotRandom = r % espfixStacksPerPage
		pageRandom = r / espfixStacksPerPage & (espfixPageSpace - 1)
	}
	e.addr = espfixBaseAddr(s.region(mm.KindESPFix).Start, pageRandom, slotRandom)
	frames, err := s.Frames.AllocScattered(1)
	if err != nil {
		return err
	}
	e.pa = frames[0]
	lo := s.DirectVA(e.pa)
	if err := writeBytes(s.CPU, "the espfix page", lo, zeroPage[:]); err != nil {
		return err
	}
	if err := writeBytes(s.CPU, "the espfix IRET frame", lo.Add(uint64(e.addr)%page), espfixFrame()); err != nil {
		return err
	}
	first := e.addr.AlignDown(page)
	if err := s.AS.Map(first, e.pa, page, espfixPerm, mm.Only(mm.Size4K)); err != nil {
		return err
	}
	t, err := s.AS.Translate(first)
	if err != nil {
		return err
	}
	// The clones, written as init_espfix_ap writes them: the pte every
	// PTE_STRIDE entries from the first, the pmd entry (PGTABLE_PROT) into
	// all 512 of its page, the pud entry into ESPFIX_PUD_CLONES slots.
	for _, st := range t.Path() {
		switch st.Level {
		case mm.PTE:
			for n := range espfixPTEClones {
				s.Mem.Write64(st.Table.Add(uint64(st.Index+n*espfixStride/int(page))*8), uint64(st.Entry))
			}
		case mm.PMD:
			for n := range espfixPMDClones {
				s.Mem.Write64(st.Table.Add(uint64(n)*8), uint64(espfixTableProt(st.Entry)))
			}
		case mm.PUD:
			for n := range espfixPUDClones {
				s.Mem.Write64(st.Table.Add(uint64(st.Index+n)*8), uint64(espfixTableProt(st.Entry)))
			}
		}
	}
	s.TLB.FlushAll()
	return nil
}

func (e *ESPFix) Inject(s *Space, name string) error {
	if name != "espfix-clone-off" {
		return fmt.Errorf("espfix: no injection %q", name)
	}
	other, err := s.Frames.AllocFrame()
	if err != nil {
		return err
	}
	// The pte 16 clones on: through the shared tables, 2048 clones move.
	return remapPage(s, e.addr.AlignDown(page).Add(espfixPTEClones/2*espfixStride), other)
}

// Prove checks region.espfix from the live tables alone: the first leaf of
// the ESPfix region is CPU 0's ministack page (at ESPFIX_BASE_ADDR without
// KASLR, physmap's fixed draw); the region's leaves, in one walk, are
// exactly the addresses with that page's low 16 bits and every value of
// bits 16-31, each mapping that one frame with the same attributes,
// __PAGE_KERNEL_RO under PGTABLE_PROT pud and pmd entries; the IRET frame written through
// page_offset_base reads back through clones across the window, and a
// write through one faults.
func (e *ESPFix) Prove(p *Proof) {
	const name = "region.espfix"
	r := p.spec(mm.KindESPFix)
	// One walk of the region: every leaf must be the next clone of the
	// first, at the next value of address bits 16-31 with the first's low
	// 16 bits, mapping its frame with its attributes, as a 4K page.
	var first mm.Leaf
	var window mm.VirtAddr
	n := 0
	var cloneErr error
	for lf := range p.Live.Leaves(mm.VirtRange{Start: r.Start, End: r.Start.Add(r.Size)}) {
		if n == 0 {
			first, window = lf, lf.VA&^mm.VirtAddr(espfixWindow-1)
		}
		want := window.Add(uint64(n)<<16 | uint64(first.VA)&0xffff)
		if lf.VA != want || lf.PA != first.PA || lf.Attrs != first.Attrs || lf.Size != mm.Size4K {
			cloneErr = fmt.Errorf("espfix leaf %d is a %v page at %v mapping %v %v, want clone %d: a 4K page at %v mapping %v %v",
				n, lf.Size, lf.VA, lf.PA, lf.Attrs, n, want, first.PA, first.Attrs)
			break
		}
		n++
	}
	found := n > 0
	err := func() error {
		if !found {
			if cloneErr != nil {
				return cloneErr
			}
			return fmt.Errorf("the ESPfix region %v-%v maps nothing", r.Start, r.Last())
		}
		if !p.Ref.KASLR && first.VA != r.Start {
			return fmt.Errorf("the first espfix page is at %v, want ESPFIX_BASE_ADDR %v (page_random 0 without KASLR)", first.VA, r.Start)
		}
		if first.VA&0xffff0000 != 0 {
			return fmt.Errorf("the first espfix page %v has address bits 16-31 set", first.VA)
		}
		t, err := p.expectLeaf("the espfix page", first.VA, anyPA, espfixPerm)
		if err != nil {
			return err
		}
		frame := t.PA
		for _, st := range t.Path() {
			if (st.Level == mm.PUD || st.Level == mm.PMD) && st.Entry != espfixTableProt(st.Entry) {
				return fmt.Errorf("espfix %v entry %#x above %v is not read-only NX (PGTABLE_PROT)", st.Level, uint64(st.Entry), first.VA)
			}
		}
		if err := p.expectDirect("espfix", frame); err != nil {
			return err
		}
		if cloneErr != nil {
			return cloneErr
		}
		if n != espfixClones {
			return fmt.Errorf("the ESPfix region maps %d pages, want the %d clones", n, espfixClones)
		}
		low := uint64(first.VA) & 0xffff
		// The IRET frame, found in the page through page_offset_base,
		// reads the same through clones at both ends and the middle.
		pg, err := readBytes(p.CPU, "the espfix page", p.DirectVA(frame), int(page))
		if err != nil {
			return err
		}
		want := espfixFrame()
		off := bytes.Index(pg, want)
		if off < 0 || off%espfixStackSize != 0 {
			return fmt.Errorf("the espfix page %v holds no IRET frame in a 64-byte slot", frame)
		}
		for _, k := range []uint64{0, espfixClones / 2, espfixClones - 1} {
			va := window.Add(k<<16 | low).AlignDown(page).Add(uint64(off))
			got, err := readBytes(p.CPU, "an espfix clone", va, len(want))
			if err != nil {
				return err
			}
			if !bytes.Equal(got, want) {
				return fmt.Errorf("espfix clone %d at %v reads % x, want the IRET frame % x", k, va, got, want)
			}
		}
		return p.expectReadOnly("the espfix ministack", window.Add(uint64(espfixClones-1)<<16|low))
	}()
	if err != nil {
		fail(p.R, name, "%v", err)
		return
	}
	pass(p.R, name, "ministack page %v at %v and every 64 KiB of the 4 GB from %v: all %d values of bits 16-31 reach it, ro NX GLB under ro NX pud and pmd entries shared by the clones; the IRET frame written through page_offset_base reads back through them, a write faults",
		first.PA, first.VA, window, espfixClones)
}
