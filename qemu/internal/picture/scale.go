package picture

import (
	"math"
	"slices"

	"github.com/physmap/physmap/mm"
)

// The address space spans 2^64 bytes and its regions run from a 4 KiB page
// to 64 TiB, with a hole of almost 2^64 between the canonical halves: no
// linear scale shows all of that. Scale is piecewise instead. The space is
// cut at every address worth marking (region bounds, run bounds, alias
// bounds, the canonical halves' ends); each piece between two cuts gets a
// height that grows with the logarithm of its length, and addresses inside
// a piece are placed linearly. So Y is monotonic, every piece is visible,
// and a bigger piece is never shorter than a smaller one in the same
// region, before the floors below stretch short regions to fit their text.

// ScaleParams sets the heights, in SVG pixels.
type ScaleParams struct {
	MinPiece    float64 // height of a 4 KiB (or smaller) piece
	PerDoubling float64 // added per doubling of the length above 4 KiB
	Cut         float64 // fixed height of a non-canonical piece
}

// pageBits is log2 of the smallest page, where PerDoubling starts to count.
const pageBits = 12

// Floor asks for a span of the space, [Start, End) with End 0 meaning the
// top of the space, to be at least Min high. The span must start and end at
// cuts.
type Floor struct {
	Start, End mm.VirtAddr
	Min        float64
}

// Scale maps a virtual address to a height from the top of the bar.
type Scale struct {
	cuts []mm.VirtAddr // ascending; cuts[0] == 0
	ys   []float64     // ys[i] is the top of piece i; ys[len(cuts)] the bottom
}

// pieceLen returns the length of the piece starting at cuts[i] as a float
// (the last piece ends at 2^64, which does not fit a uint64).
func (s *Scale) pieceLen(i int) float64 {
	if i+1 < len(s.cuts) {
		return float64(s.cuts[i+1] - s.cuts[i])
	}
	return float64(^uint64(0)-uint64(s.cuts[i])) + 1
}

// NewScale cuts the space at cuts (any order, duplicates allowed; 0 is
// always a cut) and places the pieces from y = 0 downwards in address
// order. A piece that starts at a non-canonical address in mode gets the
// fixed height p.Cut. Each floor then stretches its pieces evenly until
// the span is tall enough.
func NewScale(mode mm.Mode, p ScaleParams, cuts []mm.VirtAddr, floors []Floor) *Scale {
	s := &Scale{cuts: append([]mm.VirtAddr{0}, cuts...)}
	slices.Sort(s.cuts)
	s.cuts = slices.Compact(s.cuts)
	h := make([]float64, len(s.cuts))
	for i, c := range s.cuts {
		if !mode.Canonical(c) {
			h[i] = p.Cut
			continue
		}
		bits := math.Log2(s.pieceLen(i)) - pageBits
		h[i] = p.MinPiece + p.PerDoubling*math.Max(0, bits)
	}
	for _, f := range floors {
		first, last := s.piecesOf(f.Start, f.End)
		if first > last {
			continue
		}
		total := 0.0
		for i := first; i <= last; i++ {
			total += h[i]
		}
		if total < f.Min {
			extra := (f.Min - total) / float64(last-first+1)
			for i := first; i <= last; i++ {
				h[i] += extra
			}
		}
	}
	s.ys = make([]float64, len(s.cuts)+1)
	for i := range h {
		s.ys[i+1] = s.ys[i] + h[i]
	}
	return s
}

// piece returns the index of the piece holding a.
func (s *Scale) piece(a mm.VirtAddr) int {
	i, found := slices.BinarySearch(s.cuts, a)
	if found {
		return i
	}
	return i - 1
}

// piecesOf returns the first and last pieces of [start, end), end 0
// meaning the top of the space.
func (s *Scale) piecesOf(start, end mm.VirtAddr) (first, last int) {
	first = s.piece(start)
	if end == 0 {
		return first, len(s.cuts) - 1
	}
	return first, s.piece(end - 1)
}

// Y returns the height of address a from the top of the bar.
func (s *Scale) Y(a mm.VirtAddr) float64 {
	i := s.piece(a)
	frac := float64(a-s.cuts[i]) / s.pieceLen(i)
	return s.ys[i] + frac*(s.ys[i+1]-s.ys[i])
}

// YEnd returns the height of an exclusive end address, 0 meaning the top
// of the space (the bottom of the bar).
func (s *Scale) YEnd(end mm.VirtAddr) float64 {
	if end == 0 {
		return s.Height()
	}
	return s.Y(end)
}

// Span returns the top and height of [start, end), end 0 meaning the top
// of the space.
func (s *Scale) Span(start, end mm.VirtAddr) (y, h float64) {
	y = s.Y(start)
	return y, s.YEnd(end) - y
}

// Height returns the height of the whole space.
func (s *Scale) Height() float64 { return s.ys[len(s.ys)-1] }
