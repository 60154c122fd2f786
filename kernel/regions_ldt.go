//go:build tamago

package main

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/physmap/physmap/mm"
)

// The LDT remap and the espfix stacks: the two regions that exist for
// segmentation's sake.

// ldtSlotStride is the distance between the two LDT slots of an mm
// (LDT_SLOT_STRIDE = LDT_ENTRIES * LDT_ENTRY_SIZE, arch/x86/include/asm/
// mmu_context.h): a full LDT of 8192 8-byte descriptors.
const ldtSlotStride = 8192 * 8

// User segment descriptors (SDM Vol. 3A 3.4.5), as a 32-bit program's
// modify_ldt would install them: flat 4 GiB, DPL 3, present, 32-bit,
// 4 KiB granular; code execute/read, data read/write.
const (
	ldtCode32 uint64 = 0x00cf_fa00_0000_ffff
	ldtData32 uint64 = 0x00cf_f200_0000_ffff
)

// ldtRemap is the one page map_ldt_struct (arch/x86/kernel/ldt.c) maps
// for an LDT: slot 0 of the LDT remap, read-only, NX and not global
// (__PAGE_KERNEL_RO & ~_PAGE_GLOBAL: it is per mm).
type ldtRemap struct {
	va   mm.VirtAddr
	pa   mm.PhysAddr
	want []byte // the descriptors written
	// taken says what already mapped the slot, when the layout lets
	// another region cover the LDT remap (the old-base injection puts the
	// direct map there, as before Linux 4.20).
	taken error
}

// ldtPerm is map_ldt_struct's protection.
const ldtPerm = mm.PageKernelRO &^ mm.AttrGlobal

func (k *kspace) populateLDT() error {
	frames, err := k.frames.AllocScattered(1)
	if err != nil {
		return err
	}
	l := &k.reg.ldt
	l.va, l.pa = k.region(mm.KindLDTRemap).Start, frames[0]
	if t, err := k.as.Translate(l.va); err == nil {
		l.taken = fmt.Errorf("LDT_BASE_ADDR %v is already mapped, to %v: another region overlaps the LDT remap", l.va, t.PA)
		return nil
	}
	k.zeroFrame(l.pa)
	l.want = binary.LittleEndian.AppendUint64(nil, ldtCode32)
	l.want = binary.LittleEndian.AppendUint64(l.want, ldtData32)
	writeBytes(k.directVA(l.pa), l.want)
	return k.as.Map(l.va, l.pa, page, ldtPerm, mm.Only(mm.Size4K))
}

func (k *kspace) proveLDT(r *report, live *mm.AddressSpace) {
	l := k.reg.ldt
	err := func() error {
		if l.taken != nil {
			return l.taken
		}
		if _, err := k.expectLeaf(live, "LDT page", l.va, l.pa, ldtPerm); err != nil {
			return err
		}
		if err := expectDirect(k, live, "LDT", l.pa); err != nil {
			return err
		}
		if _, err := probe(l.va); err != nil {
			return err
		}
		if got := readBytes(l.va, len(l.want)); !bytes.Equal(got, l.want) {
			return fmt.Errorf("the LDT at %v reads % x, written % x through page_offset_base", l.va, got, l.want)
		}
		if err := expectUnmapped(live, "the LDT's other slot", l.va.Add(ldtSlotStride)); err != nil {
			return err
		}
		return expectReadOnly("the LDT alias", l.va)
	}()
	if err != nil {
		r.fail("region.ldt", "%v", err)
		return
	}
	r.pass("region.ldt", "slot 0 at LDT_BASE_ADDR %v -> %v ro NX not global, as map_ldt_struct maps it; its 2 descriptors read back, a write faults, slot 1 unmapped", l.va, l.pa)
}

// espfix (arch/x86/kernel/espfix_64.c): each CPU's 64-byte ministack
// lives in a page mapped read-only at ESPFIX_BASE_ADDR and again every
// 64 KiB: IRET to a 16-bit stack restores only SP's low 16 bits, so the
// entry code writes the IRET frame through the page's writable direct-map
// alias (espfix_waddr) and returns on the read-only alias whose bits
// 16-31 match the user's ESP.
const (
	espfixStride    = 64 << 10                   // PTE_STRIDE pages: 64 KiB
	espfixPTEClones = 512 / (espfixStride >> 12) // ESPFIX_PTE_CLONES: 32 per pte table
	espfixStackSize = 8 * 8                      // ESPFIX_STACK_SIZE
)

// espfixArea is CPU 0's espfix page. Linux also points all 512 pmd
// entries of its pmd table at the one pte table (ESPFIX_PMD_CLONES) and 4
// pud entries at the pmd table; physmap keeps to the 32 pte clones, since
// a table referenced twice is what mm.Check exists to reject.
type espfixArea struct {
	va mm.VirtAddr // espfix_base_addr(0), with page_random = slot_random = 0
	pa mm.PhysAddr
}

// espfixPerm is the clones' protection: __PAGE_KERNEL_RO (global, since
// the page is shared with user page tables under PTI).
const espfixPerm = mm.PageKernelRO

// espfixTableProt is what Linux's PGTABLE_PROT removes from and adds to
// the pud and pmd entries above the ministack: (_KERNPG_TABLE & ~_PAGE_RW)
// | _PAGE_NX.
func espfixTableProt(e mm.Entry) mm.Entry { return e&^mm.RW | mm.NX }

func (k *kspace) populateESPFix() error {
	frames, err := k.frames.AllocScattered(1)
	if err != nil {
		return err
	}
	e := &k.reg.espfix
	e.va, e.pa = k.region(mm.KindESPFix).Start, frames[0]
	k.zeroFrame(e.pa)
	// A stand-in IRET frame (RIP, CS, RFLAGS, RSP, SS) in CPU 0's
	// ministack, written through the writable alias as the entry code
	// writes it.
	for i, v := range []uint64{0x401000, 0x23, 0x202, 0xfffc, 0x2b} {
		write64(k.directVA(e.pa).Add(uint64(8*i)), v)
	}
	for n := 0; n < espfixPTEClones; n++ {
		if err := k.as.Map(e.va.Add(uint64(n)*espfixStride), e.pa, page, espfixPerm, mm.Only(mm.Size4K)); err != nil {
			return err
		}
	}
	// mm builds table entries as _KERNPG_TABLE; tighten the pud and pmd
	// entries as espfix's own are built. Nothing else lives in the
	// 0.5 TB region, so those tables hold espfix only.
	t, err := k.as.Translate(e.va)
	if err != nil {
		return err
	}
	for _, s := range t.Path() {
		if s.Level == mm.PUD || s.Level == mm.PMD {
			k.mem.Write64(s.Table.Add(uint64(s.Index)*8), uint64(espfixTableProt(s.Entry)))
		}
	}
	for n := 0; n < espfixPTEClones; n++ {
		k.tlb.InvalidatePage(e.va.Add(uint64(n) * espfixStride))
	}
	return nil
}

func (k *kspace) proveESPFix(r *report, live *mm.AddressSpace) {
	e := k.reg.espfix
	err := func() error {
		for n := 0; n < espfixPTEClones; n++ {
			va := e.va.Add(uint64(n) * espfixStride)
			t, err := k.expectLeaf(live, fmt.Sprintf("espfix clone %d", n), va, e.pa, espfixPerm)
			if err != nil {
				return err
			}
			if n == 0 {
				for _, s := range t.Path() {
					if (s.Level == mm.PUD || s.Level == mm.PMD) && s.Entry != espfixTableProt(s.Entry) {
						return fmt.Errorf("espfix %v entry %#x above %v is not read-only NX (PGTABLE_PROT)", s.Level, uint64(s.Entry), va)
					}
				}
			}
			if err := expectUnmapped(live, "the gap between espfix clones", va.Add(page)); err != nil {
				return err
			}
		}
		if err := expectDirect(k, live, "espfix", e.pa); err != nil {
			return err
		}
		// What the entry code wrote through page_offset_base, IRET
		// reads through every clone.
		want := readBytes(k.directVA(e.pa), 5*8)
		for _, n := range []int{0, espfixPTEClones - 1} {
			va := e.va.Add(uint64(n) * espfixStride)
			if _, err := probe(va); err != nil {
				return err
			}
			if got := readBytes(va, len(want)); !bytes.Equal(got, want) {
				return fmt.Errorf("espfix clone %d at %v reads % x, the direct map % x", n, va, got, want)
			}
		}
		return expectReadOnly("the espfix ministack", e.va)
	}()
	if err != nil {
		r.fail("region.espfix", "%v", err)
		return
	}
	r.pass("region.espfix", "ministack page %v at ESPFIX_BASE_ADDR %v and every 64 KiB (%d pte clones), ro NX GLB under ro NX pud and pmd entries; the IRET frame written through page_offset_base reads back through the clones, a write faults",
		e.pa, e.va, espfixPTEClones)
}
