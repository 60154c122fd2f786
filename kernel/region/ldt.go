package region

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/physmap/physmap/mm"
)

// LDTRemap is the LDT remap. map_ldt_struct (arch/x86/kernel/ldt.c) maps a
// process's LDT into one of two slots at LDT_BASE_ADDR, read-only, NX and
// not global (it is per mm), and only with PTI: without
// X86_FEATURE_PTI it returns at once, the LDT being reachable through the
// direct map or vmalloc. Without pti=on the region stays empty, as Linux
// leaves it on a CPU PTI does not protect.
//
// With pti=on physmap maps slot 0 for an LDT of two 32-bit user segments,
// as a 32-bit program's modify_ldt installs them, and proves it. It maps
// it in the kernel's own tables, which every process shares (Linux maps
// it in the mm of the process that asked, and in its user copy): no
// process here has an LDT, so none loads it.
type LDTRemap struct {
	pa mm.PhysAddr
}

// ldtSlotStride is the distance between the two LDT slots of an mm
// (LDT_SLOT_STRIDE = LDT_ENTRIES * LDT_ENTRY_SIZE, arch/x86/include/asm/
// mmu_context.h): a full LDT of 8192 8-byte descriptors.
const ldtSlotStride = 8192 * 8

// User segment descriptors (SDM Vol. 3A 3.4.5): flat 4 GiB, DPL 3,
// present, 32-bit, 4 KiB granular; code execute/read, data read/write.
const (
	ldtCode32 uint64 = 0x00cf_fa00_0000_ffff
	ldtData32 uint64 = 0x00cf_f200_0000_ffff
)

// ldtPerm is map_ldt_struct's protection: __PAGE_KERNEL_RO & ~_PAGE_GLOBAL.
const ldtPerm = mm.PageKernelRO &^ mm.AttrGlobal

// ldtDescriptors is the LDT's content.
func ldtDescriptors() []byte {
	b := binary.LittleEndian.AppendUint64(nil, ldtCode32)
	return binary.LittleEndian.AppendUint64(b, ldtData32)
}

func (l *LDTRemap) Populate(s *Space) error {
	if !s.Config.PTI {
		return nil // map_ldt_struct: if (!boot_cpu_has(X86_FEATURE_PTI)) return 0
	}
	frames, err := s.Frames.AllocScattered(1)
	if err != nil {
		return err
	}
	l.pa = frames[0]
	lo := s.DirectVA(l.pa)
	if err := writeBytes(s.CPU, "the LDT frame", lo, zeroPage[:]); err != nil {
		return err
	}
	if err := writeBytes(s.CPU, "the LDT", lo, ldtDescriptors()); err != nil {
		return err
	}
	return s.AS.Map(s.region(mm.KindLDTRemap).Start, l.pa, page, ldtPerm, mm.Only(mm.Size4K))
}

func (l *LDTRemap) Inject(s *Space, name string) error {
	if name != "ldt-mapped" {
		return fmt.Errorf("LDT remap: no injection %q", name)
	}
	pa, err := s.Frames.AllocFrame()
	if err != nil {
		return err
	}
	return s.AS.Map(s.region(mm.KindLDTRemap).Start, pa, page, ldtPerm, mm.Only(mm.Size4K))
}

// Prove checks region.ldt: without PTI, no leaf anywhere in the documented
// LDT remap (expectation: map_ldt_struct's early return).
func (l *LDTRemap) Prove(p *Proof) {
	const name = "region.ldt"
	r := p.spec(mm.KindLDTRemap)
	if p.Ref.Config.PTI {
		l.provePTI(p)
		return
	}
	if err := noLeaves(p.Live, r); err != nil {
		fail(p.R, name, "%v: map_ldt_struct maps an LDT only with PTI, which is off", err)
		return
	}
	pass(p.R, name, "no leaf in the LDT remap %v-%v (%s): map_ldt_struct maps an LDT there only with PTI, which is off (pti=on turns it on)",
		r.Start, r.Last(), humanSize(r.Size))
}

// provePTI checks an LDT remapped as with PTI, at the documented
// LDT_BASE_ADDR: the page's protection is map_ldt_struct's, its frame is
// also at page_offset_base+pa, it reads the descriptors an LDT holds, a
// write faults, and slot 1 is unmapped (the pti boots of the matrix).
func (l *LDTRemap) provePTI(p *Proof) {
	const name = "region.ldt"
	va := p.spec(mm.KindLDTRemap).Start
	err := func() error {
		t, err := p.expectLeaf("the LDT page", va, anyPA, ldtPerm)
		if err != nil {
			return err
		}
		if err := p.expectDirect("LDT", t.PA); err != nil {
			return err
		}
		want := ldtDescriptors()
		got, err := readBytes(p.CPU, "the LDT", va, len(want))
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("the LDT at %v reads % x, want the descriptors % x", va, got, want)
		}
		if err := p.expectUnmapped("the LDT's other slot", va.Add(ldtSlotStride)); err != nil {
			return err
		}
		return p.expectReadOnly("the LDT alias", va)
	}()
	if err != nil {
		fail(p.R, name, "%v", err)
		return
	}
	pass(p.R, name, "slot 0 at LDT_BASE_ADDR %v ro NX not global, as map_ldt_struct maps it; its 2 descriptors read back, a write faults, slot 1 unmapped", va)
}
