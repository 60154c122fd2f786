package amd64

import "testing"

func TestTSS64Layout(t *testing.T) {
	tss := TSS64{RSP: [3]uint64{0x1111, 0x2222, 0x3333}, IOMapBase: TSS64_SIZE}
	tss.IST[0] = 0xfffffe0000006000
	tss.IST[6] = 0x7777
	b := tss.Encode()
	// Offsets from the SDM's figure: RSP0 at 4, IST1 at 0x24, IST7 at 0x54,
	// the I/O map base in the last two bytes.
	for _, c := range []struct {
		off  int
		want byte
	}{{0x04, 0x11}, {0x0c, 0x22}, {0x14, 0x33}, {0x24 + 5, 0xfe}, {0x24 + 7, 0xff}, {0x54, 0x77}, {0x66, TSS64_SIZE}} {
		if b[c.off] != c.want {
			t.Errorf("byte %#x = %#x, want %#x", c.off, b[c.off], c.want)
		}
	}
	for _, off := range []int{0, 1, 2, 3, 0x1c, 0x5c, 0x64, 0x65} {
		if b[off] != 0 {
			t.Errorf("reserved byte %#x = %#x, want 0", off, b[off])
		}
	}
	if got := DecodeTSS64(b); got != tss {
		t.Errorf("DecodeTSS64(Encode(%+v)) = %+v", tss, got)
	}
}

// The TSS descriptor Linux 6.1 loads for CPU 0 (set_tss_desc with the
// cpu_entry_area TSS at 0xfffffe0000003000, __KERNEL_TSS_LIMIT 0x67), as
// the SDM lays it out, and back.
func TestTSSDescriptor(t *testing.T) {
	d := TSSDescriptor{Base: 0xfffffe0000003000, Limit: TSS64_SIZE - 1, Type: TSS_TYPE_AVAILABLE, Present: true}
	lo, hi := d.Encode()
	// Limit 0x67, base 15:0 0x3000 at bits 16-31, base 23:16 and 31:24
	// zero, type 9 and P at bits 40-47; base 63:32 in the high quadword.
	if lo != 0x0000_8900_3000_0067 || hi != 0xfffffe00 {
		t.Errorf("Encode = %#x %#x", lo, hi)
	}
	if got := DecodeTSSDescriptor(lo, hi); got != d {
		t.Errorf("Decode = %+v, want %+v", got, d)
	}
	busy := DecodeTSSDescriptor(lo|uint64(TSS_TYPE_BUSY^TSS_TYPE_AVAILABLE)<<40, hi)
	if busy.Type != TSS_TYPE_BUSY {
		t.Errorf("busy type %#x", busy.Type)
	}
}
