package region

import (
	"encoding/binary"
	"fmt"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/mm"
)

// CPU is the processor as the regions use it: memory through the live page
// tables, with page faults caught and returned instead of raised; the
// control registers; the TLB. The kernel implements it with package amd64;
// host tests with a simulated MMU over mm's simulated memory.
type CPU interface {
	// Read copies len(p) bytes from va through the live tables. It stops
	// at the first fault: n bytes were copied.
	Read(va mm.VirtAddr, p []byte) (n int, f amd64.Fault)
	// Write copies p to va, stopping at the first fault.
	Write(va mm.VirtAddr, p []byte) (n int, f amd64.Fault)
	// Load64 and Store64 are one guarded quadword access at an 8-byte
	// aligned va.
	Load64(va mm.VirtAddr) (uint64, amd64.Fault)
	Store64(va mm.VirtAddr, v uint64) amd64.Fault
	// FillPage has fill write the page at va (page aligned) in place
	// through the live tables, once a probe has shown the page writable:
	// no buffer to build and copy, where every byte of the page is new.
	FillPage(va mm.VirtAddr, fill func(p *[page]byte)) amd64.Fault
	// Equal3 compares n bytes at b and n bytes at c with n bytes at a in
	// place, all through the live tables, reading each address once: 0
	// when both read as a does, 1 when b differs, 2 when c does; or the
	// first fault.
	Equal3(a, b, c mm.VirtAddr, n int) (int, amd64.Fault)
	// Call calls the code at va in amd64.ProbeCall's convention and
	// returns what it left in RAX; a fault fetching its first
	// instruction is returned.
	Call(va mm.VirtAddr) (uint64, amd64.Fault)

	// TLB invalidation, for changes to the live tables.
	mm.TLB

	// CR0, CR4 and EFER, read and written.
	CR0() uint64
	SetCR0(v uint64)
	CR4() uint64
	SetCR4(v uint64)
	EFER() uint64
	SetEFER(v uint64)
	// CR3 is the root of the live tables; LoadCR3 switches to root.
	CR3() mm.PhysAddr
	LoadCR3(root mm.PhysAddr)
	// SIDT and SGDT return the IDT's and GDT's linear base and limit;
	// LIDT and LGDT load them.
	SIDT() (base uint64, limit uint16)
	SGDT() (base uint64, limit uint16)
	LIDT(base uint64, limit uint16)
	LGDT(base uint64, limit uint16)
	// LTR loads the task register, STR reads its selector.
	LTR(sel uint16)
	STR() uint16
	// CPUID executes CPUID for a leaf and subleaf.
	CPUID(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)
	// ReadMSR executes RDMSR (SDM Vol. 2B "RDMSR").
	ReadMSR(msr uint32) uint64
	// Read32 and Write32 make one aligned 32-bit access at va, as device
	// registers are accessed (the LAPIC's and IOAPIC's), with a page
	// fault returned instead of raised.
	Read32(va mm.VirtAddr) (uint32, amd64.Fault)
	Write32(va mm.VirtAddr, v uint32) amd64.Fault
}

// FaultError is a fault a proof did not expect.
type FaultError struct {
	What  string
	VA    mm.VirtAddr
	Fault amd64.Fault
}

func (e *FaultError) Error() string { return fmt.Sprintf("%s at %v: %v", e.What, e.VA, e.Fault) }

// readBytes reads n bytes at va.
func readBytes(c CPU, what string, va mm.VirtAddr, n int) ([]byte, error) {
	b := make([]byte, n)
	if m, f := c.Read(va, b); f.Faulted {
		return nil, &FaultError{What: "reading " + what, VA: va.Add(uint64(m)), Fault: f}
	}
	return b, nil
}

// read64 reads the little-endian quadword at va.
func read64(c CPU, what string, va mm.VirtAddr) (uint64, error) {
	if va.IsAligned(8) {
		v, f := c.Load64(va)
		if f.Faulted {
			return 0, &FaultError{What: "reading " + what, VA: va, Fault: f}
		}
		return v, nil
	}
	var b [8]byte
	if _, f := c.Read(va, b[:]); f.Faulted {
		return 0, &FaultError{What: "reading " + what, VA: va, Fault: f}
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// write64 stores v at va.
func write64(c CPU, what string, va mm.VirtAddr, v uint64) error {
	if va.IsAligned(8) {
		if f := c.Store64(va, v); f.Faulted {
			return &FaultError{What: "writing " + what, VA: va, Fault: f}
		}
		return nil
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	if _, f := c.Write(va, b[:]); f.Faulted {
		return &FaultError{What: "writing " + what, VA: va, Fault: f}
	}
	return nil
}

// patchReadOnly stores b at va with CR0.WP clear, as an injection patches
// code or tables behind read-only pages; CR0 is restored.
func patchReadOnly(c CPU, what string, va mm.VirtAddr, b []byte) error {
	cr0 := c.CR0()
	c.SetCR0(cr0 &^ amd64.CR0_WP)
	defer c.SetCR0(cr0)
	return writeBytes(c, what, va, b)
}

// writeBytes stores b at va.
func writeBytes(c CPU, what string, va mm.VirtAddr, b []byte) error {
	if n, f := c.Write(va, b); f.Faulted {
		return &FaultError{What: "writing " + what, VA: va.Add(uint64(n)), Fault: f}
	}
	return nil
}

// zeroPage is a page of zeros to clear frames with.
var zeroPage [page]byte

// SkipTLB passes invalidations to the CPU's TLB except while Skip is set:
// the injections that leave a change without its flush.
type SkipTLB struct {
	mm.TLB
	Skip bool
}

// InvalidatePage drops va's translation unless skipping.
func (t *SkipTLB) InvalidatePage(va mm.VirtAddr) {
	if !t.Skip {
		t.TLB.InvalidatePage(va)
	}
}

// FlushAll drops every translation unless skipping.
func (t *SkipTLB) FlushAll() {
	if !t.Skip {
		t.TLB.FlushAll()
	}
}
