package mm

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func TestRandomizeMemoryInvariants(t *testing.T) {
	for _, mode := range []Mode{Mode4Level, Mode5Level} {
		for _, maxPhys := range []PhysAddr{512 << 20, 6 << 30, 3 * PhysAddr(TB)} {
			r := rand.New(rand.NewPCG(1, uint64(maxPhys)))
			seen := map[VirtAddr]bool{}
			for range 2000 {
				k := RandomizeMemory(mode, maxPhys, r.Uint64)
				if err := k.Check(); err != nil {
					t.Fatalf("%v, RAM to %v: %v", mode, maxPhys, err)
				}
				if err := NewLayout(mode, k.LayoutOptions()).Validate(); err != nil {
					t.Fatalf("%v, RAM to %v: randomized layout invalid: %v", mode, maxPhys, err)
				}
				seen[k.Regions[0].Base] = true
			}
			if len(seen) < 100 {
				t.Errorf("%v: 2000 draws gave only %d direct-map bases", mode, len(seen))
			}
		}
	}
}

// TestRandomizeMemoryKnownDraws pins the arithmetic with hand-computed
// cases: a draw of 0 packs the regions at the start of the window, 1 GiB
// apart; a draw of all ones takes the whole share of each region.
func TestRandomizeMemoryKnownDraws(t *testing.T) {
	k := RandomizeMemory(Mode4Level, 6<<30, func() uint64 { return 0 })
	// 6 GiB of RAM: 1 + 10 TB of direct map, 32 TB of vmalloc, 1 TB of
	// vmemmap (11 TB / 4 KiB * 64 B = 0.17 TB, rounded up).
	want := []struct {
		base VirtAddr
		size uint64
	}{
		{0xffff888000000000, 11 * TB},
		{VirtAddr(0xffff888000000000 + 11*TB + GB), 32 * TB},
		{VirtAddr(0xffff888000000000 + 43*TB + 2*GB), 1 * TB},
	}
	for i, w := range want {
		if r := k.Regions[i]; r.Base != w.base || r.Size != w.size {
			t.Errorf("draw 0: region %d = %v size %#x, want %v size %#x", i, r.Base, r.Size, w.base, w.size)
		}
	}
	// The window is 0xfffffe0000000000 - 0xffff888000000000 = 117.5 TB;
	// 44 TB of regions and two 1 GiB gaps leave 73.5 TB - 2 GiB to share:
	// a third for the first draw.
	remain := uint64(kaslrEnd-0xffff888000000000) - 44*TB - 2*GB
	if got, want := k.Regions[0].Choices, remain/3/GB+1; got != want {
		t.Errorf("direct map choices = %d, want %d", got, want)
	}
	if bits := k.Regions[0].EntropyBits(); bits != 14 {
		t.Errorf("direct map entropy = %d bits, want 14 (24.5 TB in 1 GiB steps)", bits)
	}

	max := RandomizeMemory(Mode5Level, 6<<30, func() uint64 { return ^uint64(0) })
	if err := max.Check(); err != nil {
		t.Errorf("all-ones draw: %v", err)
	}
}

func TestMemoryKASLRCheckFails(t *testing.T) {
	good := func() *MemoryKASLR { return RandomizeMemory(Mode4Level, 6<<30, func() uint64 { return 12345 << 30 }) }
	for name, corrupt := range map[string]func(k *MemoryKASLR){
		"misaligned":      func(k *MemoryKASLR) { k.Regions[1].Base += 4096 },
		"overlapping":     func(k *MemoryKASLR) { k.Regions[1].Base = k.Regions[0].Base },
		"too close":       func(k *MemoryKASLR) { k.Regions[2].Base = k.Regions[1].Base.Add(k.Regions[1].Size) },
		"outside window":  func(k *MemoryKASLR) { k.Regions[2].Base = k.End },
		"direct map tiny": func(k *MemoryKASLR) { k.MaxPhys = PhysAddr(20 * TB) },
	} {
		k := good()
		if err := k.Check(); err != nil {
			t.Fatalf("%s: the uncorrupted draw fails: %v", name, err)
		}
		corrupt(k)
		if err := k.Check(); !errors.Is(err, ErrKASLR) {
			t.Errorf("%s: Check = %v, want ErrKASLR", name, err)
		}
	}
}
