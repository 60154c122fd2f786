package boot

import (
	"fmt"
	"math/bits"
	"slices"

	"github.com/physmap/physmap/amd64"
)

// The 8254 programmable interval timer (Intel 82C54 data sheet; QEMU's
// hw/timer/i8254.c emulates it at the PC's 1.193182 MHz).
const (
	PIT_HZ      = 1_193_182
	PIT_CH0     = 0x40 // channel 0 data port
	PIT_CMD     = 0x43 // mode/command port
	PIT_LATCH0  = 0x00 // command: latch channel 0's count
	PIT_MODE2_0 = 0x34 // command: channel 0, lobyte/hibyte, mode 2 (rate generator), binary
	// pitReload is the count loaded into channel 0: writing 0 means 65536,
	// one period of about 55 ms.
	pitReload = 1 << 16
)

// The calibration against the PIT. A guest can be paused at any instruction
// for as long as its host likes (a busy host deschedules QEMU's vCPU
// thread); the PIT and the TSC both keep counting host time meanwhile, so a
// pause shorter than the PIT's period costs nothing, but over a longer one
// the down-counter wraps unseen and the ticks are undercounted. So the TSC
// is measured over several short windows rather than one long one; a window
// with a gap between two readings of three quarters of a period or more,
// where a wrap could hide, is thrown away, and so is one whose rate strays
// from the median; too few agreeing windows means another round. A pause
// inside a reading (between the PIT's and the TSC's) would misplace a
// window's end, so windows end only on readings that took no longer than
// usual.
const (
	// CalibrationWindows is how many windows a round measures.
	CalibrationWindows = 9
	// CalibrationTicks is each window's length in PIT ticks (5 ms), a
	// tenth of the period, so a window sees a wrap only after a pause.
	CalibrationTicks = PIT_HZ / 200
	// calibrationRounds bounds the rounds before calibration gives up.
	calibrationRounds = 4
	// calibrationQuorum is the fewest agreeing windows the rate may come
	// from; they must also outnumber the outliers.
	calibrationQuorum = 5
	// CalibrationTolerancePPM is how far, in parts per million of the
	// median, an agreeing window's rate may be.
	CalibrationTolerancePPM = 2000
	// maxGapTicks is the longest gap between two readings a window may
	// have, measured at the median rate: three quarters of a period, so no
	// wrap can hide in it unless the median is a third too high.
	maxGapTicks = pitReload * 3 / 4
	// warmupTicks is the untimed window before the first (54 µs).
	warmupTicks = 64
)

// calibrationPolls bounds one window's loop: a PIT that does not count
// (QEMU's pit=off, where the port reads 0xffff) must end in an error, not a
// hang.
const calibrationPolls = 20_000_000

// ClockErr is one way calibration fails. Calibration runs in TamaGo's
// Hwinit1, before package initialisation (the values are constants, so they
// hold whatever the compiler initialises statically) and on the system
// stack, where fmt cannot format an error (its deferred recover is refused
// there: "defer on system stack"); so the error is built without fmt and
// formatted when it is printed.
type ClockErr int

// The ways calibration fails.
const (
	ErrPITStuck ClockErr = iota + 1
	ErrTSCStuck
	ErrNoAgreement
)

func (e ClockErr) Error() string {
	switch e {
	case ErrPITStuck:
		return "the PIT count does not advance (is the PIT disabled, e.g. microvm pit=off?)"
	case ErrTSCStuck:
		return "the TSC does not advance"
	case ErrNoAgreement:
		return "too few PIT windows agree on the TSC rate"
	}
	return "calibration failed"
}

// calibrationError is a failed calibration with what it measured; Error
// formats it, later, on an ordinary goroutine stack.
type calibrationError struct {
	err          ClockErr
	ticks, polls uint64  // ErrPITStuck: how far one window got
	v            verdict // ErrNoAgreement: the windows' verdict
	windows      int
}

func (e *calibrationError) Unwrap() error { return e.err }

func (e *calibrationError) Error() string {
	switch e.err {
	case ErrPITStuck:
		return fmt.Sprintf("%v: %d ticks in %d polls", e.err, e.ticks, e.polls)
	case ErrNoAgreement:
		return fmt.Sprintf("%v: %d of %d windows within %d ppm of the median %d Hz (%d with a gap a PIT wrap could hide in, %d outliers)",
			e.err, e.v.agreed, e.windows, CalibrationTolerancePPM, e.v.median, e.v.gaps, e.v.outliers)
	}
	return e.err.Error()
}

// pitElapsed returns how many ticks a down-counting channel reloaded with
// pitReload advanced between two readings, assuming less than one period
// passed between them.
func pitElapsed(prev, cur uint16) uint64 {
	if cur <= prev {
		return uint64(prev - cur)
	}
	return uint64(prev) + pitReload - uint64(cur)
}

// window is one measurement of the TSC against the PIT.
type window struct {
	ticks  uint64 // PIT ticks counted
	cycles uint64 // TSC cycles over them
	maxGap uint64 // the longest TSC gap between two consecutive readings
	// unclean is set when no clean reading could end the window.
	unclean bool
}

// mulDiv returns a*b/c, or false if it overflows 64 bits or c is 0.
func mulDiv(a, b, c uint64) (uint64, bool) {
	hi, lo := bits.Mul64(a, b)
	if c == 0 || hi >= c {
		return 0, false
	}
	q, _ := bits.Div64(hi, lo, c)
	return q, true
}

// hz is the window's TSC rate.
func (w window) hz() uint64 {
	hz, _ := mulDiv(w.cycles, PIT_HZ, w.ticks)
	return hz
}

// gapTicks converts the window's longest gap to PIT ticks at rate hz.
func (w window) gapTicks(hz uint64) uint64 {
	t, ok := mulDiv(w.maxGap, PIT_HZ, hz)
	if !ok {
		return ^uint64(0)
	}
	return t
}

// reading is one poll: the TSC read on both sides of a PIT reading. The PIT
// was latched somewhere inside that bracket; a pause inside it (the usual
// place, since a pause ends the window at the next poll) makes the bracket
// long, and such a reading is not used as a window's end.
type reading struct {
	count      uint16
	tsc0, tsc1 uint64
}

// at is the reading's TSC: the middle of its bracket.
func (r reading) at() uint64 { return r.tsc0 + (r.tsc1-r.tsc0)/2 }

func (r reading) bracket() uint64 { return r.tsc1 - r.tsc0 }

// A reading is clean when its bracket is at most cleanFactor times the
// shortest seen (or cleanFloor cycles): no pause happened inside it.
const (
	cleanFactor = 4
	cleanFloor  = 256
	cleanPolls  = 10_000
)

// sampler polls the PIT and the TSC and cuts the polls into windows, each
// starting where the one before ended.
type sampler struct {
	readPIT    func() uint16
	readTSC    func() uint64
	minBracket uint64
	last       reading // the clean reading the next window starts from
}

func newSampler(readPIT func() uint16, readTSC func() uint64) *sampler {
	s := &sampler{readPIT: readPIT, readTSC: readTSC, minBracket: ^uint64(0)}
	s.last = s.poll()
	return s
}

func (s *sampler) poll() reading {
	t0 := s.readTSC()
	c := s.readPIT()
	r := reading{c, t0, s.readTSC()}
	s.minBracket = min(s.minBracket, r.bracket())
	return r
}

func (s *sampler) clean(r reading) bool {
	return r.bracket() <= max(cleanFactor*s.minBracket, cleanFloor)
}

// window counts at least ticks PIT ticks, polling on until a clean reading
// ends the window, and times them with the TSC. A window with no clean
// reading in cleanPolls polls past its ticks ends there, marked unclean.
func (s *sampler) window(ticks uint64) (window, error) {
	prev := s.last
	w, extra := window{}, 0
	for polls := 0; ; polls++ {
		if polls == calibrationPolls {
			return w, &calibrationError{err: ErrPITStuck, ticks: w.ticks, polls: uint64(polls)}
		}
		cur := s.poll()
		w.ticks += pitElapsed(prev.count, cur.count)
		// The gap a wrap could hide in runs from the TSC before the
		// previous PIT reading to the TSC after this one.
		w.maxGap = max(w.maxGap, cur.tsc1-prev.tsc0)
		prev = cur
		if w.ticks < ticks {
			continue
		}
		if s.clean(cur) {
			break
		}
		if extra++; extra == cleanPolls {
			w.unclean = true
			break
		}
	}
	w.cycles = prev.at() - s.last.at()
	s.last = prev
	if w.cycles == 0 {
		return w, &calibrationError{err: ErrTSCStuck}
	}
	return w, nil
}

// median returns the median of v (the lower middle one for an even count);
// v is not modified. Precondition: len(v) > 0.
func median(v []uint64) uint64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// verdict is what judgeWindows made of a set of windows.
type verdict struct {
	hz        uint64 // the rate over the agreeing windows
	median    uint64 // the median rate of all windows
	agreed    int    // windows the rate comes from
	gaps      int    // windows thrown away for a gap a wrap could hide in
	outliers  int    // windows thrown away for straying from the median
	spreadPPM uint64 // the farthest agreeing window from the median
}

// judgeWindows rejects the windows a pause may have spoiled and returns the
// rate over the rest. A window is rejected when, at the median rate, it had
// a gap of maxGapTicks or more (a wrap may hide there), or when its own rate
// is more than CalibrationTolerancePPM from the median. The rate is the
// agreeing windows' cycles over their ticks; it is trusted when at least
// calibrationQuorum windows agree and they outnumber the outliers.
func judgeWindows(ws []window) (verdict, bool) {
	if len(ws) == 0 {
		return verdict{}, false
	}
	rates := make([]uint64, len(ws))
	for i, w := range ws {
		rates[i] = w.hz()
	}
	v := verdict{median: median(rates)}
	if v.median == 0 {
		return v, false
	}
	var cycles, ticks uint64
	for i, w := range ws {
		off := max(rates[i], v.median) - min(rates[i], v.median)
		ppm, ok := mulDiv(off, 1_000_000, v.median)
		switch {
		case w.unclean || w.gapTicks(v.median) >= maxGapTicks:
			v.gaps++
		case !ok || ppm > CalibrationTolerancePPM:
			v.outliers++
		default:
			v.agreed++
			v.spreadPPM = max(v.spreadPPM, ppm)
			cycles += w.cycles
			ticks += w.ticks
		}
	}
	if v.agreed < calibrationQuorum || v.agreed <= v.outliers {
		return v, false
	}
	v.hz, _ = mulDiv(cycles, PIT_HZ, ticks)
	return v, v.hz != 0
}

// calibrateTSC measures the TSC frequency against the PIT: rounds of
// CalibrationWindows windows of CalibrationTicks each, judged together
// with every window of the rounds before, until they agree or
// calibrationRounds have been measured. readPIT returns channel 0's latched
// count and readTSC the TSC.
func calibrateTSC(readPIT func() uint16, readTSC func() uint64) (verdict, []window, error) {
	// TCG translates code the first time it runs, which would slow the
	// first window's first readings: run the loop once untimed.
	s := newSampler(readPIT, readTSC)
	if _, err := s.window(warmupTicks); err != nil {
		return verdict{}, nil, err
	}
	var ws []window
	var v verdict
	for range calibrationRounds {
		for range CalibrationWindows {
			w, err := s.window(CalibrationTicks)
			if err != nil {
				return verdict{}, ws, err
			}
			ws = append(ws, w)
		}
		var ok bool
		if v, ok = judgeWindows(ws); ok {
			return v, ws, nil
		}
	}
	return v, ws, &calibrationError{err: ErrNoAgreement, v: v, windows: len(ws)}
}

// CPUID's leaves for the TSC's nominal rate (SDM Vol. 2A, CPUID, leaf 15H
// "Time Stamp Counter and Nominal Core Crystal Clock Information" and leaf
// 16H "Processor Frequency Information"). Intel defines them; on other
// vendors the leaves are reserved.
const (
	CPUID_TSC_CRYSTAL = 0x15 // EAX denominator, EBX numerator, ECX crystal Hz (0: not enumerated)
	CPUID_FREQ        = 0x16 // EAX base frequency in MHz
)

// The vendor string's words in CPUID leaf 0 EBX, EDX, ECX: "GenuineIntel".
const (
	intelEBX = 0x756e6547 // "Genu"
	intelEDX = 0x49656e69 // "ineI"
	intelECX = 0x6c65746e // "ntel"
)

// cpuidTSCHz returns the TSC rate CPUID enumerates, as Linux's
// native_calibrate_tsc (arch/x86/kernel/tsc.c) reads it: on an Intel CPU
// whose leaf 15H has both ratio terms, the crystal's rate times
// EBX/EAX; where leaf 15H does not give the crystal, it comes from leaf 16H's
// base frequency (crystal = base * EAX/EBX). Linux also knows some models'
// crystals by heart; physmap does not, and measures against the PIT there.
// source says which leaves it came from; ok is false when CPUID does not
// enumerate the rate.
func cpuidTSCHz(cpuid amd64.CPUIDFunc) (hz uint64, source string, ok bool) {
	maxLeaf, b, c, d := cpuid(amd64.CPUID_MAX_BASIC, 0)
	if b != intelEBX || d != intelEDX || c != intelECX || maxLeaf < CPUID_TSC_CRYSTAL {
		return 0, "", false
	}
	eax, ebx, ecx, _ := cpuid(CPUID_TSC_CRYSTAL, 0)
	den, num, crystal := uint64(eax), uint64(ebx), uint64(ecx)
	if den == 0 || num == 0 {
		return 0, "", false
	}
	source = "CPUID 0x15"
	if crystal == 0 && maxLeaf >= CPUID_FREQ {
		baseMHz, _, _, _ := cpuid(CPUID_FREQ, 0)
		crystal = uint64(baseMHz) * 1_000_000 * den / num
		source = "CPUID 0x15 and 0x16"
	}
	if crystal == 0 {
		return 0, "", false
	}
	return crystal * num / den, source, true
}

// describe says, for people, how the verdict over n windows came about.
func (v verdict) describe(n int) string {
	s := fmt.Sprintf("%d of %d %d ms windows agree within %.3f %%", v.agreed, n,
		(CalibrationTicks*1000+PIT_HZ/2)/PIT_HZ, float64(v.spreadPPM)/1e4)
	if v.gaps > 0 {
		s += fmt.Sprintf(", %d dropped for a gap a PIT wrap could hide in", v.gaps)
	}
	if v.outliers > 0 {
		s += fmt.Sprintf(", %d dropped as outliers", v.outliers)
	}
	return s
}
