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
	// The direct map at its full 64 TB, 32 TB of vmalloc, 1 TB of vmemmap
	// (64 TB / 4 KiB * 64 B).
	want := []struct {
		base VirtAddr
		size uint64
	}{
		{0xffff888000000000, 64 * TB},
		{VirtAddr(0xffff888000000000 + 64*TB + GB), 32 * TB},
		{VirtAddr(0xffff888000000000 + 96*TB + 2*GB), 1 * TB},
	}
	for i, w := range want {
		if r := k.Regions[i]; r.Base != w.base || r.Size != w.size {
			t.Errorf("draw 0: region %d = %v size %#x, want %v size %#x", i, r.Base, r.Size, w.base, w.size)
		}
	}
	// The window is 0xfffffe0000000000 - 0xffff888000000000 = 117.5 TB;
	// 97 TB of regions and two 1 GiB gaps leave 20.5 TB - 2 GiB to share:
	// a third for the first draw.
	remain := uint64(kaslrEnd-0xffff888000000000) - 97*TB - 2*GB
	if got, want := k.Regions[0].Choices, remain/3/GB+1; got != want {
		t.Errorf("direct map choices = %d, want %d", got, want)
	}
	if bits := k.Regions[0].EntropyBits(); bits != 12 {
		t.Errorf("direct map entropy = %d bits, want 12 (6.8 TB in 1 GiB steps)", bits)
	}

	max := RandomizeMemory(Mode5Level, 6<<30, func() uint64 { return ^uint64(0) })
	if err := max.Check(); err != nil {
		t.Errorf("all-ones draw: %v", err)
	}
}

// TestMeasuredBases feeds the model the bases Debian's Linux 6.1 drew
// under QEMU 7.2 microvm, -m 2G -cpu max: the first two 4-level sets and the
// first 5-level one as issue 12 measured them, the rest read by
// physmap-linux -kaslr from the variables. Each must be one physmap can
// draw; with the direct map trimmed to RAM + 10 TB, as upstream 6.1's
// kaslr.c would, no 4-level set is.
func TestMeasuredBases(t *testing.T) {
	sets := map[Mode][][3]VirtAddr{
		Mode4Level: {
			{0xffff8b4e40000000, 0xffffd12c40000000, 0xfffff6cf00000000},
			{0xffff8b9200000000, 0xffffcde3c0000000, 0xfffffa8ac0000000},
			{0xffff8a1d00000000, 0xffffd04900000000, 0xfffff89880000000},
			{0xffff8b1540000000, 0xffffd20100000000, 0xfffff25700000000},
		},
		Mode5Level: {
			{0xff2e4e7a00000000, 0xff6ab74f00000000, 0xffea9f0400000000},
			{0xff3cf41b80000000, 0xff5e3e6c80000000, 0xfffd28a240000000},
			{0xff44769340000000, 0xff71f6c700000000, 0xfffad47cc0000000},
			{0xff2f222980000000, 0xff5846de40000000, 0xffcedfd5c0000000},
		},
	}
	for mode, ss := range sets {
		for _, b := range ss {
			if err := Drawable(mode, 2<<30, b); err != nil {
				t.Errorf("%v %v: %v", mode, b, err)
			}
		}
	}
	// The trimmed model, by hand for the first 4-level set: vmalloc_base
	// is 69.9 TB past page_offset_base, 58.9 TB past an 11 TB direct map,
	// more than half of the 70.7 TB such a model would have left.
	b := sets[Mode4Level][0]
	if gap := uint64(b[1]-b[0]) - 11*TB; gap <= (uint64(kaslrEnd-0xffff888000000000)-44*TB-uint64(b[0]-0xffff888000000000))/2 {
		t.Errorf("the first 4-level set fits a trimmed direct map too (gap %d GB)", gap/GB)
	}
	// A base off the 1 GiB grid, or past its share, is not drawable.
	if err := Drawable(Mode4Level, 2<<30, [3]VirtAddr{0xffff8b4e40001000, 0xffffd12c40000000, 0xfffff6cf00000000}); err == nil {
		t.Error("a misaligned base is drawable")
	}
	if err := Drawable(Mode4Level, 2<<30, [3]VirtAddr{VirtAddr(0xffff8b4e40000000 + 8*TB), VirtAddr(0xffffd12c40000000 + 8*TB), 0xfffff6cf00000000}); err == nil {
		t.Error("a base past its share is drawable")
	}
}

func TestMemoryKASLRCheckFails(t *testing.T) {
	good := func() *MemoryKASLR { return RandomizeMemory(Mode4Level, 6<<30, func() uint64 { return 12345 << 30 }) }
	for name, corrupt := range map[string]func(k *MemoryKASLR){
		"misaligned":      func(k *MemoryKASLR) { k.Regions[1].Base += 4096 },
		"overlapping":     func(k *MemoryKASLR) { k.Regions[1].Base = k.Regions[0].Base },
		"too close":       func(k *MemoryKASLR) { k.Regions[2].Base = k.Regions[1].Base.Add(k.Regions[1].Size) },
		"outside window":  func(k *MemoryKASLR) { k.Regions[2].Base = k.End },
		"direct map tiny": func(k *MemoryKASLR) { k.MaxPhys = PhysAddr(65 * TB) },
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
