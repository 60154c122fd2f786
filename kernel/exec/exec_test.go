package exec_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/physmap/physmap/kernel/exec"
	"github.com/physmap/physmap/kernel/programs/progtest"
	"github.com/physmap/physmap/mm"
)

// limits are the kernel's: the user half below a 4-level stack, the
// runtime's window at TamaGo's ramStart kept out.
var limits = exec.Limits{
	Range:    mm.VirtRange{Start: 0x1000, End: 0x7fff_f000_0000},
	Avoid:    mm.VirtRange{Start: 0x1000_0000, End: 0x1800_0000},
	MaxPages: 64,
}

func probe(t testing.TB) []byte {
	t.Helper()
	return progtest.Build(t)["probe"]
}

// The ELF64 header and program header fields the cases patch (the System V
// gABI, "ELF Header" and "Program Header").
const (
	offType    = 0x10
	offMachine = 0x12
	offEntry   = 0x18
	offPhoff   = 0x20
	phSize     = 56
	phType     = 0
	phFlags    = 4
	phOffset   = 8
	phVaddr    = 16
	phFilesz   = 32
	phMemsz    = 40
)

// patchPh sets a program header's field of width 4 or 8.
func patchPh(data []byte, i, field int, width int, v uint64) {
	off := int(binary.LittleEndian.Uint64(data[offPhoff:])) + i*phSize + field
	if width == 4 {
		binary.LittleEndian.PutUint32(data[off:], uint32(v))
	} else {
		binary.LittleEndian.PutUint64(data[off:], v)
	}
}

func TestLoadProbe(t *testing.T) {
	p, err := exec.Load(probe(t), limits)
	if err != nil {
		t.Fatal(err)
	}
	var text, data int
	for _, s := range p.Segments {
		if s.Write && s.Exec {
			t.Errorf("segment at %v is W+X", s.VA)
		}
		if s.Exec {
			text++
			if a := s.Attrs(); a != mm.AttrUser {
				t.Errorf("text attrs %v, want USR ro x", a)
			}
		}
		if s.Write {
			data++
			if a := s.Attrs(); a != mm.AttrUser|mm.AttrWrite|mm.AttrNX {
				t.Errorf("data attrs %v, want USR RW NX", a)
			}
		}
		if s.VA < 0x400000 {
			t.Errorf("segment at %v, below ld's default 0x400000", s.VA)
		}
	}
	if text != 1 || data != 1 {
		t.Errorf("%d text and %d data segments, want one each", text, data)
	}
	if p.Entry < 0x401000 {
		t.Errorf("entry %v", p.Entry)
	}
}

func TestLoadRefuses(t *testing.T) {
	good := probe(t)
	// The probe's program headers in order: headers R, text R X, data RW,
	// GNU_STACK (TestLoadProbe and the Makefile's -z separate-code).
	const text, data, stack = 1, 2, 3
	cases := []struct {
		name  string
		patch func(b []byte)
		lim   func(l *exec.Limits)
		want  error
	}{
		{name: "not-elf", patch: func(b []byte) { copy(b, "hello") }, want: exec.ErrNotELF},
		{name: "pie", patch: func(b []byte) { binary.LittleEndian.PutUint16(b[offType:], 3) }, want: exec.ErrNotStatic},
		{name: "aarch64", patch: func(b []byte) { binary.LittleEndian.PutUint16(b[offMachine:], 0xb7) }, want: exec.ErrNotStatic},
		{name: "interp", patch: func(b []byte) { patchPh(b, stack, phType, 4, 3) }, want: exec.ErrNotStatic},
		{name: "tls", patch: func(b []byte) { patchPh(b, stack, phType, 4, 7) }, want: exec.ErrNotStatic},
		{name: "wx", patch: func(b []byte) { patchPh(b, data, phFlags, 4, 7) }, want: exec.ErrBadSegment},
		{name: "filesz", patch: func(b []byte) { patchPh(b, data, phFilesz, 8, 0x10000) }, want: exec.ErrBadSegment},
		{name: "beyond-file", patch: func(b []byte) { patchPh(b, text, phOffset, 8, 0x7fff_0000) }, want: exec.ErrBadSegment},
		{name: "kernel-half", patch: func(b []byte) { patchPh(b, data, phVaddr, 8, 0xffff_8880_0000_2000) }, want: exec.ErrBadSegment},
		{name: "wrapping", patch: func(b []byte) { patchPh(b, data, phMemsz, 8, ^uint64(0)-0x1000) }, want: exec.ErrBadSegment},
		{name: "overlap", patch: func(b []byte) { patchPh(b, data, phVaddr, 8, 0x401000) }, want: exec.ErrBadSegment},
		{name: "entry-in-data", patch: func(b []byte) { binary.LittleEndian.PutUint64(b[offEntry:], 0x402000) }, want: exec.ErrBadEntry},
		{name: "window", lim: func(l *exec.Limits) { l.Avoid = mm.VirtRange{Start: 0x400000, End: 0x600000} }, want: exec.ErrBadSegment},
		{name: "too-large", lim: func(l *exec.Limits) { l.MaxPages = 2 }, want: exec.ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := append([]byte(nil), good...)
			if c.patch != nil {
				c.patch(b)
			}
			lim := limits
			if c.lim != nil {
				c.lim(&lim)
			}
			_, err := exec.Load(b, lim)
			if !errors.Is(err, c.want) {
				t.Fatalf("Load: %v, want %v", err, c.want)
			}
			t.Log(err)
		})
	}
}

// FuzzLoad: whatever the bytes, Load returns an error or a program that
// keeps the limits.
func FuzzLoad(f *testing.F) {
	f.Add(probe(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := exec.Load(data, limits)
		if err != nil {
			return
		}
		if p.Pages() > limits.MaxPages {
			t.Fatalf("%d pages", p.Pages())
		}
		for _, s := range p.Segments {
			r := s.Pages()
			if s.Write && s.Exec || r.Start < limits.Range.Start.AlignDown(4096) || r.End > limits.Range.End.AlignUp(4096) || r.Overlaps(limits.Avoid) || uint64(len(s.Data)) > s.MemSize {
				t.Fatalf("segment %+v breaks the limits", r)
			}
		}
	})
}
