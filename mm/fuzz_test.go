package mm

import (
	"errors"
	"slices"
	"testing"
)

// seg is one mapping of the model: [va, va+n) -> [pa, pa+n) with attrs.
type seg struct {
	va    VirtAddr
	n     uint64
	pa    PhysAddr
	attrs Attr
}

func (s seg) last() VirtAddr { return s.va.Add(s.n - 1) }

// model is the trivial reference: a sorted list of disjoint segments.
type model struct{ segs []seg }

func (m *model) lookup(va VirtAddr) (PhysAddr, Attr, bool) {
	for _, s := range m.segs {
		if va >= s.va && va <= s.last() {
			return s.pa.Add(uint64(va - s.va)), s.attrs, true
		}
	}
	return 0, 0, false
}

// covered returns the bytes of [va, last] the model maps.
func (m *model) covered(va, last VirtAddr) uint64 {
	var n uint64
	for _, s := range m.segs {
		lo, hi := max(va, s.va), min(last, s.last())
		if lo <= hi {
			n += uint64(hi-lo) + 1
		}
	}
	return n
}

// cut removes [va, last] from every segment, returning the pieces cut out.
func (m *model) cut(va, last VirtAddr) []seg {
	var keep, out []seg
	for _, s := range m.segs {
		lo, hi := max(va, s.va), min(last, s.last())
		if lo > hi {
			keep = append(keep, s)
			continue
		}
		if s.va < lo {
			keep = append(keep, seg{s.va, uint64(lo - s.va), s.pa, s.attrs})
		}
		if hi < s.last() {
			keep = append(keep, seg{hi + 1, uint64(s.last() - hi), s.pa.Add(uint64(hi + 1 - s.va)), s.attrs})
		}
		out = append(out, seg{lo, uint64(hi-lo) + 1, s.pa.Add(uint64(lo - s.va)), s.attrs})
	}
	m.segs = keep
	return out
}

func (m *model) insert(ss ...seg) {
	m.segs = append(m.segs, ss...)
	slices.SortFunc(m.segs, func(a, b seg) int {
		if a.va < b.va {
			return -1
		}
		return 1
	})
}

// fuzzWindow is the 4 GiB of kernel space, from the 512 GiB aligned
// direct-map base, that the fuzz operations touch: four pud entries under
// one pgd entry, small enough that the model stays cheap.
const fuzzWindow = 4 << 30

// FuzzAddressSpace applies random Map, Unmap and Protect sequences to the
// tables and to the model, compares them by translation after each step
// and leaf by leaf at the end, and ends with the checker and a leak check.
// Each operation takes 6 bytes: kind, granule and PA skew, start, length,
// PA offset, attributes.
func FuzzAddressSpace(f *testing.F) {
	f.Add([]byte{0, 0x02, 1, 0, 2, 0x05, 0x11, 0, 0x00, 3, 0x00, 0x00, 0, 0x02, 2, 3, 0x00, 0x00})
	f.Add([]byte{1, 0x01, 0, 7, 0, 0x03, 0x02, 0x00, 3, 1, 0x00, 0x01, 0x01, 0x00, 100, 0, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 1 || len(data) > 1+6*64 {
			return
		}
		mode := modes[data[0]&1]
		data = data[1:]
		e := newEnv(t, mode)
		base := kbase(mode)
		m := &model{}
		granules := []uint64{uint64(Size4K), uint64(Size2M), uint64(Size1G)}
		for len(data) >= 6 {
			op, g, st, ln, po, at := data[0]%3, granules[data[1]%3], uint64(data[2]), uint64(data[3]), uint64(data[4]), data[5]
			data = data[6:]
			start := (st * g) % fuzzWindow
			units := ln%16 + 1
			if g == uint64(Size1G) {
				units = ln%2 + 1
			}
			length := min(units*g, fuzzWindow-start)
			va, last := base.Add(start), base.Add(start+length-1)
			pa := PhysAddr(0x40_0000_0000 + po*g)
			if at&0x80 != 0 && g < uint64(Size1G) {
				pa = pa.Add(uint64(Size4K)) // break huge alignment now and then
			}
			attrs := Attr(at) & (AttrWrite | AttrNX | AttrGlobal | AttrPWT | AttrPCD | AttrPAT)
			var err error
			switch op {
			case 0:
				err = e.do(func() error { return e.as.Map(va, pa, length, attrs, AllowAll) })
				if m.covered(va, last) != 0 {
					if !errors.Is(err, ErrAlreadyMapped) {
						t.Fatalf("Map over a mapping at %v: %v", va, err)
					}
				} else if err != nil {
					t.Fatalf("Map(%v, %v, %#x): %v", va, pa, length, err)
				} else {
					m.insert(seg{va, length, pa, attrs})
				}
			case 1:
				err = e.do(func() error { return e.as.Unmap(va, length) })
				if err != nil {
					t.Fatalf("Unmap(%v, %#x): %v", va, length, err)
				}
				m.cut(va, last)
			case 2:
				err = e.do(func() error { return e.as.Protect(va, length, attrs) })
				if m.covered(va, last) != length {
					if !errors.Is(err, ErrNotMapped) {
						t.Fatalf("Protect over a hole at %v: %v", va, err)
					}
				} else if err != nil {
					t.Fatalf("Protect(%v, %#x): %v", va, length, err)
				} else {
					pieces := m.cut(va, last)
					for i := range pieces {
						pieces[i].attrs = attrs
					}
					m.insert(pieces...)
				}
			}
			// Compare by translation at the edges of the range and at an
			// address the input picks.
			probe := base.Add((st*uint64(Size2M) + po*uint64(Size4K) + ln) % fuzzWindow).AlignDown(8)
			for _, a := range []VirtAddr{va - 0x1000, va, last &^ 0xfff, last + 1, probe} {
				if a < base || a >= base.Add(fuzzWindow) {
					continue
				}
				tr, terr := e.as.Translate(a)
				mpa, mattrs, ok := m.lookup(a)
				if ok != (terr == nil) || (ok && (tr.PA != mpa || tr.Attrs != mattrs)) {
					t.Fatalf("at %v: tables %v %v %v, model %v %v %v", a, tr.PA, tr.Attrs, terr, mpa, mattrs, ok)
				}
			}
		}
		// Leaf by leaf: every leaf agrees with the model, and together
		// they map exactly what the model maps.
		var total uint64
		for lf := range e.as.AllLeaves() {
			total += uint64(lf.Size)
			for _, a := range []VirtAddr{lf.VA, lf.VA.Add(uint64(lf.Size) - 0x1000)} {
				mpa, mattrs, ok := m.lookup(a)
				if !ok || mpa != lf.PA.Add(uint64(a-lf.VA)) || mattrs != lf.Attrs {
					t.Fatalf("leaf %v %v %v: model %v %v %v", lf.VA, lf.PA, lf.Attrs, mpa, mattrs, ok)
				}
			}
		}
		if want := m.covered(base, base.Add(fuzzWindow-1)); total != want {
			t.Fatalf("tables map %#x bytes, model %#x", total, want)
		}
		e.check()
		if err := e.as.Release(); err != nil {
			t.Fatal(err)
		}
		if n := e.alloc.InUse(); n != 0 {
			t.Fatalf("leak: %d frames after Release", n)
		}
	})
}
