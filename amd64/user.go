//go:build tamago

package amd64

import "errors"

// Running a process: a switch to ring 3 that returns, in the manner of
// gVisor's ring0 Switch. RunUser saves the kernel's registers, loads the
// process's CR3 and registers and enters ring 3 with IRETQ or SYSRETQ;
// the next SYSCALL (through MSR_LSTAR) or exception in ring 3 saves the
// process's registers and returns from RunUser, on the kernel's stack as
// it was, with what the CPU recorded. Go code handles the system call or
// the fault and calls RunUser again.
//
// The state is global (uf, kf): one CPU runs processes, with interrupts
// off in ring 0 from the call to the return (ring 3 runs with IF set; an
// interrupt taken there comes back through the gate stubs like an
// exception, and every gate clears IF), so nothing nests. The entry code runs in exception context (STYLE rule 14): it
// only stores registers. Defined in user.s.

// userFrame is the process's side, laid out for user.s.
type userFrame struct {
	ax, bx, cx, dx, si, di, bp, r8, r9, r10, r11, r12, r13, r14, r15 uint64
	rip, rsp, rflags                                                 uint64
	cr3, sysret                                                      uint64
	cause, vector, code, cr2, cs, ss, entryCR3, entryRIP             uint64
	// Under PTI: set, the user copy's CR3, the entry stack's top and
	// ptiExit's alias (user.s's pti path).
	pti, ucr3, tramp, exitPC uint64
}

// kernelFrame is the kernel's side: what RunUser restores on the way back.
type kernelFrame struct {
	sp, bp, bx, r12, r13, r14, r15, flags, fsbase, gsbase uint64
}

var (
	uf userFrame
	kf kernelFrame

	// stubCR3 is the CR3 syscallEntryCR3 loads before anything else.
	stubCR3 uint64

	// userChain holds, per vector, the gate InstallUserTraps replaced:
	// an exception taken in ring 0 goes there untouched.
	userChain [20]uint64
)

func enterUser()
func syscallEntry()
func syscallEntryCR3()
func ignoreSysret()
func trapDE()
func trapDB()
func trapUD()
func trapNM()
func trapSS()
func trapGP()
func trapMF()
func trapAC()
func trapXM()

func syscallEntryPTI()
func ptiExit()
func trapPF()
func ptiEntryText()
func ptiEntryTextEnd()
func ptiPCs() (start, end, lstar, exit, pf, hold uint64)

// HoldIn turns interrupts off, jumps to pc, holdLoop at one of its
// addresses mapped in the tables at cr3 (PTIText.Hold, or its alias in the
// kernel text mapping for PTI's user copy), loads cr3 there and halts for
// good. It does not return.
func HoldIn(cr3, pc uint64)

func syscallEntryPC() uint64
func syscallEntryCR3PC() uint64
func ignoreSysretPC() uint64
func trapPCs(out *[9]uint64)
func irqPCs() (timer, spurious uint64)

// AcceptInterrupt lets an interrupt that is pending be taken, in ring 0,
// and returns with interrupts off again.
func AcceptInterrupt()

// trapStubs returns trapPCs's addresses.
func trapStubs() (pcs [9]uint64) {
	trapPCs(&pcs)
	return pcs
}

// userVectors are the vectors of trapPCs, in its order. #PF is pfEntry's
// (fault.s), which passes ring 3's faults on the same way.
var userVectors = [9]int{VECTOR_DE, VECTOR_DB, VECTOR_UD, VECTOR_NM, VECTOR_SS, VECTOR_GP, VECTOR_MF, VECTOR_AC, VECTOR_XM}

// ErrNoGate says a vector InstallUserTraps must take over has no gate.
var ErrNoGate = errors.New("amd64: an exception a process can raise has no gate to chain to")

// InstallUserTraps points the gates of the exceptions a process can raise
// at physmap's stubs, which hand an exception from ring 3 to RunUser's
// caller and pass one from ring 0 to the gate they replaced (TamaGo's),
// with the stack as the CPU left it. The gates keep their type, DPL and
// IST. Call it after InstallFaultHandler and before the IDT is copied
// (cpu_entry_area); installing twice is harmless.
func InstallUserTraps() error {
	base, limit := sidt()
	pcs := trapStubs()
	for i, v := range userVectors {
		if uint64(limit)+1 < uint64(v+1)*GATE_SIZE {
			return ErrIDTTooShort
		}
		entry := idtEntry(base, v)
		old := DecodeGate(entry[0], entry[1])
		if old.Offset == pcs[i] {
			continue
		}
		if !old.Present || old.Offset == 0 {
			return ErrNoGate
		}
		userChain[v] = old.Offset
		ours := old
		ours.Offset = pcs[i]
		lo, hi := ours.Encode()
		entry[1] = hi
		entry[0] = lo
	}
	// The interrupts a process may take: gates of their own, made as
	// idt_setup_apic_and_irq_gates makes Linux's from apic_idts
	// (arch/x86/kernel/idt.c: INTG, an interrupt gate, DPL 0, no IST).
	timer, spurious := irqPCs()
	for _, g := range []struct {
		vector int
		pc     uint64
	}{{VECTOR_LOCAL_TIMER, timer}, {VECTOR_SPURIOUS, spurious}} {
		if uint64(limit)+1 < uint64(g.vector+1)*GATE_SIZE {
			return ErrIDTTooShort
		}
		entry := idtEntry(base, g.vector)
		lo, hi := Gate{Offset: g.pc, Selector: readCS(), Type: GATE_TYPE_INTERRUPT, Present: true}.Encode()
		entry[1] = hi
		entry[0] = lo
	}
	return nil
}

// SyscallEntryPC is the entry stub's address in the runtime's window;
// the kernel points MSR_LSTAR at its alias in the kernel text mapping.
func SyscallEntryPC() uint64 { return syscallEntryPC() }

// SyscallEntryCR3PC is a second entry stub that loads CR3 with
// SetStubCR3's value as its first act, as PTI's SWITCH_TO_KERNEL_CR3 does.
func SyscallEntryCR3PC() uint64 { return syscallEntryCR3PC() }

// IgnoreSysretPC is MSR_CSTAR's stub: compatibility-mode SYSCALL returns
// -ENOSYS at once, as Linux's ignore_sysret does without IA32 emulation.
func IgnoreSysretPC() uint64 { return ignoreSysretPC() }

// SetStubCR3 sets the CR3 SyscallEntryCR3PC's stub loads.
func SetStubCR3(cr3 uint64) { stubCR3 = cr3 }

// SetupSyscall enables SYSCALL as Linux's syscall_init does: EFER.SCE,
// STAR with the kernel's code selector, LSTAR and CSTAR at the entry
// points given, and SyscallMask.
func SetupSyscall(kernelCS uint16, lstar, cstar uint64) {
	Wrmsr(MSR_EFER, Rdmsr(MSR_EFER)|EFER_SCE)
	Wrmsr(MSR_STAR, STAR(kernelCS))
	Wrmsr(MSR_LSTAR, lstar)
	Wrmsr(MSR_CSTAR, cstar)
	Wrmsr(MSR_SYSCALL_MASK, SyscallMask)
}

// KernelCS is the code selector the kernel runs with.
func KernelCS() uint16 { return readCS() }

// RunUser enters ring 3 with the process's registers r under the tables
// at cr3, through SYSRETQ when sysret is set (after a system call: RIP in
// RCX, RFLAGS in R11, as SYSRET takes them) or IRETQ otherwise, and
// returns when the process makes a system call or raises an exception,
// with r updated. CR3 stays the process's on return: the kernel runs in
// the process's address space, whose kernel half is its own.
// Precondition: InstallUserTraps and SetupSyscall have run; r.RIP is a
// canonical user address when sysret is set; RFLAGS has no bit beyond
// UserFlags and RFLAGS_FIXED.
func RunUser(r *UserRegs, cr3 uint64, sysret bool) Trap {
	uf.ax, uf.bx, uf.cx, uf.dx, uf.si, uf.di, uf.bp = r.AX, r.BX, r.CX, r.DX, r.SI, r.DI, r.BP
	uf.r8, uf.r9, uf.r10, uf.r11 = r.R8, r.R9, r.R10, r.R11
	uf.r12, uf.r13, uf.r14, uf.r15 = r.R12, r.R13, r.R14, r.R15
	uf.rip, uf.rsp, uf.rflags = r.RIP, r.RSP, r.RFLAGS
	uf.cr3 = cr3
	uf.sysret = 0
	if sysret {
		uf.sysret = 1
	}
	enterUser()
	r.AX, r.BX, r.CX, r.DX, r.SI, r.DI, r.BP = uf.ax, uf.bx, uf.cx, uf.dx, uf.si, uf.di, uf.bp
	r.R8, r.R9, r.R10, r.R11 = uf.r8, uf.r9, uf.r10, uf.r11
	r.R12, r.R13, r.R14, r.R15 = uf.r12, uf.r13, uf.r14, uf.r15
	r.RIP, r.RSP, r.RFLAGS = uf.rip, uf.rsp, uf.rflags
	return Trap{Cause: Cause(uf.cause), Vector: uint8(uf.vector), Code: uf.code, CR2: uf.cr2,
		CS: uf.cs, SS: uf.ss, EntryCR3: uf.entryCR3, EntryRIP: uf.entryRIP}
}

// PTIEntryText returns the entry text's bounds and entry points, and
// whether every stub a process can reach lies inside the bounds (the
// linker lays out an assembly file's functions in order; this checks it).
func PTIEntryText() (PTIText, bool) {
	var t PTIText
	t.Start, t.End, t.LSTAR, t.Exit, t.PF, t.Hold = ptiPCs()
	in := func(pc uint64) bool { return pc >= t.Start && pc < t.End }
	timer, spurious := irqPCs()
	ok := in(t.LSTAR) && in(t.Exit) && in(t.PF) && in(t.Hold) && in(syscallEntryPC()) && in(ignoreSysretPC()) && in(timer) && in(spurious)
	for _, pc := range trapStubs() {
		ok = ok && in(pc)
	}
	return t, ok
}

// TrapGatePCs returns the gate stubs of InstallUserTraps's vectors, in
// the order of UserVectors, then the timer's and the spurious vector's,
// then #PF's under PTI.
func TrapGatePCs() (vectors []int, pcs []uint64) {
	t := trapStubs()
	vectors = append(vectors, userVectors[:]...)
	pcs = append(pcs, t[:]...)
	timer, spurious := irqPCs()
	vectors = append(vectors, VECTOR_LOCAL_TIMER, VECTOR_SPURIOUS)
	pcs = append(pcs, timer, spurious)
	_, _, _, _, pf, _ := ptiPCs()
	return append(vectors, VECTOR_PF), append(pcs, pf)
}

// RunUserPTI is RunUser under PTI: cr3 is the process's kernel copy, ucr3
// its user copy (cr3 with bit 12 set), the last step to ring 3 is ptiExit
// at exit (its alias), on the entry stack whose top is tramp; it always
// returns to ring 3 with IRETQ. The entry stubs switch back to the kernel
// copy before anything else.
func RunUserPTI(r *UserRegs, cr3, ucr3, tramp, exit uint64) Trap {
	uf.pti, uf.ucr3, uf.tramp, uf.exitPC = 1, ucr3, tramp, exit
	t := RunUser(r, cr3, false)
	uf.pti = 0
	return t
}
