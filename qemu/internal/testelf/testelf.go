// Package testelf builds small ELF images for the harness's tests: enough
// of an x86-64 executable for qemu.CheckKernel to judge, with or without the
// Xen PVH entry note QEMU's -kernel boots by.
package testelf

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
)

// XEN_ELFNOTE_PHYS32_ENTRY is the PVH entry note's type (Xen's
// public/elfnote.h).
const XEN_ELFNOTE_PHYS32_ENTRY = 18

// Image describes an ELF image.
type Image struct {
	Machine  elf.Machine
	Type     elf.Type
	Owner    string // the note's owner; "" for no PT_NOTE at all
	NoteType uint32
	Entry    uint32
}

// PVH is what physmap's kernel looks like: an x86-64 executable with the
// PVH entry note.
var PVH = Image{Machine: elf.EM_X86_64, Type: elf.ET_EXEC, Owner: "Xen", NoteType: XEN_ELFNOTE_PHYS32_ENTRY, Entry: 0x100838e0}

// Bytes builds the image: the ELF header, one program header and, when
// Owner is set, a PT_NOTE holding one note with an 8-byte descriptor
// (System V ABI, "ELF Header", "Program Header" and "Note Section").
func (e Image) Bytes() []byte {
	le := binary.LittleEndian
	var note []byte
	if e.Owner != "" {
		name := append([]byte(e.Owner), 0)
		for len(name)%4 != 0 {
			name = append(name, 0)
		}
		note = le.AppendUint32(note, uint32(len(e.Owner)+1))
		note = le.AppendUint32(note, 8)
		note = le.AppendUint32(note, e.NoteType)
		note = append(note, name...)
		note = le.AppendUint64(note, uint64(e.Entry))
	}
	const ehsize, phsize = 64, 56
	var b bytes.Buffer
	ident := [16]byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)}
	b.Write(ident[:])
	for _, v := range []any{uint16(e.Type), uint16(e.Machine), uint32(elf.EV_CURRENT), uint64(e.Entry), uint64(ehsize), uint64(0),
		uint32(0), uint16(ehsize), uint16(phsize), uint16(1), uint16(64), uint16(0), uint16(0)} {
		binary.Write(&b, le, v)
	}
	ptype := elf.PT_LOAD
	if note != nil {
		ptype = elf.PT_NOTE
	}
	for _, v := range []any{uint32(ptype), uint32(elf.PF_R), uint64(ehsize + phsize), uint64(e.Entry), uint64(e.Entry),
		uint64(len(note)), uint64(len(note)), uint64(4)} {
		binary.Write(&b, le, v)
	}
	b.Write(note)
	return b.Bytes()
}
