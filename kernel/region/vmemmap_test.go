package region

import (
	"testing"

	"github.com/physmap/physmap/mm"
)

// TestFirstDeferredPFN: first_deferred_pfn as defer_init sets it on
// QEMU's memory maps (RAM below 3 GiB, the rest from 4 GiB). The last
// zone keeps its first section's worth of frames, up to the next 128 MiB
// boundary: at 2G ZONE_DMA32 is the last and starts at 16 MiB, so
// 16M+128M rounds up to 256M; with RAM above 4 GiB ZONE_NORMAL is, and
// 4G+128M is a boundary already.
func TestFirstDeferredPFN(t *testing.T) {
	const M, G = 1 << 20, 1 << 30
	for _, tc := range []struct {
		name string
		ram  []mm.PhysRange
		want uint64 // bytes; 0: nothing deferred
	}{
		{"2G", []mm.PhysRange{{Start: 0, End: 2 * G}}, 256 * M},
		{"512M", []mm.PhysRange{{Start: 0, End: 512 * M}}, 256 * M},
		{"200M: the last zone holds no second section", []mm.PhysRange{{Start: 0, End: 200 * M}}, 0},
		{"12M: ZONE_DMA only, one section", []mm.PhysRange{{Start: 0, End: 12 * M}}, 0},
		{"6G", []mm.PhysRange{{Start: 0, End: 3 * G}, {Start: 4 * G, End: 7 * G}}, 4*G + 128*M},
		{"a hole in ZONE_NORMAL's first section", []mm.PhysRange{{Start: 0, End: 3 * G}, {Start: 4 * G, End: 4*G + 64*M}, {Start: 5 * G, End: 6 * G}}, 5*G + 128*M},
		{"ZONE_NORMAL smaller than a section", []mm.PhysRange{{Start: 0, End: 3 * G}, {Start: 4 * G, End: 4*G + 100*M}}, 0},
	} {
		pfn, ok := firstDeferredPFN(tc.ram)
		if got := pfn << 12; ok != (tc.want != 0) || got != tc.want {
			t.Errorf("%s: first_deferred_pfn at %#x (%v), want %#x", tc.name, got, ok, tc.want)
		}
	}
}

// TestVmemmapSamples: the last frame written at boot is sampled, and it
// is the one the injection moves.
func TestVmemmapSamples(t *testing.T) {
	ram := []mm.PhysRange{{Start: 0, End: 3 << 30}, {Start: 4 << 30, End: 7 << 30}}
	want := uint64(4<<30+128<<20)>>12 - 1
	found := false
	for _, pfn := range vmemmapSamples(ram) {
		found = found || pfn == want
	}
	if !found || lastBootSample(ram) != want {
		t.Errorf("samples %#x, last written at boot %#x, want %#x among them and last", vmemmapSamples(ram), lastBootSample(ram), want)
	}
}

func TestRangeOf(t *testing.T) {
	ram := []mm.PhysRange{{Start: 0, End: 0x9f000}, {Start: 0x100000, End: 0xc0000000}, {Start: 0x100000000, End: 0x1c0000000}}
	for _, tc := range []struct {
		pa   mm.PhysAddr
		want int
	}{{0, 0}, {0x9efff, 0}, {0x9f000, -1}, {0x100000, 1}, {0xbfffffff, 1}, {0xc0000000, -1}, {0x100000000, 2}, {0x1bfffffff, 2}, {0x1c0000000, -1}} {
		if got := rangeOf(ram, tc.pa); got != tc.want || (got >= 0) != inRAM(ram, tc.pa) {
			t.Errorf("rangeOf(%v) = %d, want %d (inRAM %v)", tc.pa, got, tc.want, inRAM(ram, tc.pa))
		}
	}
}
