package mm

import (
	"fmt"
	"slices"
	"testing"
)

// refLeaves lists the leaves overlapping [lo, hi] the slow way: every entry of
// every table read one by one through Read64, with no skipping, so that
// the walker's shortcuts have something plain to agree with.
func refLeaves(as *AddressSpace, lo, hi VirtAddr) []Leaf {
	var out []Leaf
	var rec func(table PhysAddr, l Level, base VirtAddr, up Attr)
	rec = func(table PhysAddr, l Level, base VirtAddr, up Attr) {
		span := as.mode.EntrySpan(l)
		for i := range entriesPerPT {
			e := Entry(as.mem.Read64(table.Add(uint64(i) * entrySize)))
			va := as.mode.signExtend(base.Add(uint64(i) * span))
			if !e.IsPresent() || va > hi || va.Add(span-1) < lo {
				continue
			}
			if e.IsLeaf(l) {
				out = append(out, Leaf{VA: va, PA: e.Addr(l), Size: pageSizeAt(l), Level: l, Entry: e, Attrs: combine(up, e.Attrs(l))})
				continue
			}
			if l == PTE || l == P4D && as.mode == Mode4Level {
				panic("unreachable")
			}
			rec(e.Addr(l), as.mode.Below(l), va, below(up, e))
		}
	}
	rec(as.root, PGD, 0, topAttrs)
	return out
}

// leafSpace builds tables with a bit of everything the walker meets:
// leaves of all three sizes, user and kernel, RO and NX table entries
// above them, empty stretches, and espfix's shared pte and pmd pages.
func leafSpace(t *testing.T, mode Mode) (*env, VirtRange) {
	t.Helper()
	e := newEnv(t, mode)
	base := kbase(mode)
	maps := []struct {
		va     VirtAddr
		pa     PhysAddr
		length uint64
		attrs  Attr
		sizes  PageSizes
	}{
		{0x40_0000_0000, 0x10_0000, 0x5000, AttrUser | AttrWrite | AttrNX, AllowAll},
		{0x40_0020_0000, 0x20_0000, 0x40_0000, AttrUser, AllowAll},
		{0x7fff_ffff_f000, 0x30_0000, 0x1000, AttrUser | AttrPAT, AllowAll},
		{base, 0, 4 << 30, PageKernel, AllowAll},
		{base.Add(5 << 30), 0x1_0000_0000, 64 << 20, PageKernelExec | AttrPCD, Allow2M},
		{base.Add(6<<30 + 0x3000), 0x1_0000_3000, 0x1000, PageKernelRO | AttrPWT | AttrPAT, AllowAll},
		{^VirtAddr(0) - 0xfff, 0x40_0000, 0x1000, PageKernelExec, AllowAll},
	}
	for _, m := range maps {
		if err := e.as.Map(m.va, m.pa, m.length, m.attrs, m.sizes); err != nil {
			t.Fatal(err)
		}
	}
	// A RO and a NX table entry above some of those leaves.
	for _, x := range []struct {
		va  VirtAddr
		l   Level
		set Entry
		clr Entry
	}{{0x40_0000_0000, PMD, NX, 0}, {0x40_0020_0000, PUD, 0, RW}} {
		pa, ent := entryAt(t, e.as, x.va, x.l)
		e.mem.Write64(pa, uint64(ent&^x.clr|x.set))
	}
	r := mapESPFix(t, e.as, e.mem)
	return e, r
}

// TestLeavesMatchReference: every leaf iterator gives what the plain walk
// gives, in the same order and with the same fields, over the whole space
// and over ranges that start and end inside tables and huge pages.
func TestLeavesMatchReference(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			e, esp := leafSpace(t, mode)
			all := slices.Collect(e.as.AllLeaves())
			ref := append(refLeaves(e.as, 0, mode.UserEnd()-1), refLeaves(e.as, mode.KernelStart(), ^VirtAddr(0))...)
			if len(ref) != espfixLeaves+46 {
				t.Fatalf("the reference walk found %d leaves, want the %d mapped", len(ref), espfixLeaves+46)
			}
			same(t, "AllLeaves", all, ref)
			// The same through a PhysMem that has only Read64 to read
			// with, as the kernel's and the guest's are.
			same(t, "AllLeaves by Read64", slices.Collect(Open(mode, e.as.Root(), plainMem{e.mem}).AllLeaves()), ref)
			for i := 0; i < len(ref); i += 97 {
				lf := ref[i]
				va := lf.VA.Add(uint64(lf.Size) - 8)
				tr, err := e.as.Translate(va)
				if err != nil || tr.PA != lf.PA.Add(uint64(lf.Size)-8) || tr.Size != lf.Size || tr.Level != lf.Level || tr.Entry != lf.Entry || tr.Attrs != lf.Attrs {
					t.Errorf("Translate(%v) = %+v, %v; want through leaf %+v", va, tr, err, lf)
				}
			}
			base := kbase(mode)
			for _, r := range []VirtRange{
				esp,
				{esp.Start.Add(0x1_0000), esp.Start.Add(0x5000_0000)},
				{esp.Start.Add(0x1_0fff), esp.Start.Add(0x1_1001)},
				{esp.Start.Sub(0x1000), esp.Start.Add(0x1000)},
				{0x40_0000_1000, 0x40_0030_0000},
				{0x40_0000_0000, mode.UserEnd()},
				{base.Add(0x1234_5000), base.Add(3<<30 + 0x10_0000)},
				{base.Add(6 << 30), base.Add(6<<30 + 0x4000)},
				{base.Add(6<<30 + 0x3fff), base.Add(6<<30 + 0x4001)},
				{^VirtAddr(0) - 0x1_0000, ^VirtAddr(0)}, // up to the last byte, which a VirtRange cannot hold
			} {
				same(t, fmt.Sprint("Leaves ", r), slices.Collect(e.as.Leaves(r)), refLeaves(e.as, r.Start, r.End-1))
			}
			// Stopping early stops at the same leaf.
			n := 0
			for lf := range e.as.Leaves(esp) {
				if n++; n == 100 {
					if want := refLeaves(e.as, esp.Start, esp.End-1)[99]; lf != want {
						t.Errorf("leaf 100 %+v, want %+v", lf, want)
					}
					break
				}
			}
		})
	}
}

func same(t *testing.T, what string, got, want []Leaf) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d leaves, want %d", what, len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Errorf("%s: leaf %d %+v, want %+v", what, i, got[i], want[i])
			return
		}
	}
}

// plainMem hides SparseMem's FrameViewer.
type plainMem struct{ PhysMem }

// TestSparseMemViewFrame: the view is the frame itself, so it shows later
// writes; a frame with no memory yet, or outside the backing, has none.
func TestSparseMemViewFrame(t *testing.T) {
	mem := NewSparseMem(tableRAM)
	pa := tableRAM.Start.Add(0x3000)
	if mem.ViewFrame(pa) != nil || mem.ViewFrame(0x1000) != nil {
		t.Fatal("a view of a frame never written, or unbacked")
	}
	mem.Write64(pa.Add(8), 0x1234)
	f := mem.ViewFrame(pa)
	if f == nil || f[1] != 0x1234 {
		t.Fatalf("view after a write: %v", f)
	}
	mem.Write64(pa.Add(0xff8), 0x5678)
	mem.Write64(tableRAM.Start, 1) // another frame in the cache
	if f[511] != 0x5678 || mem.ViewFrame(pa) != f {
		t.Error("the view does not show a later write")
	}
	mem.ZeroFrame(pa)
	if *f != [entriesPerPT]uint64{} {
		t.Error("the view does not show ZeroFrame")
	}
}
