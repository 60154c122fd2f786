package mm

import "fmt"

// SparseMem is a simulated physical memory: a set of frames keyed by
// PhysAddr, created on first write, inside declared backing ranges. An
// access outside them panics, so a physical address confused with a
// virtual one (or a host pointer) fails loudly. Host tools can also fill
// it with frames read from a guest and walk them with [Open].
type SparseMem struct {
	ranges []PhysRange
	frames map[PhysAddr]*[entriesPerPT]uint64
	// one-entry cache of the last frame touched: walks stay on one table.
	lastPA PhysAddr
	last   *[entriesPerPT]uint64
}

// NewSparseMem returns a memory backed in the given ranges; it reads as
// zero until written.
func NewSparseMem(backing ...PhysRange) *SparseMem {
	return &SparseMem{
		ranges: append([]PhysRange(nil), backing...),
		frames: make(map[PhysAddr]*[entriesPerPT]uint64),
		lastPA: ^PhysAddr(0),
	}
}

func (m *SparseMem) frame(pa PhysAddr, create bool) *[entriesPerPT]uint64 {
	base := pa.AlignDown(uint64(Size4K))
	if base == m.lastPA {
		return m.last
	}
	f := m.frames[base]
	if f == nil {
		ok := false
		for _, r := range m.ranges {
			if r.Contains(pa) {
				ok = true
				break
			}
		}
		if !ok {
			panic(fmt.Sprintf("mm: SparseMem: access to unbacked physical address %v", pa))
		}
		if !create {
			return nil
		}
		f = new([entriesPerPT]uint64)
		m.frames[base] = f
	}
	m.lastPA, m.last = base, f
	return f
}

func checkAligned8(pa PhysAddr) {
	if !pa.IsAligned(entrySize) {
		panic(fmt.Sprintf("mm: SparseMem: misaligned access at %v", pa))
	}
}

// Read64 implements PhysMem.
func (m *SparseMem) Read64(pa PhysAddr) uint64 {
	checkAligned8(pa)
	f := m.frame(pa, false)
	if f == nil {
		return 0
	}
	return f[(pa&0xfff)/entrySize]
}

// Write64 implements PhysMem.
func (m *SparseMem) Write64(pa PhysAddr, v uint64) {
	checkAligned8(pa)
	m.frame(pa, true)[(pa&0xfff)/entrySize] = v
}

// ViewFrame implements FrameViewer. A frame never written has no memory
// yet, which a later write creates: for it, and outside the backing
// ranges, ViewFrame returns nil, so that reads go through Read64, which
// sees the write or panics.
func (m *SparseMem) ViewFrame(pa PhysAddr) *[entriesPerPT]uint64 {
	if !pa.IsAligned(uint64(Size4K)) {
		panic(fmt.Sprintf("mm: SparseMem: ViewFrame of misaligned %v", pa))
	}
	if pa == m.lastPA {
		return m.last
	}
	f := m.frames[pa]
	if f != nil {
		m.lastPA, m.last = pa, f
	}
	return f
}

// ZeroFrame implements PhysMem.
func (m *SparseMem) ZeroFrame(pa PhysAddr) {
	if !pa.IsAligned(uint64(Size4K)) {
		panic(fmt.Sprintf("mm: SparseMem: ZeroFrame of misaligned %v", pa))
	}
	if f := m.frame(pa, false); f != nil {
		*f = [entriesPerPT]uint64{}
	}
}

// Frames returns how many frames have been written.
func (m *SparseMem) Frames() int { return len(m.frames) }
