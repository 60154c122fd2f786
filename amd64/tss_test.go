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
