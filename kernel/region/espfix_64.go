package region

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/physmap/physmap/mm"
)

// ESPFix is the espfix area (arch/x86/kernel/espfix_64.c): each CPU's
// 64-byte ministack lives in a page mapped read-only at ESPFIX_BASE_ADDR
// and again every 64 KiB. IRET to a 16-bit stack restores only SP's low
// 16 bits, so the entry code writes the IRET frame through the page's
// writable direct-map alias (espfix_waddr) and returns on the read-only
// alias whose bits 16-31 match the user's ESP. physmap maps the 32 pte
// clones of one pte table; Linux also points all of a pmd table's entries
// at that pte table and several pud entries at the pmd table.
type ESPFix struct {
	pa mm.PhysAddr
}

const (
	espfixStride    = 64 << 10                   // PTE_STRIDE pages: 64 KiB
	espfixPTEClones = 512 / (espfixStride >> 12) // ESPFIX_PTE_CLONES: 32 per pte table
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

func (e *ESPFix) Populate(s *Space) error {
	frames, err := s.Frames.AllocScattered(1)
	if err != nil {
		return err
	}
	e.pa = frames[0]
	lo := s.DirectVA(e.pa)
	if err := writeBytes(s.CPU, "the espfix page", lo, zeroPage[:]); err != nil {
		return err
	}
	if err := writeBytes(s.CPU, "the espfix IRET frame", lo, espfixFrame()); err != nil {
		return err
	}
	base := s.region(mm.KindESPFix).Start
	for n := 0; n < espfixPTEClones; n++ {
		if err := s.AS.Map(base.Add(uint64(n)*espfixStride), e.pa, page, espfixPerm, mm.Only(mm.Size4K)); err != nil {
			return err
		}
	}
	// mm builds table entries as _KERNPG_TABLE; tighten the pud and pmd
	// entries as espfix's own are built. Nothing else lives in the
	// region, so those tables hold espfix only.
	t, err := s.AS.Translate(base)
	if err != nil {
		return err
	}
	for _, st := range t.Path() {
		if st.Level == mm.PUD || st.Level == mm.PMD {
			s.Mem.Write64(st.Table.Add(uint64(st.Index)*8), uint64(espfixTableProt(st.Entry)))
		}
	}
	for n := 0; n < espfixPTEClones; n++ {
		s.TLB.InvalidatePage(base.Add(uint64(n) * espfixStride))
	}
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
	va := s.region(mm.KindESPFix).Start.Add(espfixPTEClones / 2 * espfixStride)
	return remapPage(s, va, other)
}

// Prove checks region.espfix at the documented ESPFIX_BASE_ADDR: every
// clone maps the frame of the first, with __PAGE_KERNEL_RO under
// PGTABLE_PROT pud and pmd entries, the pages between clones are unmapped,
// every clone reads the IRET frame written through page_offset_base, and a
// write faults.
func (e *ESPFix) Prove(p *Proof) {
	const name = "region.espfix"
	base := p.spec(mm.KindESPFix).Start
	var frame mm.PhysAddr
	err := func() error {
		want := espfixFrame()
		for n := 0; n < espfixPTEClones; n++ {
			va := base.Add(uint64(n) * espfixStride)
			pa := frame
			if n == 0 {
				pa = anyPA
			}
			t, err := expectLeaf(p.Live, fmt.Sprintf("espfix clone %d", n), va, pa, espfixPerm)
			if err != nil {
				return err
			}
			if n == 0 {
				frame = t.PA
				for _, st := range t.Path() {
					if (st.Level == mm.PUD || st.Level == mm.PMD) && st.Entry != espfixTableProt(st.Entry) {
						return fmt.Errorf("espfix %v entry %#x above %v is not read-only NX (PGTABLE_PROT)", st.Level, uint64(st.Entry), va)
					}
				}
				if err := p.expectDirect("espfix", frame); err != nil {
					return err
				}
			}
			if err := p.expectUnmapped("the gap after an espfix clone", va.Add(page)); err != nil {
				return err
			}
			got, err := readBytes(p.CPU, "an espfix clone", va, len(want))
			if err != nil {
				return err
			}
			if !bytes.Equal(got, want) {
				return fmt.Errorf("espfix clone %d at %v reads % x, want the IRET frame % x", n, va, got, want)
			}
		}
		return p.expectReadOnly("the espfix ministack", base)
	}()
	if err != nil {
		fail(p.R, name, "%v", err)
		return
	}
	pass(p.R, name, "ministack page %v at ESPFIX_BASE_ADDR %v and every 64 KiB (%d pte clones), ro NX GLB under ro NX pud and pmd entries; the IRET frame written through page_offset_base reads back through every clone, a write faults",
		frame, base, espfixPTEClones)
}
