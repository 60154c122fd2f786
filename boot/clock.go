package boot

import (
	"errors"
	"fmt"
)

// The 8254 programmable interval timer (Intel 82C54 data sheet; QEMU's
// hw/timer/i8254.c emulates it at the PC's 1.193182 MHz).
const (
	PIT_HZ      = 1_193_182
	PIT_CH0     = 0x40 // channel 0 data port
	PIT_CMD     = 0x43 // mode/command port
	PIT_LATCH0  = 0x00 // command: latch channel 0's count
	PIT_MODE2_0 = 0x34 // command: channel 0, lobyte/hibyte, mode 2 (rate generator), binary
	// pitReload is the count loaded into channel 0: writing 0 means 65536.
	pitReload = 1 << 16
)

// CalibrationTicks is how many PIT ticks (about 50 ms) the TSC is measured
// against: long enough that emulator jitter stays well under 1 %.
const CalibrationTicks = PIT_HZ / 20

// calibrationPolls bounds the calibration loop: a PIT that does not count
// (QEMU's pit=off, where the port reads 0xffff) must end in an error, not a
// hang.
const calibrationPolls = 20_000_000

// ErrPITStuck reports a PIT whose count does not advance.
var ErrPITStuck = errors.New("the PIT count does not advance (is the PIT disabled, e.g. microvm pit=off?)")

// pitElapsed returns how many ticks a down-counting channel reloaded with
// pitReload advanced between two readings.
func pitElapsed(prev, cur uint16) uint64 {
	if cur <= prev {
		return uint64(prev - cur)
	}
	return uint64(prev) + pitReload - uint64(cur)
}

// calibrateTSC measures the TSC frequency in Hz against at least ticks PIT
// ticks. readPIT returns channel 0's latched count and readTSC the TSC.
// Readings must come more often than one reload period (55 ms).
func calibrateTSC(readPIT func() uint16, readTSC func() uint64, ticks uint64) (hz uint64, err error) {
	prev := readPIT()
	tsc0 := readTSC()
	var elapsed uint64
	for polls := 0; elapsed < ticks; polls++ {
		if polls == calibrationPolls {
			return 0, fmt.Errorf("%w: %d ticks in %d polls", ErrPITStuck, elapsed, polls)
		}
		cur := readPIT()
		elapsed += pitElapsed(prev, cur)
		prev = cur
	}
	cycles := readTSC() - tsc0
	if cycles == 0 {
		return 0, errors.New("the TSC does not advance")
	}
	return cycles * PIT_HZ / elapsed, nil
}
