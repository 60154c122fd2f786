package region

import (
	"testing"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/mm"
)

// fakeLAPIC is a LAPIC timer that counts down one tick per 16 ns of a
// clock the test advances, as QEMU's 1 GHz timer does divided by 16. Only
// Read32 and Write32 are implemented: the rest of CPU panics.
type fakeLAPIC struct {
	CPU
	base     mm.VirtAddr
	regs     map[uint32]uint32
	now      *int64 // ns
	loadedAt int64
	irr      bool // the timer's interrupt requested, until EOI
}

// tick latches the interrupt once an armed, unmasked count runs out.
func (f *fakeLAPIC) tick() {
	if f.regs[apicRegTimerInit] != 0 && f.count() == 0 && f.regs[apicRegLVTTimer]&apicLVTMasked == 0 {
		f.irr = true
	}
}

func (f *fakeLAPIC) count() uint32 {
	init := f.regs[apicRegTimerInit]
	gone := uint64(*f.now-f.loadedAt) / 16
	if f.regs[apicRegTimerDiv] != apicTimerDiv16 || gone >= uint64(init) {
		return 0
	}
	return init - uint32(gone)
}

func (f *fakeLAPIC) Read32(va mm.VirtAddr) (uint32, amd64.Fault) {
	f.tick()
	reg := uint32(va - f.base)
	switch reg {
	case apicRegTimerCur:
		return f.count(), amd64.Fault{}
	case apicRegIRR + 0x10*(amd64.VECTOR_LOCAL_TIMER/32):
		if f.irr {
			return 1 << (amd64.VECTOR_LOCAL_TIMER % 32), amd64.Fault{}
		}
		return 0, amd64.Fault{}
	}
	return f.regs[reg], amd64.Fault{}
}

func (f *fakeLAPIC) Write32(va mm.VirtAddr, v uint32) amd64.Fault {
	f.tick()
	reg := uint32(va - f.base)
	if reg == apicRegEOI {
		f.irr = false
	}
	if reg == apicRegTimerInit {
		f.loadedAt = *f.now
	}
	f.regs[reg] = v
	return amd64.Fault{}
}

// fakeClock is a Ring3 whose Nanotime advances by step on every call.
type fakeClock struct {
	Ring3
	now  *int64
	step int64
}

func (c fakeClock) Nanotime() int64 {
	*c.now += c.step
	return *c.now
}

// TestRing3Timer: setupTimer enables the LAPIC at the spurious vector,
// measures about 62500 ticks a millisecond (1 GHz / 16), leaves the timer
// one-shot and unmasked at LOCAL_TIMER_VECTOR, stopped; a slice armed
// and stopped early leaves count and no interrupt pending; one that runs
// out leaves 0 and the interrupt pending.
func TestRing3Timer(t *testing.T) {
	var now int64
	layout := mm.DefaultLayout(mm.Mode4Level)
	vs, _ := layout.Region(mm.KindVsyscall)
	lapic := &fakeLAPIC{base: fixToVirt(vs.Start, fixAPICBase), regs: map[uint32]uint32{apicRegSVR: 0xff}, now: &now}
	s := &Space{Layout: layout, CPU: lapic, Ring3: fakeClock{now: &now, step: 1000}}
	tm, err := setupTimer(s)
	if err != nil {
		t.Fatal(err)
	}
	if got := lapic.regs[apicRegSVR]; got != apicSVREnabled|amd64.VECTOR_SPURIOUS {
		t.Errorf("SVR %#x", got)
	}
	if got := lapic.regs[apicRegLVTTimer]; got != amd64.VECTOR_LOCAL_TIMER {
		t.Errorf("LVT timer %#x: want one-shot, unmasked, vector %#x", got, amd64.VECTOR_LOCAL_TIMER)
	}
	if lapic.regs[apicRegTimerInit] != 0 {
		t.Error("the timer is left running after calibration")
	}
	// 62500, give or take the one clock read between arming and t0.
	if tm.perMS < 62400 || tm.perMS > 62600 || tm.slice != timeSlice/1_000_000*tm.perMS {
		t.Errorf("%d ticks a ms, slice %d", tm.perMS, tm.slice)
	}

	if err := tm.arm(lapic); err != nil {
		t.Fatal(err)
	}
	now += 1_000_000 // 1 ms in ring 3
	left, pending, err := tm.stop(lapic)
	if err != nil || pending || left != tm.slice-62500 {
		t.Errorf("stopped after 1 ms: left %d (want %d), pending %v, %v", left, tm.slice-62500, pending, err)
	}
	if err := tm.arm(lapic); err != nil {
		t.Fatal(err)
	}
	now += 2 * timeSlice
	// The interrupt fell due with IF clear: stop reads 0 and pending.
	left, pending, err = tm.stop(lapic)
	if err != nil || left != 0 || !pending {
		t.Errorf("stopped after the slice: left %d, pending %v, %v", left, pending, err)
	}
	if err := tm.eoi(lapic); err != nil || lapic.irr {
		t.Errorf("EOI: %v, still requested %v", err, lapic.irr)
	}

	if err := tm.inject(lapic); err != nil {
		t.Fatal(err)
	}
	if lapic.regs[apicRegLVTTimer]&apicLVTMasked == 0 {
		t.Error("timer-masked left the LVT entry unmasked")
	}
}
