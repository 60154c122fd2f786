package shell

import (
	"fmt"
	"strconv"

	"github.com/physmap/physmap/mm"
)

// Process is one process as the shell shows it: the last run's (the
// boot's user region, or the last selftest's).
type Process struct {
	PID   int
	State string // "exited 0", "killed: ..."
	// Root is its top-level table; the kernel half of that table is the
	// kernel's copy.
	Root                 mm.PhysAddr
	Syscalls, Exceptions int
	// Pages are its own user pages, what each holds ("text", "data",
	// "stack", ...).
	Pages []ProcessPage
	// SharedTop counts the kernel-half top-level entries equal to the
	// kernel's, of KernelTop present in the kernel's.
	SharedTop, KernelTop int
	// Tables is its address space, read-only; nil once it is freed.
	Tables *mm.AddressSpace
	// UserCopy is PTI's user copy, read-only; nil without PTI.
	UserCopy *mm.AddressSpace
}

// maxRuns bounds the runs mm prints of a user copy's kernel half.
const maxRuns = 8

// ProcessPage is one user page of a process.
type ProcessPage struct {
	VA   mm.VirtAddr
	What string
}

// ps lists the processes.
func (s *Shell) ps([]string) error {
	procs := s.m.Processes()
	if len(procs) == 0 {
		fmt.Fprintln(s.out, "no processes have run")
		return nil
	}
	fmt.Fprintf(s.out, "%4s  %-18s  %8s  %10s  %5s  %s\n", "PID", "top table", "syscalls", "exceptions", "pages", "state")
	for _, p := range procs {
		fmt.Fprintf(s.out, "%4d  0x%016x  %8d  %10d  %5d  %s\n", p.PID, uint64(p.Root), p.Syscalls, p.Exceptions, len(p.Pages), p.State)
	}
	return nil
}

// mmCmd prints one process's address space: its user half leaf by leaf
// (the runtime's window in one line), then the kernel half it shares.
func (s *Shell) mmCmd(args []string) error {
	pid, err := strconv.Atoi(args[0])
	if err != nil {
		return errorf("mm", args[0], ErrBadNumber, "%q is not a process ID", args[0])
	}
	pr, err := s.process("mm", args[0], pid)
	if err != nil {
		return err
	}
	mode := pr.Tables.Mode()
	what := map[mm.VirtAddr]string{}
	for _, pg := range pr.Pages {
		what[pg.VA] = pg.What
	}
	fmt.Fprintf(s.out, "process %d (%s): %v, top table %v\n", pr.PID, pr.State, mode, pr.Root)
	fmt.Fprintf(s.out, "  user half [0x0, %v), its own:\n", mode.UserEnd())
	var window struct {
		n        int
		from, to mm.VirtAddr
	}
	flush := func() {
		if window.n > 0 {
			fmt.Fprintf(s.out, "    [%v, %v)  %d leaves, supervisor-only: the runtime's window, where the kernel runs\n", window.from, window.to, window.n)
			window.n = 0
		}
	}
	for lf := range pr.Tables.Leaves(mm.VirtRange{Start: 0, End: mode.UserEnd()}) {
		w, ok := what[lf.VA]
		if !ok && lf.Attrs&mm.AttrUser == 0 {
			if window.n == 0 {
				window.from = lf.VA
			}
			window.n++
			window.to = lf.VA.Add(uint64(lf.Size))
			continue
		}
		flush()
		fmt.Fprintf(s.out, "    0x%016x  %-4v -> %v  %-14v  %s\n", uint64(lf.VA), lf.Size, lf.PA, lf.Attrs, w)
	}
	flush()
	fmt.Fprintf(s.out, "  kernel half [%v, 2^64): top-level entries 256-511, the kernel's own:\n", mode.KernelStart())
	fmt.Fprintf(s.out, "    %d of its %d present entries copied as pgd_alloc copies them, every table below shared\n", pr.SharedTop, pr.KernelTop)
	if pr.UserCopy != nil {
		s.userCopy(pr)
	}
	return nil
}

// userCopy prints PTI's user copy: its user half in one line, its kernel
// half as runs of leaves (a gap of more than 2 MiB starts a new run).
func (s *Shell) userCopy(pr *Process) {
	uc := pr.UserCopy
	mode := uc.Mode()
	n := 0
	for range uc.Leaves(mm.VirtRange{Start: 0, End: mode.UserEnd()}) {
		n++
	}
	fmt.Fprintf(s.out, "  PTI's user copy, top table %v (CR3 bit 12 set), what ring 3 runs under:\n", uc.Root())
	fmt.Fprintf(s.out, "    user half: %d leaves, the process's pages (no runtime window)\n", n)
	type run struct {
		from, to mm.VirtAddr
		n        int
	}
	var runs []run
	for lf := range uc.AllLeaves() {
		if lf.VA < mode.KernelStart() {
			continue
		}
		end := lf.VA.Add(uint64(lf.Size))
		if k := len(runs) - 1; k >= 0 && lf.VA-runs[k].to <= 2<<20 {
			runs[k].to, runs[k].n = end, runs[k].n+1
			continue
		}
		runs = append(runs, run{lf.VA, end, 1})
	}
	total := 0
	for _, r := range runs {
		total += r.n
	}
	fmt.Fprintf(s.out, "    kernel half: %d leaves in %d runs, all the kernel half it has:\n", total, len(runs))
	for i, r := range runs {
		if i == maxRuns {
			fmt.Fprintf(s.out, "    ... %d more runs\n", len(runs)-maxRuns)
			break
		}
		fmt.Fprintf(s.out, "    [%v, %v)  %d %s\n", r.from, r.to, r.n, plural(r.n, "leaf", "leaves"))
	}
}

// space is an address space the shell reads: the kernel's (pid 0), or
// process pid's, or with user its PTI user copy.
type space struct {
	pid  int
	user bool
}

func (sp space) String() string {
	switch {
	case sp.pid == 0:
		return "the kernel's tables"
	case sp.user:
		return fmt.Sprintf("process %d's PTI user copy", sp.pid)
	}
	return fmt.Sprintf("process %d's tables", sp.pid)
}

// process returns process pid, or a shell error for cmd and arg.
func (s *Shell) process(cmd, arg string, pid int) (*Process, error) {
	procs := s.m.Processes()
	for i := range procs {
		if procs[i].PID != pid {
			continue
		}
		if procs[i].Tables == nil {
			return nil, errorf(cmd, arg, ErrNoProcess, "process %d is freed: its tables and frames are gone", pid)
		}
		return &procs[i], nil
	}
	return nil, errorf(cmd, arg, ErrNoProcess, "no process %d (ps lists them)", pid)
}

// usedProcess is the process use names, which may have gone since (a
// selftest makes the processes afresh, XPFO's check frees one).
func (s *Shell) usedProcess(cmd string) (*Process, error) {
	pr, err := s.process(cmd, "", s.use.pid)
	if err != nil {
		err.(*Error).Msg += "; use kernel goes back to the kernel's tables"
	}
	return pr, err
}

// useCmd chooses the tables the other commands read.
func (s *Shell) useCmd(args []string) error {
	if args[0] == "kernel" {
		if len(args) > 1 {
			return errorf("use", args[1], ErrUsage, "use kernel takes nothing after it")
		}
		s.use = space{}
		fmt.Fprintf(s.out, "using %s (CR3)\n", s.use)
		return nil
	}
	pid, err := strconv.Atoi(args[0])
	if err != nil || pid <= 0 {
		return errorf("use", args[0], ErrBadNumber, "%q is neither kernel nor a process ID", args[0])
	}
	pr, err := s.process("use", args[0], pid)
	if err != nil {
		return err
	}
	sp := space{pid: pid}
	if len(args) > 1 {
		if args[1] != "user" {
			return errorf("use", args[1], ErrUsage, "%q: after the PID only user (PTI's user copy) may follow", args[1])
		}
		if pr.UserCopy == nil {
			return errorf("use", args[1], ErrNoProcess, "process %d has no user copy: it ran without PTI (boot with pti=on)", pid)
		}
		sp.user = true
	}
	s.use = sp
	as, _ := s.tables("use")
	fmt.Fprintf(s.out, "using %s (top table %v): walk, aliases, ptdump and wx read them", s.use, as.Root())
	if sp.user {
		fmt.Fprintf(s.out, "; x and dis cannot, since the kernel's own code is not mapped there\n")
	} else {
		fmt.Fprintf(s.out, ", x and dis read through the CPU with CR3 at them\n")
	}
	return nil
}
