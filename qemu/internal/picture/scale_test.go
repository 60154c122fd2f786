package picture

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/physmap/physmap/kernel/dump"
	"github.com/physmap/physmap/mm"
)

// testScale is the scale with round numbers, for exact heights.
var testScale = ScaleParams{MinPiece: 10, PerDoubling: 2, Cut: 50}

func TestScaleHeights(t *testing.T) {
	// [0, 4K) [4K, 2M) [2M, 1T) [1T, UserEnd) hole [KernelStart, top).
	m := mm.Mode4Level
	s := NewScale(m, testScale, []mm.VirtAddr{0x1000, 0x200000, 1 << 40, m.UserEnd(), m.KernelStart()}, nil)
	log2 := func(n float64) float64 { return math.Log2(n) }
	want := []struct {
		start, end mm.VirtAddr
		h          float64
	}{
		{0, 0x1000, 10},
		{0x1000, 0x200000, 10 + 2*(log2(0x200000-0x1000)-12)},
		{0x200000, 1 << 40, 10 + 2*(log2(1<<40-0x200000)-12)},
		{m.UserEnd(), m.KernelStart(), 50}, // non-canonical: fixed
		{m.KernelStart(), 0, 10 + 2*(47-12)},
	}
	for _, w := range want {
		_, h := s.Span(w.start, w.end)
		if math.Abs(h-w.h) > 1e-9 {
			t.Errorf("height of [%#x, %#x) = %.3f, want %.3f", uint64(w.start), uint64(w.end), h, w.h)
		}
	}
	if s.Y(0) != 0 || s.YEnd(0) != s.Height() {
		t.Errorf("Y(0) = %v, YEnd(top) = %v, Height = %v", s.Y(0), s.YEnd(0), s.Height())
	}
	// Linear inside a piece.
	if y, mid := s.Y(0x200000), s.Y(0x200000+(1<<40-0x200000)/2); math.Abs(mid-y-(s.Y(1<<40)-y)/2) > 1e-6 {
		t.Errorf("Y is not linear inside a piece: %v %v %v", y, mid, s.Y(1<<40))
	}
}

// addresses returns the cuts, their neighbours and random addresses,
// sorted.
func addresses(cuts []mm.VirtAddr, n int) []mm.VirtAddr {
	r := rand.New(rand.NewPCG(1, 2))
	var as []mm.VirtAddr
	for _, c := range cuts {
		as = append(as, c, c-1, c+1)
	}
	for range n {
		as = append(as, mm.VirtAddr(r.Uint64()), mm.VirtAddr(r.Uint64()>>r.IntN(64)))
	}
	slices.Sort(as)
	return slices.Compact(as)
}

func TestScaleMonotonic(t *testing.T) {
	for _, file := range consoles {
		t.Run(file, func(t *testing.T) {
			v := pictureOf(t, file)
			cuts := v.m.cuts()
			// Non-decreasing at every address (float64 cannot tell one byte
			// from the next in a piece of terabytes) ...
			prev := 0.0
			for _, a := range addresses(cuts, 5000) {
				y := v.sc.Y(a)
				if y < prev {
					t.Fatalf("Y(%#x) = %v, above the previous address's %v", uint64(a), y, prev)
				}
				if y < 0 || y > v.sc.Height() {
					t.Fatalf("Y(%#x) = %v outside [0, %v]", uint64(a), y, v.sc.Height())
				}
				prev = y
			}
			// ... and strictly increasing from one cut to the next.
			for i := 1; i < len(v.sc.cuts); i++ {
				if a, b := v.sc.cuts[i-1], v.sc.cuts[i]; v.sc.Y(b) <= v.sc.Y(a) {
					t.Errorf("Y(%#x) = %v not below Y(%#x) = %v", uint64(b), v.sc.Y(b), uint64(a), v.sc.Y(a))
				}
			}
		})
	}
}

func TestScaleRegionsVisible(t *testing.T) {
	for _, file := range consoles {
		t.Run(file, func(t *testing.T) {
			v := pictureOf(t, file)
			heights := map[string]float64{}
			for i, r := range v.m.regions {
				_, h := v.sc.Span(mm.VirtAddr(r.Start), mm.VirtAddr(r.End))
				heights[r.Name] = h
				if h < scaleParams.MinPiece {
					t.Errorf("%s: %.1f px, under the minimum %.1f", r.Name, h, scaleParams.MinPiece)
				}
				if need := float64(len(v.lines[i])) * lineH; h < need {
					t.Errorf("%s: %.1f px, too short for its %d label lines (%.0f px)", r.Name, h, len(v.lines[i]), need)
				}
				if r.nonCanon && math.Abs(h-scaleParams.Cut) > 1e-6 {
					t.Errorf("%s: non-canonical hole %.1f px, want the cut band's %.1f", r.Name, h, scaleParams.Cut)
				}
			}
			// The 4 KiB vsyscall page shows, and the direct map is taller.
			vsyscall := regionBySymbol(t, v, "VSYSCALL_ADDR")
			direct := regionBySymbol(t, v, directMapSymbol)
			if heights[direct.Name] <= heights[vsyscall.Name] {
				t.Errorf("direct map %.1f px, not taller than the vsyscall page's %.1f px", heights[direct.Name], heights[vsyscall.Name])
			}
			// Every run and every alias piece has a height.
			for _, r := range v.m.runs {
				if _, h := v.sc.Span(mm.VirtAddr(r.VA), mm.VirtAddr(r.End())); h < scaleParams.MinPiece {
					t.Errorf("run at %#x: %.1f px", uint64(r.VA), h)
				}
			}
			for _, a := range v.m.aliases {
				for _, pt := range a.parts {
					if _, h := v.sc.Span(pt.va, pt.va.Add(pt.len)); h < scaleParams.MinPiece {
						t.Errorf("%s at %#x: %.1f px", a.what, uint64(pt.va), h)
					}
				}
			}
		})
	}
}

// Without floors, a longer piece is never shorter.
func TestScaleLogOrder(t *testing.T) {
	m := mm.Mode5Level
	cuts := []mm.VirtAddr{m.UserEnd(), m.KernelStart()}
	r := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		cuts = append(cuts, mm.VirtAddr(r.Uint64()>>r.IntN(64)))
	}
	s := NewScale(m, scaleParams, cuts, nil)
	for i := range s.cuts {
		for j := range s.cuts {
			if !m.Canonical(s.cuts[i]) || !m.Canonical(s.cuts[j]) {
				continue
			}
			hi, hj := s.ys[i+1]-s.ys[i], s.ys[j+1]-s.ys[j]
			if s.pieceLen(i) > s.pieceLen(j) && hi < hj {
				t.Fatalf("piece %#x (%g bytes) %.2f px < piece %#x (%g bytes) %.2f px",
					uint64(s.cuts[i]), s.pieceLen(i), hi, uint64(s.cuts[j]), s.pieceLen(j), hj)
			}
		}
	}
}

func TestScaleFloor(t *testing.T) {
	m := mm.Mode4Level
	s := NewScale(m, testScale, []mm.VirtAddr{0x1000, 0x2000, 0x3000}, []Floor{{Start: 0x1000, End: 0x3000, Min: 100}})
	if _, h := s.Span(0x1000, 0x3000); math.Abs(h-100) > 1e-9 {
		t.Errorf("floored span %.2f px, want 100", h)
	}
	if _, h := s.Span(0x1000, 0x2000); math.Abs(h-50) > 1e-9 {
		t.Errorf("floor not shared evenly: %.2f px, want 50", h)
	}
	if _, h := s.Span(0, 0x1000); h != 10 {
		t.Errorf("piece outside the floor %.2f px, want 10", h)
	}
}

func regionBySymbol(t *testing.T, v *picture, sym string) dump.Region {
	t.Helper()
	for _, r := range v.m.regions {
		if r.Symbol == sym {
			return r.Region
		}
	}
	t.Fatalf("no region with symbol %s", sym)
	return dump.Region{}
}
