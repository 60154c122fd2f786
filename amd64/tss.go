package amd64

import "encoding/binary"

// The 64-bit task-state segment (SDM Vol. 3A 9.7 "Task Management in 64-bit
// Mode", Figure "64-Bit TSS Format"). In IA-32e mode the TSS holds no task
// state, only stack pointers: RSP0-2 for privilege changes and IST1-7 for
// the interrupt stack table, plus the I/O permission bitmap's offset.
const (
	TSS64_RSP0      = 0x04 // RSPn at TSS64_RSP0 + 8*n
	TSS64_IST1      = 0x24 // ISTn at TSS64_IST1 + 8*(n-1)
	TSS64_IOMAPBASE = 0x66 // 16-bit offset of the I/O permission bitmap
	TSS64_SIZE      = 0x68 // 104 bytes; the descriptor's limit is TSS64_SIZE-1
	TSS64_NRSP      = 3
	TSS64_NIST      = 7
)

// TSS64 is the content of a 64-bit TSS.
type TSS64 struct {
	RSP [TSS64_NRSP]uint64 // stack pointers loaded on a change to CPL n
	IST [TSS64_NIST]uint64 // IST[i] is ISTi+1, selected by a gate's IST field
	// IOMapBase is the I/O bitmap's offset from the TSS base; an offset
	// beyond the segment limit means no bitmap, so every I/O instruction
	// at CPL > IOPL faults (Linux's IO_BITMAP_OFFSET_INVALID).
	IOMapBase uint16
}

// Encode returns the TSS as the processor reads it; reserved fields are 0.
func (t TSS64) Encode() [TSS64_SIZE]byte {
	var b [TSS64_SIZE]byte
	for i, v := range t.RSP {
		binary.LittleEndian.PutUint64(b[TSS64_RSP0+8*i:], v)
	}
	for i, v := range t.IST {
		binary.LittleEndian.PutUint64(b[TSS64_IST1+8*i:], v)
	}
	binary.LittleEndian.PutUint16(b[TSS64_IOMAPBASE:], t.IOMapBase)
	return b
}

// DecodeTSS64 reads a TSS encoded by Encode (or by anyone else).
func DecodeTSS64(b [TSS64_SIZE]byte) TSS64 {
	var t TSS64
	for i := range t.RSP {
		t.RSP[i] = binary.LittleEndian.Uint64(b[TSS64_RSP0+8*i:])
	}
	for i := range t.IST {
		t.IST[i] = binary.LittleEndian.Uint64(b[TSS64_IST1+8*i:])
	}
	t.IOMapBase = binary.LittleEndian.Uint16(b[TSS64_IOMAPBASE:])
	return t
}

// The system-segment types of a 64-bit TSS descriptor (SDM Vol. 3A 3.5,
// Table "System-Segment and Gate-Descriptor Types", IA-32e mode).
const (
	TSS_TYPE_AVAILABLE = 0x9
	TSS_TYPE_BUSY      = 0xb // set by LTR
)

// TSSDescriptor is a 16-byte TSS descriptor in the GDT (SDM Vol. 3A 9.2.3
// "TSS Descriptor in 64-bit mode"): base, limit (bytes, G clear), type
// and present bit; DPL 0.
type TSSDescriptor struct {
	Base    uint64
	Limit   uint32 // 20 bits
	Type    uint8
	Present bool
}

// Encode returns the descriptor's two quadwords, the low one first.
func (d TSSDescriptor) Encode() (lo, hi uint64) {
	lo = uint64(d.Limit&0xffff) | (d.Base&0xffffff)<<16 | uint64(d.Type&0xf)<<40 |
		uint64(d.Limit>>16&0xf)<<48 | (d.Base>>24&0xff)<<56
	if d.Present {
		lo |= 1 << 47
	}
	return lo, d.Base >> 32
}

// DecodeTSSDescriptor reads a TSS descriptor from its two quadwords.
func DecodeTSSDescriptor(lo, hi uint64) TSSDescriptor {
	return TSSDescriptor{
		Base:    lo>>16&0xffffff | (lo>>56&0xff)<<24 | hi<<32,
		Limit:   uint32(lo&0xffff) | uint32(lo>>48&0xf)<<16,
		Type:    uint8(lo >> 40 & 0xf),
		Present: lo>>47&1 == 1,
	}
}
