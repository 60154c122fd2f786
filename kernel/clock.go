//go:build tamago

package main

import (
	"slices"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/boot"
)

// The clock check measures the runtime's clock (what time.Now and
// time.Sleep read: TamaGo's CPU.GetTime, the TSC scaled by the calibrated
// multiplier) against the PIT, apart from the calibration that set it up:
// windows of clockWindowTicks PIT ticks, the median of clockWindows of
// them. A window in which two polls lie more than clockMaxGap apart may
// have missed a PIT wrap (the guest was paused) and is measured again.
const (
	// 5 ms: the tolerance is 2%, and a window's two ends are each a PIT
	// latch and a clock read a few microseconds apart (0.1% of it).
	clockWindowTicks = boot.PIT_HZ / 200
	clockWindowMS    = (clockWindowTicks*1000 + boot.PIT_HZ/2) / boot.PIT_HZ
	clockWindows     = 5
	clockMaxTries    = 40
	clockMaxGap      = 20_000_000 // ns, well under the PIT's 55 ms period
	// clockTolerance is how far, in parts per thousand, the runtime's
	// clock may run from the PIT's.
	clockTolerance = 20
)

// latchPIT latches channel 0 and returns its count.
func latchPIT() uint16 {
	amd64.Outb(boot.PIT_CMD, boot.PIT_LATCH0)
	lo := amd64.Inb(boot.PIT_CH0)
	hi := amd64.Inb(boot.PIT_CH0)
	return uint16(hi)<<8 | uint16(lo)
}

// pitTicks is how far a down-counting channel reloaded at 65536 advanced.
func pitTicks(prev, cur uint16) uint64 {
	if cur <= prev {
		return uint64(prev - cur)
	}
	return uint64(prev) + 1<<16 - uint64(cur)
}

// measureClock returns the runtime clock's rate against the PIT, in parts
// per thousand of the PIT's (1000: in step), the median of clockWindows
// windows, and how many windows were measured again.
func measureClock() (ppt int64, retries int, ok bool) {
	now := boot.CPU.GetTime
	var rates []int64
	for try := 0; len(rates) < clockWindows && try < clockMaxTries; try++ {
		prev, t0 := latchPIT(), now()
		last := t0
		var ticks uint64
		clean := true
		for ticks < clockWindowTicks {
			cur := latchPIT()
			t := now()
			if t-last > clockMaxGap {
				clean = false
				break
			}
			ticks += pitTicks(prev, cur)
			prev, last = cur, t
		}
		if !clean {
			retries++
			continue
		}
		pitNS := int64(ticks * 1e9 / boot.PIT_HZ)
		rates = append(rates, (now()-t0)*1000/pitNS)
	}
	if len(rates) == 0 {
		return 0, retries, false
	}
	slices.Sort(rates)
	return rates[len(rates)/2], retries, true
}
