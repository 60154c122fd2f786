package amd64

import (
	"fmt"
	"strings"
)

// The pure half of physmap's page-fault handling: the error-code bits, the
// record of a probed fault and the 64-bit IDT gate format. The handler and
// the probes that use them are in fault.go and fault.s.

// VECTOR_PF is the page-fault exception (SDM Vol. 3A 6.15, "Interrupt
// 14—Page-Fault Exception (#PF)").
const VECTOR_PF = 14

// Page-fault error code bits (SDM Vol. 3A 4.7, Figure 4-12).
const (
	PF_P    = 1 << 0  // 0: non-present page; 1: protection violation
	PF_W    = 1 << 1  // the access was a write
	PF_U    = 1 << 2  // the access was made in user mode (CPL 3)
	PF_RSVD = 1 << 3  // a reserved bit was set in a paging-structure entry
	PF_I    = 1 << 4  // the access was an instruction fetch (NXE or SMEP)
	PF_PK   = 1 << 5  // protection-key violation
	PF_SS   = 1 << 6  // shadow-stack access
	PF_HLAT = 1 << 7  // fault during HLAT paging
	PF_SGX  = 1 << 15 // SGX-specific access-control violation
)

// PFError is a page-fault error code as the processor pushes it.
type PFError uint64

// pfFlagNames are the bits String names after P and the access type, in
// bit order.
var pfFlagNames = []struct {
	bit  PFError
	name string
}{
	{PF_U, "U"},
	{PF_RSVD, "RSVD"},
	{PF_PK, "PK"},
	{PF_SS, "SS"},
	{PF_HLAT, "HLAT"},
	{PF_SGX, "SGX"},
}

// String reads the error code as "<presence> <access>[ flags]": presence is
// "P" (protection violation on a present page) or "not-present"; access is
// "W" (write), "I" (instruction fetch) or "read"; the other set bits follow
// by their SDM names, and any bit the SDM does not define as a hex number.
// For example 0x0 is "not-present read", 0x3 "P W", 0x11 "P I".
func (e PFError) String() string {
	var b strings.Builder
	if e&PF_P != 0 {
		b.WriteString("P")
	} else {
		b.WriteString("not-present")
	}
	switch {
	case e&PF_W != 0:
		b.WriteString(" W")
	case e&PF_I != 0:
		b.WriteString(" I")
	default:
		b.WriteString(" read")
	}
	// W and I together cannot happen (a fetch is not a write); print I
	// anyway so nothing the CPU said is hidden.
	if e&PF_W != 0 && e&PF_I != 0 {
		b.WriteString(" I")
	}
	known := PFError(PF_P | PF_W | PF_I)
	for _, f := range pfFlagNames {
		known |= f.bit
		if e&f.bit != 0 {
			b.WriteString(" " + f.name)
		}
	}
	if rest := e &^ known; rest != 0 {
		fmt.Fprintf(&b, " %#x", uint64(rest))
	}
	return b.String()
}

// Fault is what a probe saw: whether the probed access faulted and, if it
// did, the exception's vector, error code, CR2 and the RIP of the faulting
// instruction (for ProbeCall's fetch fault, the called address).
type Fault struct {
	Faulted bool
	Vector  uint8
	Code    PFError
	CR2     uint64
	RIP     uint64
}

// String prints "no fault" or, for example,
// "#PF cr2=0x1f0000 code=0x3 (P W) rip=0x10123456".
func (f Fault) String() string {
	if !f.Faulted {
		return "no fault"
	}
	name := fmt.Sprintf("vector %d", f.Vector)
	if f.Vector == VECTOR_PF {
		name = "#PF"
	}
	return fmt.Sprintf("%s cr2=%#x code=%#x (%v) rip=%#x", name, f.CR2, uint64(f.Code), f.Code, f.RIP)
}

// IDT gate descriptor fields (SDM Vol. 3A 6.14.1, Figure 6-8 "64-Bit IDT
// Gate Descriptors"; gate types in Vol. 3A 3.5, Table 3-2).
const (
	GATE_SIZE = 16 // bytes per 64-bit IDT entry

	GATE_TYPE_INTERRUPT = 0xe // 64-bit interrupt gate: clears RFLAGS.IF
	GATE_TYPE_TRAP      = 0xf // 64-bit trap gate: leaves RFLAGS.IF alone
	GATE_DPL_SHIFT      = 5
	GATE_P              = 1 << 7 // segment present

	GATE_IST_MASK = 0x7 // interrupt stack table index; 0 keeps the current stack
)

// Gate is a decoded 64-bit IDT gate descriptor.
type Gate struct {
	Offset   uint64 // entry point
	Selector uint16 // code segment selector
	IST      uint8
	Type     uint8 // GATE_TYPE_*
	DPL      uint8
	Present  bool
}

// Encode packs the gate into the two little-endian quadwords the IDT holds:
// lo carries offset 15:0, the selector, IST, type, DPL, P and offset 31:16;
// hi carries offset 63:32 and reserved zeros.
func (g Gate) Encode() (lo, hi uint64) {
	attr := uint64(g.Type&0xf) | uint64(g.DPL&3)<<GATE_DPL_SHIFT
	if g.Present {
		attr |= GATE_P
	}
	lo = g.Offset&0xffff |
		uint64(g.Selector)<<16 |
		uint64(g.IST&GATE_IST_MASK)<<32 |
		attr<<40 |
		(g.Offset>>16&0xffff)<<48
	hi = g.Offset >> 32
	return lo, hi
}

// DecodeGate unpacks an IDT entry from its two quadwords.
func DecodeGate(lo, hi uint64) Gate {
	attr := uint8(lo >> 40)
	return Gate{
		Offset:   lo&0xffff | (lo>>48&0xffff)<<16 | (hi&0xffff_ffff)<<32,
		Selector: uint16(lo >> 16),
		IST:      uint8(lo>>32) & GATE_IST_MASK,
		Type:     attr & 0xf,
		DPL:      attr >> GATE_DPL_SHIFT & 3,
		Present:  attr&GATE_P != 0,
	}
}
