package mm

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// want is one leaf the whole-space walk must find, written down by hand
// rather than derived from the tables.
type want struct {
	va    VirtAddr
	pa    PhysAddr
	size  PageSize
	attrs Attr
}

// wantLeaves compares every leaf of the address space, in address order,
// with the expected list.
func wantLeaves(t *testing.T, e *env, ws []want) {
	t.Helper()
	var got, exp []string
	for lf := range e.as.AllLeaves() {
		got = append(got, fmt.Sprintf("%v->%v %v %v", lf.VA, lf.PA, lf.Size, lf.Attrs))
		if lf.Range().Start != lf.VA || lf.PA != lf.Entry.Addr(lf.Level) || lf.Size.Level() != lf.Level {
			t.Errorf("leaf %v: inconsistent %+v", lf.VA, lf)
		}
	}
	for _, w := range ws {
		exp = append(exp, fmt.Sprintf("%v->%v %v %v", w.va, w.pa, w.size, w.attrs))
	}
	if !slices.Equal(got, exp) {
		t.Fatalf("leaves\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(exp, "\n     "))
	}
}

// expand lists n pages of size from va/pa.
func expand(va VirtAddr, pa PhysAddr, size PageSize, n int, attrs Attr) []want {
	var ws []want
	for i := range n {
		off := uint64(i) * uint64(size)
		ws = append(ws, want{va.Add(off), pa.Add(off), size, attrs})
	}
	return ws
}

// A 1 GiB page with 4 KiB pages on both sides, in both halves of both
// modes: each walk finds exactly those leaves, each address translates
// through the right leaf, and unmapping the 1 GiB page leaves the others.
func Test1GAnd4K(t *testing.T) {
	const g1 = uint64(Size1G)
	for _, mode := range modes {
		for _, half := range []struct {
			name string
			base VirtAddr
			user Attr
		}{{"kernel", kbase(mode), 0}, {"user", 0x40_0000_0000, AttrUser}} {
			t.Run(mode.String()+"/"+half.name, func(t *testing.T) {
				e := newEnv(t, mode)
				b := half.base
				maps := []want{
					{b.Add(g1 - 0x1000), 0x3_3fff_f000, Size4K, PageKernelRO | half.user},
					{b.Add(g1), 0x3_4000_0000, Size1G, PageKernel | half.user},
					{b.Add(2 * g1), 0x3_8000_0000, Size4K, PageKernelExec | half.user},
				}
				for _, m := range maps {
					if err := e.do(func() error { return e.as.Map(m.va, m.pa, uint64(m.size), m.attrs, AllowAll) }); err != nil {
						t.Fatal(err)
					}
				}
				wantLeaves(t, e, maps)
				for _, m := range maps {
					for _, off := range []uint64{0, uint64(m.size) / 2, uint64(m.size) - 8} {
						tr, err := e.as.Translate(m.va.Add(off))
						if err != nil || tr.PA != m.pa.Add(off) || tr.Size != m.size || tr.Attrs != m.attrs {
							t.Fatalf("Translate(%v) = %v %v %v %v, want %v %v %v", m.va.Add(off), tr.PA, tr.Size, tr.Attrs, err, m.pa.Add(off), m.size, m.attrs)
						}
					}
				}
				e.check()
				if err := e.do(func() error { return e.as.Unmap(b.Add(g1), g1) }); err != nil {
					t.Fatal(err)
				}
				wantLeaves(t, e, []want{maps[0], maps[2]})
				e.check()
			})
		}
	}
}

// Splitting a 2 MiB page, by Protect and by Unmap of one 4 KiB page in its
// middle, leaves 512 (or 511) ptes with the frames and attributes of the
// huge page but for the page changed.
func TestSplit2MPage(t *testing.T) {
	const attrs = PageKernel | AttrPCD
	for _, mode := range modes {
		base := kbase(mode).Add(uint64(Size2M))
		pa := PhysAddr(0x3_0020_0000)
		mid := base.Add(0x10_0000)
		t.Run(mode.String()+"/protect", func(t *testing.T) {
			e := newEnv(t, mode)
			if err := e.as.Map(base, pa, uint64(Size2M), attrs, AllowAll); err != nil {
				t.Fatal(err)
			}
			wantLeaves(t, e, []want{{base, pa, Size2M, attrs}})
			if err := e.do(func() error { return e.as.Protect(mid, 0x1000, PageKernelRO) }); err != nil {
				t.Fatal(err)
			}
			ws := expand(base, pa, Size4K, 256, attrs)
			ws = append(ws, want{mid, pa.Add(0x10_0000), Size4K, PageKernelRO})
			ws = append(ws, expand(mid.Add(0x1000), pa.Add(0x10_1000), Size4K, 255, attrs)...)
			wantLeaves(t, e, ws)
			e.check()
		})
		t.Run(mode.String()+"/unmap", func(t *testing.T) {
			e := newEnv(t, mode)
			if err := e.as.Map(base, pa, uint64(Size2M), attrs, AllowAll); err != nil {
				t.Fatal(err)
			}
			if err := e.do(func() error { return e.as.Unmap(mid, 0x1000) }); err != nil {
				t.Fatal(err)
			}
			ws := expand(base, pa, Size4K, 256, attrs)
			ws = append(ws, expand(mid.Add(0x1000), pa.Add(0x10_1000), Size4K, 255, attrs)...)
			wantLeaves(t, e, ws)
			e.check()
			// Unmapping the rest frees the pte table the split made.
			if err := e.do(func() error { return e.as.Unmap(base, uint64(Size2M)) }); err != nil {
				t.Fatal(err)
			}
			wantLeaves(t, e, nil)
			if n := e.alloc.InUse(); n != 1 {
				t.Fatalf("%d frames in use after unmapping everything, want the root", n)
			}
		})
	}
}

// Mappings of every size in both halves, at the bottom and the top of each,
// over the split direct map of a small machine: the walk of the whole space
// finds exactly the list written down here, and so does a walk of each
// part of it.
func TestWalkWholeSpace(t *testing.T) {
	const (
		k4 = uint64(Size4K)
		m2 = uint64(Size2M)
		g1 = uint64(Size1G)
	)
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			e := newEnv(t, mode)
			dm := kbase(mode)
			userTop := mode.UserEnd() - VirtAddr(k4)
			var ws []want
			add := func(va VirtAddr, pa PhysAddr, n uint64, a Attr, sizes PageSizes, w ...want) {
				t.Helper()
				if err := e.do(func() error { return e.as.Map(va, pa, n, a, sizes) }); err != nil {
					t.Fatalf("Map(%v, %v, %#x): %v", va, pa, n, err)
				}
				ws = append(ws, w...)
			}
			add(0, 0x5000, k4, AttrUser|AttrNX, AllowAll, want{0, 0x5000, Size4K, AttrUser | AttrNX})
			add(0x40_0000_0000, 0x1_0000_0000, g1+m2, AttrUser|AttrWrite|AttrNX, AllowAll,
				want{0x40_0000_0000, 0x1_0000_0000, Size1G, AttrUser | AttrWrite | AttrNX},
				want{0x40_4000_0000, 0x1_4000_0000, Size2M, AttrUser | AttrWrite | AttrNX})
			add(userTop, 0x6000, k4, AttrUser, AllowAll, want{userTop, 0x6000, Size4K, AttrUser})
			// The direct map of [0x1000, 0x8040_3000) the way Linux splits
			// it: 4K head, 2M to the first 1G, 1G, 2M, 4K tail.
			add(dm.Add(k4), 0x1000, 0x8040_2000, PageKernel, AllowAll)
			ws = append(ws, expand(dm.Add(k4), 0x1000, Size4K, 511, PageKernel)...)
			ws = append(ws, expand(dm.Add(m2), 0x20_0000, Size2M, 511, PageKernel)...)
			ws = append(ws, want{dm.Add(g1), 0x4000_0000, Size1G, PageKernel})
			ws = append(ws, expand(dm.Add(2*g1), 0x8000_0000, Size2M, 2, PageKernel)...)
			ws = append(ws, expand(dm.Add(2*g1+2*m2), 0x8040_0000, Size4K, 3, PageKernel)...)
			// Kernel text and a module page, and the last page of all.
			text := ^VirtAddr(0) - VirtAddr(2*g1) + 1
			add(text, 0x100_0000, 2*m2, PageKernelExec, AllowAll, expand(text, 0x100_0000, Size2M, 2, PageKernelExec)...)
			add(^VirtAddr(0)-VirtAddr(k4)+1, 0x7000, k4, PageKernelRO, AllowAll, want{^VirtAddr(0) - VirtAddr(k4) + 1, 0x7000, Size4K, PageKernelRO})
			wantLeaves(t, e, ws)
			e.check()
			// Each part of the space, walked alone, holds its part of the
			// list: a range starting inside a leaf includes that leaf.
			for _, r := range []VirtRange{
				{0, mode.UserEnd()}, {dm, dm.Add(g1 + 0x1000)}, {dm.Add(g1 + g1/2), dm.Add(g1 + g1/2 + 1)},
				{text.Add(m2 + 0x3000), ^VirtAddr(0) &^ 0xfff}, // all but the last page
			} {
				var got, exp []string
				for lf := range e.as.Leaves(r) {
					got = append(got, fmt.Sprint(lf.VA, lf.Size))
				}
				for _, w := range ws {
					if w.va.Add(uint64(w.size)-1) >= r.Start && w.va < r.End {
						exp = append(exp, fmt.Sprint(w.va, w.size))
					}
				}
				if !slices.Equal(got, exp) {
					t.Errorf("leaves of [%v, %v): got %v, want %v", r.Start, r.End, got, exp)
				}
			}
			if got, want := e.as.TablePages(), e.alloc.InUse(); got != want {
				t.Errorf("TablePages %d, frames in use %d", got, want)
			}
			if err := e.as.Release(); err != nil {
				t.Fatal(err)
			}
			if n := e.alloc.InUse(); n != 0 {
				t.Fatalf("leak: %d frames after Release", n)
			}
		})
	}
}

// A translation that misses keeps the walk as far as it went: the error
// says at which level it stopped, and its *WalkError holds the entries
// above that level, the one that stopped it, and their permissions.
func TestTranslatePartial(t *testing.T) {
	const g1 = uint64(Size1G)
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			e := newEnv(t, mode)
			va := kbase(mode).Add(g1)
			if err := e.as.Map(va, 0x2_0000_0000, 0x1000, PageKernel, AllowAll); err != nil {
				t.Fatal(err)
			}
			above := []Level{PGD, PUD, PMD}
			if mode == Mode5Level {
				above = []Level{PGD, P4D, PUD, PMD}
			}
			misses := []struct {
				va      VirtAddr
				stop    Level
				reached []Level
			}{
				{va.Add(0x1000), PTE, above},
				{va.Add(uint64(Size2M)), PMD, above[:len(above)-1]},
				{va.Add(g1), PUD, above[:len(above)-2]},
				{va.Add(mode.EntrySpan(PGD)), PGD, nil},
			}
			if mode == Mode5Level {
				misses = append(misses, struct {
					va      VirtAddr
					stop    Level
					reached []Level
				}{va.Add(512 * g1), P4D, []Level{PGD}})
			}
			for _, m := range misses {
				tr, err := e.as.Translate(m.va)
				wantErr(t, err, ErrNotMapped)
				var oe *Error
				var we *WalkError
				if !errors.As(err, &oe) || !errors.As(err, &we) {
					t.Fatalf("%v: error %v has no *Error or *WalkError", m.va, err)
				}
				if want := fmt.Sprintf("mm: translate %v (%v): not mapped", m.va, m.stop); err.Error() != want {
					t.Errorf("message %q, want %q", err, want)
				}
				if oe.Level != m.stop || we.Level != m.stop || we.Stop().Level != m.stop || we.Stop().Entry.IsPresent() {
					t.Errorf("%v: stopped at %v/%v/%+v, want %v", m.va, oe.Level, we.Level, we.Stop(), m.stop)
				}
				var reached []Level
				for _, s := range we.Reached() {
					reached = append(reached, s.Level)
					if !s.Entry.IsPresent() {
						t.Errorf("%v: reached a not-present %v entry", m.va, s.Level)
					}
				}
				if !slices.Equal(reached, m.reached) {
					t.Errorf("%v: reached %v, want %v", m.va, reached, m.reached)
				}
				p := we.Partial
				if !slices.Equal(p.Path(), tr.Path()) || p.VA != m.va || p.PA != 0 || p.Size != 0 || p.Entry != 0 {
					t.Errorf("%v: partial %+v, translation %+v", m.va, p, tr)
				}
				wantAttrs := AttrWrite // the kernel's tables are RW, not USR
				if m.stop == PGD {
					wantAttrs = AttrWrite | AttrUser // nothing above restricts
				}
				if p.Attrs != wantAttrs {
					t.Errorf("%v: permissions above %v, want %v", m.va, p.Attrs, wantAttrs)
				}
			}
			// The permissions above the miss are the effective ones.
			pa, pud := entryAt(t, e.as, va, PUD)
			e.mem.Write64(pa, uint64(pud&^RW|NX))
			_, err := e.as.Translate(va.Add(0x1000))
			var we *WalkError
			if !errors.As(err, &we) || we.Partial.Attrs != AttrNX {
				t.Fatalf("under a ro NX pud: %v, partial %+v", err, we)
			}
			// PS in a pgd entry is reserved: the walk stops there.
			pa, pgd := entryAt(t, e.as, va, PGD)
			e.mem.Write64(pa, uint64(pgd|PS))
			_, err = e.as.Translate(va)
			if !errors.Is(err, ErrReservedBits) || !errors.As(err, &we) || we.Reserved != PS || we.Level != PGD || len(we.Reached()) != 0 {
				t.Fatalf("PS at pgd: %v, %+v", err, we)
			}
			if want := fmt.Sprintf("mm: translate %v (pgd): reserved bits 0x80 set", va); err.Error() != want {
				t.Errorf("message %q, want %q", err, want)
			}
		})
	}
}

// Splitting needs a frame; without one Unmap and Protect fail and change
// nothing.
func TestSplitOutOfMemory(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			// The root and the tables down to the pmd, nothing more.
			n := uint64(mode.Levels() - 1)
			e := newEnvRAM(t, mode, PhysRange{0x9_0000_0000, 0x9_0000_0000 + PhysAddr(n*0x1000)})
			base := kbase(mode)
			if err := e.as.Map(base, 0x2_0000_0000, uint64(Size2M), PageKernel, AllowAll); err != nil {
				t.Fatal(err)
			}
			before := e.leaves()
			for name, op := range map[string]func() error{
				"unmap":   func() error { return e.as.Unmap(base.Add(0x1000), 0x1000) },
				"protect": func() error { return e.as.Protect(base.Add(0x1000), 0x1000, PageKernelRO) },
			} {
				err := e.do(op)
				wantErr(t, err, ErrNoMemory)
				var oe *Error
				if errors.As(err, &oe); oe.Op != name || oe.Level != PMD || oe.VA != base.Add(0x1000) {
					t.Errorf("%s: error %+v", name, oe)
				}
				if !slices.Equal(before, e.leaves()) {
					t.Fatalf("failed %s changed the mappings", name)
				}
			}
			e.check()
		})
	}
}

// failingFree is an allocator whose FreeFrame fails.
type failingFree struct{ *Memblock }

var errFree = errors.New("free refused")

func (failingFree) FreeFrame(PhysAddr) error { return errFree }

// An allocator that refuses to free stops Unmap and Release with its
// error.
func TestFreeFails(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			mem := NewSparseMem(tableRAM)
			as, err := New(mode, mem, failingFree{NewMemblock([]PhysRange{tableRAM}, nil)}, NopTLB)
			if err != nil {
				t.Fatal(err)
			}
			base := kbase(mode)
			if err := as.Map(base, 0x2_0000_0000, 0x1000, PageKernel, AllowAll); err != nil {
				t.Fatal(err)
			}
			err = as.Unmap(base, 0x1000)
			var oe *Error
			if !errors.Is(err, errFree) || !errors.As(err, &oe) || oe.Op != "unmap" || oe.Level != PTE {
				t.Fatalf("Unmap: %v", err)
			}
			if !errors.Is(as.Release(), errFree) {
				t.Fatal("Release did not report the failed free")
			}
		})
	}
}

// unlisted is a visitor the walker does not know.
type unlisted struct{}

func (unlisted) visit(*walker, *slot) walkAction { return walkStop }

func TestWalkerPreconditions(t *testing.T) {
	e := newEnv(t, Mode4Level)
	base := kbase(Mode4Level)
	if err := e.as.Map(base, 0x2_0000_0000, 0x1000, PageKernel, AllowAll); err != nil {
		t.Fatal(err)
	}
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s did not panic", name)
			}
		}()
		f()
	}
	mustPanic("a change in a read-only walk", func() {
		w := walker{as: e.as, op: "test"}
		w.walk(base, base.Add(0xfff), &unmapper{})
	})
	mustPanic("an unlisted visitor", func() {
		w := walker{as: e.as, op: "test"}
		w.walk(base, base.Add(0xfff), unlisted{})
	})
	if _, err := e.as.Translate(base); err != nil {
		t.Fatalf("the read-only walk changed the tables: %v", err)
	}
}
