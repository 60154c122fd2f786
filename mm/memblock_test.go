package mm

import (
	"errors"
	"testing"
)

func TestMemblock(t *testing.T) {
	ram := []PhysRange{
		{0x7_4000_0000, 0x7_4001_0000},       // 16 frames
		{0x7_4000_8000, 0x7_4001_2000},       // overlaps: merged up to ...12000
		{0x9_0000_0800, 0x9_0000_3800},       // trimmed inward to 2 frames
		{0x1_0000_0000, 0x1_0000_0000 + 512}, // less than a frame: dropped
	}
	reserved := []PhysRange{{0x7_4000_2000, 0x7_4000_4000}} // 2 frames
	m := NewMemblock(ram, reserved)
	if got := m.RAM(); len(got) != 2 || got[0] != (PhysRange{0x7_4000_0000, 0x7_4001_2000}) || got[1] != (PhysRange{0x9_0000_1000, 0x9_0000_3000}) {
		t.Fatalf("RAM %v", got)
	}
	if n := m.FreeFrames(); n != 18-2+2 {
		t.Fatalf("free frames %d, want 18", n)
	}
	// Single frames come from the bottom and skip the reserved hole.
	var got []PhysAddr
	for i := 0; i < 3; i++ {
		pa, err := m.AllocFrame()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, pa)
	}
	if got[0] != 0x7_4000_0000 || got[1] != 0x7_4000_1000 || got[2] != 0x7_4000_4000 {
		t.Fatalf("frames %v", got)
	}
	if !m.Owns(got[1].Add(0x10)) || m.Owns(0x7_4000_2000) || m.InUse() != 3 {
		t.Fatal("ownership wrong")
	}
	// Double free and foreign frees are detected.
	if err := m.FreeFrame(got[1]); err != nil {
		t.Fatal(err)
	}
	if err := m.FreeFrame(got[1]); !errors.Is(err, ErrDoubleFree) {
		t.Fatalf("double free: %v", err)
	}
	if err := m.FreeFrame(0x7_4000_2000); !errors.Is(err, ErrNotOwned) {
		t.Fatalf("reserved free: %v", err)
	}
	if err := m.FreeFrame(0x5000); !errors.Is(err, ErrNotOwned) {
		t.Fatalf("foreign free: %v", err)
	}
	// Aligned runs.
	pa, err := m.AllocAligned(4, 0x8000)
	if err != nil || pa != 0x7_4000_8000 {
		t.Fatalf("AllocAligned = %v, %v", pa, err)
	}
	if _, err := m.AllocAligned(8, 0x8000); !errors.Is(err, ErrNoMemory) {
		t.Fatalf("AllocAligned too big: %v", err)
	}
	if err := m.FreeRun(pa, 4); err != nil {
		t.Fatal(err)
	}
	if err := m.FreeRun(pa, 1); !errors.Is(err, ErrDoubleFree) {
		t.Fatalf("FreeRun twice: %v", err)
	}
	// Scattered frames are never adjacent.
	sc, err := m.AllocScattered(6)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(sc); i++ {
		if sc[i] == sc[i-1].Add(0x1000) || sc[i] <= sc[i-1] {
			t.Fatalf("scattered frames %v are adjacent or unordered", sc)
		}
	}
	before := m.InUse()
	if _, err := m.AllocScattered(100); !errors.Is(err, ErrNoMemory) || m.InUse() != before {
		t.Fatalf("AllocScattered too many: %v, in use %d -> %d", err, before, m.InUse())
	}
	// Everything freed means no leak.
	for _, pa := range append(sc, got[0], got[2]) {
		if err := m.FreeFrame(pa); err != nil {
			t.Fatal(err)
		}
	}
	if m.InUse() != 0 || len(m.Allocated()) != 0 || m.FreeFrames() != 18 {
		t.Fatalf("leak: %v, free %d", m.Allocated(), m.FreeFrames())
	}
	// Exhaustion.
	for i := 0; i < 18; i++ {
		if _, err := m.AllocFrame(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.AllocFrame(); !errors.Is(err, ErrNoMemory) {
		t.Fatalf("exhausted: %v", err)
	}
	// Frees in any order merge back.
	for _, pa := range m.Allocated() {
		if pa.IsAligned(0x2000) {
			if err := m.FreeFrame(pa); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, pa := range m.Allocated() {
		if err := m.FreeFrame(pa); err != nil {
			t.Fatal(err)
		}
	}
	if r := m.free; len(r) != 3 {
		t.Fatalf("free list did not merge: %v", r)
	}
}

func TestMemblockPreconditions(t *testing.T) {
	m := NewMemblock([]PhysRange{tableRAM}, nil)
	for _, f := range []func(){
		func() { m.AllocAligned(0, 0x1000) },
		func() { m.AllocAligned(1, 0x1800) },
		func() { m.AllocScattered(-1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		}()
	}
}

// TestAllocHigh: frames from the top, each once, the range's top first.
func TestAllocHigh(t *testing.T) {
	m := NewMemblock([]PhysRange{{0x100000, 0x200000}, {0x400000, 0x403000}}, []PhysRange{{0x402000, 0x403000}})
	for _, want := range []PhysAddr{0x401000, 0x400000, 0x1ff000} {
		pa, err := m.AllocHigh()
		if err != nil || pa != want {
			t.Fatalf("AllocHigh = %v, %v; want %v", pa, err, want)
		}
		if !m.Owns(pa) {
			t.Errorf("%v not owned after AllocHigh", pa)
		}
	}
	if err := m.FreeFrame(0x400000); err != nil {
		t.Fatal(err)
	}
	if pa, _ := m.AllocHigh(); pa != 0x400000 {
		t.Errorf("after a free, AllocHigh = %v, want 0x400000", pa)
	}
}
