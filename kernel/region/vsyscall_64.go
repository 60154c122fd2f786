package region

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"golang.org/x/arch/x86/x86asm"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/mm"
)

// Vsyscall is the legacy vsyscall page at VSYSCALL_ADDR as map_vsyscall
// (arch/x86/entry/vsyscall/vsyscall_64.c) leaves it in each mode vsyscall=
// selects: with emulate, the page is mapped PAGE_KERNEL_VVAR,
// user-readable and not executable, with _PAGE_USER on every level above
// it (set_vsyscall_pgtable_user_bits), and a call faults for
// emulate_vsyscall to perform; with xonly there is no page-table entry at
// all (only the gate VMA is marked executable, and calls are emulated from
// the fault); with none, Debian's default (CONFIG_LEGACY_VSYSCALL_NONE),
// there is neither. physmap has no user process, so xonly and none differ
// only outside its tables.
type Vsyscall struct{}

// vsyscallMapped reports whether map_vsyscall maps the page in mode c.
func vsyscallMapped(c string) bool { return c == "emulate" }

// vsyscallEntries are the page's three entry points (arch/x86/entry/
// vsyscall/vsyscall_emu_64.S): each loads its system call number into RAX,
// then SYSCALL; RET.
var vsyscallEntries = []struct {
	off  uint64
	nr   uint32 // __NR_gettimeofday, __NR_time, __NR_getcpu
	name string
}{{0x000, 96, "gettimeofday"}, {0x400, 201, "time"}, {0x800, 309, "getcpu"}}

// int3 fills the rest of the page (.balign 4096, 0xcc).
const int3 = 0xcc

// vsyscallPage is the page's content.
func vsyscallPage() []byte {
	b := bytes.Repeat([]byte{int3}, int(page))
	for _, e := range vsyscallEntries {
		stub := []byte{0x48, 0xc7, 0xc0} // MOV RAX, imm32
		stub = binary.LittleEndian.AppendUint32(stub, e.nr)
		copy(b[e.off:], append(stub, 0x0f, 0x05, 0xc3)) // SYSCALL; RET
	}
	return b
}

// vsyscallPerm is PAGE_KERNEL_VVAR: __PAGE_KERNEL_RO | _PAGE_USER.
const vsyscallPerm = mm.PageKernelRO | mm.AttrUser

func (v *Vsyscall) Populate(s *Space) error {
	if !vsyscallMapped(s.Config.Vsyscall) {
		return nil
	}
	return mapVsyscall(s)
}

// mapVsyscall maps the page as vsyscall=emulate does. mm sets U/S on the
// table entries above a user leaf, as set_vsyscall_pgtable_user_bits does.
func mapVsyscall(s *Space) error {
	frames, err := s.Frames.AllocScattered(1)
	if err != nil {
		return err
	}
	if err := writeBytes(s.CPU, "the vsyscall page", s.DirectVA(frames[0]), vsyscallPage()); err != nil {
		return err
	}
	return s.AS.Map(s.region(mm.KindVsyscall).Start, frames[0], page, vsyscallPerm, mm.Only(mm.Size4K))
}

func (v *Vsyscall) Inject(s *Space, name string) error {
	switch name {
	case "vsyscall-no-user":
		return s.AS.Protect(s.region(mm.KindVsyscall).Start, page, mm.PageKernelRO)
	case "vsyscall-mapped":
		return mapVsyscall(s)
	case "vsyscall-user-bits":
		// set_vsyscall_pgtable_user_bits' U/S on the top-level entry,
		// without the page; a more permissive entry needs no flush, but
		// it gets one.
		t, _ := s.AS.Translate(s.region(mm.KindVsyscall).Start)
		st := t.Path()[0]
		if !st.Entry.IsPresent() {
			return fmt.Errorf("vsyscall: no top-level entry above VSYSCALL_ADDR")
		}
		s.Mem.Write64(st.Table.Add(uint64(st.Index)*8), uint64(st.Entry|mm.User))
		s.TLB.FlushAll()
		return nil
	}
	return fmt.Errorf("vsyscall: no injection %q", name)
}

// Prove checks region.vsyscall (emulate) or region.vsyscall.unmapped (none
// and xonly), the mode taken from the boot's configuration, which the
// harness holds to the command line.
func (v *Vsyscall) Prove(p *Proof) {
	if vsyscallMapped(p.Ref.Config.Vsyscall) {
		v.proveMapped(p)
		return
	}
	v.proveUnmapped(p)
}

// proveUnmapped checks region.vsyscall.unmapped at the documented
// VSYSCALL_ADDR: no leaf, a read faults as not present, and no table entry
// above it has U/S, since set_vsyscall_pgtable_user_bits never ran.
func (v *Vsyscall) proveUnmapped(p *Proof) {
	const name = "region.vsyscall.unmapped"
	va := p.spec(mm.KindVsyscall).Start
	var levels []string
	err := func() error {
		if err := p.expectUnmapped("the vsyscall page", va); err != nil {
			return err
		}
		t, _ := p.Live.Translate(va)
		for _, st := range t.Path() {
			if !st.Entry.IsPresent() {
				break
			}
			if st.Entry&mm.User != 0 {
				return fmt.Errorf("the %v entry %#x above %v has U/S, which only vsyscall=emulate's set_vsyscall_pgtable_user_bits sets", st.Level, uint64(st.Entry), va)
			}
			levels = append(levels, st.Level.String())
		}
		return nil
	}()
	if err != nil {
		fail(p.R, name, "%v", err)
		return
	}
	mode := p.Ref.Config.Vsyscall
	why := "Debian's CONFIG_LEGACY_VSYSCALL_NONE default: no vsyscall page"
	if mode == "xonly" {
		why = "no page-table entry; calls would be emulated from the fault, which needs a user process physmap has not"
	}
	pass(p.R, name, "VSYSCALL_ADDR %v unmapped, as map_vsyscall leaves it with vsyscall=%s (%s): a read faults not-present, "+
		"and the %s entries above it lack U/S", va, mode, why, strings.Join(levels, ", "))
}

// proveMapped checks region.vsyscall at the documented VSYSCALL_ADDR.
// Expectations: PAGE_KERNEL_VVAR with U/S on every level, the entry points
// vsyscall_emu_64.S defines, an instruction-fetch fault on a call.
func (v *Vsyscall) proveMapped(p *Proof) {
	const name = "region.vsyscall"
	va := p.spec(mm.KindVsyscall).Start
	var insns []string
	var frame mm.PhysAddr
	err := func() error {
		t, err := p.expectLeaf("the vsyscall page", va, anyPA, vsyscallPerm)
		if err != nil {
			return err
		}
		frame = t.PA
		for _, st := range t.Path() {
			if st.Entry&mm.User == 0 {
				return fmt.Errorf("the %v entry %#x above %v lacks U/S", st.Level, uint64(st.Entry), va)
			}
		}
		if err := p.expectDirect("vsyscall", t.PA); err != nil {
			return err
		}
		// A user page: under SMAP the kernel reads it as copy_from_user
		// does, between STAC and CLAC.
		got := make([]byte, page)
		read := p.CPU.Read
		if p.Act != nil && p.Act.Ring3 != nil {
			read = p.Act.Ring3.CopyFromUser
		}
		if n, f := read(va, got); f.Faulted {
			return &FaultError{What: "reading the vsyscall page", VA: va.Add(uint64(n)), Fault: f}
		}
		if !bytes.Equal(got, vsyscallPage()) {
			return fmt.Errorf("the page at %v does not hold the vsyscall entry points", va)
		}
		for _, e := range vsyscallEntries {
			var parts []string
			for pc := e.off; len(parts) < 3; {
				inst, err := x86asm.Decode(got[pc:], 64)
				if err != nil {
					return fmt.Errorf("%s entry at %v: %v", e.name, va.Add(e.off), err)
				}
				parts = append(parts, x86asm.IntelSyntax(inst, uint64(va.Add(pc)), nil))
				pc += uint64(inst.Len)
			}
			insns = append(insns, fmt.Sprintf("%s@%#x: %s", e.name, e.off, strings.Join(parts, "; ")))
		}
		_, f := p.CPU.Call(va)
		return expectFault(fmt.Sprintf("calling the vsyscall page at %v", va), f, amd64.PF_P|amd64.PF_I)
	}()
	if err != nil {
		fail(p.R, name, "%v", err)
		return
	}
	pass(p.R, name, "vsyscall=emulate: VSYSCALL_ADDR %v -> %v USR ro NX GLB (PAGE_KERNEL_VVAR, U/S on every level), a call faults with I set; %s",
		va, frame, strings.Join(insns, ", "))
}
