package mm

import (
	"fmt"
	"slices"
	"sort"
)

// Memblock is a frame allocator over the RAM ranges of a firmware memory
// map, minus reserved holes: physmap's analogue of Linux's memblock. It
// hands out single frames (it is a [FrameAllocator]), aligned contiguous
// runs, and deliberately scattered frames; it remembers every frame it has
// handed out, so it detects double frees and leaks and can tell the checker
// which frames it owns. Free and used frames are both kept as ranges, so its
// own memory grows with the number of runs, not of frames: a kernel mapping
// the memory map of a 256 GiB machine hands out a million frames in a few
// thousand runs.
//
// Memblock is not safe for concurrent use.
type Memblock struct {
	ram  []PhysRange // usable RAM, sorted, page aligned
	free []PhysRange // free frames, sorted, disjoint, not adjacent
	used []PhysRange // frames handed out, sorted, disjoint, not adjacent
}

const frameSize = uint64(Size4K)

// NewMemblock returns an allocator over ram minus reserved. Ranges are
// trimmed inward to whole 4 KiB frames; they may be unsorted and overlap.
func NewMemblock(ram, reserved []PhysRange) *Memblock {
	m := &Memblock{}
	for _, r := range ram {
		r = PhysRange{r.Start.AlignUp(frameSize), r.End.AlignDown(frameSize)}
		if !r.Empty() {
			m.ram = append(m.ram, r)
		}
	}
	m.ram = mergeRanges(m.ram)
	m.free = slices.Clone(m.ram)
	for _, r := range reserved {
		r = PhysRange{r.Start.AlignDown(frameSize), r.End.AlignUp(frameSize)}
		m.free = subtract(m.free, r)
	}
	return m
}

// mergeRanges sorts rs and joins overlapping or adjacent ranges.
func mergeRanges(rs []PhysRange) []PhysRange {
	sort.Slice(rs, func(i, j int) bool { return rs[i].Start < rs[j].Start })
	out := rs[:0]
	for _, r := range rs {
		if r.Empty() {
			continue
		}
		if n := len(out); n > 0 && r.Start <= out[n-1].End {
			out[n-1].End = max(out[n-1].End, r.End)
			continue
		}
		out = append(out, r)
	}
	return out
}

// subtract removes cut from the sorted, disjoint rs.
func subtract(rs []PhysRange, cut PhysRange) []PhysRange {
	var out []PhysRange
	for _, r := range rs {
		if !r.Overlaps(cut) {
			out = append(out, r)
			continue
		}
		if r.Start < cut.Start {
			out = append(out, PhysRange{r.Start, cut.Start})
		}
		if cut.End < r.End {
			out = append(out, PhysRange{cut.End, r.End})
		}
	}
	return out
}

// AllocFrame implements FrameAllocator: it returns the lowest free frame.
func (m *Memblock) AllocFrame() (PhysAddr, error) {
	if len(m.free) == 0 {
		return 0, fmt.Errorf("memblock: alloc frame: %w", ErrNoMemory)
	}
	pa := m.free[0].Start
	m.take(0, PhysRange{pa, pa.Add(frameSize)})
	return pa, nil
}

// AllocHigh returns the highest free frame.
func (m *Memblock) AllocHigh() (PhysAddr, error) {
	if len(m.free) == 0 {
		return 0, fmt.Errorf("memblock: alloc high frame: %w", ErrNoMemory)
	}
	i := len(m.free) - 1
	pa := m.free[i].End - PhysAddr(frameSize)
	m.take(i, PhysRange{pa, pa.Add(frameSize)})
	return pa, nil
}

// AllocAligned returns the lowest run of n contiguous frames whose start
// is aligned to align bytes.
//
// Precondition: n > 0 and align is a power of two no smaller than 4 KiB.
func (m *Memblock) AllocAligned(n int, align uint64) (PhysAddr, error) {
	if n <= 0 || align < frameSize || align&(align-1) != 0 {
		panic(fmt.Sprintf("memblock: AllocAligned(%d, %#x): bad arguments", n, align))
	}
	size := uint64(n) * frameSize
	for i, r := range m.free {
		start := r.Start.AlignUp(align)
		if start >= r.Start && start < r.End && uint64(r.End-start) >= size {
			m.take(i, PhysRange{start, start.Add(size)})
			return start, nil
		}
	}
	return 0, fmt.Errorf("memblock: alloc %d frames aligned %#x: %w", n, align, ErrNoMemory)
}

// AllocScattered returns n frames no two of which are adjacent, so that a
// mapping backed by them is virtually but not physically contiguous (the
// module area's case). It allocates all n or none.
//
// Precondition: n >= 0.
func (m *Memblock) AllocScattered(n int) ([]PhysAddr, error) {
	if n < 0 {
		panic("memblock: AllocScattered of a negative count")
	}
	out := make([]PhysAddr, 0, n)
	last := PhysAddr(0)
	for _, r := range m.free {
		for pa := r.Start; pa < r.End && len(out) < n; pa = pa.Add(2 * frameSize) {
			if len(out) > 0 && pa == last.Add(frameSize) {
				pa = pa.Add(frameSize)
				if pa >= r.End {
					break
				}
			}
			out = append(out, pa)
			last = pa
		}
	}
	if len(out) < n {
		return nil, fmt.Errorf("memblock: alloc %d scattered frames: %w", n, ErrNoMemory)
	}
	for _, pa := range out {
		m.take(m.freeIndex(pa), PhysRange{pa, pa.Add(frameSize)})
	}
	return out, nil
}

// freeIndex returns the index of the free range holding pa, or -1.
func (m *Memblock) freeIndex(pa PhysAddr) int { return rangeIndex(m.free, pa) }

// take removes cut, which lies inside m.free[i], and marks its frames used.
func (m *Memblock) take(i int, cut PhysRange) {
	m.free = removeRange(m.free, i, cut)
	m.used = insertRange(m.used, cut)
}

// insertRange adds r, disjoint from every range of rs, to the sorted rs,
// joining it with the ranges it touches.
func insertRange(rs []PhysRange, r PhysRange) []PhysRange {
	i := sort.Search(len(rs), func(i int) bool { return rs[i].Start > r.Start })
	joinPrev := i > 0 && rs[i-1].End == r.Start
	joinNext := i < len(rs) && rs[i].Start == r.End
	switch {
	case joinPrev && joinNext:
		rs[i-1].End = rs[i].End
		return slices.Delete(rs, i, i+1)
	case joinPrev:
		rs[i-1].End = r.End
	case joinNext:
		rs[i].Start = r.Start
	default:
		rs = slices.Insert(rs, i, r)
	}
	return rs
}

// removeRange takes cut out of rs[i], which holds it.
func removeRange(rs []PhysRange, i int, cut PhysRange) []PhysRange {
	r := rs[i]
	switch {
	case cut.Start == r.Start && cut.End == r.End:
		return slices.Delete(rs, i, i+1)
	case cut.Start == r.Start:
		rs[i].Start = cut.End
	case cut.End == r.End:
		rs[i].End = cut.Start
	default:
		rs[i].End = cut.Start
		rs = slices.Insert(rs, i+1, PhysRange{cut.End, r.End})
	}
	return rs
}

// rangeIndex returns the index of the range of the sorted, disjoint rs
// holding pa, or -1.
func rangeIndex(rs []PhysRange, pa PhysAddr) int {
	i := sort.Search(len(rs), func(i int) bool { return rs[i].End > pa })
	if i < len(rs) && rs[i].Contains(pa) {
		return i
	}
	return -1
}

// FreeFrame implements FrameAllocator. Freeing a frame twice returns an
// error wrapping ErrDoubleFree; freeing one it never handed out, one
// wrapping ErrNotOwned.
func (m *Memblock) FreeFrame(pa PhysAddr) error {
	u := -1
	if pa.IsAligned(frameSize) {
		u = rangeIndex(m.used, pa)
	}
	if u < 0 {
		if pa.IsAligned(frameSize) && m.freeIndex(pa) >= 0 {
			return fmt.Errorf("memblock: free %v: %w", pa, ErrDoubleFree)
		}
		return fmt.Errorf("memblock: free %v: %w", pa, ErrNotOwned)
	}
	m.used = removeRange(m.used, u, PhysRange{pa, pa.Add(frameSize)})
	m.free = insertRange(m.free, PhysRange{pa, pa.Add(frameSize)})
	return nil
}

// FreeRun frees n frames starting at pa, as returned by AllocAligned. It
// stops at the first frame it cannot free.
func (m *Memblock) FreeRun(pa PhysAddr, n int) error {
	for i := 0; i < n; i++ {
		if err := m.FreeFrame(pa.Add(uint64(i) * frameSize)); err != nil {
			return err
		}
	}
	return nil
}

// Owns reports whether the frame holding pa is currently handed out by m.
func (m *Memblock) Owns(pa PhysAddr) bool { return rangeIndex(m.used, pa) >= 0 }

// InUse returns the number of frames handed out and not freed.
func (m *Memblock) InUse() int {
	n := 0
	for _, r := range m.used {
		n += int(r.Len() / frameSize)
	}
	return n
}

// FreeFrames returns the number of frames available.
func (m *Memblock) FreeFrames() uint64 {
	var n uint64
	for _, r := range m.free {
		n += r.Len() / frameSize
	}
	return n
}

// Allocated returns the frames in use, in address order (for leak reports).
func (m *Memblock) Allocated() []PhysAddr {
	out := make([]PhysAddr, 0, m.InUse())
	for _, r := range m.used {
		for pa := r.Start; pa < r.End; pa = pa.Add(frameSize) {
			out = append(out, pa)
		}
	}
	return out
}

// RAM returns the usable RAM ranges, sorted and merged.
func (m *Memblock) RAM() []PhysRange { return slices.Clone(m.ram) }
