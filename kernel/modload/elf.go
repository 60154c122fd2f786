package modload

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"strings"
)

// Sizes of the ELF64 structures the loader reads (the System V gABI).
const (
	ehdrSize = 64 // Elf64_Ehdr
	shdrSize = 64 // Elf64_Shdr
	relaSize = 24 // Elf64_Rela
	symSize  = 24 // Elf64_Sym
)

// shfROAfterInit is SHF_RO_AFTER_INIT (include/uapi/linux/elf.h), the
// section flag Linux's loader sets on .data..ro_after_init and
// __jump_table (kernel/module/main.c: layout_and_allocate).
const shfROAfterInit = 0x00200000

// moduleNameLen is MODULE_NAME_LEN, the size of struct module's name
// including its NUL (include/linux/module.h: 64 - sizeof(unsigned long)).
const moduleNameLen = 56

// shdr is one section header as the file holds it.
type shdr struct {
	name      uint32
	typ       elf.SectionType
	flags     uint64
	off, size uint64
	link      uint32
	info      uint32
	align     uint64
}

func readShdr(b []byte) shdr {
	le := binary.LittleEndian
	return shdr{
		name:  le.Uint32(b[0:]),
		typ:   elf.SectionType(le.Uint32(b[4:])),
		flags: le.Uint64(b[8:]),
		off:   le.Uint64(b[24:]),
		size:  le.Uint64(b[32:]),
		link:  le.Uint32(b[40:]),
		info:  le.Uint32(b[44:]),
		align: le.Uint64(b[48:]),
	}
}

// checkELF makes the checks of Linux's elf_validity_check
// (kernel/module/main.c) on the raw bytes, in its order and with its
// messages, plus two of physmap's own (class and byte order, which Linux
// leaves to elf_check_arch's machine check). It returns the section
// headers and the index of the section name table.
func checkELF(data []byte) ([]shdr, int, error) {
	if len(data) < ehdrSize {
		return nil, 0, linuxErr("", ENOEXEC, "Invalid ELF header len %d", len(data))
	}
	if !bytes.Equal(data[:4], []byte(elf.ELFMAG)) {
		return nil, 0, linuxErr("", ENOEXEC, "Invalid ELF header magic: != %q", elf.ELFMAG)
	}
	if c := elf.Class(data[elf.EI_CLASS]); c != elf.ELFCLASS64 {
		return nil, 0, ownErr("", ENOEXEC, "Invalid ELF header class: %d != %d (%v)", c, elf.ELFCLASS64, elf.ELFCLASS64).
			withDetail("Linux 6.1 reads every module header as an Elf64_Ehdr without looking at EI_CLASS; an ELFCLASS32 object fails its later checks instead")
	}
	if d := elf.Data(data[elf.EI_DATA]); d != elf.ELFDATA2LSB {
		return nil, 0, ownErr("", ENOEXEC, "Invalid ELF header data encoding: %d != %d (%v)", d, elf.ELFDATA2LSB, elf.ELFDATA2LSB)
	}
	le := binary.LittleEndian
	if t := elf.Type(le.Uint16(data[16:])); t != elf.ET_REL {
		return nil, 0, linuxErr("", ENOEXEC, "Invalid ELF header type: %d != %d", t, elf.ET_REL)
	}
	// elf_check_arch on x86-64 (arch/x86/include/asm/elf.h).
	if m := elf.Machine(le.Uint16(data[18:])); m != elf.EM_X86_64 {
		return nil, 0, linuxErr("", ENOEXEC, "Invalid architecture in ELF header: %d", m).
			withDetail("e_machine %v, want %v", m, elf.EM_X86_64)
	}
	if le.Uint16(data[58:]) != shdrSize {
		return nil, 0, linuxErr("", ENOEXEC, "Invalid ELF section header size")
	}
	shoff, shnum, shstrndx := le.Uint64(data[40:]), uint64(le.Uint16(data[60:])), uint64(le.Uint16(data[62:]))
	n := uint64(len(data))
	if shoff >= n || shnum*shdrSize > n-shoff {
		return nil, 0, linuxErr("", ENOEXEC, "Invalid ELF section header overflow")
	}
	if shstrndx == uint64(elf.SHN_UNDEF) || shstrndx >= shnum {
		return nil, 0, linuxErr("", ENOEXEC, "Invalid ELF section name index: %d || e_shstrndx (%d) >= e_shnum (%d)", shstrndx, shstrndx, shnum)
	}
	sh := make([]shdr, shnum)
	for i := range sh {
		sh[i] = readShdr(data[shoff+uint64(i)*shdrSize:])
	}
	inFile := func(s shdr) bool { end := s.off + s.size; return end >= s.off && end <= n }
	str := sh[shstrndx]
	if !inFile(str) {
		return nil, 0, linuxErr("", ENOEXEC, "Invalid ELF section hdr(type %d)", uint32(str.typ))
	}
	if str.size == 0 {
		return nil, 0, linuxErr("", ENOEXEC, "empty section name table")
	}
	if data[str.off+str.size-1] != 0 {
		return nil, 0, linuxErr("", ENOEXEC, "ELF Spec violation: section name table isn't null terminated")
	}
	if sh[0].typ != elf.SHT_NULL || sh[0].size != 0 || le.Uint64(data[shoff+16:]) != 0 {
		return nil, 0, linuxErr("", ENOEXEC, "ELF Spec violation: section 0 type(%d)!=SH_NULL or non-zero len or addr", uint32(sh[0].typ))
	}
	for i := 1; i < len(sh); i++ {
		s := sh[i]
		switch s.typ {
		case elf.SHT_NULL, elf.SHT_NOBITS:
			continue
		case elf.SHT_SYMTAB:
			if s.link == uint32(elf.SHN_UNDEF) || uint64(s.link) >= shnum {
				return nil, 0, linuxErr("", ENOEXEC, "Invalid ELF sh_link!=SHN_UNDEF(%d) or (sh_link(%d) >= hdr->e_shnum(%d)", s.link, s.link, shnum)
			}
		}
		if !inFile(s) {
			return nil, 0, linuxErr("", ENOEXEC, "Invalid ELF section in module (section %d type %d)", i, uint32(s.typ)).
				withDetail("section %d holds [%#x, %#x+%#x) of a %d-byte object", i, s.off, s.off, s.size, n)
		}
		if s.flags&uint64(elf.SHF_ALLOC) != 0 && uint64(s.name) >= str.size {
			return nil, 0, linuxErr("", ENOEXEC, "Invalid ELF section name in module (section %d type %d)", i, uint32(s.typ))
		}
	}
	return sh, int(shstrndx), nil
}

// sectionName returns the NUL-terminated name at off in the section name
// table, which checkELF found NUL-terminated.
func sectionName(strtab []byte, off uint32) string {
	if uint64(off) >= uint64(len(strtab)) {
		return ""
	}
	b := strtab[off:]
	return string(b[:bytes.IndexByte(b, 0)])
}

// modinfo splits .modinfo into its "tag=value" strings (get_modinfo in
// kernel/module/main.c walks the same NUL-separated list).
func modinfo(b []byte) []string {
	var out []string
	for _, s := range strings.Split(string(b), "\x00") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// validName reports whether name can be a module's name: non-empty, fits
// MODULE_NAME_LEN with its NUL, and holds only the characters Kbuild's
// KBUILD_MODNAME gives (letters, digits, '_', '-').
func validName(name string) bool {
	if name == "" || len(name) >= moduleNameLen {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// cString returns the NUL-terminated string at off in b.
func cString(b []byte, off uint64) (string, bool) {
	if off >= uint64(len(b)) {
		return "", false
	}
	i := bytes.IndexByte(b[off:], 0)
	if i < 0 {
		return "", false
	}
	return string(b[off : off+uint64(i)]), true
}

// sectionData returns the bytes of a section checkELF found inside data:
// nil for SHT_NULL and SHT_NOBITS, whose offsets it does not check.
func sectionData(data []byte, s shdr) []byte {
	if s.typ == elf.SHT_NOBITS || s.typ == elf.SHT_NULL {
		return nil
	}
	return data[s.off : s.off+s.size]
}

// wrapELF turns an error of debug/elf into the loader's.
func wrapELF(mod string, err error) *Error {
	return ownErr(mod, ENOEXEC, "%s: malformed object: %v", displayName(mod), err)
}

// displayName is the name Linux logs before it knows the module's.
func displayName(mod string) string {
	if mod == "" {
		return "(missing .modinfo section or name field)"
	}
	return mod
}
