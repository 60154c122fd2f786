package modload

import (
	"debug/elf"
	"encoding/binary"
	"fmt"

	"github.com/physmap/physmap/mm"
)

// Reloc is one relocation as the loader applied or refused it.
type Reloc struct {
	Type    elf.R_X86_64
	Section string      // the section patched
	Offset  uint64      // r_offset in it
	Symbol  string      // the symbol; a section symbol is named after its section
	From    string      // who defined it: "kernel", a module's name, or "" for this module
	S       mm.VirtAddr // the symbol's value
	A       int64       // the addend
	P       mm.VirtAddr // the place patched
	Val     uint64      // what Linux computes: S+A, minus P for PC32, PLT32 and PC64
}

// kernelTextStart is __START_KERNEL_map (arch/x86/include/asm/page_64_types.h):
// the lowest address a sign-extended 32-bit field holds, 2 GiB below the
// top, where the kernel text mapping begins. -mcmodel=kernel puts the
// kernel and its modules in [kernelTextStart, 2^64) for that reason.
const kernelTextStart = 0xffffffff80000000

// fits reports whether a relocation's value fits its field. Linux 6.1
// checks R_X86_64_32 and R_X86_64_32S (__apply_relocate_add in
// arch/x86/kernel/module.c); physmap also checks PC32 and PLT32, whose
// test Linux 6.1 compiles out (#if 0), and stores a truncated displacement
// where physmap refuses.
func fits(t elf.R_X86_64, val uint64) bool {
	switch t {
	case elf.R_X86_64_32:
		return val == uint64(uint32(val))
	case elf.R_X86_64_32S, elf.R_X86_64_PC32, elf.R_X86_64_PLT32:
		return int64(val) == int64(int32(val))
	}
	return true
}

// linuxChecks reports whether Linux 6.1 refuses an overflow of type t.
func linuxChecks(t elf.R_X86_64) bool { return t == elf.R_X86_64_32 || t == elf.R_X86_64_32S }

// value computes what a relocation stores, as __apply_relocate_add does:
// S+A, and for the PC-relative types minus the place.
func value(t elf.R_X86_64, s mm.VirtAddr, a int64, p mm.VirtAddr) uint64 {
	val := uint64(s) + uint64(a)
	switch t {
	case elf.R_X86_64_PC32, elf.R_X86_64_PLT32, elf.R_X86_64_PC64:
		val -= uint64(p)
	}
	return val
}

// store writes the low bytes of val into field, little-endian.
func store(field []byte, val uint64) {
	switch len(field) {
	case 4:
		binary.LittleEndian.PutUint32(field, uint32(val))
	case 8:
		binary.LittleEndian.PutUint64(field, val)
	}
}

// zero reports whether field holds only zero bytes.
func zero(field []byte) bool {
	for _, b := range field {
		if b != 0 {
			return false
		}
	}
	return true
}

// String describes the relocation: type, place, symbol and value.
func (r *Reloc) String() string {
	return fmt.Sprintf("%v at %s+%#x (%v) against %s (%s, %v)", r.Type, r.Section, r.Offset, r.P, r.target(), r.from(), r.S)
}

// target is the symbol and addend in objdump's notation
// ("page_offset_base-0x4").
func (r *Reloc) target() string {
	switch {
	case r.A < 0:
		return fmt.Sprintf("%s-%#x", r.Symbol, uint64(-r.A))
	case r.A > 0:
		return fmt.Sprintf("%s+%#x", r.Symbol, r.A)
	}
	return r.Symbol
}

func (r *Reloc) from() string {
	if r.From == "" {
		return "this module"
	}
	return r.From
}

// overflowErr is the refusal of one relocation that does not fit: Linux's
// line ("overflow in relocation type 11 val ffffc90000001040", its pr_err
// in __apply_relocate_add) and physmap's explanation with the distance.
func overflowErr(mod string, r *Reloc) *Error {
	e := &Error{
		Module: mod, Errno: ENOEXEC, Reloc: r, Linux: linuxChecks(r.Type),
		Msg: fmt.Sprintf("overflow in relocation type %d val %x", uint32(r.Type), r.Val),
	}
	far := bytesText(reach(r))
	switch r.Type {
	case elf.R_X86_64_32:
		e.Detail = line("%v: %#x is %s above 0xffffffff, the highest address a zero-extended 32-bit field holds", r, r.Val, far)
	case elf.R_X86_64_32S:
		if int64(r.Val) < 0 {
			e.Detail = line("%v: %#x is %s below %#x (__START_KERNEL_map), the lowest address a sign-extended 32-bit field holds", r, r.Val, far, uint64(kernelTextStart))
		} else {
			e.Detail = line("%v: %#x is %s above 0x7fffffff, the highest address a sign-extended 32-bit field holds", r, r.Val, far)
		}
	default: // PC32, PLT32
		dir := "above"
		if int64(r.Val) < 0 {
			dir = "below"
		}
		e.Detail = line("%v: the symbol is %s %s the place, beyond the 2 GiB a signed 32-bit displacement reaches; Linux 6.1 would store the truncated displacement (its check in __apply_relocate_add is under #if 0)", r, far, dir)
	}
	return e
}

// reach is how far a relocation that overflowed is out of its field's
// range: the distance it would need, for the detail lines and summaries.
func reach(r *Reloc) uint64 {
	switch r.Type {
	case elf.R_X86_64_32:
		return r.Val - 0xffffffff
	case elf.R_X86_64_32S:
		if int64(r.Val) < 0 {
			return kernelTextStart - r.Val
		}
		return r.Val - 0x7fffffff
	}
	if int64(r.Val) < 0 {
		return -r.Val
	}
	return r.Val
}

// bytesText gives a distance in hex and in the largest binary unit it
// reaches, e.g. "0x36ff6ecd3f5c (55.0 TiB)".
func bytesText(n uint64) string {
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	if n < 1<<10 {
		return fmt.Sprintf("%#x (%d bytes)", n, n)
	}
	i, f := 0, float64(n)/(1<<10)
	for f >= 1<<10 && i < len(units)-1 {
		f /= 1 << 10
		i++
	}
	return fmt.Sprintf("%#x (%.1f %s)", n, f, units[i])
}
