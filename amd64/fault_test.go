package amd64

import "testing"

func TestPFErrorString(t *testing.T) {
	for _, tc := range []struct {
		code PFError
		want string
	}{
		{0, "not-present read"},
		{PF_W, "not-present W"},
		{PF_I, "not-present I"},
		{PF_P, "P read"},
		{PF_P | PF_W, "P W"},
		{PF_P | PF_I, "P I"},
		{PF_P | PF_W | PF_U, "P W U"},
		{PF_P | PF_RSVD, "P read RSVD"},
		{PF_P | PF_PK | PF_SS | PF_HLAT | PF_SGX, "P read PK SS HLAT SGX"},
		{PF_W | PF_I, "not-present W I"},
		{PF_P | 1<<8 | 1<<40, "P read 0x10000000100"},
	} {
		if got := tc.code.String(); got != tc.want {
			t.Errorf("PFError(%#x).String() = %q, want %q", uint64(tc.code), got, tc.want)
		}
	}
}

func TestFaultString(t *testing.T) {
	for _, tc := range []struct {
		f    Fault
		want string
	}{
		{Fault{}, "no fault"},
		{Fault{Faulted: true, Vector: VECTOR_PF, Code: PF_P | PF_W, CR2: 0x1f0000, RIP: 0x100a7380},
			"#PF cr2=0x1f0000 code=0x3 (P W) rip=0x100a7380"},
		{Fault{Faulted: true, Vector: 13, RIP: 0x10},
			"vector 13 cr2=0x0 code=0x0 (not-present read) rip=0x10"},
	} {
		if got := tc.f.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.f, got, tc.want)
		}
	}
}

func TestGate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		g      Gate
		lo, hi uint64
	}{
		{
			// What InstallFaultHandler writes: present 64-bit interrupt
			// gate, DPL 0, IST 0 (attribute byte 0x8e, as in TamaGo's
			// InterruptGate).
			"interrupt gate",
			Gate{Offset: 0x1234_5678_9abc_def0, Selector: 0x8, Type: GATE_TYPE_INTERRUPT, Present: true},
			0x9abc_8e00_0008_def0, 0x1234_5678,
		},
		{
			"trap gate, DPL 3, IST 7",
			Gate{Offset: 0xffff_ffff_8100_0010, Selector: 0x10, IST: 7, Type: GATE_TYPE_TRAP, DPL: 3, Present: true},
			0x8100_ef07_0010_0010, 0xffff_ffff,
		},
		{"not present", Gate{}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lo, hi := tc.g.Encode()
			if lo != tc.lo || hi != tc.hi {
				t.Errorf("Encode = %#x, %#x, want %#x, %#x", lo, hi, tc.lo, tc.hi)
			}
			if got := DecodeGate(tc.lo, tc.hi); got != tc.g {
				t.Errorf("DecodeGate = %+v, want %+v", got, tc.g)
			}
		})
	}
	// Reserved bits (hi 63:32, lo 39:35) are ignored by DecodeGate.
	if got := DecodeGate(0x9abc_8ef8_0008_def0, 0xdead_beef_1234_5678); got.Offset != 0x1234_5678_9abc_def0 || got.IST != 0 {
		t.Errorf("DecodeGate with reserved bits set = %+v", got)
	}
}
