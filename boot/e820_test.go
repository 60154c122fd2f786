package boot

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/physmap/physmap/mm"
)

func e820Bytes(entries ...E820Entry) []byte {
	var b []byte
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint64(b, uint64(e.Range.Start))
		b = binary.LittleEndian.AppendUint64(b, uint64(e.Range.End-e.Range.Start))
		b = binary.LittleEndian.AppendUint32(b, uint32(e.Type))
	}
	return b
}

func ent(start, end uint64, t E820Type) E820Entry {
	return E820Entry{Range: mm.PhysRange{Start: mm.PhysAddr(start), End: mm.PhysAddr(end)}, Type: t}
}

// qemu6G is what QEMU 7.2's microvm reports for -m 6G.
var qemu6G = []E820Entry{ent(0, 0xc000_0000, E820_RAM), ent(0x1_0000_0000, 0x1_c000_0000, E820_RAM)}

func TestParseE820(t *testing.T) {
	m, err := ParseE820(e820Bytes(qemu6G...))
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || m[0] != qemu6G[0] || m[1] != qemu6G[1] {
		t.Fatalf("ParseE820 = %v, want %v", m, qemu6G)
	}
	if err := m.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if got := m.RAMBytes(); got != 6<<30 {
		t.Errorf("RAMBytes = %#x, want 6 GiB", got)
	}
	want := []string{
		"BIOS-e820: [mem 0x0000000000000000-0x00000000bfffffff] usable",
		"BIOS-e820: [mem 0x0000000100000000-0x00000001bfffffff] usable",
	}
	for i, e := range m {
		if e.String() != want[i] {
			t.Errorf("line %d = %q, want %q", i, e.String(), want[i])
		}
	}
}

func TestParseE820Malformed(t *testing.T) {
	good := e820Bytes(qemu6G...)
	for name, b := range map[string][]byte{
		"empty":     nil,
		"truncated": good[:len(good)-1],
		"zero size": e820Bytes(ent(0x1000, 0x1000, E820_RAM)),
		"wraps":     e820Bytes(E820Entry{Range: mm.PhysRange{Start: 0xffff_ffff_ffff_f000, End: 0x1000}, Type: E820_RAM}),
	} {
		if _, err := ParseE820(b); !errors.Is(err, ErrE820Format) {
			t.Errorf("%s: err = %v, want ErrE820Format", name, err)
		}
	}
}

func TestValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		m    MemoryMap
		want error
	}{
		"unsorted":    {MemoryMap{qemu6G[1], qemu6G[0]}, ErrE820Order},
		"overlapping": {MemoryMap{ent(0, 0x2000, E820_RAM), ent(0x1000, 0x3000, E820_RESERVED)}, ErrE820Order},
		"no RAM":      {MemoryMap{ent(0, 0x2000, E820_RESERVED)}, ErrNoRAM},
		"adjacent":    {MemoryMap{ent(0, 0x1000, E820_RAM), ent(0x1000, 0x2000, E820_RESERVED)}, nil},
	} {
		if err := tc.m.Validate(); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: Validate = %v, want %v", name, err, tc.want)
		}
	}
}

func TestRAMAndCoverage(t *testing.T) {
	m := MemoryMap{ent(0, 0x9fc00, E820_RAM), ent(0x9fc00, 0xa0000, E820_RESERVED),
		ent(0x100000, 0x200000, E820_RAM), ent(0x200000, 0x300000, E820_RAM)}
	ram := m.RAM()
	if len(ram) != 2 || ram[1] != (mm.PhysRange{Start: 0x100000, End: 0x300000}) {
		t.Errorf("RAM() = %v, want the two adjacent ranges merged", ram)
	}
	if !m.CoversRAM(mm.PhysRange{Start: 0x180000, End: 0x280000}) {
		t.Error("CoversRAM misses a range spanning two adjacent RAM entries")
	}
	if m.CoversRAM(mm.PhysRange{Start: 0x90000, End: 0xa0000}) {
		t.Error("CoversRAM accepts a range reaching into reserved memory")
	}
	if E820Type(99).String() != "type 99" || E820_PRAM.String() != "persistent (type 12)" {
		t.Error("type names differ from Linux's")
	}
}
