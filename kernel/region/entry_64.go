package region

import (
	"fmt"
	"strings"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/mm"
)

// The system calls processes make: Linux's numbers
// (arch/x86/entry/syscalls/syscall_64.tbl) and physmap's two of its own,
// above Linux 6.1's last (450); probe.c explains them.
const (
	sysWrite  = 1
	sysGetpid = 39
	sysExit   = 60
	sysReport = 1000
	sysTrap   = 1001
)

// Errors returned to processes, as negative values in RAX
// (include/uapi/asm-generic/errno-base.h, errno.h).
const (
	errEBADF  = 9
	errEFAULT = 14
	errENOSYS = 38
)

// The kinds of physmap_report (probe.c's REPORT_*).
const (
	reportHello   = 1
	reportFault   = 2
	reportNoFault = 3
	reportSecret  = 4
	reportEFault  = 5
)

const (
	// maxSteps bounds the system calls and exceptions of one process:
	// a process that makes more is ended.
	maxSteps = 256
	// maxFaults bounds the exceptions handed to a process's handler.
	maxFaults = 8
	// maxWrite is the most one write copies (a page).
	maxWrite = 4096
)

// accessOK is Linux's access_ok: [va, va+n) lies below TASK_SIZE_MAX
// (taskSizeMax, alternative.go).
func accessOK(m mm.Mode, va, n uint64) bool {
	return va <= taskSizeMax(m) && n <= taskSizeMax(m)-va
}

// run runs the processes round robin, each until its next system call or
// exception, until all have ended; CR3 is the kernel's again afterwards.
func (u *User) run(s *Space, kernelRoot mm.PhysAddr) error {
	defer s.CPU.LoadCR3(kernelRoot)
	if s.Config.PTI {
		_, top, err := ptiStack(s)
		if err != nil {
			return err
		}
		t, _ := s.Ring3.PTIText()
		u.tramp, u.exit = top, s.KernelVA(mm.PhysAddr(t.Exit))
		restore, err := u.ptiGates(s)
		if err != nil {
			return err
		}
		defer restore()
	}
	u.steps = 0
	for {
		alive := false
		for _, pr := range u.All() {
			if pr.Exited || pr.Killed != "" {
				continue
			}
			alive = true
			u.step(s, pr)
			u.steps++
			if pr.Exited || pr.Killed != "" {
				pr.EndStep = u.steps
			}
		}
		if !alive {
			return nil
		}
	}
}

// All is the processes of the last run: the probe's, then the spinner.
func (u *User) All() []*Process {
	if u.Spinner == nil {
		return u.Procs
	}
	return append(u.Procs[:len(u.Procs):len(u.Procs)], u.Spinner)
}

// step enters the process once and handles why it came back.
func (u *User) step(s *Space, pr *Process) {
	if len(pr.Syscalls)+len(pr.Traps) >= maxSteps {
		u.kill(s, pr, "more than %d system calls and exceptions", maxSteps)
		return
	}
	r := &pr.Regs
	// A process runs with interrupts on (start_thread_common's
	// X86_EFLAGS_IF), so the LAPIC timer can reach it in ring 3.
	r.RFLAGS = r.RFLAGS&amd64.UserFlags | amd64.RFLAGS_FIXED | amd64.RFLAGS_IF
	// SYSRET only to a user RIP (Linux's do_syscall_64 takes the IRET
	// path otherwise: SYSRET to a non-canonical RIP faults in ring 0).
	sysret := pr.sysret && r.RIP < taskSizeMax(pr.AS.Mode())
	if u.timer != nil {
		if err := u.timer.arm(s.CPU); err != nil {
			u.kill(s, pr, "arming the LAPIC timer: %v", err)
			return
		}
	}
	start := s.Ring3.Nanotime()
	var t amd64.Trap
	if pr.UserAS != nil {
		t = s.Ring3.RunPTI(r, pr.AS.Root(), u.tramp, u.exit)
	} else {
		t = s.Ring3.Run(r, pr.AS.Root(), sysret)
	}
	t.KernelCR3 = uint64(s.CPU.CR3())
	stay := s.Ring3.Nanotime() - start
	pr.Ring3NS += stay
	if u.timer != nil && !u.timerStop(s, pr, t, stay) {
		return
	}
	pr.LongestNS = max(pr.LongestNS, stay)
	switch t.Cause {
	case amd64.CauseSyscall:
		u.syscall(s, pr, t)
	case amd64.CauseException:
		u.exception(s, pr, t)
	default:
		u.kill(s, pr, "left ring 3 for no known cause (%d)", t.Cause)
	}
}

// timerStop stops the LAPIC timer after pr's stay in ring 3; it ends pr,
// and reports false, if the timer's interrupt ended the stay or fell due
// on the way out.
func (u *User) timerStop(s *Space, pr *Process, t amd64.Trap, stay int64) bool {
	left, pending, err := u.timer.stop(s.CPU)
	if err != nil {
		u.kill(s, pr, "stopping the LAPIC timer: %v", err)
		return false
	}
	switch {
	case t.Cause == amd64.CauseException && t.Vector == amd64.VECTOR_LOCAL_TIMER:
		pr.Timer = &TimerEnd{Trap: t, RIP: pr.Regs.RIP, RFLAGS: pr.Regs.RFLAGS, Left: left, NS: stay}
		if err := u.timer.eoi(s.CPU); err != nil {
			u.kill(s, pr, "the LAPIC's EOI: %v", err)
			return false
		}
		u.kill(s, pr, "the LAPIC timer (vector %#x) interrupted it at RIP %#x after %d ms in ring 3 without a system call: its slice is up",
			amd64.VECTOR_LOCAL_TIMER, pr.Regs.RIP, stay/1_000_000)
		return false
	case pending:
		// Due after the process left ring 3: taken here, then ended.
		s.Ring3.AcceptInterrupt()
		if err := u.timer.eoi(s.CPU); err != nil {
			u.kill(s, pr, "the LAPIC's EOI: %v", err)
			return false
		}
		u.kill(s, pr, "its %d ms slice in ring 3 ran out as it left (%v)", timeSlice/1_000_000, t)
		return false
	}
	return true
}

// syscall handles one system call: the number in RAX, the arguments in
// RDI, RSI, RDX, R10, R8, the result back in RAX (the x86-64 system call
// ABI, entry_64.S).
func (u *User) syscall(s *Space, pr *Process, t amd64.Trap) {
	r := &pr.Regs
	rec := SyscallRecord{Nr: r.AX, EntryCR3: t.EntryCR3, EntryRIP: t.EntryRIP, KernelCR3: t.KernelCR3}
	var ret int64
	switch r.AX {
	case sysWrite:
		ret = u.write(s, pr, r.DI, r.SI, r.DX)
	case sysGetpid:
		ret = int64(pr.PID)
	case sysExit:
		pr.Exited, pr.ExitCode = true, int64(r.DI)
	case sysReport:
		pr.Reports = append(pr.Reports, Report{Kind: r.DI, A: r.SI, B: r.DX, C: r.R10, D: r.R8})
	case sysTrap:
		if !accessOK(pr.AS.Mode(), r.DI, 1) {
			ret = -errEFAULT
			u.say(s, "user[%d]: trap(%#x): -EFAULT, not a user address", pr.PID, r.DI)
			break
		}
		pr.Handler = mm.VirtAddr(r.DI)
	default:
		ret = -errENOSYS
		u.say(s, "user[%d]: system call %d: -ENOSYS", pr.PID, r.AX)
	}
	rec.Ret = ret
	pr.Syscalls = append(pr.Syscalls, rec)
	r.AX = uint64(ret)
	pr.sysret = true
}

// write is write(2) to the console: fd 1 or 2, the buffer copied from the
// process at its user address, as copy_from_user does (access_ok first;
// a fault on the way is -EFAULT).
func (u *User) write(s *Space, pr *Process, fd, buf, n uint64) int64 {
	if fd != 1 && fd != 2 {
		return -errEBADF
	}
	n = min(n, maxWrite)
	if !accessOK(pr.AS.Mode(), buf, n) {
		u.say(s, "user[%d]: write(%d, %#x, %d): -EFAULT: the buffer is not in the user half (access_ok)", pr.PID, fd, buf, n)
		return -errEFAULT
	}
	data := make([]byte, n)
	if got, f := s.Ring3.CopyFromUser(mm.VirtAddr(buf), data); f.Faulted {
		u.say(s, "user[%d]: write(%d, %#x, %d): -EFAULT: copy_from_user faulted at %#x (%v)", pr.PID, fd, buf, n, buf+uint64(got), f)
		return -errEFAULT
	}
	pr.Copies = append(pr.Copies, Copy{VA: mm.VirtAddr(buf), Data: data})
	pr.Output = append(pr.Output, data...)
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		u.say(s, "user[%d]: %s", pr.PID, printable(line))
	}
	return int64(n)
}

// printable replaces what a terminal would act on.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '.'
		}
		return r
	}, s)
}

// exception hands an exception to the process's handler, as a signal
// would be delivered: RIP at the handler, the vector, error code and CR2
// in RDI, RSI and RDX, a fresh stack below the probe block. Without a
// handler, or after maxFaults, the process is ended.
func (u *User) exception(s *Space, pr *Process, t amd64.Trap) {
	pr.Traps = append(pr.Traps, t)
	if pr.Handler == 0 || len(pr.Traps) > maxFaults {
		u.kill(s, pr, "%v (RIP %#x)", t, pr.Regs.RIP)
		return
	}
	u.say(s, "user[%d]: %v (RIP %#x), handed to its handler", pr.PID, t, pr.Regs.RIP)
	r := &pr.Regs
	r.RIP, r.DI, r.SI, r.DX = uint64(pr.Handler), uint64(t.Vector), t.Code, t.CR2
	r.RSP = uint64(pr.ProbeVA) - 8
	pr.sysret = false
}

// kill ends a process, saying why; the kernel and the other processes go
// on.
func (u *User) kill(s *Space, pr *Process, format string, args ...any) {
	pr.Killed = fmt.Sprintf(format, args...)
	u.say(s, "user[%d]: killed: %s", pr.PID, pr.Killed)
}

// say prints a line of the processes' story on the console.
func (u *User) say(s *Space, format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	u.Log = append(u.Log, line)
	if s.Console != nil {
		fmt.Fprintln(s.Console, line)
	}
}
