package modload

import (
	"debug/elf"
	"testing"

	"github.com/physmap/physmap/mm"
)

// The arithmetic of each relocation type at the edges of its field: the
// expected values are written out by hand from the x86-64 psABI's
// formulas (S+A, S+A-P) and the field widths, not computed by value().
func TestValueAndFit(t *testing.T) {
	// p is the place: a module-area address, or for the cases reaching
	// up by 2 GiB one low enough that the symbol exists.
	const p, low = mm.VirtAddr(0xffffffffa0000010), mm.VirtAddr(0xffffc90000000010)
	for _, c := range []struct {
		name string
		typ  elf.R_X86_64
		s    mm.VirtAddr
		a    int64
		p    mm.VirtAddr // 0 for p
		want uint64
		fits bool
	}{
		{"64 wraps", elf.R_X86_64_64, 0xffffffffffffffff, 2, 0, 1, true},
		{"64 kernel", elf.R_X86_64_64, 0xffffffff9122c0a8, 8, 0, 0xffffffff9122c0b0, true},
		{"32 top", elf.R_X86_64_32, 0xfffffffe, 1, 0, 0xffffffff, true},
		{"32 one past", elf.R_X86_64_32, 0xffffffff, 1, 0, 0x100000000, false},
		{"32 kernel address", elf.R_X86_64_32, 0xffffffff9122c0a8, 0, 0, 0xffffffff9122c0a8, false},
		{"32S lowest", elf.R_X86_64_32S, 0xffffffff80000000, 0, 0, 0xffffffff80000000, true},
		{"32S one below", elf.R_X86_64_32S, 0xffffffff80000000, -1, 0, 0xffffffff7fffffff, false},
		{"32S highest", elf.R_X86_64_32S, 0x7fffffff, 0, 0, 0x7fffffff, true},
		{"32S one above", elf.R_X86_64_32S, 0x7fffffff, 1, 0, 0x80000000, false},
		{"32S vmalloc", elf.R_X86_64_32S, 0xffffc90000001038, 0, 0, 0xffffc90000001038, false},
		{"PC32 +2G-1", elf.R_X86_64_PC32, low + 0x7fffffff + 4, -4, low, 0x7fffffff, true},
		{"PC32 +2G", elf.R_X86_64_PC32, low + 0x80000000 + 4, -4, low, 0x80000000, false},
		{"PC32 -2G", elf.R_X86_64_PC32, p - 0x80000000 + 4, -4, 0, 0xffffffff80000000, true},
		{"PC32 -2G-1", elf.R_X86_64_PC32, p - 0x80000001 + 4, -4, 0, 0xffffffff7fffffff, false},
		{"PLT32 back", elf.R_X86_64_PLT32, 0xffffffff900b8000, -4, 0, 0xfffffffff00b7fec, true},
		{"PLT32 from vmalloc", elf.R_X86_64_PLT32, 0xffffffff900b8000, -4, low, 0x36ff900b7fec, false},
		{"PC64 far", elf.R_X86_64_PC64, 0xffff888000000000, 0, 0, 0xffff88805ffffff0, true},
		{"NONE", elf.R_X86_64_NONE, 0x1234, 0, 0, 0x1234, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			at := p
			if c.p != 0 {
				at = c.p
			}
			got := value(c.typ, c.s, c.a, at)
			if got != c.want {
				t.Errorf("value = %#x, want %#x", got, c.want)
			}
			if f := fits(c.typ, got); f != c.fits {
				t.Errorf("fits(%#x) = %v, want %v", got, f, c.fits)
			}
		})
	}
}

// Linux checks only the absolute 32-bit types; PC32 and PLT32 overflows
// are physmap's own refusals.
func TestLinuxChecks(t *testing.T) {
	for typ, want := range map[elf.R_X86_64]bool{
		elf.R_X86_64_32: true, elf.R_X86_64_32S: true,
		elf.R_X86_64_PC32: false, elf.R_X86_64_PLT32: false, elf.R_X86_64_64: false, elf.R_X86_64_PC64: false,
	} {
		if got := linuxChecks(typ); got != want {
			t.Errorf("linuxChecks(%v) = %v, want %v", typ, got, want)
		}
	}
}

func TestStore(t *testing.T) {
	f4 := make([]byte, 4)
	store(f4, 0xffffffff80000010)
	if want := []byte{0x10, 0, 0, 0x80}; string(f4) != string(want) {
		t.Errorf("4-byte field % x, want % x", f4, want)
	}
	f8 := make([]byte, 8)
	store(f8, 0x0102030405060708)
	if want := []byte{8, 7, 6, 5, 4, 3, 2, 1}; string(f8) != string(want) {
		t.Errorf("8-byte field % x, want % x", f8, want)
	}
}

func TestBytesText(t *testing.T) {
	for n, want := range map[uint64]string{
		12:             "0xc (12 bytes)",
		1 << 10:        "0x400 (1.0 KiB)",
		0x36ff9122c0a1: "0x36ff9122c0a1 (55.0 TiB)",
		3 << 29:        "0x60000000 (1.5 GiB)",
	} {
		if got := bytesText(n); got != want {
			t.Errorf("bytesText(%#x) = %q, want %q", n, got, want)
		}
	}
}

func TestNames(t *testing.T) {
	for e, want := range map[Errno]string{ENOENT: "ENOENT", ENOEXEC: "ENOEXEC", EAGAIN: "EAGAIN", ENOMEM: "ENOMEM", EBUSY: "EBUSY", EEXIST: "EEXIST", EINVAL: "EINVAL", 99: "errno 99"} {
		if got := e.Error(); got != want {
			t.Errorf("Errno(%d) = %q, want %q", int(e), got, want)
		}
	}
	for g, want := range map[Group]string{GroupText: "text", GroupRodata: "rodata", GroupROAfterInit: "ro_after_init", GroupData: "data", NumGroups: "group?"} {
		if got := g.String(); got != want {
			t.Errorf("Group(%d) = %q, want %q", int(g), got, want)
		}
	}
	if StateComing.String() != "Loading" || StateLive.String() != "Live" {
		t.Errorf("states %v %v", StateComing, StateLive)
	}
	if got := escape("a\nb\xff"); got != `a\x0ab\xff` {
		t.Errorf("escape = %q", got)
	}
}
