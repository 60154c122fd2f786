package region

import (
	"fmt"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/mm"
)

// The LAPIC timer bounds the time a process spends in ring 3. Linux 6.1
// programs it in arch/x86/kernel/apic/apic.c: setup_local_APIC enables
// the LAPIC with SPURIOUS_APIC_VECTOR in the spurious-vector register;
// on a CPU without TSC-deadline mode (TCG's) __setup_APIC_LVTT puts
// LOCAL_TIMER_VECTOR in the LVT timer entry, one-shot, and divides the
// clock by 16 (APIC_DIVISOR), lapic_next_event writes the count of the
// next event into the initial-count register, and calibrate_APIC_clock
// measures the rate against the boot clock's ticks (here: the runtime's
// clock). A process
// runs with IF set (start_thread_common's X86_EFLAGS_IF), so the timer's
// interrupt reaches it in ring 3.
//
// A departure, named: Linux's timer interrupt runs the scheduler, which
// may preempt the process and resume it later; physmap schedules only
// round robin at system calls and exceptions, so it ends a process that
// stays in ring 3 for a whole timeSlice without entering the kernel. (A
// process that enters it too often is ended by maxSteps.)

// The LAPIC timer's registers and bits (SDM Vol. 3A 11.5.4, Figure 11-8;
// the names of Linux's apicdef.h beside them).
const (
	apicRegEOI       = 0xb0  // APIC_EOI
	apicRegSVR       = 0xf0  // APIC_SPIV
	apicRegIRR       = 0x200 // APIC_IRR: vector v is bit v%32 at 0x200 + 0x10*(v/32)
	apicRegLVTTimer  = 0x320 // APIC_LVTT
	apicRegTimerInit = 0x380 // APIC_TMICT
	apicRegTimerCur  = 0x390 // APIC_TMCCT
	apicRegTimerDiv  = 0x3e0 // APIC_TDCR

	apicSVREnabled = 1 << 8  // APIC_SPIV_APIC_ENABLED
	apicVectorMask = 0xff    // APIC_VECTOR_MASK
	apicLVTMasked  = 1 << 16 // APIC_LVT_MASKED
	apicTimerDiv16 = 0x3     // APIC_TDR_DIV_16
)

const (
	// timeSlice is how long, in nanoseconds, a process may stay in ring 3
	// without a system call or an exception: the probe's stays last
	// microseconds, so a host that stalls the guest for a few
	// milliseconds does not end them.
	timeSlice = 20_000_000
	// calibrationNS is how long the timer's rate is measured against the
	// runtime's clock.
	calibrationNS = 2_000_000
	// spinLoops is how many times the spinner goes round its loop: 2^28,
	// about a second under this project's TCG (2^30 took 4 s) and some
	// 70 ms at one iteration a cycle on a 4 GHz core, past timeSlice
	// either way; finite, so that a timer that never fires fails the
	// check instead of hanging the boot.
	spinLoops = 1 << 28
	// checkTimer is the check; injectTimerMasked masks the LVT timer
	// entry.
	checkTimer        = "user.timer"
	injectTimerMasked = "timer-masked"
	// reportSpun is probe.c's REPORT_SPUN: the spin loop ran to its end.
	reportSpun = 6
)

// ring3Timer is the LAPIC timer as the user region drives it.
type ring3Timer struct {
	va    mm.VirtAddr // the LAPIC's registers, at FIX_APIC_BASE
	perMS uint64      // timer ticks per millisecond, measured
	slice uint64      // timeSlice in ticks
}

// setupTimer enables the LAPIC, measures its timer against the runtime's
// clock and leaves it one-shot at LOCAL_TIMER_VECTOR, stopped.
func setupTimer(s *Space) (*ring3Timer, error) {
	t := &ring3Timer{va: fixToVirt(s.region(mm.KindVsyscall).Start, fixAPICBase)}
	svr, err := t.read(s.CPU, apicRegSVR, "the spurious-vector register")
	if err != nil {
		return nil, err
	}
	for _, w := range []struct {
		reg  uint32
		v    uint32
		what string
	}{
		{apicRegSVR, svr&^apicVectorMask | apicSVREnabled | amd64.VECTOR_SPURIOUS, "the spurious-vector register"},
		{apicRegTimerDiv, apicTimerDiv16, "the divide-configuration register"},
		{apicRegLVTTimer, apicLVTMasked | amd64.VECTOR_LOCAL_TIMER, "the LVT timer entry"},
		{apicRegTimerInit, ^uint32(0), "the initial-count register"},
	} {
		if err := t.write(s.CPU, w.reg, w.v, w.what); err != nil {
			return nil, err
		}
	}
	t0 := s.Ring3.Nanotime()
	t1 := t0
	for t1-t0 < calibrationNS {
		t1 = s.Ring3.Nanotime()
	}
	cur, err := t.read(s.CPU, apicRegTimerCur, "the current-count register")
	if err != nil {
		return nil, err
	}
	if err := t.write(s.CPU, apicRegTimerInit, 0, "the initial-count register"); err != nil {
		return nil, err
	}
	t.perMS = uint64(^uint32(0)-cur) * 1_000_000 / uint64(t1-t0)
	if t.perMS == 0 {
		return nil, fmt.Errorf("the LAPIC timer did not count in %d ns (current count %#x)", t1-t0, cur)
	}
	if err := t.write(s.CPU, apicRegLVTTimer, amd64.VECTOR_LOCAL_TIMER, "the LVT timer entry"); err != nil {
		return nil, err
	}
	t.slice = min(timeSlice/1_000_000*t.perMS, uint64(^uint32(0)))
	return t, nil
}

func (t *ring3Timer) read(c CPU, reg uint32, what string) (uint32, error) {
	return read32(c, "the LAPIC's "+what, t.va.Add(uint64(reg)))
}

func (t *ring3Timer) write(c CPU, reg, v uint32, what string) error {
	return write32(c, "the LAPIC's "+what, t.va.Add(uint64(reg)), v)
}

// arm starts the count: the interrupt comes after a slice.
func (t *ring3Timer) arm(c CPU) error {
	return t.write(c, apicRegTimerInit, uint32(t.slice), "the initial-count register")
}

// stop reads what is left of the count and stops it, and says whether
// the timer's interrupt is pending (it fell due after the process had
// left ring 3, with IF clear).
func (t *ring3Timer) stop(c CPU) (left uint64, pending bool, err error) {
	cur, err := t.read(c, apicRegTimerCur, "the current-count register")
	if err != nil {
		return 0, false, err
	}
	if err := t.write(c, apicRegTimerInit, 0, "the initial-count register"); err != nil {
		return 0, false, err
	}
	v := uint32(amd64.VECTOR_LOCAL_TIMER)
	irr, err := t.read(c, apicRegIRR+0x10*(v/32), "interrupt request register")
	if err != nil {
		return 0, false, err
	}
	return uint64(cur), irr&(1<<(v%32)) != 0, nil
}

// eoi ends the interrupt in service.
func (t *ring3Timer) eoi(c CPU) error { return t.write(c, apicRegEOI, 0, "EOI register") }

// Inject masks the LVT timer entry (injectTimerMasked): the device's
// state, after setupTimer left it unmasked.
func (t *ring3Timer) inject(c CPU) error {
	lvt, err := t.read(c, apicRegLVTTimer, "the LVT timer entry")
	if err != nil {
		return err
	}
	return t.write(c, apicRegLVTTimer, lvt|apicLVTMasked, "the LVT timer entry")
}

// proveTimer checks that the LAPIC timer ended the spinner in ring 3 and
// that the probe's processes ran on. Expected: the CPU's interrupt frame
// (the vector, __USER_CS, IF set), the spinner's text pages as its ELF
// headers placed them, the LAPIC's own count (run down to 0), the
// runtime's clock for the stay the timer ended (at least half the slice:
// the two clocks are apart), and the order the processes ended in.
func (u *User) proveTimer(p *Proof) (string, error) {
	sp := u.Spinner
	if sp == nil {
		return "", fmt.Errorf("no spinner ran: the LAPIC timer could not be set up: %v", u.timerErr)
	}
	te := sp.Timer
	if te == nil {
		if r, ok := sp.report(reportSpun); ok {
			return "", fmt.Errorf("process %d spun %d times, to the end of its loop, in %d ms of ring-3 time: no timer interrupt ended it (%s)", sp.PID, r.A, sp.Ring3NS/1_000_000, sp.State())
		}
		return "", fmt.Errorf("process %d was not ended by the timer: %s", sp.PID, sp.State())
	}
	inText := false
	for _, pg := range sp.Pages {
		if pg.What == "text" && te.RIP >= uint64(pg.VA) && te.RIP < uint64(pg.VA.Add(page)) {
			inText = true
		}
	}
	switch {
	case te.Trap.Vector != amd64.VECTOR_LOCAL_TIMER:
		return "", fmt.Errorf("process %d ended at vector %#x, not LOCAL_TIMER_VECTOR %#x", sp.PID, te.Trap.Vector, amd64.VECTOR_LOCAL_TIMER)
	case te.Trap.CS != amd64.USER_CS:
		return "", fmt.Errorf("the timer's frame has CS %#x, want __USER_CS %#x: the interrupt did not come from ring 3", te.Trap.CS, amd64.USER_CS)
	case te.RFLAGS&amd64.RFLAGS_IF == 0:
		return "", fmt.Errorf("the timer's frame has RFLAGS %#x, IF clear", te.RFLAGS)
	case !inText:
		return "", fmt.Errorf("the timer's frame has RIP %#x, outside process %d's text", te.RIP, sp.PID)
	case te.Left != 0:
		return "", fmt.Errorf("the LAPIC's current count read %d after its interrupt, not 0", te.Left)
	case te.NS < timeSlice/2:
		return "", fmt.Errorf("process %d stayed %d us in ring 3 by the runtime's clock, under half the %d ms slice", sp.PID, te.NS/1000, timeSlice/1_000_000)
	}
	for _, pr := range u.Procs {
		if !pr.Exited || pr.EndStep <= sp.EndStep {
			return "", fmt.Errorf("process %d did not run on to its exit after the spinner ended (%s, at entry %d, the spinner at %d)", pr.PID, pr.State(), pr.EndStep, sp.EndStep)
		}
	}
	longest := int64(0)
	for _, pr := range u.Procs {
		longest = max(longest, pr.LongestNS)
	}
	return fmt.Sprintf("process %d, spinning in ring 3 with IF set, was ended by the LAPIC timer: vector %#x, CS %#x, RFLAGS %#x (IF) and RIP %#x (its text) in the CPU's frame; the LAPIC's count had run down to 0, after %d ms in ring 3 by the runtime's clock (the slice: %d ms, %d ticks a ms as measured); the other %d processes, whose longest stay in ring 3 was %d us, ran on to their exits",
		sp.PID, te.Trap.Vector, te.Trap.CS, te.RFLAGS, te.RIP, te.NS/1_000_000, timeSlice/1_000_000, u.timer.perMS, len(u.Procs), longest/1000), nil
}
