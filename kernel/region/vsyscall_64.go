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

// Vsyscall is the legacy vsyscall page at VSYSCALL_ADDR, as map_vsyscall
// (arch/x86/entry/vsyscall/vsyscall_64.c) maps it with vsyscall=emulate:
// user-readable, not executable; a call faults and emulate_vsyscall
// performs the system call.
type Vsyscall struct{}

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
	frames, err := s.Frames.AllocScattered(1)
	if err != nil {
		return err
	}
	if err := writeBytes(s.CPU, "the vsyscall page", s.DirectVA(frames[0]), vsyscallPage()); err != nil {
		return err
	}
	// mm sets U/S on the table entries above a user leaf, as
	// set_vsyscall_pgtable_user_bits does.
	return s.AS.Map(s.region(mm.KindVsyscall).Start, frames[0], page, vsyscallPerm, mm.Only(mm.Size4K))
}

func (v *Vsyscall) Inject(s *Space, name string) error {
	if name != "vsyscall-no-user" {
		return fmt.Errorf("vsyscall: no injection %q", name)
	}
	return s.AS.Protect(s.region(mm.KindVsyscall).Start, page, mm.PageKernelRO)
}

// Prove checks region.vsyscall at the documented VSYSCALL_ADDR.
// Expectations: PAGE_KERNEL_VVAR with U/S on every level, the entry points
// vsyscall_emu_64.S defines, an instruction-fetch fault on a call.
func (v *Vsyscall) Prove(p *Proof) {
	const name = "region.vsyscall"
	va := p.spec(mm.KindVsyscall).Start
	var insns []string
	var frame mm.PhysAddr
	err := func() error {
		t, err := expectLeaf(p.Live, "the vsyscall page", va, anyPA, vsyscallPerm)
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
		got, err := readBytes(p.CPU, "the vsyscall page", va, int(page))
		if err != nil {
			return err
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
	pass(p.R, name, "VSYSCALL_ADDR %v -> %v USR ro NX GLB (PAGE_KERNEL_VVAR, U/S on every level), a call faults with I set; %s",
		va, frame, strings.Join(insns, ", "))
}
