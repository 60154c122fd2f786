//go:build tamago

package amd64

import (
	"errors"
	"unsafe"
)

// Surviving page faults on purpose.
//
// TamaGo's exception gates record the vector and call a handler on the
// system stack that never returns to the faulting code. physmap provokes
// page faults deliberately (fetches through NX aliases, writes to read-only
// text, reads of guard holes), so it installs its own vector-14 gate that
// works like Linux's exception table: each instruction allowed to fault has
// a fixup address; the handler looks the faulting RIP up, records CR2 and
// the error code, rewrites the saved RIP to the fixup and returns with
// IRETQ. A fault anywhere else is passed, untouched, to the gate TamaGo had
// installed, so real bugs still print "exception: vector 14".
//
// The handler runs in exception context on the interrupted stack (IST 0):
// it does not allocate, lock or print (STYLE rule 14); it writes only the
// fixed storage below. Defined in fault.s.
//
// That storage is global, which is sound while probes run on one CPU: the
// stubs are NOSPLIT assembly, which the Go scheduler cannot preempt on
// TamaGo (it has no signals for asynchronous preemption), and the gate is an
// interrupt gate, so no interrupt nests inside the handler. Probing from
// several CPUs at once would need the record per CPU.

// faultRecord is what the handler stores for the probe that faulted. The
// stubs clear hit before their access and copy the record to their results
// after it, so a Fault never mixes two probes.
type faultRecord struct {
	hit, vector, code, cr2, rip uint64
}

var (
	pfRec faultRecord

	// pfCalling is 1 while ProbeCall's callee runs, pfTarget its
	// address (0 is a valid target: the unmapped page 0).
	pfCalling uint64
	pfTarget  uint64
	pfChain   uint64 // the entry point of the gate physmap replaced

	// pfSaved is the vector-14 gate InstallFaultHandler replaced, for
	// RemoveFaultHandler.
	pfSaved struct{ lo, hi uint64 }
)

// Errors from InstallFaultHandler.
var (
	ErrIDTTooShort = errors.New("amd64: IDT has no vector-14 entry")
	ErrNoPFGate    = errors.New("amd64: no vector-14 gate to chain to (call TamaGo's CPU.EnableExceptions first)")
)

// Referenced from assembly only: the gate's entry, the instructions in the
// exception table and their fixup.
func pfEntry()
func read64Insn()
func write64Insn()
func write8Insn()
func read32Insn()
func write32Insn()
func probeFixup()

func pfEntryPC() uint64

func sidt() (base uint64, limit uint16)
func readCS() uint16

func probeRead64(va uint64) (val, hit, vector, code, cr2, rip uint64)
func probeWrite64(va, val uint64) (hit, vector, code, cr2, rip uint64)
func probeWrite8(va uint64, val uint8) (hit, vector, code, cr2, rip uint64)
func probeCall(va uint64) (ret, hit, vector, code, cr2, rip uint64)
func probeRead32(va uint64) (val uint32, hit, vector, code, cr2, rip uint64)
func probeWrite32(va uint64, val uint32) (hit, vector, code, cr2, rip uint64)

// idtEntry returns the live IDT entry for vector as two quadwords.
// Precondition: the IDT at base holds vector.
func idtEntry(base uint64, vector int) *[2]uint64 {
	// The IDT lies outside the Go heap, identity-mapped; the pointer is
	// never stored.
	return (*[2]uint64)(unsafe.Add(unsafe.Pointer(nil), uintptr(base)+uintptr(vector*GATE_SIZE)))
}

// InstallFaultHandler replaces the vector-14 gate of the IDT in use (found
// with SIDT) with physmap's: a present 64-bit interrupt gate, DPL 0, the
// current CS, IST 0, entering pfEntry in fault.s. It keeps TamaGo's gate to
// pass on the faults no probe expects. Installing twice is harmless.
//
// Call it after TamaGo's CPU.EnableExceptions (which the boot package runs
// in its init), and again if anything rewrites the IDT's vector 14.
func InstallFaultHandler() error {
	base, limit := sidt()
	if uint64(limit)+1 < (VECTOR_PF+1)*GATE_SIZE {
		return ErrIDTTooShort
	}
	entry := idtEntry(base, VECTOR_PF)
	ours := Gate{
		Offset:   pfEntryPC(),
		Selector: readCS(),
		Type:     GATE_TYPE_INTERRUPT,
		DPL:      0,
		Present:  true,
	}
	lo, hi := ours.Encode()
	if entry[0] == lo && entry[1] == hi {
		return nil
	}
	old := DecodeGate(entry[0], entry[1])
	if !old.Present || old.Offset == 0 {
		return ErrNoPFGate
	}
	pfSaved.lo, pfSaved.hi = entry[0], entry[1]
	pfChain = old.Offset

	// The offset's high half first; the low quadword, written last in one
	// aligned store, switches the gate. Both entry points live in the
	// same image below 4 GiB, so hi does not change in practice.
	entry[1] = hi
	entry[0] = lo
	return nil
}

// RemoveFaultHandler puts TamaGo's vector-14 gate back. Probes must not run
// afterwards.
func RemoveFaultHandler() {
	if pfChain == 0 {
		return
	}
	base, _ := sidt()
	entry := idtEntry(base, VECTOR_PF)
	entry[1] = pfSaved.hi
	entry[0] = pfSaved.lo
	pfChain = 0
}

// FaultHandlerInstalled reports whether the IDT's vector-14 gate is
// physmap's.
func FaultHandlerInstalled() bool {
	base, limit := sidt()
	if uint64(limit)+1 < (VECTOR_PF+1)*GATE_SIZE {
		return false
	}
	entry := idtEntry(base, VECTOR_PF)
	g := DecodeGate(entry[0], entry[1])
	return g.Present && g.Offset == pfEntryPC()
}

func makeFault(hit, vector, code, cr2, rip uint64) Fault {
	if hit == 0 {
		return Fault{}
	}
	return Fault{Faulted: true, Vector: uint8(vector), Code: PFError(code), CR2: cr2, RIP: rip}
}

func mustBeInstalled() {
	if pfChain == 0 {
		panic("amd64: probe before InstallFaultHandler")
	}
}

// ProbeRead64 loads the quadword at va. If the load page-faults, val is 0
// and fault describes the fault.
// Precondition: InstallFaultHandler has succeeded.
func ProbeRead64(va uint64) (val uint64, fault Fault) {
	mustBeInstalled()
	val, hit, vector, code, cr2, rip := probeRead64(va)
	return val, makeFault(hit, vector, code, cr2, rip)
}

// ProbeWrite64 stores val to the quadword at va, reporting a page fault
// instead of dying of it.
// Precondition: InstallFaultHandler has succeeded.
func ProbeWrite64(va, val uint64) (fault Fault) {
	mustBeInstalled()
	return makeFault(probeWrite64(va, val))
}

// ProbeWrite8 stores the byte val at va (a canary write touches no
// neighbour), reporting a page fault instead of dying of it.
// Precondition: InstallFaultHandler has succeeded.
func ProbeWrite8(va uint64, val uint8) (fault Fault) {
	mustBeInstalled()
	return makeFault(probeWrite8(va, val))
}

// ProbeRead32 loads the doubleword at va with one 32-bit access, as a
// device register must be read. If the load page-faults, val is 0 and
// fault describes the fault.
// Precondition: InstallFaultHandler has succeeded; va is 4-byte aligned.
func ProbeRead32(va uint64) (val uint32, fault Fault) {
	mustBeInstalled()
	val, hit, vector, code, cr2, rip := probeRead32(va)
	return val, makeFault(hit, vector, code, cr2, rip)
}

// ProbeWrite32 stores val to the doubleword at va with one 32-bit access,
// reporting a page fault instead of dying of it.
// Precondition: InstallFaultHandler has succeeded; va is 4-byte aligned.
func ProbeWrite32(va uint64, val uint32) (fault Fault) {
	mustBeInstalled()
	return makeFault(probeWrite32(va, val))
}

// ProbeCall calls the code at va and returns what it left in AX. A page
// fault on fetching its first instruction (an NX or non-present va) is
// caught: ret is 0 and fault has RIP == va, CR2 == va (or the next page, for
// an instruction that straddles one) and, with EFER.NXE set, PF_I.
//
// The callee follows the ProbeCall convention: it takes no arguments, is
// entered by CALL with AX = 0, returns with RET leaving its result in AX
// and RSP as it found it, may clobber any other general-purpose register,
// the flags except DF (clear on entry and return, as in any Go or SysV
// code) and X0-X15, and uses at most 256 bytes of stack (it runs on the
// calling goroutine's stack under NOSPLIT rules). Position-independent code
// suits it, e.g. MOVQ $42, AX; RET (48 c7 c0 2a 00 00 00 c3), or
// LEAQ 0(IP), AX; RET (48 8d 05 00 00 00 00 c3), which returns va+7 and so
// proves which alias ran.
//
// Only the fetch of the first instruction is covered: a fault later in the
// callee, or on any other access it makes, is a real bug and reaches
// TamaGo's handler.
// Precondition: InstallFaultHandler has succeeded.
func ProbeCall(va uint64) (ret uint64, fault Fault) {
	mustBeInstalled()
	ret, hit, vector, code, cr2, rip := probeCall(va)
	return ret, makeFault(hit, vector, code, cr2, rip)
}
