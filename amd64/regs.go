package amd64

// Control register bits (Intel SDM Vol. 3A 2.5 "Control Registers").
const (
	CR0_PE = 1 << 0  // protection enable
	CR0_WP = 1 << 16 // write protect: supervisor writes honour read-only pages
	CR0_PG = 1 << 31 // paging

	CR4_PAE   = 1 << 5  // physical address extension
	CR4_PGE   = 1 << 7  // page global enable
	CR4_LA57  = 1 << 12 // 57-bit linear addresses (5-level paging)
	CR4_PCIDE = 1 << 17 // process-context identifiers
	CR4_SMEP  = 1 << 20 // supervisor-mode execution prevention
	CR4_SMAP  = 1 << 21 // supervisor-mode access prevention
)

// CR3_ADDR_MASK selects the physical base of the top-level table in CR3
// (SDM Vol. 3A 4.5, Table 4-12; bits 51:12).
const CR3_ADDR_MASK = 0x000f_ffff_ffff_f000

// Model-specific registers (SDM Vol. 4, Table 2-2).
const (
	MSR_EFER = 0xc000_0080 // extended feature enable register

	EFER_LME = 1 << 8  // long mode enable
	EFER_LMA = 1 << 10 // long mode active
	EFER_NXE = 1 << 11 // execute-disable bit enable
)
