package mm

import (
	"errors"
	"slices"
	"testing"
)

func TestMap(t *testing.T) {
	const (
		k4 = uint64(Size4K)
		m2 = uint64(Size2M)
		g1 = uint64(Size1G)
	)
	type tc struct {
		name  string
		off   uint64 // from the base of the half under test
		pa    PhysAddr
		len   uint64
		attrs Attr
		sizes PageSizes
		want  func(va VirtAddr) []run
	}
	tests := []tc{
		{"4K", k4, 0x2_0000_3000, k4, PageKernel, AllowAll,
			func(va VirtAddr) []run { return []run{{va, 0x2_0000_3000, Size4K, 1}} }},
		{"2M", m2, 0x2_0020_0000, m2, PageKernel, AllowAll,
			func(va VirtAddr) []run { return []run{{va, 0x2_0020_0000, Size2M, 1}} }},
		{"1G", g1, 0x2_4000_0000, g1, PageKernel, AllowAll,
			func(va VirtAddr) []run { return []run{{va, 0x2_4000_0000, Size1G, 1}} }},
		{"1G-without-Page1GB", g1, 0x2_4000_0000, g1, PageKernel, Allow4K | Allow2M,
			func(va VirtAddr) []run { return []run{{va, 0x2_4000_0000, Size2M, 512}} }},
		{"PA-only-4K-aligned", m2, 0x2_0000_1000, m2, PageKernel, AllowAll,
			func(va VirtAddr) []run { return []run{{va, 0x2_0000_1000, Size4K, 512}} }},
		{"VA-only-4K-aligned", m2 + k4, 0x2_0020_0000, m2, PageKernel, AllowAll,
			func(va VirtAddr) []run { return []run{{va, 0x2_0020_0000, Size4K, 512}} }},
		{"head-1G-2M-tail", g1 - 2*k4, 0x3_0000_0000 - 2*0x1000, 2*k4 + g1 + 2*m2 + 3*k4, PageKernel, AllowAll,
			func(va VirtAddr) []run {
				return []run{
					{va, 0x3_0000_0000 - 0x2000, Size4K, 2},
					{va.Add(2 * k4), 0x3_0000_0000, Size1G, 1},
					{va.Add(2*k4 + g1), 0x3_4000_0000, Size2M, 2},
					{va.Add(2*k4 + g1 + 2*m2), 0x3_4040_0000, Size4K, 3},
				}
			}},
		{"4K-only", 2 * m2, 0x2_0000_0000, 2 * m2, PageKernelExec, Allow4K,
			func(va VirtAddr) []run { return []run{{va, 0x2_0000_0000, Size4K, 1024}} }},
		{"2M-only", 2 * m2, 0x2_0000_0000, 3 * m2, PageKernelRO, Allow2M,
			func(va VirtAddr) []run { return []run{{va, 0x2_0000_0000, Size2M, 3}} }},
		{"cache-attrs", 0, 0x2_0000_0000, m2 + k4, AttrWrite | AttrNX | AttrPCD | AttrPWT | AttrPAT, AllowAll,
			func(va VirtAddr) []run {
				return []run{{va, 0x2_0000_0000, Size2M, 1}, {va.Add(m2), 0x2_0020_0000, Size4K, 1}}
			}},
	}
	for _, mode := range modes {
		halves := []struct {
			name string
			base VirtAddr
			user Attr
		}{
			{"kernel", kbase(mode), 0},
			{"user", 0x4000_0000_0000 >> (48 - mode.VABits()) << (48 - mode.VABits()), AttrUser},
			{"user-top", mode.UserEnd() - VirtAddr(4*g1), AttrUser},
			{"kernel-top", ^VirtAddr(0) - VirtAddr(4*g1) + 1, 0},
		}
		for _, h := range halves {
			for _, tt := range tests {
				t.Run(mode.String()+"/"+h.name+"/"+tt.name, func(t *testing.T) {
					e := newEnv(t, mode)
					va := h.base.Add(tt.off)
					attrs := tt.attrs | h.user
					if err := e.do(func() error { return e.as.Map(va, tt.pa, tt.len, attrs, tt.sizes) }); err != nil {
						t.Fatalf("Map: %v", err)
					}
					if got, want := runsString(runs(e.leaves())), runsString(tt.want(va)); got != want {
						t.Fatalf("leaves\n got %s\nwant %s", got, want)
					}
					for _, off := range []uint64{0, tt.len / 2, tt.len - 8} {
						tr, err := e.as.Translate(va.Add(off))
						if err != nil {
							t.Fatalf("Translate(%v): %v", va.Add(off), err)
						}
						if tr.PA != tt.pa.Add(off) || tr.Attrs != attrs {
							t.Fatalf("Translate(%v) = %v %v, want %v %v", va.Add(off), tr.PA, tr.Attrs, tt.pa.Add(off), attrs)
						}
					}
					if len(e.tlb.pages) != 0 || e.tlb.flushes != 0 {
						t.Errorf("mapping into empty entries invalidated %v (+%d flushes)", e.tlb.pages, e.tlb.flushes)
					}
					e.check()
				})
			}
		}
	}
}

func TestMapErrors(t *testing.T) {
	for _, mode := range modes {
		base := kbase(mode)
		tests := []struct {
			name  string
			va    VirtAddr
			pa    PhysAddr
			len   uint64
			sizes PageSizes
			want  error
		}{
			{"va-misaligned", base + 0x800, 0x2_0000_0000, 0x1000, AllowAll, ErrMisaligned},
			{"pa-misaligned", base, 0x2_0000_0800, 0x1000, AllowAll, ErrMisaligned},
			{"zero-length", base, 0x2_0000_0000, 0, AllowAll, ErrBadLength},
			{"partial-page", base, 0x2_0000_0000, 0x1800, AllowAll, ErrBadLength},
			{"2M-only-4K-aligned", base + 0x1000, 0x2_0000_1000, 0x200000, Allow2M, ErrMisaligned},
			{"no-size-allowed", base, 0x2_0000_0000, 0x1000, 0, ErrMisaligned},
			{"spans-halves", mode.UserEnd() - 0x1000, 0x2_0000_0000, 0x2000, AllowAll, ErrNonCanonical},
			{"non-canonical", mode.UserEnd(), 0x2_0000_0000, 0x1000, AllowAll, ErrNonCanonical},
			{"wraps", ^VirtAddr(0) - 0xfff, 0x2_0000_0000, 0x2000, AllowAll, ErrNonCanonical},
			{"beyond-MAXPHYADDR", base, 1<<MaxPhysBits - 0x1000, 0x2000, AllowAll, ErrPhysRange},
		}
		for _, tt := range tests {
			t.Run(mode.String()+"/"+tt.name, func(t *testing.T) {
				e := newEnv(t, mode)
				wantErr(t, e.as.Map(tt.va, tt.pa, tt.len, PageKernel, tt.sizes), tt.want)
				if n := len(e.leaves()); n != 0 {
					t.Fatalf("failed Map left %d leaves", n)
				}
				e.check()
			})
		}
	}
}

// The same address is canonical in one mode and not in the other.
func TestCanonicalFollowsMode(t *testing.T) {
	va := VirtAddr(0x0000_8000_0000_0000)
	e4 := newEnv(t, Mode4Level)
	wantErr(t, e4.as.Map(va, 0x2_0000_0000, 0x1000, AttrUser, AllowAll), ErrNonCanonical)
	e5 := newEnv(t, Mode5Level)
	if err := e5.as.Map(va, 0x2_0000_0000, 0x1000, AttrUser, AllowAll); err != nil {
		t.Fatalf("5-level Map(%v): %v", va, err)
	}
	e5.check()
}

func TestMapAlreadyMapped(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			e := newEnv(t, mode)
			base := kbase(mode)
			if err := e.as.Map(base, 0x2_0000_0000, uint64(Size2M), PageKernel, AllowAll); err != nil {
				t.Fatal(err)
			}
			before := e.leaves()
			err := e.as.Map(base.Add(0x1ff000), 0x3_0000_0000, 0x2000, PageKernel, AllowAll)
			wantErr(t, err, ErrAlreadyMapped)
			var me *Error
			errors.As(err, &me)
			if me.Op != "map" || me.VA != base.Add(0x1ff000) || me.Level != PMD {
				t.Errorf("error fields %+v", me)
			}
			if !slices.Equal(before, e.leaves()) {
				t.Fatal("failed Map changed the mappings")
			}
			e.check()
		})
	}
}

func TestMapOutOfMemoryRollsBack(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			// Root plus two frames: the walk to a pte needs one more.
			ram := PhysRange{0x9_0000_0000, 0x9_0000_0000 + 3*0x1000}
			e := newEnvRAM(t, mode, ram)
			if mode == Mode5Level {
				e.alloc.AllocFrame() // leave only one frame
			}
			base := kbase(mode)
			err := e.do(func() error { return e.as.Map(base, 0x2_0000_0000, 0x1000, PageKernel, AllowAll) })
			wantErr(t, err, ErrNoMemory)
			if n := len(e.leaves()); n != 0 {
				t.Fatalf("%d leaves after failed Map", n)
			}
			if got := e.as.TablePages(); got != 1 {
				t.Fatalf("%d table pages after rollback, want the root only", got)
			}
		})
	}
}

func TestReadOnly(t *testing.T) {
	for _, mode := range modes {
		e := newEnv(t, mode)
		base := kbase(mode)
		if err := e.as.Map(base, 0x2_0000_0000, 0x1000, PageKernel, AllowAll); err != nil {
			t.Fatal(err)
		}
		ro := Open(mode, e.as.Root(), e.mem)
		if !ro.ReadOnly() || ro.Mode() != mode || ro.Root() != e.as.Root() {
			t.Fatal("Open did not keep mode and root")
		}
		wantErr(t, ro.Map(base.Add(0x1000), 0x2_0000_1000, 0x1000, PageKernel, AllowAll), ErrReadOnly)
		wantErr(t, ro.Unmap(base, 0x1000), ErrReadOnly)
		wantErr(t, ro.Protect(base, 0x1000, PageKernelRO), ErrReadOnly)
		wantErr(t, ro.Release(), ErrReadOnly)
		if !slices.Equal(e.leaves(), slices.Collect(ro.AllLeaves())) {
			t.Fatal("read-only view sees different leaves")
		}
	}
}

// pathTables returns the tables below the root that a translation of va
// goes through.
func pathTables(t *testing.T, as *AddressSpace, va VirtAddr) []PhysAddr {
	t.Helper()
	tr, err := as.Translate(va)
	if err != nil {
		t.Fatal(err)
	}
	var out []PhysAddr
	for _, s := range tr.Path()[1:] {
		out = append(out, s.Table)
	}
	return out
}

func TestUnmapFreesExactlyEmptiedTables(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			e := newEnv(t, mode)
			a := kbase(mode)
			b := a.Add(uint64(Size1G)) // same pud table, other pmd table
			for _, va := range []VirtAddr{a, b} {
				if err := e.as.Map(va, 0x2_0000_0000, 0x1000, PageKernel, AllowAll); err != nil {
					t.Fatal(err)
				}
			}
			pa, pb := pathTables(t, e.as, a), pathTables(t, e.as, b)
			before := e.alloc.Allocated()
			if err := e.do(func() error { return e.as.Unmap(a, 0x1000) }); err != nil {
				t.Fatal(err)
			}
			var freed []PhysAddr
			for _, f := range before {
				if !e.alloc.Owns(f) {
					freed = append(freed, f)
				}
			}
			want := slices.Clone(pa[len(pa)-2:]) // a's pmd and pte tables
			slices.Sort(want)
			if !slices.Equal(freed, want) {
				t.Fatalf("freed %v, want %v (path %v, other path %v)", freed, want, pa, pb)
			}
			e.check()
			if err := e.do(func() error { return e.as.Unmap(b, 0x1000) }); err != nil {
				t.Fatal(err)
			}
			if n := e.alloc.InUse(); n != 1 {
				t.Fatalf("%d frames in use after unmapping everything, want the root", n)
			}
			if err := e.as.Release(); err != nil {
				t.Fatal(err)
			}
			if n := e.alloc.InUse(); n != 0 {
				t.Fatalf("leak: %d frames in use after Release: %v", n, e.alloc.Allocated())
			}
		})
	}
}

func TestUnmap(t *testing.T) {
	const attrs = PageKernel | AttrPCD | AttrPAT
	for _, mode := range modes {
		base := kbase(mode)
		tests := []struct {
			name    string
			mapLen  uint64
			sizes   PageSizes
			off     uint64
			len     uint64
			want    []run
			flushes int
		}{
			{"whole-2M", uint64(Size2M), AllowAll, 0, uint64(Size2M), nil, 0},
			{"4K-of-2M", uint64(Size2M), AllowAll, 0x3000, 0x1000, []run{
				{base, 0x2_0000_0000, Size4K, 3}, {base.Add(0x4000), 0x2_0000_4000, Size4K, 508}}, 0},
			{"4K-of-1G", uint64(Size1G), AllowAll, 0x200000 + 0x1000, 0x1000, []run{
				{base, 0x2_0000_0000, Size2M, 1},
				{base.Add(0x200000), 0x2_0020_0000, Size4K, 1},
				{base.Add(0x202000), 0x2_0020_2000, Size4K, 510},
				{base.Add(0x400000), 0x2_0040_0000, Size2M, 510}}, 0},
			{"many-4K-flush-all", 64 << 12, Allow4K, 0, 64 << 12, nil, 1},
			{"hole-is-fine", 0x1000, AllowAll, 0x10000, 0x1000, []run{{base, 0x2_0000_0000, Size4K, 1}}, 0},
		}
		for _, tt := range tests {
			t.Run(mode.String()+"/"+tt.name, func(t *testing.T) {
				e := newEnv(t, mode)
				if err := e.as.Map(base, 0x2_0000_0000, tt.mapLen, attrs, tt.sizes); err != nil {
					t.Fatal(err)
				}
				if err := e.do(func() error { return e.as.Unmap(base.Add(tt.off), tt.len) }); err != nil {
					t.Fatal(err)
				}
				if got, want := runsString(runs(e.leaves())), runsString(tt.want); got != want {
					t.Fatalf("leaves\n got %s\nwant %s", got, want)
				}
				if e.tlb.flushes != tt.flushes {
					t.Errorf("%d full flushes, want %d", e.tlb.flushes, tt.flushes)
				}
				for _, lf := range e.leaves() {
					if lf.Attrs != attrs {
						t.Fatalf("leaf %v lost its attributes: %v, want %v", lf.VA, lf.Attrs, attrs)
					}
				}
				if _, err := e.as.Translate(base.Add(tt.off)); !errors.Is(err, ErrNotMapped) {
					t.Fatalf("unmapped address translates: %v", err)
				}
				e.check()
			})
		}
	}
}

func TestUnmapErrors(t *testing.T) {
	e := newEnv(t, Mode4Level)
	wantErr(t, e.as.Unmap(0x1000, 0), ErrBadLength)
	wantErr(t, e.as.Unmap(0x1001, 0x1000), ErrMisaligned)
	wantErr(t, e.as.Unmap(0x0000_8000_0000_0000, 0x1000), ErrNonCanonical)
}

// Splitting keeps every attribute bit, moving PAT between bit 12 (huge)
// and bit 7 (pte).
func TestSplit1GTo2M(t *testing.T) { testSplit(t, Size1G, Size2M) }
func TestSplit2MTo4K(t *testing.T) { testSplit(t, Size2M, Size4K) }

func testSplit(t *testing.T, huge, small PageSize) {
	const attrs = AttrWrite | AttrNX | AttrGlobal | AttrPWT | AttrPCD | AttrPAT
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			e := newEnv(t, mode)
			base := kbase(mode)
			pa := PhysAddr(0x2_4000_0000)
			if err := e.as.Map(base, pa, uint64(huge), attrs, AllowAll); err != nil {
				t.Fatal(err)
			}
			// Mark the huge page dirty, as the CPU would.
			tr, _ := e.as.Translate(base)
			last := tr.Path()[tr.NSteps-1]
			e.mem.Write64(last.Table.Add(uint64(last.Index)*8), uint64(last.Entry|Dirty))
			target := base.Add(uint64(huge) - uint64(small)) // the last small page
			if err := e.do(func() error { return e.as.Protect(target, uint64(small), PageKernelRO) }); err != nil {
				t.Fatal(err)
			}
			ls := e.leaves()
			if len(ls) != entriesPerPT {
				t.Fatalf("%d leaves after split, want 512", len(ls))
			}
			for i, lf := range ls {
				want := attrs
				if lf.VA == target {
					want = PageKernelRO
				}
				if lf.Size != small || lf.PA != pa.Add(uint64(i)*uint64(small)) || lf.Attrs != want {
					t.Fatalf("leaf %d: %v %v %v %v, want %v %v %v", i, lf.VA, lf.PA, lf.Size, lf.Attrs, pa.Add(uint64(i)*uint64(small)), small, want)
				}
				if lf.Entry&(Dirty|Accessed) != Dirty|Accessed {
					t.Fatalf("leaf %d lost Accessed/Dirty: %s", i, lf.Entry.Decode(lf.Level, 0))
				}
				if small == Size4K && lf.VA != target && lf.Entry&PAT == 0 {
					t.Fatalf("pte %d lost PAT (bit 7): %s", i, lf.Entry.Decode(PTE, 0))
				}
			}
			e.check()
		})
	}
}

func TestProtect(t *testing.T) {
	for _, mode := range modes {
		base := kbase(mode)
		t.Run(mode.String()+"/whole-2M-no-split", func(t *testing.T) {
			e := newEnv(t, mode)
			if err := e.as.Map(base, 0x2_0000_0000, uint64(Size2M), PageKernel, AllowAll); err != nil {
				t.Fatal(err)
			}
			if err := e.do(func() error { return e.as.Protect(base, uint64(Size2M), PageKernelRO) }); err != nil {
				t.Fatal(err)
			}
			ls := e.leaves()
			if len(ls) != 1 || ls[0].Size != Size2M || ls[0].Attrs != PageKernelRO {
				t.Fatalf("leaves %v", ls)
			}
			if len(e.tlb.pages) != 1 {
				t.Fatalf("invalidated %v, want one page", e.tlb.pages)
			}
			e.tlb.reset()
			if err := e.as.Protect(base, uint64(Size2M), PageKernelRO); err != nil {
				t.Fatal(err)
			}
			if len(e.tlb.pages) != 0 {
				t.Fatalf("no-op Protect invalidated %v", e.tlb.pages)
			}
			e.check()
		})
		t.Run(mode.String()+"/hole", func(t *testing.T) {
			e := newEnv(t, mode)
			if err := e.as.Map(base, 0x2_0000_0000, 0x1000, PageKernel, AllowAll); err != nil {
				t.Fatal(err)
			}
			before := e.leaves()
			err := e.as.Protect(base, 0x2000, PageKernelRO)
			wantErr(t, err, ErrNotMapped)
			var me *Error
			if errors.As(err, &me); me.VA != base.Add(0x1000) {
				t.Errorf("hole reported at %v, want %v", me.VA, base.Add(0x1000))
			}
			if !slices.Equal(before, e.leaves()) {
				t.Fatal("failed Protect changed mappings")
			}
			wantErr(t, e.as.Protect(base, 0, PageKernelRO), ErrBadLength)
		})
		t.Run(mode.String()+"/to-user", func(t *testing.T) {
			e := newEnv(t, mode)
			if err := e.as.Map(0x40_0000_0000, 0x2_0000_0000, 0x2000, PageKernel, AllowAll); err != nil {
				t.Fatal(err)
			}
			if err := e.do(func() error { return e.as.Protect(0x40_0000_1000, 0x1000, AttrUser|AttrNX) }); err != nil {
				t.Fatal(err)
			}
			tr, err := e.as.Translate(0x40_0000_1000)
			if err != nil || tr.Attrs != AttrUser|AttrNX {
				t.Fatalf("Translate: %v %v, want USR ro NX", tr.Attrs, err)
			}
			if tr, _ := e.as.Translate(0x40_0000_0000); tr.Attrs != PageKernel {
				t.Fatalf("neighbour became %v", tr.Attrs)
			}
			e.check()
		})
	}
}

func TestTranslate(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			e := newEnv(t, mode)
			va := kbase(mode).Add(0x1234_5000)
			if err := e.as.Map(va, 0x2_0000_0000, 0x1000, AttrWrite|AttrGlobal, AllowAll); err != nil {
				t.Fatal(err)
			}
			tr, err := e.as.Translate(va.Add(0x123))
			if err != nil {
				t.Fatal(err)
			}
			if tr.PA != 0x2_0000_0123 || tr.Size != Size4K || tr.Level != PTE || tr.NSteps != mode.Levels() {
				t.Fatalf("translation %+v", tr)
			}
			wantLevels := []Level{PGD, P4D, PUD, PMD, PTE}
			if mode == Mode4Level {
				wantLevels = []Level{PGD, PUD, PMD, PTE}
			}
			table := e.as.Root()
			for i, s := range tr.Path() {
				if s.Level != wantLevels[i] || s.Table != table || s.Index != mode.Index(va, s.Level) {
					t.Fatalf("step %d: %+v, want level %v table %v index %d", i, s, wantLevels[i], table, mode.Index(va, s.Level))
				}
				table = s.Entry.Addr(s.Level)
			}
			// Effective permissions: RW ANDed, NX ORed across levels.
			pmd := tr.Path()[tr.NSteps-2]
			pud := tr.Path()[tr.NSteps-3]
			e.mem.Write64(pmd.Table.Add(uint64(pmd.Index)*8), uint64(pmd.Entry&^RW))
			e.mem.Write64(pud.Table.Add(uint64(pud.Index)*8), uint64(pud.Entry|NX))
			tr, _ = e.as.Translate(va)
			if tr.Attrs != AttrNX|AttrGlobal {
				t.Fatalf("effective %v, want ro NX GLB", tr.Attrs)
			}
			if n := AllWXPages(e.as); n != 0 {
				t.Fatalf("%d W+X pages, want 0", n)
			}
			// Not mapped: the path ends at the not-present entry.
			tr, err = e.as.Translate(va.Add(0x1000))
			wantErr(t, err, ErrNotMapped)
			if last := tr.Path()[tr.NSteps-1]; last.Entry.IsPresent() || last.Level != PTE {
				t.Fatalf("path ends at %+v", last)
			}
			_, err = e.as.Translate(mode.UserEnd())
			wantErr(t, err, ErrNonCanonical)
			// PS in a pgd entry is reserved.
			root := e.as.Root()
			i := mode.Index(va, PGD)
			e.mem.Write64(root.Add(uint64(i)*8), e.mem.Read64(root.Add(uint64(i)*8))|uint64(PS))
			if _, err := e.as.Translate(va); err == nil {
				t.Fatal("PS at pgd translated")
			}
		})
	}
}

func TestLeavesRange(t *testing.T) {
	e := newEnv(t, Mode4Level)
	base := kbase(Mode4Level)
	if err := e.as.Map(base, 0x2_0000_0000, 4*uint64(Size2M), PageKernel, AllowAll); err != nil {
		t.Fatal(err)
	}
	// A range starting inside a leaf includes that leaf.
	got := slices.Collect(e.as.Leaves(VirtRange{base.Add(0x300000), base.Add(0x500000)}))
	if len(got) != 2 || got[0].VA != base.Add(0x200000) || got[1].VA != base.Add(0x400000) {
		t.Fatalf("leaves %v", got)
	}
	if got[0].Range() != (VirtRange{base.Add(0x200000), base.Add(0x400000)}) {
		t.Fatalf("range %v", got[0].Range())
	}
	n := 0
	for range e.as.Leaves(VirtRange{base, base.Add(8 << 20)}) {
		n++
		break
	}
	if n != 1 {
		t.Fatal("iteration did not stop")
	}
	if len(slices.Collect(e.as.Leaves(VirtRange{base, base}))) != 0 {
		t.Fatal("empty range has leaves")
	}
	for range e.as.AllLeaves() {
		break
	}
	if w := WXPages(e.as, VirtRange{base, base.Add(0x1000)}); w != 0 {
		t.Fatalf("W+X %d", w)
	}
}

func TestNewOutOfMemory(t *testing.T) {
	mem := NewSparseMem(tableRAM)
	_, err := New(Mode4Level, mem, NewMemblock(nil, nil), NopTLB)
	wantErr(t, err, ErrNoMemory)
	NopTLB.InvalidatePage(0)
	NopTLB.FlushAll()
}

func TestPreconditions(t *testing.T) {
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s did not panic", name)
			}
		}()
		f()
	}
	mem := NewSparseMem(tableRAM)
	mustPanic("New bad mode", func() { New(Mode(3), mem, NewMemblock(nil, nil), NopTLB) })
	mustPanic("New nil", func() { New(Mode4Level, nil, nil, nil) })
	mustPanic("Open misaligned", func() { Open(Mode4Level, 0x1001, mem) })
	mustPanic("MakeLeaf misaligned", func() { MakeLeaf(PMD, 0x1000, 0) })
	mustPanic("MakeLeaf level", func() { MakeLeaf(PGD, 0, 0) })
	mustPanic("PageSize.Level", func() { PageSize(3).Level() })
	mustPanic("SparseMem unbacked", func() { mem.Read64(0x1000) })
	mustPanic("SparseMem misaligned", func() { mem.Read64(tableRAM.Start + 1) })
	mustPanic("SparseMem zero misaligned", func() { mem.ZeroFrame(tableRAM.Start + 8) })
	mustPanic("SparseMem view misaligned", func() { mem.ViewFrame(tableRAM.Start + 8) })
	mustPanic("Only", func() { Only(PageSize(5)) })
}
