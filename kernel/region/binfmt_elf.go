package region

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/kernel/exec"
	"github.com/physmap/physmap/mm"
)

// Ring3 runs code in ring 3 and takes it back; the kernel implements it
// with package amd64 (RunUser, SetupSyscall).
type Ring3 interface {
	// Setup enables SYSCALL as syscall_init does, entering at lstar
	// (64-bit) and cstar (compatibility mode).
	Setup(lstar, cstar mm.VirtAddr)
	// SetLSTAR points 64-bit SYSCALL somewhere else.
	SetLSTAR(lstar mm.VirtAddr)
	// Stubs are the entry stubs' frames in the image: the SYSCALL entry,
	// the one that loads StubCR3 first, and CSTAR's.
	Stubs() (syscall, syscallCR3, cstar mm.PhysAddr)
	// SetStubCR3 sets the root the second stub loads.
	SetStubCR3(root mm.PhysAddr)
	// Run enters ring 3 under root with r and returns at the next system
	// call or exception (amd64.RunUser).
	Run(r *amd64.UserRegs, root mm.PhysAddr, sysret bool) amd64.Trap
	// KernelCS is the kernel's code selector, STAR's bits 32-47.
	KernelCS() uint16
	// PTIText is the entry code PTI's user copy maps (runtime-window
	// addresses, identity mapped), and whether every stub lies in it.
	PTIText() (amd64.PTIText, bool)
	// Gates are the vectors whose gates point at the user trap stubs,
	// with the stubs' addresses (#PF's last: the PTI one).
	Gates() (vectors []int, pcs []uint64)
	// RunPTI is Run under PTI: root is the kernel copy, root+4 KiB the
	// user copy; the exit to ring 3 runs at exit on the stack tramp.
	RunPTI(r *amd64.UserRegs, root mm.PhysAddr, tramp, exit mm.VirtAddr) amd64.Trap
	// AcceptInterrupt takes an interrupt that is pending, in ring 0
	// (amd64.AcceptInterrupt).
	AcceptInterrupt()
	// Nanotime is the runtime's clock, in nanoseconds.
	Nanotime() int64
	// CopyFromUser reads p at the user address va, with RFLAGS.AC set
	// around it where CR4.SMAP is on (copy_from_user's stac/clac); it
	// stops at the first fault, n bytes read.
	CopyFromUser(va mm.VirtAddr, p []byte) (n int, f amd64.Fault)
}

// The user half's layout, as Linux lays out a process on x86-64.
const (
	// stackTop is STACK_TOP for a 64-bit process: TASK_SIZE_LOW,
	// DEFAULT_MAP_WINDOW = 2^47 - PAGE_SIZE (arch/x86/include/asm/
	// page_64_types.h), in both paging modes (a process reaches above it
	// in 5-level mode only by asking mmap for it). Linux also lowers it
	// by a random offset (randomize_stack_top); physmap does not.
	stackTop = mm.VirtAddr(defaultMapWindow)
	// stackPages are mapped below stackTop; the page below them is left
	// unmapped, a guard page (Linux keeps stack_guard_gap, 256 pages,
	// free below a stack VMA).
	stackPages = 4
	// mmapMinAddr is Debian's CONFIG_DEFAULT_MMAP_MIN_ADDR (65536): no
	// segment below it.
	mmapMinAddr mm.VirtAddr = 0x10000
	// maxProgramPages bounds a program's segments (1 MiB).
	maxProgramPages = 256
	// nprocs is how many processes run the probe.
	nprocs = 2
)

// The probe's symbols the kernel and its checks use, from its ELF symbol
// table (kernel/programs/c/probe.c).
const (
	symSecret   = "secret_page" // a page of its own holding one word
	symGreeting = "greeting"    // the line it writes
	symSMEP     = "smep_probe"  // a routine returning smepProbeRet
	symPayload  = "payload"     // where it writes payloadCode
)

// smepProbeRet is what smep_probe returns; payloadCode what probe.c
// writes into payload (mov $0x72326472, %eax; ret) and payloadRet what
// that returns.
const (
	smepProbeRet = 0x736d6570
	payloadRet   = 0x72326472
)

var payloadCode = []byte{0xb8, 0x72, 0x64, 0x32, 0x72, 0xc3}

// greetingText is what probe.c writes, %d its pid.
const greetingText = "hello from ring 3, pid %d\n"

// userTarget is the kernel data word processes try to write (through the
// kernel text mapping): it must stay zero.
var userTarget uint64

// Process is one process: its address space (its own user half, the
// kernel's kernel half), registers and what it did.
type Process struct {
	PID int
	AS  *mm.AddressSpace
	// UserAS is PTI's user copy, the second page of AS's 8 KiB root
	// pair; nil without PTI.
	UserAS *mm.AddressSpace
	// Pages are the user pages mapped, with their frames.
	Pages []UserPage
	Regs  amd64.UserRegs
	// sysret says the next entry returns from a system call.
	sysret bool
	// Handler is where the process resumes after an exception (its trap
	// system call); 0 for none.
	Handler mm.VirtAddr
	// Probe is the block of addresses passed in RDI, at ProbeVA.
	Probe   probeBlock
	ProbeVA mm.VirtAddr

	Exited   bool
	ExitCode int64
	// Freed says its frames and tables were given back (XPFO's check
	// frees one process to see its frames return to the direct map).
	Freed  bool
	Killed string // why the kernel ended it, if it did

	Syscalls []SyscallRecord
	Traps    []amd64.Trap // exceptions, in order
	// Ring3NS is the time it spent in ring 3 by the runtime's clock, and
	// LongestNS its longest stay there.
	Ring3NS, LongestNS int64
	// Timer is the timer interrupt that ended it, if one did: the trap
	// as the CPU's frame had it, with the frame's RIP and RFLAGS, and the
	// count the LAPIC had left.
	Timer *TimerEnd
	// EndStep is the run's entry to ring 3 after which it ended.
	EndStep int
	Reports []Report
	Output  []byte // what it wrote to the console
	Copies  []Copy // copy_from_user's reads
}

// HeldMM is a process's address space as physmap.mm names it: the tables
// the JSON dump describes and CR3 holds.
type HeldMM struct {
	Proc *Process
	// AS is the process's root, or under PTI its user copy, the tables
	// it runs on.
	AS       *mm.AddressSpace
	UserCopy bool
	// HoldPC is holdLoop's address in AS: in the runtime's window, or
	// under PTI its alias in the entry text, all the user copy maps of
	// the kernel's code.
	HoldPC mm.VirtAddr
}

// Held returns process pid's address space to dump and hold in.
func (u *User) Held(s *Space, pid int) (HeldMM, error) {
	for _, pr := range u.Procs {
		if pr.PID != pid {
			continue
		}
		if pr.Freed {
			return HeldMM{}, fmt.Errorf("process %d was freed", pid)
		}
		t, ok := s.Ring3.PTIText()
		if !ok {
			return HeldMM{}, fmt.Errorf("holdLoop is not in the entry text (%#x-%#x)", t.Start, t.End)
		}
		h := HeldMM{Proc: pr, AS: pr.AS, HoldPC: mm.VirtAddr(t.Hold)}
		if pr.UserAS != nil {
			h.AS, h.UserCopy, h.HoldPC = pr.UserAS, true, s.KernelVA(mm.PhysAddr(t.Hold))
		}
		return h, nil
	}
	return HeldMM{}, fmt.Errorf("no process %d: the user region made %d", pid, len(u.Procs))
}

// UserPage is one mapped user page.
type UserPage struct {
	VA    mm.VirtAddr
	PA    mm.PhysAddr
	Attrs mm.Attr
	What  string // "text", "data", "stack", ...
}

// TimerEnd is how the LAPIC timer ended a process.
type TimerEnd struct {
	Trap        amd64.Trap
	RIP, RFLAGS uint64
	Left        uint64 // the current-count register as the kernel read it
	NS          int64  // the stay in ring 3 it ended, by the runtime's clock
}

// SyscallRecord is one system call as the entry stub recorded it.
type SyscallRecord struct {
	Nr                 uint64
	EntryCR3, EntryRIP uint64
	// KernelCR3 is CR3 as the kernel ran the call (under PTI, the kernel
	// copy the stub switched to).
	KernelCR3 uint64
	Ret       int64
}

// Report is one physmap_report system call: a fact the process states.
type Report struct {
	Kind       uint64
	A, B, C, D uint64
}

// Copy is one copy_from_user: the user address and the bytes read there.
type Copy struct {
	VA   mm.VirtAddr
	Data []byte
}

// probeBlock is struct physmap_probe of probe.c.
type probeBlock struct {
	DirectOwn, KernelText, KernelData, NonCanonical uint64
	// Spin, when not zero, makes the process spin that many times in
	// ring 3 before anything else (the timer's check).
	Spin uint64
}

// User is the user half of a process's address space: mm.rst's
// "user-space virtual memory, different per mm" below the kernel half.
// physmap fills it as fs/binfmt_elf.c's load_elf_binary does for a static
// executable (kernel/exec reads it), in an address space made as
// pgd_alloc makes one (arch/x86/mm/pgtable.c: the kernel half's top-level
// entries copied from the kernel's tables), and runs two processes of the
// same program at the same addresses over different frames, entering
// ring 3 and coming back through SYSCALL and exceptions as
// arch/x86/entry/entry_64.S does. The runtime's window is mapped in each
// process too, supervisor-only: TamaGo's runtime runs at its link
// address in the low half (physmap's departure, see LowWindow).
type User struct {
	Program *exec.Program
	Syms    map[string]mm.VirtAddr
	// LSTAR and CSTAR are the entry points SYSCALL uses: the stubs'
	// aliases in the kernel text mapping, as entry_SYSCALL_64 is in
	// kernel text.
	LSTAR, CSTAR mm.VirtAddr
	Procs        []*Process
	// Spinner is the process that spins in ring 3 until the LAPIC timer
	// ends it, beside Procs; nil if the timer could not be set up.
	Spinner *Process
	// timer bounds each process's time in ring 3; timerErr says why
	// there is none.
	timer    *ring3Timer
	timerErr error
	// steps counts the entries to ring 3 of the last run.
	steps int
	// inject is the injection to apply when the processes are made.
	inject string
	// Log holds the console lines of the last run, for the report.
	Log []string
	// tramp and exit are PTI's: the entry stack's top and ptiExit's
	// alias, where the last step to ring 3 runs.
	tramp, exit mm.VirtAddr
	// XPFO is what taking the processes' frames out of the direct map
	// cost in the last run.
	XPFO XPFOCost
}

// XPFOCost counts XPFO's work: frames unmapped from the direct map, the
// table pages splitting its large pages added, the TLB invalidations.
type XPFOCost struct {
	Frames, Tables, Flushes int
}

// countTLB counts the invalidations passed through it.
type countTLB struct {
	mm.TLB
	n *int
}

func (c countTLB) InvalidatePage(va mm.VirtAddr) { *c.n++; c.TLB.InvalidatePage(va) }
func (c countTLB) FlushAll()                     { *c.n++; c.TLB.FlushAll() }

// xpfoTake unmaps a frame given to a process from the direct map, as XPFO
// does when a page is allocated to user space (splitting a large page
// that holds it, and flushing the TLB through the space's TLB).
func (u *User) xpfoTake(s *Space, pa mm.PhysAddr) error {
	before := s.Tables.InUse()
	inner := s.TLB.TLB
	s.TLB.TLB = countTLB{TLB: inner, n: &u.XPFO.Flushes}
	defer func() { s.TLB.TLB = inner }()
	if err := s.AS.Unmap(s.DirectVA(pa), page); err != nil {
		return fmt.Errorf("XPFO: unmapping %v from the direct map: %w", pa, err)
	}
	u.XPFO.Frames++
	u.XPFO.Tables += s.Tables.InUse() - before
	return nil
}

// xpfoGive maps a frame back into the direct map, 4K RW NX global, as
// XPFO does when the page is freed (or while the kernel needs it: its
// kmap).
func xpfoGive(s *Space, pa mm.PhysAddr) error {
	if err := s.AS.Map(s.DirectVA(pa), pa, page, mm.PageKernel, mm.Only(mm.Size4K)); err != nil {
		return fmt.Errorf("XPFO: mapping %v back into the direct map: %w", pa, err)
	}
	return nil
}

// kmap makes a process frame reachable at page_offset_base+pa while the
// kernel reads or writes it: with XPFO, mapped for the access and
// unmapped after, as XPFO's xpfo_kmap and xpfo_kunmap do; without, the
// direct map has it already.
func (u *User) kmap(s *Space, pa mm.PhysAddr, fn func() error) error {
	if !s.Config.XPFO {
		return fn()
	}
	if err := xpfoGive(s, pa); err != nil {
		return err
	}
	err := fn()
	if uerr := s.AS.Unmap(s.DirectVA(pa), page); err == nil {
		err = uerr
	}
	return err
}

func (u *User) Populate(s *Space) error {
	if s.Ring3 == nil || s.Program == nil {
		return nil
	}
	prog, err := exec.Load(s.Program, userLimits(s))
	if err != nil {
		return fmt.Errorf("the probe program: %w", err)
	}
	u.Program = prog
	if u.Syms, err = elfSymbols(s.Program, symSecret, symGreeting, symSMEP, symPayload); err != nil {
		return fmt.Errorf("the probe program: %w", err)
	}
	sys, _, cstar := s.Ring3.Stubs()
	u.LSTAR, u.CSTAR = s.KernelVA(sys), s.KernelVA(cstar)
	if s.Config.PTI {
		// entry_SYSCALL_64 with SWITCH_TO_KERNEL_CR3 first.
		t, ok := s.Ring3.PTIText()
		if !ok {
			return fmt.Errorf("PTI: the entry stubs are not all inside the entry text (%#x-%#x)", t.Start, t.End)
		}
		if _, _, err := ptiStack(s); err != nil {
			return fmt.Errorf("PTI: %w", err)
		}
		u.LSTAR = s.KernelVA(mm.PhysAddr(t.LSTAR))
		// pti_clone_pgtable makes the leaves it clones global in the
		// kernel's tables too: the entry text is mapped alike in both
		// copies, so one TLB entry serves both.
		text, err := entryText(s)
		if err != nil {
			return fmt.Errorf("PTI: %w", err)
		}
		if err := s.AS.SetGlobal(text.Start, text.Len(), true); err != nil {
			return fmt.Errorf("PTI: the entry text: %w", err)
		}
	}
	s.Ring3.Setup(u.LSTAR, u.CSTAR)
	if u.timer, u.timerErr = setupTimer(s); u.timerErr == nil {
		s.logf("physmap: LAPIC timer: one-shot at vector %#x, %d ticks per ms against the runtime's clock; a process may stay %d ms in ring 3 without entering the kernel",
			amd64.VECTOR_LOCAL_TIMER, u.timer.perMS, timeSlice/1_000_000)
	}
	s.logf("physmap: SYSCALL enabled: LSTAR %v, CSTAR %v (the entry stubs in the kernel text mapping), STAR %#x, SFMASK %#x",
		u.LSTAR, u.CSTAR, amd64.STAR(s.Ring3.KernelCS()), amd64.SyscallMask)
	return nil
}

// userLimits is where a program's segments may go: above mmap_min_addr,
// below the stack and its guard page, clear of the runtime's window.
func userLimits(s *Space) exec.Limits {
	return exec.Limits{
		Range:    mm.VirtRange{Start: mmapMinAddr, End: stackTop.Sub((stackPages + 1) * page)},
		Avoid:    mm.VirtRange{Start: mm.VirtAddr(s.Window.Start), End: mm.VirtAddr(s.Window.End)},
		MaxPages: maxProgramPages,
	}
}

// elfSymbols finds the named symbols in an executable's symbol table.
func elfSymbols(data []byte, names ...string) (map[string]mm.VirtAddr, error) {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	syms, err := f.Symbols()
	if err != nil {
		return nil, fmt.Errorf("symbol table: %w", err)
	}
	out := map[string]mm.VirtAddr{}
	for _, sym := range syms {
		out[sym.Name] = mm.VirtAddr(sym.Value)
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("no symbol %s", n)
		}
	}
	return out, nil
}

// newProcess makes a process as fork+exec would leave it: an address
// space whose kernel half is the kernel's (pgd_alloc), the window
// supervisor-only, the program's segments over fresh frames with
// load_elf_binary's permissions, a stack below stackTop with the probe
// block at its top, RIP at the entry point.
func (u *User) newProcess(s *Space, kernel *mm.AddressSpace, pid int, probe func(stackPA mm.PhysAddr) probeBlock) (*Process, error) {
	var as, uas *mm.AddressSpace
	if s.Config.PTI {
		// PTI's pgd pair: 8 KiB, aligned so that CR3 bit 12 picks the
		// copy (arch/x86/include/asm/pgalloc.h: PGD_ALLOCATION_ORDER 1).
		pair, err := s.Tables.AllocAligned(2, 2*page)
		if err != nil {
			return nil, err
		}
		as = mm.NewAt(kernel.Mode(), pair, s.Mem, s.Tables, s.TLB)
		uas = mm.NewAt(kernel.Mode(), pair.Add(page), s.Mem, s.Tables, s.TLB)
	} else {
		var err error
		if as, err = mm.New(kernel.Mode(), s.Mem, s.Tables, s.TLB); err != nil {
			return nil, err
		}
	}
	if err := as.ShareKernelHalf(kernel); err != nil {
		return nil, err
	}
	if err := mapWindow(as, s); err != nil {
		return nil, err
	}
	pr := &Process{PID: pid, AS: as, UserAS: uas}
	// A process's frames come from the top of RAM, apart from the
	// kernel's (which the allocator hands out lowest first): there the
	// direct map has large pages, which XPFO must split.
	mapPage := func(va mm.VirtAddr, attrs mm.Attr, what string, fill []byte, off uint64) error {
		pa, err := s.Frames.AllocHigh()
		if err != nil {
			return err
		}
		if err := writeBytes(s.CPU, "a user page", s.DirectVA(pa), zeroPage[:]); err != nil {
			return err
		}
		if len(fill) > 0 {
			if err := writeBytes(s.CPU, "a user page", s.DirectVA(pa).Add(off), fill); err != nil {
				return err
			}
		}
		if err := as.Map(va, pa, page, attrs, mm.Only(mm.Size4K)); err != nil {
			return err
		}
		pr.Pages = append(pr.Pages, UserPage{VA: va, PA: pa, Attrs: attrs, What: what})
		return nil
	}
	for _, seg := range u.Program.Segments {
		what := "rodata"
		switch {
		case seg.Exec:
			what = "text"
		case seg.Write:
			what = "data"
		}
		r := seg.Pages()
		for va := r.Start; va < r.End; va = va.Add(page) {
			// The file bytes that fall in this page, and where.
			lo, hi := max(va, seg.VA), min(va.Add(page), seg.VA.Add(uint64(len(seg.Data))))
			var fill []byte
			if lo < hi {
				fill = seg.Data[lo-seg.VA : hi-seg.VA]
			}
			if err := mapPage(va, seg.Attrs(), what, fill, uint64(lo-va)); err != nil {
				return nil, err
			}
		}
	}
	for i := stackPages; i >= 1; i-- {
		if err := mapPage(stackTop.Sub(uint64(i)*page), mm.AttrUser|mm.AttrWrite|mm.AttrNX, "stack", nil, 0); err != nil {
			return nil, err
		}
	}
	top := pr.Pages[len(pr.Pages)-1]
	pr.Probe = probe(top.PA)
	pr.ProbeVA = stackTop.Sub(64)
	var blk [40]byte
	binary.LittleEndian.PutUint64(blk[0:], pr.Probe.DirectOwn)
	binary.LittleEndian.PutUint64(blk[8:], pr.Probe.KernelText)
	binary.LittleEndian.PutUint64(blk[16:], pr.Probe.KernelData)
	binary.LittleEndian.PutUint64(blk[24:], pr.Probe.NonCanonical)
	binary.LittleEndian.PutUint64(blk[32:], pr.Probe.Spin)
	if err := writeBytes(s.CPU, "the probe block", s.DirectVA(top.PA).Add(page-64), blk[:]); err != nil {
		return nil, err
	}
	if s.Config.XPFO {
		for _, pg := range pr.Pages {
			if err := u.xpfoTake(s, pg.PA); err != nil {
				return nil, err
			}
		}
	}
	if uas != nil {
		if err := u.userCopy(s, kernel, pr); err != nil {
			return nil, fmt.Errorf("PTI's user copy: %w", err)
		}
	}
	pr.Regs = amd64.UserRegs{RIP: uint64(u.Program.Entry), RSP: uint64(pr.ProbeVA), DI: uint64(pr.ProbeVA), RFLAGS: amd64.RFLAGS_FIXED}
	return pr, nil
}

// release frees a process's frames and its own tables; with XPFO the
// frames go back into the direct map first.
func (pr *Process) release(s *Space) error {
	if pr.Freed {
		return nil
	}
	pr.Freed = true
	for _, pg := range pr.Pages {
		if s.Config.XPFO {
			if err := xpfoGive(s, pg.PA); err != nil {
				return err
			}
		}
		if err := s.Frames.FreeFrame(pg.PA); err != nil {
			return err
		}
	}
	pr.Pages = nil
	if pr.UserAS != nil {
		for _, va := range ptiShared(s) {
			pr.UserAS.Unshare(va, level512G(s))
		}
		if err := pr.UserAS.Release(); err != nil {
			return err
		}
	}
	return pr.AS.ReleaseUser()
}

// pageAt returns the process's page holding va.
func (pr *Process) pageAt(va mm.VirtAddr) (UserPage, bool) {
	for _, pg := range pr.Pages {
		if va.AlignDown(page) == pg.VA {
			return pg, true
		}
	}
	return UserPage{}, false
}

// targetPA is userTarget's frame: the runtime's window is identity mapped,
// so its address is its physical address.
func targetPA() mm.PhysAddr { return mm.PhysAddr(uintptr(unsafe.Pointer(&userTarget))) }
