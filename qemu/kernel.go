package qemu

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// The PVH entry note QEMU's -kernel looks for in an ELF image (QEMU
// hw/i386/x86.c, read_pvh_start_addr, through load_elf's note callback): an
// ELF note of owner "Xen" and type XEN_ELFNOTE_PHYS32_ENTRY (Xen's
// public/elfnote.h) whose descriptor is the 32-bit physical entry point.
// TamaGo's amd64 linker emits it in .note.go.pvh.
const (
	xenNoteOwner             = "Xen"
	XEN_ELFNOTE_PHYS32_ENTRY = 18
)

// CheckKernel checks, before QEMU is started, that path is a kernel QEMU
// can boot as physmap's: an existing, non-empty x86-64 ELF executable
// (ET_EXEC, EM_X86_64, ELFCLASS64) with a PT_NOTE segment holding the Xen
// PVH entry note. QEMU's own refusals of such files say little ("invalid
// kernel header", or for an empty file "could not load kernel ...:
// Success"). It returns an *Error wrapping ErrKernelMissing for a missing or
// empty file and ErrBadKernel for any other.
func CheckKernel(path string) error {
	hint := "; build it with: make kernel"
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return &Error{Op: "kernel", Err: ErrKernelMissing, Detail: err.Error() + hint}
	case fi.IsDir():
		return &Error{Op: "kernel", Err: ErrKernelMissing, Detail: path + " is a directory" + hint}
	case fi.Size() == 0:
		return &Error{Op: "kernel", Err: ErrKernelMissing, Detail: path + " is empty" + hint}
	}
	bad := func(format string, args ...any) error {
		return &Error{Op: "kernel", Err: ErrBadKernel, Detail: path + ": " + fmt.Sprintf(format, args...) + hint}
	}
	if magic, err := readPrefix(path, len(elf.ELFMAG)); err != nil {
		return bad("%v", err)
	} else if magic != elf.ELFMAG {
		return bad("not an ELF file (it starts %q, not %q)", magic, elf.ELFMAG)
	}
	f, err := elf.Open(path)
	if err != nil {
		return bad("a broken ELF file (%v)", err)
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC {
		return bad("an ELF %v %v %v, not the x86-64 executable physmap is (ELFCLASS64 EM_X86_64 ET_EXEC)", f.Class, f.Machine, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		data, err := io.ReadAll(p.Open())
		if err != nil {
			return bad("reading its PT_NOTE segment: %v", err)
		}
		if hasPVHNote(data, f.ByteOrder) {
			return nil
		}
	}
	return bad("no Xen PVH entry note (a PT_NOTE of owner %q, type %d XEN_ELFNOTE_PHYS32_ENTRY), which QEMU's -kernel boots by",
		xenNoteOwner, XEN_ELFNOTE_PHYS32_ENTRY)
}

// readPrefix returns the first n bytes of the file at path, or fewer if it
// is shorter.
func readPrefix(path string, n int) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b := make([]byte, n)
	k, err := io.ReadFull(f, b)
	if err == io.ErrUnexpectedEOF {
		err = nil
	}
	return string(b[:k]), err
}

// hasPVHNote reports whether a PT_NOTE segment's notes include the PVH entry
// note with a non-zero entry point. Each note is namesz, descsz and type (4
// bytes each), then the name and the descriptor, each padded to 4 bytes
// (System V ABI, "Note Section").
func hasPVHNote(data []byte, bo binary.ByteOrder) bool {
	pad := func(n uint32) uint64 { return (uint64(n) + 3) &^ 3 }
	for len(data) >= 12 {
		namesz, descsz, typ := bo.Uint32(data), bo.Uint32(data[4:]), bo.Uint32(data[8:])
		data = data[12:]
		if pad(namesz)+pad(descsz) > uint64(len(data)) {
			return false
		}
		name := bytes.TrimRight(data[:namesz], "\x00")
		desc := data[pad(namesz) : pad(namesz)+uint64(descsz)]
		data = data[pad(namesz)+pad(descsz):]
		if string(name) == xenNoteOwner && typ == XEN_ELFNOTE_PHYS32_ENTRY && len(desc) >= 4 && bo.Uint32(desc) != 0 {
			return true
		}
	}
	return false
}
