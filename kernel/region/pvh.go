package region

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/physmap/physmap/mm"
)

// The PVH boot's memory map (Xen's arch-x86/hvm/start_info.h, struct
// hvm_memmap_table_entry): 24-byte records, addr u64, size u64, type u32,
// reserved u32; type 1 is RAM. It is the proofs' source of RAM, a second
// firmware table next to the fw_cfg etc/e820 the builder reads.
const (
	pvhEntrySize = 24
	pvhTypeRAM   = 1
)

// ParsePVHMemmap returns the RAM ranges of a PVH memory map, sorted,
// clamped below 2^physBits (a CPU cannot address RAM above MAXPHYADDR;
// Linux leaves it out too), not joined.
func ParsePVHMemmap(raw []byte, physBits uint) ([]mm.PhysRange, error) {
	if len(raw) == 0 || len(raw)%pvhEntrySize != 0 {
		return nil, fmt.Errorf("PVH memory map of %d bytes is not a whole number of %d-byte entries", len(raw), pvhEntrySize)
	}
	limit := ^mm.PhysAddr(0)
	if physBits > 0 && physBits < 64 {
		limit = mm.PhysAddr(1) << physBits
	}
	var out []mm.PhysRange
	for off := 0; off < len(raw); off += pvhEntrySize {
		e := raw[off : off+pvhEntrySize]
		addr, size := binary.LittleEndian.Uint64(e), binary.LittleEndian.Uint64(e[8:])
		if binary.LittleEndian.Uint32(e[16:]) != pvhTypeRAM || size == 0 {
			continue
		}
		if addr+size < addr {
			return nil, fmt.Errorf("PVH memory map entry [%#x, +%#x) wraps", addr, size)
		}
		r := mm.PhysRange{Start: mm.PhysAddr(addr), End: min(mm.PhysAddr(addr+size), limit)}
		if !r.Empty() {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b mm.PhysRange) int {
		switch {
		case a.Start < b.Start:
			return -1
		case a.Start > b.Start:
			return 1
		}
		return 0
	})
	return out, nil
}
