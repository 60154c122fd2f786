package region

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/kernel/selftest"
	"github.com/physmap/physmap/mm"
)

// The user region's checks.
const (
	checkRing3      = "user.ring3"
	checkKernelHalf = "user.kernel-half"
	checkIsolation  = "user.isolation"
	checkSupervisor = "user.supervisor"
	checkSyscall    = "user.syscall"
)

// The user region's injections, applied to the processes' tables, memory
// or the CPU when Prove makes them, before they run.
const (
	injectGreeting   = "user-greeting-patched"
	injectKernelHalf = "user-kernel-half-differs"
	injectShared     = "user-shared-frame"
	injectDirectUser = "user-directmap-user"
	injectLSTARCR3   = "user-lstar-cr3"
)

// secretOf is the value probe.c keeps in secret_page: 0x5ec2e700 + pid.
func secretOf(pid int) uint64 { return 0x5ec2e700 + uint64(pid) }

func (u *User) Inject(s *Space, name string) error {
	switch name {
	case injectLSTARCR3:
		if s.Config.PTI {
			// Its stub reads kernel data before any switch: under the
			// user copy that is a fault on the process's stack.
			return fmt.Errorf("user: injection %q needs pti=off", name)
		}
		u.inject = name
		return nil
	case injectPTIDirect:
		if !s.Config.PTI {
			return fmt.Errorf("user: injection %q needs pti=on", name)
		}
		u.inject = name
		return nil
	case injectTimerMasked:
		if u.timer == nil {
			return fmt.Errorf("user: injection %q: no LAPIC timer: %v", name, u.timerErr)
		}
		return u.timer.inject(s.CPU)
	case injectPTIGlobal:
		if !s.Config.PTI {
			return fmt.Errorf("user: injection %q needs pti=on", name)
		}
		return s.AS.SetGlobal(s.DirectVA(s.Image.Data.Start), page, true)
	case injectGreeting, injectKernelHalf, injectShared, injectDirectUser,
		injectNoSMEP, injectNoSMAP, injectRet2dirExec, injectXPFOMapped:
		u.inject = name
		return nil
	}
	return fmt.Errorf("user: no injection %q", name)
}

// Prove makes the processes afresh (those of an earlier run are freed),
// runs them and holds what they did to the CPU's records.
func (u *User) Prove(p *Proof) {
	s := p.Act
	failAll := func(format string, args ...any) {
		// Every check of the user region's manifest entry this boot makes.
		_, spec, _ := selftest.LookupCheck(checkRing3)
		for _, c := range spec.Checks {
			if c.When == nil || c.When(p.Ref.Config) {
				fail(p.R, c.Name, format, args...)
			}
		}
	}
	if u.Program == nil {
		failAll("no processes: the kernel has no probe program or no way to enter ring 3")
		return
	}
	if p.Bases.TextErr != nil || p.Bases.PageOffsetErr != nil {
		failAll("no processes: _text or page_offset_base not found in the live tables (%v, %v)", p.Bases.TextErr, p.Bases.PageOffsetErr)
		return
	}
	for _, pr := range u.All() {
		if err := pr.release(s); err != nil {
			failAll("freeing the last run's process %d: %v", pr.PID, err)
			return
		}
	}
	u.Procs, u.Spinner, u.Log, u.XPFO = nil, nil, nil, XPFOCost{}
	kernelRoot := p.CPU.CR3()
	mode := p.Live.Mode()
	probe := func(stackPA mm.PhysAddr) probeBlock {
		return probeBlock{
			DirectOwn:    uint64(p.DirectVA(stackPA)),
			KernelText:   uint64(p.Bases.Text),
			KernelData:   uint64(p.KernelVA(targetPA())),
			NonCanonical: uint64(mode.UserEnd()),
		}
	}
	for pid := 1; pid <= nprocs; pid++ {
		pr, err := u.newProcess(s, p.Live, pid, probe)
		if err != nil {
			failAll("making process %d: %v", pid, err)
			return
		}
		u.Procs = append(u.Procs, pr)
	}
	if u.timer != nil {
		spin := func(stackPA mm.PhysAddr) probeBlock {
			b := probe(stackPA)
			b.Spin = spinLoops
			return b
		}
		var err error
		if u.Spinner, err = u.newProcess(s, p.Live, nprocs+1, spin); err != nil {
			failAll("making process %d, the spinner: %v", nprocs+1, err)
			return
		}
	}
	undo, err := u.applyInjection(p, kernelRoot)
	if err != nil {
		failAll("injection %s: %v", u.inject, err)
		return
	}
	userTarget = 0
	err = u.run(s, kernelRoot)
	undo()
	if err != nil {
		failAll("running the processes: %v", err)
		return
	}

	for _, c := range []struct {
		name  string
		prove func(*Proof) (string, error)
	}{
		{checkRing3, u.proveRing3},
		{checkKernelHalf, func(p *Proof) (string, error) { return u.proveKernelHalf(p, kernelRoot) }},
		{checkIsolation, u.proveIsolation},
		{checkSupervisor, u.proveSupervisor},
		{checkSyscall, u.proveSyscall},
		{checkPTI, u.provePTI},
		{checkTimer, u.proveTimer},
	} {
		if c.name == checkPTI && !p.Ref.Config.PTI {
			continue
		}
		msg, err := c.prove(p)
		if err != nil {
			fail(p.R, c.name, "%v", err)
			continue
		}
		pass(p.R, c.name, "%s", msg)
	}
	u.proveProtections(p, kernelRoot)
}

// applyInjection corrupts the new processes' tables or memory, or the
// CPU, as the injection asks, and returns what puts the kernel's own
// state back after the run.
func (u *User) applyInjection(p *Proof, kernelRoot mm.PhysAddr) (func(), error) {
	s := p.Act
	none := func() {}
	p1, p2 := u.Procs[0], u.Procs[1]
	switch u.inject {
	case "", injectNoSMEP, injectNoSMAP, injectRet2dirExec, injectXPFOMapped, // applied where their checks probe
		injectPTIDirect: // applied as the user copies are made
		return none, nil
	case injectGreeting:
		pg, ok := p1.pageAt(u.Syms[symGreeting])
		if !ok {
			return nil, fmt.Errorf("no page at %v", u.Syms[symGreeting])
		}
		off := uint64(u.Syms[symGreeting] - pg.VA)
		return none, u.kmap(s, pg.PA, func() error {
			return writeBytes(s.CPU, "the greeting", s.DirectVA(pg.PA).Add(off), []byte("HELLO"))
		})
	case injectKernelHalf:
		va := p.Bases.Vmemmap
		if p.Bases.VmemmapErr != nil {
			va = p.spec(mm.KindVmemmap).Start
		}
		i := uint64(va) >> p2.AS.Mode().Shift(mm.PGD) & 511
		s.Mem.Write64(p2.AS.Root().Add(8*i), 0)
		return none, nil
	case injectShared:
		secret := u.Syms[symSecret]
		pg1, ok1 := p1.pageAt(secret)
		t, err := p2.AS.Translate(secret)
		if !ok1 || err != nil {
			return nil, fmt.Errorf("secret_page not mapped (%v)", err)
		}
		last := t.Path()[len(t.Path())-1]
		s.Mem.Write64(last.Table.Add(uint64(last.Index)*8), uint64(mm.MakeLeaf(mm.PTE, pg1.PA, pg1.Attrs)))
		return none, nil
	case injectDirectUser:
		// U/S on every entry of the walk to process 1's own stack page
		// through the direct map: its own top-level entry and the
		// kernel's shared ones below.
		t, err := p1.AS.Translate(mm.VirtAddr(p1.Probe.DirectOwn))
		if err != nil {
			return nil, err
		}
		var saved []mm.Step
		for _, st := range t.Path() {
			saved = append(saved, st)
			s.Mem.Write64(st.Table.Add(uint64(st.Index)*8), uint64(st.Entry|mm.User))
		}
		s.CPU.FlushAll()
		return func() {
			for _, st := range saved {
				s.Mem.Write64(st.Table.Add(uint64(st.Index)*8), uint64(st.Entry))
			}
			s.CPU.FlushAll()
		}, nil
	case injectLSTARCR3:
		_, cr3stub, _ := s.Ring3.Stubs()
		s.Ring3.SetStubCR3(kernelRoot)
		s.Ring3.SetLSTAR(s.KernelVA(cr3stub))
		return func() { s.Ring3.SetLSTAR(u.LSTAR) }, nil
	}
	return nil, fmt.Errorf("unknown")
}

// report returns the process's first report of a kind.
func (pr *Process) report(kind uint64) (Report, bool) {
	for _, r := range pr.Reports {
		if r.Kind == kind {
			return r, true
		}
	}
	return Report{}, false
}

// State says how the process ended: "exited 0", "killed: ...", for
// messages and the shell.
func (pr *Process) State() string {
	switch {
	case pr.Killed != "":
		return "killed: " + pr.Killed
	case pr.Exited:
		return fmt.Sprintf("exited %d", pr.ExitCode)
	}
	return "still running"
}

// proveRing3 checks that each process ran in ring 3 and printed its
// greeting. Expected: __USER_CS and __USER_DS (segment.h), in the
// exception frames the CPU pushed and in CS as the process read it; the
// greeting as probe.c writes it.
func (u *User) proveRing3(p *Proof) (string, error) {
	frames := 0
	for _, pr := range u.Procs {
		hello, ok := pr.report(reportHello)
		if !ok {
			return "", fmt.Errorf("process %d reported nothing from ring 3 (%s)", pr.PID, pr.State())
		}
		if hello.B != amd64.USER_CS {
			return "", fmt.Errorf("process %d read CS %#x, want __USER_CS %#x", pr.PID, hello.B, amd64.USER_CS)
		}
		if len(pr.Traps) == 0 {
			return "", fmt.Errorf("process %d raised no exception: no frame shows its CPL (%s)", pr.PID, pr.State())
		}
		for _, t := range pr.Traps {
			if t.CS != amd64.USER_CS || t.SS != amd64.USER_DS {
				return "", fmt.Errorf("process %d's %v frame has CS %#x SS %#x, want %#x %#x", pr.PID, t, t.CS, t.SS, amd64.USER_CS, amd64.USER_DS)
			}
			frames++
		}
		if want := fmt.Sprintf(greetingText, pr.PID); string(pr.Output) != want {
			return "", fmt.Errorf("process %d wrote %q, want %q (%s)", pr.PID, pr.Output, want, pr.State())
		}
	}
	return fmt.Sprintf("%d processes ran at CPL 3: CS %#x as each read it, and in the %d exception frames the CPU pushed (SS %#x); each wrote %q through write",
		len(u.Procs), amd64.USER_CS, frames, amd64.USER_DS, strings.TrimSpace(strings.Replace(greetingText, "%d", "N", 1))), nil
}

// proveKernelHalf checks that each process's kernel half is the kernel's.
// Expected: the top-level table in CR3 while the kernel runs, read
// through page_offset_base; the kernel addresses' translations in the
// live tables, compared with a walk from each process's root.
func (u *User) proveKernelHalf(p *Proof, kernelRoot mm.PhysAddr) (string, error) {
	const half = 256 * 8
	kernel, err := readBytes(p.CPU, "the kernel's top-level table", p.DirectVA(kernelRoot).Add(half), half)
	if err != nil {
		return "", err
	}
	samples := []struct {
		what string
		va   mm.VirtAddr
	}{
		{"_text", p.Bases.Text}, {"page_offset_base", p.Bases.PageOffset},
		{"vmalloc_base", p.Bases.Vmalloc}, {"vmemmap_base", p.Bases.Vmemmap},
		{"cpu_entry_area", p.spec(mm.KindCPUEntryArea).Start}, {"LSTAR", mm.VirtAddr(p.CPU.ReadMSR(amd64.MSR_LSTAR))},
	}
	if p.Bases.ModuleErr == nil {
		samples = append(samples, struct {
			what string
			va   mm.VirtAddr
		}{"the first module page", p.Bases.Module})
	}
	mode := p.Live.Mode()
	for _, pr := range u.Procs {
		own, err := readBytes(p.CPU, "a process's top-level table", p.DirectVA(pr.AS.Root()).Add(half), half)
		if err != nil {
			return "", err
		}
		for i := 0; i < half; i += 8 {
			if k, o := binary.LittleEndian.Uint64(kernel[i:]), binary.LittleEndian.Uint64(own[i:]); k != o {
				return "", fmt.Errorf("process %d's top-level entry %d is %#x, the kernel's %#x", pr.PID, 256+i/8, o, k)
			}
		}
		view := mm.Open(mode, pr.AS.Root(), p.Act.Mem)
		for _, sm := range samples {
			kt, kerr := p.Live.Translate(sm.va)
			pt, perr := view.Translate(sm.va)
			if (kerr == nil) != (perr == nil) || kt.PA != pt.PA || kt.Attrs != pt.Attrs || kt.Size != pt.Size {
				return "", fmt.Errorf("%s %v: the kernel's tables give %v %v (%v), process %d's %v %v (%v)", sm.what, sm.va, kt.PA, kt.Attrs, kerr, pr.PID, pt.PA, pt.Attrs, perr)
			}
		}
	}
	return fmt.Sprintf("each process's 256 kernel-half top-level entries equal the kernel's (pgd_alloc's copy: every table below is shared); %d kernel addresses (_text, page_offset_base, vmalloc_base, vmemmap_base, cpu_entry_area, LSTAR, a module) translate to the same frames and permissions under each process's root",
		len(samples)), nil
}

// proveIsolation checks that the processes' data differ in frame only.
// Expected: secret_page's address from the program's symbol table, the
// value probe.c stores (0x5ec2e700 + pid), the frames behind it in each
// process's tables read through page_offset_base.
func (u *User) proveIsolation(p *Proof) (string, error) {
	va := u.Syms[symSecret]
	var frames []mm.PhysAddr
	for _, pr := range u.Procs {
		r, ok := pr.report(reportSecret)
		if !ok {
			return "", fmt.Errorf("process %d did not read its secret back (%s)", pr.PID, pr.State())
		}
		want := secretOf(pr.PID)
		if r.B != uint64(va) {
			return "", fmt.Errorf("process %d's secret is at %#x, the symbol table says %v", pr.PID, r.B, va)
		}
		if r.A != want {
			return "", fmt.Errorf("process %d read back %#x at %v, want its own %#x", pr.PID, r.A, va, want)
		}
		t, err := mm.Open(p.Live.Mode(), pr.AS.Root(), p.Act.Mem).Translate(va)
		if err != nil {
			return "", fmt.Errorf("process %d: %v", pr.PID, err)
		}
		var got uint64
		if err := u.kmap(p.Act, t.PA.AlignDown(page), func() (err error) {
			got, err = read64(p.CPU, "a secret through the direct map", p.DirectVA(t.PA))
			return err
		}); err != nil {
			return "", err
		}
		if got != want {
			return "", fmt.Errorf("process %d's frame %v holds %#x, want %#x", pr.PID, t.PA, got, want)
		}
		for i, f := range frames {
			if f == t.PA {
				return "", fmt.Errorf("%v maps frame %v in processes %d and %d", va, f, u.Procs[i].PID, pr.PID)
			}
		}
		frames = append(frames, t.PA)
	}
	return fmt.Sprintf("%v (probe.c's secret_page, from its symbol table) is frame %v in process 1 and %v in process 2; each read back its own value there, which its frame holds through page_offset_base",
		va, frames[0], frames[1]), nil
}

// userProbes are probe.c's stages with what the CPU must report
// (SDM Vol. 3A 4.7: a user-mode access to a present supervisor page is
// a protection fault, P=1 U=1, W for a write; 6.15: a non-canonical
// address raises #GP(0)).
var userProbes = []struct {
	what   string
	vector uint8
	code   uint64
	addr   func(probeBlock) uint64
}{
	{"reading its own stack page at page_offset_base+pa", amd64.VECTOR_PF, amd64.PF_P | amd64.PF_U, func(b probeBlock) uint64 { return b.DirectOwn }},
	{"reading _text", amd64.VECTOR_PF, amd64.PF_P | amd64.PF_U, func(b probeBlock) uint64 { return b.KernelText }},
	{"writing kernel data", amd64.VECTOR_PF, amd64.PF_P | amd64.PF_W | amd64.PF_U, func(b probeBlock) uint64 { return b.KernelData }},
	{"reading a non-canonical address", amd64.VECTOR_GP, 0, nil},
}

// proveSupervisor checks that the kernel half is present and out of
// reach from ring 3. Expected: the SDM's error codes; userTarget, which
// no process may change.
func (u *User) proveSupervisor(p *Proof) (string, error) {
	for _, pr := range u.Procs {
		for stage, pb := range userProbes {
			var got *Report
			for i, r := range pr.Reports {
				if (r.Kind == reportFault || r.Kind == reportNoFault) && r.A == uint64(stage) {
					got = &pr.Reports[i]
					break
				}
			}
			switch {
			case got == nil:
				return "", fmt.Errorf("process %d never got to %s (%s)", pr.PID, pb.what, pr.State())
			case got.Kind == reportNoFault:
				return "", fmt.Errorf("process %d: %s did not fault", pr.PID, pb.what)
			}
			code := pb.code
			if stage == 0 && p.Ref.Config.XPFO {
				code = amd64.PF_U // XPFO took the page out of the direct map: not present
			}
			if p.Ref.Config.PTI && pb.vector == amd64.VECTOR_PF {
				code &^= amd64.PF_P // the user copy maps no kernel data: not present
			}
			switch {
			case uint8(got.B) != pb.vector || got.C != code:
				return "", fmt.Errorf("process %d: %s raised %s error code %#x, want %s %#x", pr.PID, pb.what, amd64.VectorName(uint8(got.B)), got.C, amd64.VectorName(pb.vector), code)
			case pb.addr != nil && got.D != pb.addr(pr.Probe):
				return "", fmt.Errorf("process %d: %s faulted at %#x, want %#x", pr.PID, pb.what, got.D, pb.addr(pr.Probe))
			}
			if stage >= len(pr.Traps) || pr.Traps[stage].Vector != pb.vector || pr.Traps[stage].Code != code {
				return "", fmt.Errorf("process %d: its report of %s is not what the CPU pushed (%v)", pr.PID, pb.what, pr.Traps)
			}
		}
	}
	if v, err := read64(p.CPU, "the kernel data word", p.KernelVA(targetPA())); err != nil || v != 0 {
		return "", fmt.Errorf("the kernel data word processes wrote to holds %#x (%v)", v, err)
	}
	if p.Ref.Config.PTI {
		return fmt.Sprintf("from ring 3, in each process, under PTI's user copy, reading its own stack page through page_offset_base and reading _text raised #PF %v, writing kernel data #PF %v: not even present; reading %#x #GP(0); each process was handed the same error codes",
			amd64.PFError(amd64.PF_U), amd64.PFError(amd64.PF_W|amd64.PF_U), p.Live.Mode().UserEnd()), nil
	}
	own := fmt.Sprintf("reading its own stack page through page_offset_base and reading _text raised #PF %v", amd64.PFError(amd64.PF_P|amd64.PF_U))
	if p.Ref.Config.XPFO {
		own = fmt.Sprintf("reading its own stack page through page_offset_base raised #PF %v (XPFO: not in the direct map), reading _text #PF %v",
			amd64.PFError(amd64.PF_U), amd64.PFError(amd64.PF_P|amd64.PF_U))
	}
	return fmt.Sprintf("from ring 3, in each process, %s, writing kernel data #PF %v (present, supervisor-only), reading %#x #GP(0); each process was handed the same error codes",
		own, amd64.PFError(amd64.PF_P|amd64.PF_W|amd64.PF_U), p.Live.Mode().UserEnd()), nil
}

// proveSyscall checks that a system call runs the kernel in the process's
// address space. Expected: CR3 as the entry stub found it against the
// process's root; MSR_LSTAR and the stub's frame from the linker, found
// in the live tables; the user buffer's bytes in its frame through
// page_offset_base.
func (u *User) proveSyscall(p *Proof) (string, error) {
	lstar := p.CPU.ReadMSR(amd64.MSR_LSTAR)
	stubPA, _, _ := p.Act.Ring3.Stubs()
	pti := p.Ref.Config.PTI
	if pti {
		t, _ := p.Act.Ring3.PTIText()
		stubPA = mm.PhysAddr(t.LSTAR)
	}
	if _, err := p.expectLeaf("the SYSCALL entry stub", mm.VirtAddr(lstar), stubPA, mm.PageKernelExec); err != nil {
		return "", err
	}
	calls, copied := 0, 0
	var bufVA mm.VirtAddr
	for _, pr := range u.Procs {
		for _, sc := range pr.Syscalls {
			want := pr.AS.Root()
			if pti {
				want = want.Add(page) // the user copy; checkPTI holds the rest
			}
			if mm.PhysAddr(sc.EntryCR3&amd64.CR3_ADDR_MASK) != want {
				return "", fmt.Errorf("process %d's system call %d entered with CR3 %#x, not its own root %v", pr.PID, sc.Nr, sc.EntryCR3, want)
			}
			if sc.EntryRIP != lstar {
				return "", fmt.Errorf("process %d's system call %d entered at %#x, LSTAR is %#x", pr.PID, sc.Nr, sc.EntryRIP, lstar)
			}
			calls++
		}
		if len(pr.Copies) == 0 {
			return "", fmt.Errorf("process %d's write copied nothing (%s)", pr.PID, pr.State())
		}
		view := mm.Open(p.Live.Mode(), pr.AS.Root(), p.Act.Mem)
		for _, c := range pr.Copies {
			for off := uint64(0); off < uint64(len(c.Data)); {
				va := c.VA.Add(off)
				t, err := view.Translate(va)
				if err != nil {
					return "", fmt.Errorf("process %d's buffer at %v: %v", pr.PID, va, err)
				}
				n := min(uint64(len(c.Data))-off, page-uint64(va)%page)
				var frame []byte
				if err := u.kmap(p.Act, t.PA.AlignDown(page), func() (err error) {
					frame, err = readBytes(p.CPU, "a user buffer through the direct map", p.DirectVA(t.PA), int(n))
					return err
				}); err != nil {
					return "", err
				}
				if !bytes.Equal(frame, c.Data[off:off+n]) {
					return "", fmt.Errorf("process %d: write read %q at %v, its frame %v holds %q", pr.PID, c.Data[off:off+n], va, t.PA, frame)
				}
				off += n
			}
			copied += len(c.Data)
			bufVA = c.VA
		}
		if r, ok := pr.report(reportEFault); !ok || int64(r.A) != -errEFAULT {
			return "", fmt.Errorf("process %d: write of a kernel buffer returned %d, want -EFAULT (%s)", pr.PID, int64(r.A), pr.State())
		}
	}
	if pti {
		return fmt.Sprintf("%d system calls entered at LSTAR %#x (the PTI entry stub through the kernel text mapping) under each process's user copy, and the kernel then ran in the process's kernel copy, whose user half is the process's: write copied %d bytes at the user address %v, what the frames hold, and refused a kernel buffer with -EFAULT",
			calls, lstar, copied, bufVA), nil
	}
	return fmt.Sprintf("%d system calls entered at LSTAR %#x (the entry stub through the kernel text mapping) with CR3 unchanged, each process's own root: no PTI, the kernel runs in the process's address space; write copied %d bytes at the user address %v, what the frames hold, and refused a kernel buffer with -EFAULT",
		calls, lstar, copied, bufVA), nil
}

// The checks of CR4's protections, made when the config has them.
const (
	checkSMEP    = "smep"
	checkSMAP    = "smap"
	checkRet2dir = "ret2dir"
	checkXPFO    = "xpfo"
)

// The injections they fail by.
const (
	injectNoSMEP      = "no-smep"
	injectNoSMAP      = "no-smap"
	injectRet2dirExec = "ret2dir-directmap-exec"
	injectXPFOMapped  = "xpfo-frame-mapped"
)

// proveProtections runs the SMEP, SMAP and ret2dir checks on process 1,
// under its CR3 where an access must be a ring-0 access to its user half.
func (u *User) proveProtections(p *Proof, kernelRoot mm.PhysAddr) {
	cfg := p.Ref.Config
	for _, c := range []struct {
		name  string
		on    bool
		prove func(*Proof, *Process, mm.PhysAddr) (string, error)
	}{
		{checkSMEP, cfg.SMEP, u.proveSMEP},
		{checkSMAP, cfg.SMAP, u.proveSMAP},
		{checkRet2dir, cfg.SMAP && !cfg.XPFO, u.proveRet2dir},
		{checkXPFO, cfg.XPFO, u.proveXPFO},
	} {
		if !c.on {
			continue
		}
		msg, err := c.prove(p, u.Procs[0], kernelRoot)
		if err != nil {
			fail(p.R, c.name, "%v", err)
			continue
		}
		pass(p.R, c.name, "%s", msg)
	}
}

// clearCR4 clears bit in CR4 when the injection asks, returning what
// restores it.
func (u *User) clearCR4(p *Proof, injection string, bit uint64) func() {
	if u.inject != injection {
		return func() {}
	}
	cr4 := p.CPU.CR4()
	p.CPU.SetCR4(cr4 &^ bit)
	return func() { p.CPU.SetCR4(cr4) }
}

// underCR3 runs fn with CR3 at root, then the kernel's again.
func underCR3(p *Proof, root, kernelRoot mm.PhysAddr, fn func()) {
	p.CPU.LoadCR3(root)
	defer p.CPU.LoadCR3(kernelRoot)
	fn()
}

// proveSMEP: the kernel calls the process's smep_probe at its user
// address. Expected: the SDM's error code for a supervisor fetch from a
// user page with CR4.SMEP (4.6.1, 4.7: P=1 I=1), and the page a user
// executable one in the process's tables.
func (u *User) proveSMEP(p *Proof, pr *Process, kernelRoot mm.PhysAddr) (string, error) {
	va := u.Syms[symSMEP]
	t, err := mm.Open(p.Live.Mode(), pr.AS.Root(), p.Act.Mem).Translate(va)
	if err != nil || t.Attrs&(mm.AttrUser|mm.AttrNX) != mm.AttrUser {
		return "", fmt.Errorf("smep_probe at %v is not a user executable page in process %d (%v, %v)", va, pr.PID, t.Attrs, err)
	}
	defer u.clearCR4(p, injectNoSMEP, amd64.CR4_SMEP)()
	var ret uint64
	var f amd64.Fault
	underCR3(p, pr.AS.Root(), kernelRoot, func() { ret, f = p.CPU.Call(va) })
	want := amd64.PFError(amd64.PF_P | amd64.PF_I)
	switch {
	case !f.Faulted:
		return "", fmt.Errorf("the kernel ran process %d's smep_probe at %v in ring 0 (it returned %#x, probe.c's %#x)", pr.PID, va, ret, smepProbeRet)
	case f.Vector != amd64.VECTOR_PF || f.Code != want || f.CR2 != uint64(va):
		return "", fmt.Errorf("calling smep_probe at %v: %v, want #PF %v there", va, f, want)
	}
	return fmt.Sprintf("the kernel's call of process %d's smep_probe at %v (USR ro x, under its CR3) faulted #PF %v on the first fetch: CR4.SMEP keeps ring 0 from running a user page",
		pr.PID, va, want), nil
}

// proveSMAP: the kernel reads the process's secret at its user address,
// first plainly, then as copy_from_user does. Expected: the SDM's error
// code for a supervisor read of a user page with CR4.SMAP and RFLAGS.AC
// clear (4.6.1: P=1 only), and the frame behind the address in the
// process's tables, read through page_offset_base.
func (u *User) proveSMAP(p *Proof, pr *Process, kernelRoot mm.PhysAddr) (string, error) {
	va := u.Syms[symSecret]
	defer u.clearCR4(p, injectNoSMAP, amd64.CR4_SMAP)()
	var plain, copied [8]byte
	var f, cf amd64.Fault
	underCR3(p, pr.AS.Root(), kernelRoot, func() {
		_, f = p.CPU.Read(va, plain[:])
		_, cf = p.Act.Ring3.CopyFromUser(va, copied[:])
	})
	want := amd64.PFError(amd64.PF_P)
	switch {
	case !f.Faulted:
		return "", fmt.Errorf("the kernel read process %d's %v without STAC: %#x", pr.PID, va, binary.LittleEndian.Uint64(plain[:]))
	case f.Vector != amd64.VECTOR_PF || f.Code != want || f.CR2 != uint64(va):
		return "", fmt.Errorf("reading %v without STAC: %v, want #PF %v there", va, f, want)
	case cf.Faulted:
		return "", fmt.Errorf("copy_from_user of %v (STAC, CLAC) faulted: %v", va, cf)
	}
	t, err := mm.Open(p.Live.Mode(), pr.AS.Root(), p.Act.Mem).Translate(va)
	if err != nil {
		return "", fmt.Errorf("process %d's %v: %v", pr.PID, va, err)
	}
	var frame uint64
	if err := u.kmap(p.Act, t.PA.AlignDown(page), func() (err error) {
		frame, err = read64(p.CPU, "a user frame through the direct map", p.DirectVA(t.PA))
		return err
	}); err != nil {
		return "", err
	}
	if got := binary.LittleEndian.Uint64(copied[:]); got != frame {
		return "", fmt.Errorf("copy_from_user of %v read %#x, its frame %v holds %#x", va, got, t.PA, frame)
	}
	return fmt.Sprintf("the kernel's plain read of process %d's secret at %v faulted #PF %v; copy_from_user (STAC, the read, CLAC) read it, %#x, what its frame holds",
		pr.PID, va, want, frame), nil
}

// proveRet2dir: the attack of Kemerlis et al. (USENIX Security 2014), for
// which the direct map is "physmap": the process planted code in its own
// page; the kernel cannot touch it at the user address (SMAP), but its
// frame is in the direct map. Expected: probe.c's payload bytes, the
// SDM's error codes, the process's tables for the frame.
func (u *User) proveRet2dir(p *Proof, pr *Process, kernelRoot mm.PhysAddr) (string, error) {
	va := u.Syms[symPayload]
	t, err := mm.Open(p.Live.Mode(), pr.AS.Root(), p.Act.Mem).Translate(va)
	if err != nil {
		return "", fmt.Errorf("the payload at %v: %v", va, err)
	}
	alias := p.DirectVA(t.PA)
	defer u.clearCR4(p, injectNoSMAP, amd64.CR4_SMAP)()
	var f amd64.Fault
	var b [8]byte
	underCR3(p, pr.AS.Root(), kernelRoot, func() { _, f = p.CPU.Read(va, b[:]) })
	if !f.Faulted {
		return "", fmt.Errorf("the kernel read the payload at its user address %v without STAC", va)
	}
	got, err := readBytes(p.CPU, "the payload through the direct map", alias, len(payloadCode))
	if err != nil {
		return "", err
	}
	if !bytes.Equal(got, payloadCode) {
		return "", fmt.Errorf("page_offset_base+pa %v holds % x, want the payload % x", alias, got, payloadCode)
	}
	if u.inject == injectRet2dirExec {
		lt, err := p.Live.Translate(alias)
		if err != nil {
			return "", err
		}
		leaf := lt.Path()[len(lt.Path())-1]
		addr := leaf.Table.Add(uint64(leaf.Index) * 8)
		p.Act.Mem.Write64(addr, uint64(leaf.Entry&^mm.NX))
		p.CPU.FlushAll()
		defer func() {
			p.Act.Mem.Write64(addr, uint64(leaf.Entry))
			p.CPU.FlushAll()
		}()
	}
	ret, cf := p.CPU.Call(alias)
	want := amd64.PFError(amd64.PF_P | amd64.PF_I)
	switch {
	case !cf.Faulted:
		return "", fmt.Errorf("the kernel ran the payload through the direct map at %v: it returned %#x", alias, ret)
	case cf.Code != want:
		return "", fmt.Errorf("calling the payload at %v: %v, want #PF %v", alias, cf, want)
	}
	return fmt.Sprintf("process %d wrote its payload (mov eax, %#x; ret) at %v; the kernel cannot read it there (SMAP, #PF %v) but reads it at page_offset_base+pa %v; calling it there faults #PF %v, the direct map being NX: ret2dir's data half works, its code half needs an executable direct map",
		pr.PID, payloadRet, va, f.Code, alias, want), nil
}

// proveXPFO: with physmap.xpfo=on, every frame a process owns is out of
// the direct map, so ret2dir's read of the payload faults; freeing a
// process brings its frames back. Expected: the live tables (no leaf at
// page_offset_base+pa while owned, a 4K RW NX global one after), the
// CPU's not-present fault, the frames the processes were given.
func (u *User) proveXPFO(p *Proof, pr *Process, kernelRoot mm.PhysAddr) (string, error) {
	s := p.Act
	t, err := mm.Open(p.Live.Mode(), pr.AS.Root(), s.Mem).Translate(u.Syms[symPayload])
	if err != nil {
		return "", fmt.Errorf("the payload at %v: %v", u.Syms[symPayload], err)
	}
	payloadPA := t.PA.AlignDown(page)
	if u.inject == injectXPFOMapped {
		if err := xpfoGive(s, payloadPA); err != nil {
			return "", err
		}
		defer s.AS.Unmap(s.DirectVA(payloadPA), page)
	}
	frames := 0
	for _, q := range u.Procs {
		for _, pg := range q.Pages {
			if lt, err := p.Live.Translate(p.DirectVA(pg.PA)); !errors.Is(err, mm.ErrNotMapped) {
				return "", fmt.Errorf("process %d's %s frame %v is in the direct map at %v (-> %v) while the process owns it", q.PID, pg.What, pg.PA, p.DirectVA(pg.PA), lt.PA)
			}
			frames++
		}
	}
	var b [8]byte
	_, f := p.CPU.Read(p.DirectVA(t.PA), b[:])
	if !f.Faulted || f.Code != 0 {
		return "", fmt.Errorf("ret2dir's read of the payload at page_offset_base+pa %v: %v, want #PF not-present", p.DirectVA(t.PA), f)
	}
	q := u.Procs[len(u.Procs)-1]
	var back []mm.PhysAddr
	for _, pg := range q.Pages {
		back = append(back, pg.PA)
	}
	if err := q.release(s); err != nil {
		return "", fmt.Errorf("freeing process %d: %v", q.PID, err)
	}
	for _, pa := range back {
		if _, err := p.expectLeaf("a freed frame's direct-map alias", p.DirectVA(pa), pa, mm.PageKernel); err != nil {
			return "", err
		}
		if _, err := read64(p.CPU, "a freed frame through the direct map", p.DirectVA(pa)); err != nil {
			return "", err
		}
	}
	c := u.XPFO
	split := fmt.Sprintf("%d large pages split, a table page each", c.Tables)
	if c.Tables == 1 {
		split = "1 large page split, a table page for it"
	}
	return fmt.Sprintf("the %d frames of %d processes left the direct map when given (%s, %d TLB invalidations); ret2dir's read of the payload at page_offset_base+pa %v faults #PF not-present; process %d freed, its %d frames are back there, 4K RW NX GLB",
		frames, len(u.Procs), split, c.Flushes, p.DirectVA(t.PA), q.PID, len(back)), nil
}
