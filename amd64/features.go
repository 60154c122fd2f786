package amd64

// CPUID leaves and the feature bits physmap reads (SDM Vol. 2A, CPUID,
// Tables 3-8 and 3-10; AMD APM Vol. 3 Appendix E).
const (
	CPUID_MAX_BASIC    = 0x0000_0000
	CPUID_INFO         = 0x0000_0001
	CPUID_EXT_FEATURES = 0x0000_0007
	CPUID_MAX_EXT      = 0x8000_0000
	CPUID_EXT_INFO     = 0x8000_0001
	CPUID_ADDR_SIZES   = 0x8000_0008

	INFO_EDX_TSC        = 1 << 4  // leaf 1 EDX: time-stamp counter (RDTSC)
	INFO_EDX_MSR        = 1 << 5  // leaf 1 EDX: model-specific registers (RDMSR, WRMSR)
	INFO_EDX_PAE        = 1 << 6  // leaf 1 EDX: physical address extension
	INFO_EDX_PGE        = 1 << 13 // leaf 1 EDX: global pages
	INFO_EDX_CMOV       = 1 << 15 // leaf 1 EDX: conditional moves
	INFO_EDX_FXSR       = 1 << 24 // leaf 1 EDX: FXSAVE, FXRSTOR and CR4.OSFXSR
	INFO_EDX_SSE        = 1 << 25 // leaf 1 EDX: SSE
	INFO_EDX_SSE2       = 1 << 26 // leaf 1 EDX: SSE2
	INFO_ECX_RDRAND     = 1 << 30 // leaf 1 ECX: RDRAND
	INFO_ECX_HYPERVISOR = 1 << 31 // leaf 1 ECX: running under a hypervisor

	EXT_ECX_LA57 = 1 << 16 // leaf 7.0 ECX: 57-bit linear addresses
	EXT_EBX_SMEP = 1 << 7  // leaf 7.0 EBX: supervisor-mode execution prevention
	EXT_EBX_SMAP = 1 << 20 // leaf 7.0 EBX: supervisor-mode access prevention

	EXTINFO_EDX_NX      = 1 << 20 // leaf 0x80000001 EDX: execute disable
	EXTINFO_EDX_PAGE1GB = 1 << 26 // leaf 0x80000001 EDX: 1-GByte pages
	EXTINFO_EDX_LM      = 1 << 29 // leaf 0x80000001 EDX: long mode
)

// CPUIDFunc returns the four registers CPUID yields for a leaf and subleaf.
type CPUIDFunc func(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)

// Features are the processor capabilities physmap depends on or reports.
type Features struct {
	PAE, PGE, NX, LongMode bool
	Page1GB                bool
	LA57                   bool
	SMEP, SMAP             bool
	RDRAND                 bool
	Hypervisor             bool
	// PhysAddrBits and VirtAddrBits come from leaf 0x80000008 (zero when
	// the leaf is absent).
	PhysAddrBits, VirtAddrBits int
}

// ReadFeatures decodes the feature bits from cpuid, honouring the highest
// basic and extended leaves the processor reports: a leaf beyond them
// returns another leaf's data on Intel parts, so it is never trusted.
func ReadFeatures(cpuid CPUIDFunc) Features {
	var f Features
	maxBasic, _, _, _ := cpuid(CPUID_MAX_BASIC, 0)
	maxExt, _, _, _ := cpuid(CPUID_MAX_EXT, 0)

	if maxBasic >= CPUID_INFO {
		_, _, ecx, edx := cpuid(CPUID_INFO, 0)
		f.PAE = edx&INFO_EDX_PAE != 0
		f.PGE = edx&INFO_EDX_PGE != 0
		f.RDRAND = ecx&INFO_ECX_RDRAND != 0
		f.Hypervisor = ecx&INFO_ECX_HYPERVISOR != 0
	}
	if maxBasic >= CPUID_EXT_FEATURES {
		_, ebx, ecx, _ := cpuid(CPUID_EXT_FEATURES, 0)
		f.LA57 = ecx&EXT_ECX_LA57 != 0
		f.SMEP = ebx&EXT_EBX_SMEP != 0
		f.SMAP = ebx&EXT_EBX_SMAP != 0
	}
	if maxExt >= CPUID_EXT_INFO {
		_, _, _, edx := cpuid(CPUID_EXT_INFO, 0)
		f.NX = edx&EXTINFO_EDX_NX != 0
		f.Page1GB = edx&EXTINFO_EDX_PAGE1GB != 0
		f.LongMode = edx&EXTINFO_EDX_LM != 0
	}
	if maxExt >= CPUID_ADDR_SIZES {
		eax, _, _, _ := cpuid(CPUID_ADDR_SIZES, 0)
		f.PhysAddrBits = int(eax & 0xff)
		f.VirtAddrBits = int(eax >> 8 & 0xff)
	}
	return f
}
