package boot

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/physmap/physmap/mm"
)

// E820Type is the kind of a firmware memory-map range (ACPI 6.5, 15.1
// "INT 15H, E820H - Query System Address Map"; Linux's enum e820_type).
type E820Type uint32

// The types QEMU and Linux know.
const (
	E820_RAM           E820Type = 1
	E820_RESERVED      E820Type = 2
	E820_ACPI          E820Type = 3
	E820_NVS           E820Type = 4
	E820_UNUSABLE      E820Type = 5
	E820_PMEM          E820Type = 7
	E820_PRAM          E820Type = 12
	E820_SOFT_RESERVED E820Type = 0xefffffff
)

// String names a type as Linux's boot log does.
func (t E820Type) String() string {
	switch t {
	case E820_RAM:
		return "usable"
	case E820_RESERVED:
		return "reserved"
	case E820_ACPI:
		return "ACPI data"
	case E820_NVS:
		return "ACPI NVS"
	case E820_UNUSABLE:
		return "unusable"
	case E820_PMEM:
		return "persistent"
	case E820_PRAM:
		return "persistent (type 12)"
	case E820_SOFT_RESERVED:
		return "soft reserved"
	}
	return fmt.Sprintf("type %d", uint32(t))
}

// e820RecordSize is the size of one record of QEMU's etc/e820 fw_cfg file:
// address u64, length u64, type u32, little-endian, packed.
const e820RecordSize = 20

// E820Entry is one range of the firmware memory map.
type E820Entry struct {
	Range mm.PhysRange
	Type  E820Type
}

// String renders e as Linux prints it at boot, end inclusive:
// "BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable".
func (e E820Entry) String() string {
	return fmt.Sprintf("BIOS-e820: [mem 0x%016x-0x%016x] %v", uint64(e.Range.Start), uint64(e.Range.End)-1, e.Type)
}

// MemoryMap is the firmware memory map in the order the firmware gave it.
type MemoryMap []E820Entry

// Errors of a memory map.
var (
	ErrE820Format = errors.New("malformed e820 table")
	ErrE820Order  = errors.New("e820 ranges not sorted or overlapping")
	ErrNoRAM      = errors.New("the memory map lists no RAM")
)

// ParseE820 decodes QEMU's etc/e820 file.
func ParseE820(b []byte) (MemoryMap, error) {
	if len(b) == 0 || len(b)%e820RecordSize != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a whole number of %d-byte records", ErrE820Format, len(b), e820RecordSize)
	}
	m := make(MemoryMap, 0, len(b)/e820RecordSize)
	for off := 0; off < len(b); off += e820RecordSize {
		addr := binary.LittleEndian.Uint64(b[off:])
		size := binary.LittleEndian.Uint64(b[off+8:])
		typ := E820Type(binary.LittleEndian.Uint32(b[off+16:]))
		if size == 0 || addr+size < addr {
			return nil, fmt.Errorf("%w: record %d has address %#x and size %#x", ErrE820Format, off/e820RecordSize, addr, size)
		}
		m = append(m, E820Entry{Range: mm.PhysRange{Start: mm.PhysAddr(addr), End: mm.PhysAddr(addr + size)}, Type: typ})
	}
	return m, nil
}

// Validate checks that the ranges are sorted, do not overlap, and that at
// least one is RAM.
func (m MemoryMap) Validate() error {
	ram := false
	for i, e := range m {
		ram = ram || e.Type == E820_RAM
		if i > 0 && e.Range.Start < m[i-1].Range.End {
			return fmt.Errorf("%w: %v follows %v", ErrE820Order, e.Range, m[i-1].Range)
		}
	}
	if !ram {
		return ErrNoRAM
	}
	return nil
}

// RAM returns the usable ranges, adjacent ones merged.
func (m MemoryMap) RAM() []mm.PhysRange {
	var out []mm.PhysRange
	for _, e := range m {
		if e.Type != E820_RAM {
			continue
		}
		if n := len(out); n > 0 && out[n-1].End == e.Range.Start {
			out[n-1].End = e.Range.End
			continue
		}
		out = append(out, e.Range)
	}
	return out
}

// RAMBytes is the total size of the usable ranges.
func (m MemoryMap) RAMBytes() uint64 {
	var n uint64
	for _, r := range m.RAM() {
		n += r.Len()
	}
	return n
}

// CoversRAM reports whether r lies wholly inside one RAM range.
func (m MemoryMap) CoversRAM(r mm.PhysRange) bool {
	for _, ram := range m.RAM() {
		if ram.Start <= r.Start && r.End <= ram.End {
			return true
		}
	}
	return false
}
