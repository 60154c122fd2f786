package region

import (
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/physmap/physmap/mm"
)

func pvhEntry(addr, size uint64, typ uint32) []byte {
	b := binary.LittleEndian.AppendUint64(nil, addr)
	b = binary.LittleEndian.AppendUint64(b, size)
	b = binary.LittleEndian.AppendUint32(b, typ)
	return binary.LittleEndian.AppendUint32(b, 0)
}

func TestParsePVHMemmap(t *testing.T) {
	var raw []byte
	raw = append(raw, pvhEntry(0x100000000, 0x80000000, pvhTypeRAM)...) // out of order
	raw = append(raw, pvhEntry(0, 0x9fc00, pvhTypeRAM)...)
	raw = append(raw, pvhEntry(0x9fc00, 0x400, 2)...)     // reserved
	raw = append(raw, pvhEntry(0xfeffc000, 0x4000, 2)...) // reserved above the ISA range
	raw = append(raw, pvhEntry(0x100000, 0xbff00000, pvhTypeRAM)...)
	raw = append(raw, pvhEntry(0xc0000000, 0, pvhTypeRAM)...)             // empty
	raw = append(raw, pvhEntry(0x10000000000, 0x40000000, pvhTypeRAM)...) // beyond 40 bits
	got, err := ParsePVHMemmap(raw, 40)
	if err != nil {
		t.Fatal(err)
	}
	want := []mm.PhysRange{{Start: 0, End: 0x9fc00}, {Start: 0x100000, End: 0xc0000000}, {Start: 0x100000000, End: 0x180000000}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("RAM = %v, want %v", got, want)
	}
	for _, bad := range [][]byte{nil, raw[:23], append(pvhEntry(^uint64(0)-10, 100, pvhTypeRAM), raw...)} {
		if _, err := ParsePVHMemmap(bad, 40); err == nil {
			t.Errorf("ParsePVHMemmap(%d bytes) accepted a bad map", len(bad))
		}
	}
}
