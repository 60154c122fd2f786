package modload_test

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/physmap/physmap/kernel/modload"
	"github.com/physmap/physmap/kernel/modules/modtest"
	"github.com/physmap/physmap/mm"
)

// Where the structures of an object are, from debug/elf, for patching.

func shdrAt(t testing.TB, obj []byte, name string) (int, uint64) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(obj))
	if err != nil {
		t.Fatal(err)
	}
	shoff := binary.LittleEndian.Uint64(obj[40:])
	for i, s := range f.Sections {
		if s.Name == name {
			return i, shoff + uint64(i)*64
		}
	}
	t.Fatalf("no section %s", name)
	return 0, 0
}

func sectionOffset(t testing.TB, obj []byte, name string) uint64 {
	t.Helper()
	_, sh := shdrAt(t, obj, name)
	return binary.LittleEndian.Uint64(obj[sh+24:])
}

func symAt(t testing.TB, obj []byte, name string) uint64 {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(obj))
	if err != nil {
		t.Fatal(err)
	}
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range syms {
		if s.Name == name {
			return sectionOffset(t, obj, ".symtab") + uint64(i+1)*24
		}
	}
	t.Fatalf("no symbol %s", name)
	return 0
}

// patched returns a copy of obj with fn applied.
func patched(obj []byte, fn func(b []byte)) []byte {
	b := bytes.Clone(obj)
	fn(b)
	return b
}

// badCase is one bad input and the one line it must give.
type badCase struct {
	name  string
	data  []byte
	errno modload.Errno
	want  string // the whole message, or its start when prefix is set
	link  bool   // refused by Link rather than Parse
	kind  string // "" for *Error, "unknown" or "placement"
	pfx   bool
}

func badCases(t testing.TB) []badCase {
	objs := modtest.Modules(t)
	test := testModules(t)
	good := objs["reloc"]
	le := binary.LittleEndian
	rela := sectionOffset(t, good, ".rela.text")
	_, textSh := shdrAt(t, good, ".text")
	shnum := int(le.Uint16(good[60:]))
	bigSize := mustParse(t, test["bigbss"]).Size()
	// The place of reloc's first relocation, whose field is zero.
	firstOff := le.Uint64(good[rela:])
	textOff := sectionOffset(t, good, ".text")
	pob, _ := physmapKernel.Lookup("page_offset_base")

	return []badCase{
		{name: "empty", data: nil, errno: modload.ENOEXEC, want: "Invalid ELF header len 0"},
		{name: "truncated to 10 bytes", data: good[:10], errno: modload.ENOEXEC, want: "Invalid ELF header len 10"},
		{name: "truncated to 63 bytes", data: good[:63], errno: modload.ENOEXEC, want: "Invalid ELF header len 63"},
		{name: "header only", data: good[:64], errno: modload.ENOEXEC, want: "Invalid ELF section header overflow"},
		{name: "truncated by one byte", data: good[:len(good)-1], errno: modload.ENOEXEC, want: "Invalid ELF section header overflow"},
		{name: "truncated .text", data: patched(good, func(b []byte) { le.PutUint64(b[textSh+32:], uint64(len(b))) }),
			errno: modload.ENOEXEC, want: "Invalid ELF section in module (section 1 type 1)"},
		{name: "bad magic", data: patched(good, func(b []byte) { b[1] = 'X' }), errno: modload.ENOEXEC, want: `Invalid ELF header magic: != "\x7fELF"`},
		{name: "wrong class", data: patched(good, func(b []byte) { b[elf.EI_CLASS] = byte(elf.ELFCLASS32) }),
			errno: modload.ENOEXEC, want: "Invalid ELF header class: 1 != 2 (ELFCLASS64)"},
		{name: "big-endian", data: patched(good, func(b []byte) { b[elf.EI_DATA] = byte(elf.ELFDATA2MSB) }),
			errno: modload.ENOEXEC, want: "Invalid ELF header data encoding: 2 != 1 (ELFDATA2LSB)"},
		{name: "executable, not relocatable", data: patched(good, func(b []byte) { le.PutUint16(b[16:], uint16(elf.ET_EXEC)) }),
			errno: modload.ENOEXEC, want: "Invalid ELF header type: 2 != 1"},
		{name: "wrong machine i386", data: patched(good, func(b []byte) { le.PutUint16(b[18:], uint16(elf.EM_386)) }),
			errno: modload.ENOEXEC, want: "Invalid architecture in ELF header: 3"},
		{name: "wrong machine arm64", data: patched(good, func(b []byte) { le.PutUint16(b[18:], uint16(elf.EM_AARCH64)) }),
			errno: modload.ENOEXEC, want: "Invalid architecture in ELF header: 183"},
		{name: "section header size", data: patched(good, func(b []byte) { le.PutUint16(b[58:], 40) }),
			errno: modload.ENOEXEC, want: "Invalid ELF section header size"},
		{name: "no section name table", data: patched(good, func(b []byte) { le.PutUint16(b[62:], 0) }),
			errno: modload.ENOEXEC, want: fmt.Sprintf("Invalid ELF section name index: 0 || e_shstrndx (0) >= e_shnum (%d)", shnum)},
		{name: "no module name", data: patched(good, func(b []byte) {
			i := bytes.Index(b, []byte("name=reloc"))
			copy(b[i:], "nome")
		}), errno: modload.ENOEXEC, want: `(missing .modinfo section or name field): no valid module name (name="")`},
		{name: "stripped", data: patched(good, func(b []byte) {
			_, sh := shdrAt(t, b, ".symtab")
			le.PutUint32(b[sh+4:], uint32(elf.SHT_PROGBITS))
		}), errno: modload.ENOEXEC, want: "reloc: module has no symbols (stripped?)"},
		{name: "unknown relocation type", data: patched(good, func(b []byte) {
			le.PutUint32(b[rela+8:], uint32(elf.R_X86_64_GOTPCREL))
		}), errno: modload.ENOEXEC, want: "reloc: Unknown rela relocation: 9"},
		{name: "GOT relocation of PIC code", data: test["gotpcrel"], errno: modload.ENOEXEC, want: "gotpcrel: Unknown rela relocation: 42"},
		{name: "relocation beyond its section", data: patched(good, func(b []byte) { le.PutUint64(b[rela:], 0x10000) }),
			errno: modload.ENOEXEC, want: "reloc: R_X86_64_PC32 at .text+0x10000 writes 4 bytes beyond the section's"},
		{name: "relocation symbol out of range", data: patched(good, func(b []byte) { le.PutUint32(b[rela+12:], 0xffff) }),
			errno: modload.ENOEXEC, want: "reloc: relocation 0 of .rela.text refers to symbol 65535 of", pfx: true},
		{name: "common symbol", data: patched(good, func(b []byte) {
			le.PutUint16(b[symAt(t, b, "reloc_words")+6:], uint16(elf.SHN_COMMON))
		}), errno: modload.ENOEXEC, want: "reloc: please compile with -fno-common"},
		{name: "symbol in no section", data: patched(good, func(b []byte) {
			le.PutUint16(b[symAt(t, b, "reloc_words")+6:], 0x100)
		}), errno: modload.ENOEXEC, want: fmt.Sprintf("reloc: Symbol reloc_words has an invalid section index 256 (max %d)", shnum-1)},
		{name: "W+X section", data: test["wx"], errno: modload.ENOEXEC, want: "wx: section .wxcode (index 5) has invalid WRITE|EXEC flags"},
		{name: "init section", data: test["initsec"], errno: modload.ENOEXEC, want: "initsec: section .init.text (index 4) is an init section: physmap has no init layout"},
		{name: "undefined symbol", data: test["undef"], errno: modload.ENOENT, want: "undef: Unknown symbol no_such_symbol (err -2)", link: true, kind: "unknown"},
		{name: "section too big for the area", data: test["bigbss"], errno: modload.ENOMEM, link: true,
			want: fmt.Sprintf("bigbss: %#x (2.0 GiB) at %v do not fit in %v (err -12)", bigSize, moduleArea.Start, moduleArea)},
		{name: "nonzero relocation target", data: patched(good, func(b []byte) { b[textOff+firstOff] = 0x5a }),
			errno: modload.ENOEXEC, link: true, pfx: true,
			want: fmt.Sprintf("x86/modules: Skipping invalid relocation target, existing value is nonzero for type 2, loc %v, val", moduleArea.Start.Add(firstOff))},
		{name: "default code model", data: test["smallmodel"], errno: modload.ENOEXEC, link: true, kind: "placement",
			want: fmt.Sprintf("overflow in relocation type 10 val %x", uint64(pob))},
	}
}

// Each bad input gives its one line, Linux's where Linux checks the same
// thing, with the right errno and error type.
func TestBadInput(t *testing.T) {
	for _, c := range badCases(t) {
		t.Run(c.name, func(t *testing.T) {
			o, err := modload.Parse(c.data)
			if c.link {
				if err != nil {
					t.Fatalf("Parse: %v, want it to pass and Link to fail", err)
				}
				_, err = modload.NewRegistry(physmapKernel).Link(o, moduleArea.Start, moduleArea)
			}
			if err == nil {
				t.Fatalf("accepted, want %q", c.want)
			}
			msg := err.Error()
			if c.pfx || strings.HasSuffix(c.want, "section's") {
				if !strings.HasPrefix(msg, c.want) {
					t.Errorf("%q, want it to start %q", msg, c.want)
				}
			} else if msg != c.want {
				t.Errorf("%q, want %q", msg, c.want)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("%q is more than one line", msg)
			}
			if !errors.Is(err, c.errno) {
				t.Errorf("%v is not %v", err, c.errno)
			}
			var e *modload.Error
			var us *modload.UnknownSymbolError
			var pe *modload.PlacementError
			switch c.kind {
			case "unknown":
				if !errors.As(err, &us) {
					t.Errorf("%T, want *UnknownSymbolError", err)
				}
			case "placement":
				if !errors.As(err, &pe) {
					t.Errorf("%T, want *PlacementError", err)
				}
			default:
				if !errors.As(err, &e) {
					t.Errorf("%T, want *Error", err)
				}
			}
		})
	}
}

// A base the loader cannot use is refused before anything else.
func TestBadBase(t *testing.T) {
	o := mustParse(t, modtest.Modules(t)["reloc"])
	r := modload.NewRegistry(physmapKernel)
	for _, c := range []struct {
		base  mm.VirtAddr
		area  mm.VirtRange
		errno modload.Errno
	}{
		{moduleArea.Start.Add(8), moduleArea, modload.EINVAL},
		{moduleArea.End.Sub(modload.PageSize), moduleArea, modload.ENOMEM},
		{moduleArea.Start.Sub(modload.PageSize), moduleArea, modload.ENOMEM},
		{mm.VirtAddr(0xfffffffffffff000), mm.VirtRange{Start: 0xffffffffff000000, End: 0xfffffffffffff000}, modload.ENOMEM},
	} {
		if _, err := r.Link(o, c.base, c.area); !errors.Is(err, c.errno) {
			t.Errorf("base %v in %v: %v, want %v", c.base, c.area, err, c.errno)
		}
	}
}
