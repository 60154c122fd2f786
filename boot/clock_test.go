package boot

import (
	"errors"
	"strings"
	"testing"

	"github.com/physmap/physmap/amd64"
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

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		v    []uint64
		want uint64
	}{
		{[]uint64{7}, 7},
		{[]uint64{3, 1, 2}, 2},
		{[]uint64{4, 1, 3, 2}, 2}, // the lower middle
		{[]uint64{9, 9, 1, 9, 1}, 9},
	} {
		in := append([]uint64(nil), tc.v...)
		if got := median(tc.v); got != tc.want {
			t.Errorf("median(%v) = %d, want %d", in, got, tc.want)
		}
		for i := range in {
			if in[i] != tc.v[i] {
				t.Fatalf("median reordered its argument: %v", tc.v)
			}
		}
	}
}

// Windows recorded from real boots (-cpu max under QEMU 7.2's TCG on a
// 2596.1 MHz host shared with other work): PIT ticks, TSC cycles, the
// longest gap between two readings and whether the window ended unclean,
// as calibrateTSC measured them.
var (
	// No load of ours; the host's other work still deschedules the guest
	// for up to 12 ms (a 31479578-cycle gap), which costs nothing.
	recordedIdle = []window{
		{15230, 33136701, 24468366, false}, {8012, 17431817, 17427436, false}, {9379, 20408037, 15472132, false},
		{19151, 41668952, 31479578, false}, {7207, 15681601, 5631158, false}, {7184, 15631421, 10739950, false},
		{5965, 12976951, 5666206, false}, {13022, 28334592, 21034546, false}, {9507, 20684820, 13726024, false},
	}
	// Two busy loops on the host's two cores: gaps of 37 and 32 ms, below
	// a PIT period, so those windows are right.
	recordedBusy = []window{
		{10878, 23668918, 14253954, false}, {6801, 14797536, 8460452, false}, {5965, 12978524, 9414522, false},
		{49317, 107305757, 97055998, false}, {7563, 16454750, 3705520, false}, {9517, 20707362, 13969332, false},
		{9831, 21391656, 10758228, false}, {5965, 12977445, 5627362, false}, {41723, 90781626, 83362344, false},
	}
	// QEMU stopped (SIGSTOP) for 200 ms in the third window: the PIT
	// wrapped unseen, so the window counted 20941 ticks where about 212000
	// passed, and its rate reads 26970 MHz.
	recordedStopped = []window{
		{5965, 12977562, 225810, false}, {5965, 12978979, 1642940, false}, {20941, 473346316, 462545370, false},
		{11618, 25276979, 21061040, false}, {9515, 20703098, 10609040, false}, {5965, 12979044, 371540, false},
		{5965, 12979226, 2466854, false}, {5965, 12978082, 179556, false}, {5965, 12978251, 250692, false},
	}
	// Recorded before windows ended only on clean readings: a pause
	// between the last PIT reading and its TSC reading made the first
	// window 0.85 % slow.
	recordedOutlier = []window{
		{5965, 12867127, 403182, false}, {5965, 12977718, 149110, false}, {5965, 12979408, 63102, false},
		{5965, 12978823, 73840, false}, {5965, 12978732, 45734, false}, {5965, 12977640, 106912, false},
		{5965, 12978004, 66326, false}, {5965, 12978563, 104936, false}, {5965, 12978680, 153140, false},
	}
	// Recorded likewise, under load: two windows ended unclean, by a cap
	// since removed, and one window's error (1720 MHz) became the next
	// one's (3913 MHz); one 45 ms gap.
	recordedUnclean = []window{
		{12716, 27664793, 21040136, true}, {14252, 31003050, 20903584, true}, {14337, 31193877, 20940556, true},
		{14334, 20667335, 21112078, true}, {9543, 31299099, 21721154, false}, {6036, 13132340, 642668, false},
		{6629, 14422837, 3666962, false}, {56924, 123842706, 117127088, true}, {6060, 13200122, 7891468, false},
		{5965, 12977835, 3542448, false}, {7367, 20857135, 9718748, false}, {9969, 21690149, 21244600, false},
		{8060, 17536935, 15421744, false}, {5965, 12978069, 2801240, false}, {11811, 25699349, 22938812, false},
	}
)

func TestJudgeWindows(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		ws                     []window
		agreed, gaps, outliers int
	}{
		{"idle", recordedIdle, 9, 0, 0},
		{"busy", recordedBusy, 9, 0, 0},
		{"stopped", recordedStopped, 8, 1, 0},
		{"outlier", recordedOutlier, 8, 0, 1},
		{"unclean", recordedUnclean, 8, 5, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, ok := judgeWindows(tc.ws)
			if !ok {
				t.Fatalf("no agreement: %+v", v)
			}
			if v.agreed != tc.agreed || v.gaps != tc.gaps || v.outliers != tc.outliers {
				t.Errorf("agreed %d, gaps %d, outliers %d; want %d, %d, %d", v.agreed, v.gaps, v.outliers, tc.agreed, tc.gaps, tc.outliers)
			}
			// The host's TSC ran at 2596.1 MHz (its /proc/cpuinfo).
			if v.hz < 2_595_000_000 || v.hz > 2_597_000_000 {
				t.Errorf("rate %d Hz, want 2596 MHz within 0.05 %%", v.hz)
			}
			if v.spreadPPM > CalibrationTolerancePPM {
				t.Errorf("spread %d ppm beyond the tolerance", v.spreadPPM)
			}
		})
	}
}

// TestJudgeWindowsRefuses: windows that do not agree, or too few, give no
// rate.
func TestJudgeWindowsRefuses(t *testing.T) {
	good := window{5965, 12978000, 200000, false}
	paused := window{50217, 537038503, 524606668, false}
	slow := window{5965, 12000000, 200000, false}
	for _, tc := range []struct {
		name string
		ws   []window
	}{
		{"none", nil},
		{"too few", []window{good, good, good, good}},
		{"no majority", []window{good, good, good, good, good, slow, slow, slow, slow, slow, paused}},
		// Each window stopped for a different time over a period: their
		// rates disagree. (Windows spoiled all alike would agree; the
		// kernel's bounds on the rate and the harness's timing of a
		// guest sleep remain the checks of last resort.)
		{"all paused", []window{paused, {40217, 537038503, 524606668, false}, {30217, 537038503, 524606668, false},
			{20217, 537038503, 524606668, false}, {10217, 537038503, 524606668, false}}},
		{"no ticks", []window{{0, 1, 1, false}, {0, 1, 1, false}, {0, 1, 1, false}, {0, 1, 1, false}, {0, 1, 1, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if v, ok := judgeWindows(tc.ws); ok {
				t.Errorf("agreed on %d Hz: %+v", v.hz, v)
			}
		})
	}
}

// simPIT is a PIT and TSC driven by one simulated clock: each read advances
// time by step nanoseconds, and the host may stop the guest for pause
// nanoseconds at given reads.
type simPIT struct {
	ns, step uint64
	tscHz    uint64
	reads    int
	pauses   map[int]uint64 // read number -> pause before it, ns
}

func (s *simPIT) advance() {
	s.reads++
	s.ns += s.step + s.pauses[s.reads]
}

func (s *simPIT) readPIT() uint16 {
	s.advance()
	ticks := s.ns * PIT_HZ / 1e9
	return uint16(pitReload - ticks%pitReload)
}

func (s *simPIT) readTSC() uint64 {
	s.advance()
	return s.ns * s.tscHz / 1e9
}

func TestCalibrateTSC(t *testing.T) {
	for _, hz := range []uint64{1_000_000_000, 2_596_000_000, 3_700_000_000} {
		s := &simPIT{step: 1000, tscHz: hz}
		v, ws, err := calibrateTSC(s.readPIT, s.readTSC)
		if err != nil {
			t.Fatalf("%d Hz: %v", hz, err)
		}
		// The simulated clocks are exact, so the only error is the
		// resolution of one poll over 5 ms windows.
		if diff := int64(v.hz) - int64(hz); diff < -int64(hz/2000) || diff > int64(hz/2000) {
			t.Errorf("calibrated %d Hz, want %d Hz within 0.05%%", v.hz, hz)
		}
		if len(ws) != CalibrationWindows || v.agreed != CalibrationWindows {
			t.Errorf("%d windows, %d agreed; want one round, all agreeing", len(ws), v.agreed)
		}
	}
}

// TestCalibrateTSCPaused stops the simulated guest for longer than a PIT
// period, the failure of a busy host, at places the old single window
// miscounted: mid-window, and between a window's last PIT and TSC reads.
func TestCalibrateTSCPaused(t *testing.T) {
	const hz = 2_596_000_000
	// A window of 5 ms at 2 reads a µs is about 10000 reads long.
	for _, tc := range []struct {
		name   string
		pauses map[int]uint64
		rounds int
	}{
		{"200 ms mid-window", map[int]uint64{15_000: 200e6}, 1},
		{"60 ms, just over a period", map[int]uint64{15_000: 60e6}, 1},
		{"a pause in each of 3 windows", map[int]uint64{5_000: 100e6, 25_000: 70e6, 45_000: 300e6}, 1},
		{"a pause in 5 windows", map[int]uint64{5_000: 100e6, 15_000: 100e6, 25_000: 100e6, 35_000: 100e6, 45_000: 100e6}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &simPIT{step: 500, tscHz: hz, pauses: tc.pauses}
			v, ws, err := calibrateTSC(s.readPIT, s.readTSC)
			if err != nil {
				t.Fatal(err)
			}
			if diff := int64(v.hz) - hz; diff < -hz/2000 || diff > hz/2000 {
				t.Errorf("calibrated %d Hz, want %d Hz within 0.05%%: %+v", v.hz, hz, v)
			}
			if rounds := len(ws) / CalibrationWindows; rounds != tc.rounds {
				t.Errorf("%d rounds, want %d", rounds, tc.rounds)
			}
			if v.gaps+v.outliers == 0 {
				t.Errorf("no window dropped: %+v", v)
			}
		})
	}
}

// TestCalibrateTSCNoAgreement: a guest paused in every window cannot be
// calibrated, and says so rather than returning a rate.
func TestCalibrateTSCNoAgreement(t *testing.T) {
	// Pauses of 60 to 250 ms, one every 1.5 ms of guest time.
	pauses := map[int]uint64{}
	for i, n := 1, uint64(1); i < 1_000_000; i += 3_000 {
		n = n*6364136223846793005 + 1442695040888963407
		pauses[i] = 60e6 + n>>32%190e6
	}
	s := &simPIT{step: 500, tscHz: 2_596_000_000, pauses: pauses}
	_, ws, err := calibrateTSC(s.readPIT, s.readTSC)
	if !errors.Is(err, ErrNoAgreement) {
		t.Fatalf("err = %v, want ErrNoAgreement", err)
	}
	if len(ws) != calibrationRounds*CalibrationWindows {
		t.Errorf("%d windows measured, want %d rounds of %d", len(ws), calibrationRounds, CalibrationWindows)
	}
	if !strings.Contains(err.Error(), "with a gap a PIT wrap could hide in") {
		t.Errorf("error %q does not say why", err)
	}
}

func TestCalibrateTSCStuckPIT(t *testing.T) {
	tsc := uint64(0)
	_, _, err := calibrateTSC(func() uint16 { return 0xffff }, func() uint64 { tsc += 100; return tsc })
	if !errors.Is(err, ErrPITStuck) {
		t.Fatalf("stuck PIT: err = %v, want ErrPITStuck", err)
	}
}

func TestCalibrateTSCStuckTSC(t *testing.T) {
	s := &simPIT{step: 1000}
	_, _, err := calibrateTSC(s.readPIT, func() uint64 { return 42 })
	if !errors.Is(err, ErrTSCStuck) {
		t.Fatalf("stuck TSC: err = %v, want ErrTSCStuck", err)
	}
}

func TestVerdictDescribe(t *testing.T) {
	v, _ := judgeWindows(recordedStopped)
	got := v.describe(len(recordedStopped))
	want := "8 of 9 5 ms windows agree within 0.0"
	if !strings.HasPrefix(got, want) || !strings.HasSuffix(got, ", 1 dropped for a gap a PIT wrap could hide in") {
		t.Errorf("describe = %q", got)
	}
}

// cpuidLeaves answers CPUID from a table of leaves.
func cpuidLeaves(leaves map[uint32][4]uint32) amd64.CPUIDFunc {
	return func(leaf, _ uint32) (a, b, c, d uint32) {
		r := leaves[leaf]
		return r[0], r[1], r[2], r[3]
	}
}

func TestCPUIDTSCHz(t *testing.T) {
	intel := func(maxLeaf uint32) [4]uint32 { return [4]uint32{maxLeaf, intelEBX, intelECX, intelEDX} }
	amd := [4]uint32{0x16, 0x68747541, 0x444d4163, 0x69746e65} // "AuthenticAMD"
	for _, tc := range []struct {
		name   string
		leaves map[uint32][4]uint32
		hz     uint64
		source string
	}{
		// Leaf 15H with the crystal: 38.4 MHz * 146/2.
		{"crystal enumerated", map[uint32][4]uint32{0: intel(0x1b), 0x15: {2, 146, 38_400_000, 0}}, 2_803_200_000, "CPUID 0x15"},
		// No crystal: from leaf 16H's 3200 MHz base, crystal =
		// 3200 MHz * 2/266, the TSC crystal * 266/2.
		{"crystal from leaf 16H", map[uint32][4]uint32{0: intel(0x16), 0x15: {2, 266, 0, 0}, 0x16: {3200, 0, 0, 0}}, 3_199_999_950, "CPUID 0x15 and 0x16"},
		{"no crystal, no leaf 16H", map[uint32][4]uint32{0: intel(0x15), 0x15: {2, 266, 0, 0}}, 0, ""},
		{"ratio not enumerated", map[uint32][4]uint32{0: intel(0x16), 0x15: {0, 0, 0, 0}}, 0, ""},
		// QEMU's TCG -cpu max: leaf 15H is beyond its highest leaf 0DH,
		// and Intel CPUs answer such a leaf with the highest one's data.
		{"leaf beyond the maximum", map[uint32][4]uint32{0: intel(0xd), 0x15: {543, 576, 2696, 0}}, 0, ""},
		{"not Intel", map[uint32][4]uint32{0: amd, 0x15: {2, 146, 38_400_000, 0}}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hz, source, ok := cpuidTSCHz(cpuidLeaves(tc.leaves))
			if hz != tc.hz || source != tc.source || ok != (tc.hz != 0) {
				t.Errorf("got %d Hz from %q (ok %v), want %d from %q", hz, source, ok, tc.hz, tc.source)
			}
		})
	}
}
