package amd64

import "testing"

// fakeCPU answers CPUID from a table; unknown leaves return zeros.
type fakeCPU map[uint32][4]uint32

func (c fakeCPU) cpuid(leaf, _ uint32) (uint32, uint32, uint32, uint32) {
	r := c[leaf]
	return r[0], r[1], r[2], r[3]
}

func TestReadFeatures(t *testing.T) {
	full := fakeCPU{
		CPUID_MAX_BASIC:    {0xd},
		CPUID_INFO:         {0, 0, INFO_ECX_RDRAND | INFO_ECX_HYPERVISOR, INFO_EDX_PAE | INFO_EDX_PGE},
		CPUID_EXT_FEATURES: {0, 0, EXT_ECX_LA57, 0},
		CPUID_MAX_EXT:      {0x8000_0008},
		CPUID_EXT_INFO:     {0, 0, 0, EXTINFO_EDX_NX | EXTINFO_EDX_PAGE1GB | EXTINFO_EDX_LM},
		CPUID_ADDR_SIZES:   {0x3930},
	}
	got := ReadFeatures(full.cpuid)
	want := Features{PAE: true, PGE: true, NX: true, LongMode: true, Page1GB: true, LA57: true,
		RDRAND: true, Hypervisor: true, PhysAddrBits: 0x30, VirtAddrBits: 0x39}
	if got != want {
		t.Errorf("full CPU: got %+v, want %+v", got, want)
	}

	// A processor whose highest basic leaf is 1 must not have leaf 7 read,
	// even if the table (like a real Intel part) answers it.
	old := fakeCPU{
		CPUID_MAX_BASIC:    {1},
		CPUID_INFO:         {0, 0, 0, INFO_EDX_PAE | INFO_EDX_PGE},
		CPUID_EXT_FEATURES: {0, 0, EXT_ECX_LA57, 0},
		CPUID_MAX_EXT:      {0x8000_0001},
		CPUID_EXT_INFO:     {0, 0, 0, EXTINFO_EDX_NX | EXTINFO_EDX_LM},
		CPUID_ADDR_SIZES:   {0x3930},
	}
	got = ReadFeatures(old.cpuid)
	want = Features{PAE: true, PGE: true, NX: true, LongMode: true}
	if got != want {
		t.Errorf("old CPU: got %+v, want %+v", got, want)
	}
}
