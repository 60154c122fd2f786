//go:build tamago

package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/arch/x86/x86asm"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/mm"
)

// The fixmap (arch/x86/include/asm/fixmap.h): compile-time slots counted
// down from FIXADDR_TOP, fix_to_virt(i) = FIXADDR_TOP - i*PAGE_SIZE, where
// FIXADDR_TOP = round_up(VSYSCALL_ADDR + PAGE_SIZE, PMD_SIZE) - PAGE_SIZE.
// The first slot in use is VSYSCALL_PAGE, the legacy vsyscall page; the
// others lie below it, in the fixmap region of the layout. physmap uses two
// more, as Linux's text_poke did before it moved to a temporary mm: the
// FIX_TEXT_POKE0/1 pair, a writable alias of the page(s) of kernel text
// being patched, mapped only for the copy.
type fixmap struct {
	top       mm.VirtAddr // FIXADDR_TOP
	vsyscall  uint64      // VSYSCALL_PAGE
	poke0     uint64      // FIX_TEXT_POKE0, then FIX_TEXT_POKE1 below it
	textPoke  mm.VirtAddr // fix_to_virt(FIX_TEXT_POKE0)
	textPoke1 mm.VirtAddr // fix_to_virt(FIX_TEXT_POKE1), the page above
}

func (f *fixmap) toVirt(i uint64) mm.VirtAddr { return f.top.Sub(i * page) }

func (k *kspace) populateFixmap() error {
	vs := k.region(mm.KindVsyscall)
	f := &k.reg.fix
	f.top = vs.Start.Add(page).AlignUp(uint64(mm.Size2M)).Sub(page)
	f.vsyscall = uint64(f.top-vs.Start) / page
	if f.toVirt(f.vsyscall) != vs.Start {
		return fmt.Errorf("VSYSCALL_PAGE %d is at %v, not at VSYSCALL_ADDR %v", f.vsyscall, f.toVirt(f.vsyscall), vs.Start)
	}
	f.poke0 = f.vsyscall + 2 // FIX_TEXT_POKE1 is vsyscall+1, FIX_TEXT_POKE0 below it
	f.textPoke, f.textPoke1 = f.toVirt(f.poke0), f.toVirt(f.poke0-1)
	fm := k.region(mm.KindFixmap)
	for _, va := range []mm.VirtAddr{f.textPoke, f.textPoke1} {
		if !fm.Contains(va) {
			return fmt.Errorf("fixmap slot %v lies outside the fixmap %v-%v", va, fm.Start, fm.Last())
		}
	}
	return nil
}

// pokeDelta is added to RIPProbe's LEA displacement by the text_poke proof:
// patched, RIPProbe returns its address + 7 + pokeDelta.
const pokeDelta = 0x2a000

// ripProbeDisp is the offset of the disp32 in RIPProbe's LEA RAX, [RIP+disp]
// (48 8d 05 disp32).
const ripProbeDisp = 3

// textPoke writes b over kernel text at addr the way Linux's text_poke did
// with fixmap slots: map the text's frame(s) writable at FIX_TEXT_POKE0
// (and 1), copy through that alias, clear the slots and flush (unless
// noFlush, the injection), serialise, then check the bytes through addr.
// It also checks the CPU can no longer reach the slots: a stale TLB entry
// would leave a writable alias of kernel text behind.
func (k *kspace) textPoke(addr mm.VirtAddr, b []byte, noFlush bool) error {
	f := &k.reg.fix
	first, last := addr.AlignDown(page), addr.Add(uint64(len(b)-1)).AlignDown(page)
	slots := []mm.VirtAddr{f.textPoke}
	if last != first {
		slots = append(slots, f.textPoke1)
	}
	for i, slot := range slots {
		t, err := k.as.Translate(first.Add(uint64(i) * page)) // virt_to_page
		if err != nil {
			return err
		}
		if err := k.as.Map(slot, t.PA.AlignDown(page), page, mm.PageKernel, mm.Only(mm.Size4K)); err != nil {
			return fmt.Errorf("set_fixmap %v: %w", slot, err)
		}
	}
	// Both slots are adjacent, POKE1 above POKE0: one linear copy.
	writeBytes(f.textPoke.Add(uint64(addr-first)), b)
	k.tlb.skip = noFlush
	var err error
	for _, slot := range slots {
		err = errors.Join(err, k.as.Unmap(slot, page))
	}
	k.tlb.skip = false
	if err != nil {
		return fmt.Errorf("clear_fixmap: %w", err)
	}
	amd64.Cpuid(0, 0) // sync_core: CPUID serialises (SDM Vol. 3A 9.1.3)
	for _, slot := range slots {
		if _, fault := amd64.ProbeRead64(uint64(slot)); !fault.Faulted {
			amd64.Invlpg(uint64(slot)) // the flush that was missing, so nothing stays writable
			return fmt.Errorf("the text_poke slot %v still reads through a stale TLB entry after clear_fixmap: a writable alias of kernel text outlived the patch", slot)
		}
	}
	if got := readBytes(addr, len(b)); !bytes.Equal(got, b) {
		return fmt.Errorf("kernel text at %v reads % x after the poke, want % x", addr, got, b)
	}
	return nil
}

// proveTextPoke patches RIPProbe's LEA displacement through a fixmap slot,
// runs it through the kernel text mapping, and puts it back.
func (k *kspace) proveTextPoke(r *report, live *mm.AddressSpace) {
	f := &k.reg.fix
	pa := mm.PhysAddr(amd64.RIPProbeAddr())
	kva := k.kernelVA(pa)
	disp := kva.Add(ripProbeDisp)
	orig := readBytes(disp, 4)
	patched := binary.LittleEndian.AppendUint32(nil, binary.LittleEndian.Uint32(orig)+pokeDelta)
	want := uint64(kva) + amd64.RIPProbeLen + uint64(int32(binary.LittleEndian.Uint32(orig)))

	var got1, got2 uint64
	var f1, f2 amd64.Fault
	err := k.textPoke(disp, patched, k.reg.inject == "poke-no-flush")
	if err == nil {
		got1, f1 = amd64.ProbeCall(uint64(kva))
	}
	err = errors.Join(err, k.textPoke(disp, orig, false))
	if err == nil {
		got2, f2 = amd64.ProbeCall(uint64(kva))
	}
	switch {
	case err != nil:
		r.fail("region.fixmap.text_poke", "%v", err)
	case f1.Faulted || f2.Faulted:
		r.fail("region.fixmap.text_poke", "calling RIPProbe at %v: %v %v", kva, f1, f2)
	case got1 != want+pokeDelta:
		r.fail("region.fixmap.text_poke", "patched RIPProbe at %v returned %#x, want %#x", kva, got1, want+pokeDelta)
	case got2 != want:
		r.fail("region.fixmap.text_poke", "restored RIPProbe at %v returned %#x, want %#x", kva, got2, want)
	default:
		if err := expectUnmapped(live, "FIX_TEXT_POKE0", f.textPoke); err != nil {
			r.fail("region.fixmap.text_poke", "%v", err)
			return
		}
		r.pass("region.fixmap.text_poke", "RIPProbe's displacement at %v (ro x) patched % x -> % x through FIX_TEXT_POKE0 %v (RW NX), cleared with INVLPG: the call at %v returned %#x = +%#x, then %#x once restored; the slot faults again",
			disp, orig, patched, f.textPoke, kva, got1, pokeDelta, got2)
	}
}

// vsyscallEntries are the legacy vsyscall page's three entry points
// (arch/x86/entry/vsyscall/vsyscall_emu_64.S): each loads its system call
// number into RAX, then SYSCALL; RET. Under vsyscall=emulate the page is
// readable by user space but not executable: a call faults and
// emulate_vsyscall performs the system call.
var vsyscallEntries = []struct {
	off  uint64
	nr   uint32 // __NR_gettimeofday, __NR_time, __NR_getcpu
	name string
}{{0x000, 96, "gettimeofday"}, {0x400, 201, "time"}, {0x800, 309, "getcpu"}}

// vsyscallStub encodes MOV RAX, imm32; SYSCALL; RET.
func vsyscallStub(nr uint32) []byte {
	b := []byte{0x48, 0xc7, 0xc0}
	b = binary.LittleEndian.AppendUint32(b, nr)
	return append(b, 0x0f, 0x05, 0xc3)
}

// vsyscallPerm is PAGE_KERNEL_VVAR: __PAGE_KERNEL_RO | _PAGE_USER.
const vsyscallPerm = mm.PageKernelRO | mm.AttrUser

// vsyscallPage is the page at VSYSCALL_ADDR, mapped as map_vsyscall maps
// it in emulate mode (in xonly mode, the default since Linux 5.x, there is
// no pte at all).
type vsyscallPage struct {
	va   mm.VirtAddr
	pa   mm.PhysAddr
	want []byte
}

func (k *kspace) populateVsyscall() error {
	frames, err := k.frames.AllocScattered(1)
	if err != nil {
		return err
	}
	v := &k.reg.vsyscall
	v.va, v.pa = k.region(mm.KindVsyscall).Start, frames[0]
	v.want = bytes.Repeat([]byte{int3}, int(page)) // .balign 4096, 0xcc
	for _, e := range vsyscallEntries {
		copy(v.want[e.off:], vsyscallStub(e.nr))
	}
	writeBytes(k.directVA(v.pa), v.want)
	// mm sets U/S on the table entries above a user leaf, as
	// set_vsyscall_pgtable_user_bits does.
	return k.as.Map(v.va, v.pa, page, vsyscallPerm, mm.Only(mm.Size4K))
}

func (k *kspace) proveVsyscall(r *report, live *mm.AddressSpace) {
	v := k.reg.vsyscall
	var insns []string
	err := func() error {
		t, err := k.expectLeaf(live, "the vsyscall page", v.va, v.pa, vsyscallPerm)
		if err != nil {
			return err
		}
		for _, s := range t.Path() {
			if s.Entry&mm.User == 0 {
				return fmt.Errorf("the %v entry %#x above %v lacks U/S", s.Level, uint64(s.Entry), v.va)
			}
		}
		if err := expectDirect(k, live, "vsyscall", v.pa); err != nil {
			return err
		}
		if _, err := probe(v.va); err != nil {
			return err
		}
		if got := readBytes(v.va, int(page)); !bytes.Equal(got, v.want) {
			return fmt.Errorf("the page at %v does not read what was written through page_offset_base+%v", v.va, v.pa)
		}
		for _, e := range vsyscallEntries {
			var parts []string
			b := readBytes(v.va.Add(e.off), 16)
			for pc := uint64(0); len(parts) < 3; {
				inst, err := x86asm.Decode(b[pc:], 64)
				if err != nil {
					return fmt.Errorf("%s entry at %v: %v", e.name, v.va.Add(e.off), err)
				}
				parts = append(parts, x86asm.IntelSyntax(inst, uint64(v.va.Add(e.off+pc)), nil))
				pc += uint64(inst.Len)
			}
			insns = append(insns, fmt.Sprintf("%s@%#x: %s", e.name, e.off, strings.Join(parts, "; ")))
		}
		// Executing it faults: the #PF emulate_vsyscall turns into the
		// system call.
		_, f := amd64.ProbeCall(uint64(v.va))
		if !f.Faulted || f.Code&(amd64.PF_P|amd64.PF_I) != amd64.PF_P|amd64.PF_I {
			return fmt.Errorf("calling the vsyscall page at %v: want an instruction-fetch fault, got %v", v.va, f)
		}
		return nil
	}()
	if err != nil {
		r.fail("region.vsyscall", "%v", err)
		return
	}
	r.pass("region.vsyscall", "VSYSCALL_ADDR %v -> %v USR ro NX GLB (PAGE_KERNEL_VVAR, U/S on every level), a call faults with I set; %s",
		v.va, v.pa, strings.Join(insns, ", "))
}
