package boot

import (
	"errors"
	"testing"
)

func TestPITElapsed(t *testing.T) {
	for _, tc := range []struct {
		prev, cur uint16
		want      uint64
	}{
		{1000, 900, 100},
		{500, 500, 0},
		{10, 65530, 10 + 65536 - 65530}, // wrapped through the reload
		{0, 65535, 1},                   // 0 is the start of a 65536 period
	} {
		if got := pitElapsed(tc.prev, tc.cur); got != tc.want {
			t.Errorf("pitElapsed(%d, %d) = %d, want %d", tc.prev, tc.cur, got, tc.want)
		}
	}
}

// simPIT is a PIT and TSC driven by one simulated clock: each read advances
// time by step nanoseconds.
type simPIT struct {
	ns, step uint64
	tscHz    uint64
}

func (s *simPIT) readPIT() uint16 {
	s.ns += s.step
	ticks := s.ns * PIT_HZ / 1e9
	return uint16(pitReload - ticks%pitReload)
}

func (s *simPIT) readTSC() uint64 { return s.ns * s.tscHz / 1e9 }

func TestCalibrateTSC(t *testing.T) {
	for _, hz := range []uint64{1_000_000_000, 2_596_000_000, 3_700_000_000} {
		s := &simPIT{step: 3000, tscHz: hz}
		got, err := calibrateTSC(s.readPIT, s.readTSC, CalibrationTicks)
		if err != nil {
			t.Fatalf("%d Hz: %v", hz, err)
		}
		// The simulated clocks are exact, so the only error is the
		// resolution of one poll step over 50 ms.
		if diff := int64(got) - int64(hz); diff < -int64(hz/1000) || diff > int64(hz/1000) {
			t.Errorf("calibrated %d Hz, want %d Hz within 0.1%%", got, hz)
		}
	}
}

func TestCalibrateTSCStuckPIT(t *testing.T) {
	tsc := uint64(0)
	_, err := calibrateTSC(func() uint16 { return 0xffff }, func() uint64 { tsc += 100; return tsc }, CalibrationTicks)
	if !errors.Is(err, ErrPITStuck) {
		t.Fatalf("stuck PIT: err = %v, want ErrPITStuck", err)
	}
}
