package mm

import (
	"errors"
	"strings"
	"testing"
)

// healthy builds an address space with a 4K, a 2M and a 1G leaf in the
// kernel half and a 4K leaf in the user half, none W+X.
func healthy(t *testing.T, mode Mode) (*env, VirtAddr) {
	e := newEnv(t, mode)
	base := kbase(mode)
	maps := []struct {
		va    VirtAddr
		pa    PhysAddr
		len   uint64
		attrs Attr
	}{
		{base, 0x2_0000_0000, 0x1000, PageKernel},
		{base.Add(uint64(Size2M)), 0x2_0020_0000, uint64(Size2M), PageKernelRO},
		{base.Add(uint64(Size1G)), 0x2_4000_0000, uint64(Size1G), PageKernelExec},
		{0x40_0000_0000, 0x2_0000_1000, 0x1000, AttrUser | AttrNX},
	}
	for _, m := range maps {
		if err := e.as.Map(m.va, m.pa, m.len, m.attrs, AllowAll); err != nil {
			t.Fatal(err)
		}
	}
	return e, base
}

// entryAt returns the address of the entry at level l on the walk to va.
func entryAt(t *testing.T, as *AddressSpace, va VirtAddr, l Level) (PhysAddr, Entry) {
	t.Helper()
	tr, _ := as.Translate(va)
	for _, s := range tr.Path() {
		if s.Level == l {
			return s.Table.Add(uint64(s.Index) * 8), s.Entry
		}
	}
	t.Fatalf("no %v on the walk to %v", l, va)
	return 0, 0
}

// Every check of the checker fails on a table corrupted to break it.
func TestCheckDetectsCorruption(t *testing.T) {
	type corruption struct {
		name    string
		corrupt func(t *testing.T, e *env, base VirtAddr, opt *CheckOptions)
		level   Level
		want    string
	}
	tests := []corruption{
		{"reserved-address-bits", func(t *testing.T, e *env, base VirtAddr, opt *CheckOptions) {
			pa, ent := entryAt(t, e.as, base, PTE)
			e.mem.Write64(pa, uint64(ent|1<<45))
			opt.PhysBits = 40
		}, PTE, "reserved address bits 0x200000000000 set"},
		{"PS-at-pgd", func(t *testing.T, e *env, base VirtAddr, opt *CheckOptions) {
			pa, ent := entryAt(t, e.as, 0x40_0000_0000, PGD)
			e.mem.Write64(pa, uint64(ent|PS))
		}, PGD, "PS set at pgd"},
		{"huge-misaligned", func(t *testing.T, e *env, base VirtAddr, opt *CheckOptions) {
			pa, ent := entryAt(t, e.as, base.Add(uint64(Size2M)), PMD)
			e.mem.Write64(pa, uint64(ent|0x2000))
		}, PMD, "not aligned to 2M"},
		{"huge-1G-misaligned", func(t *testing.T, e *env, base VirtAddr, opt *CheckOptions) {
			pa, ent := entryAt(t, e.as, base.Add(uint64(Size1G)), PUD)
			e.mem.Write64(pa, uint64(ent|0x20_0000))
		}, PUD, "not aligned to 1G"},
		{"table-referenced-twice", func(t *testing.T, e *env, base VirtAddr, opt *CheckOptions) {
			pa, ent := entryAt(t, e.as, base, PMD) // points to the pte table
			e.mem.Write64(pa.Add(8*8), uint64(ent))
		}, PMD, "referenced twice"},
		// Shared excuses a second reference only from inside its range.
		{"table-shared-from-outside", func(t *testing.T, e *env, base VirtAddr, opt *CheckOptions) {
			pa, ent := entryAt(t, e.as, base, PMD)
			e.mem.Write64(pa.Add(8*8), uint64(ent))
			opt.Shared = []VirtRange{{base, base.Add(uint64(Size2M))}}
		}, PMD, "referenced twice"},
		{"table-not-owned", func(t *testing.T, e *env, base VirtAddr, opt *CheckOptions) {
			stray, _ := e.alloc.AllocFrame()
			e.alloc.FreeFrame(stray)
			pa, _ := entryAt(t, e.as, base, PMD)
			e.mem.Write64(pa.Add(9*8), uint64(makeTable(stray, false)))
		}, PMD, "not owned by the allocator"},
		{"root-not-owned", func(t *testing.T, e *env, base VirtAddr, opt *CheckOptions) {
			root := e.as.Root()
			opt.Owns = func(pa PhysAddr) bool { return pa != root && e.alloc.Owns(pa) }
		}, PGD, "root table page not owned"},
		{"data-maps-table", func(t *testing.T, e *env, base VirtAddr, opt *CheckOptions) {
			_, ent := entryAt(t, e.as, base, PMD)
			if err := e.as.Map(base.Add(0x5000), ent.Addr(PMD), 0x1000, PageKernel, AllowAll); err != nil {
				t.Fatal(err)
			}
		}, PTE, "data mapping covers table page"},
		{"layout-other-mode", func(t *testing.T, e *env, base VirtAddr, opt *CheckOptions) {
			other := Mode5Level
			if e.mode == Mode5Level {
				other = Mode4Level
			}
			opt.Layout = DefaultLayout(other)
		}, NoLevel, "layout is for"},
		{"leaf-in-guard-hole", func(t *testing.T, e *env, base VirtAddr, opt *CheckOptions) {
			opt.Layout = DefaultLayout(e.mode)
			g, _ := opt.Layout.Region(KindGuardHole)
			if err := e.as.Map(g.Start, 0x2_0000_0000, 0x1000, PageKernel, AllowAll); err != nil {
				t.Fatal(err)
			}
		}, PTE, "guard hole"},
		{"W+X", func(t *testing.T, e *env, base VirtAddr, opt *CheckOptions) {
			pa, ent := entryAt(t, e.as, base.Add(uint64(Size1G)), PUD)
			e.mem.Write64(pa, uint64(ent|RW))
		}, PUD, "W+X mapping"},
	}
	for _, mode := range modes {
		for _, tt := range tests {
			t.Run(mode.String()+"/"+tt.name, func(t *testing.T) {
				e, base := healthy(t, mode)
				opt := CheckOptions{Owns: e.alloc.Owns, Layout: DefaultLayout(mode)}
				if err := Check(e.as, opt); err != nil {
					t.Fatalf("healthy tables fail: %v", err)
				}
				tt.corrupt(t, e, base, &opt)
				ps := Problems(e.as, opt)
				found := false
				for _, p := range ps {
					if strings.Contains(p.What, tt.want) && p.Level == tt.level {
						found = true
					}
				}
				if !found {
					t.Fatalf("no %v problem %q in %v", tt.level, tt.want, ps)
				}
				err := Check(e.as, opt)
				var p Problem
				if err == nil || !errors.As(err, &p) || !strings.Contains(err.Error(), "mm: check: ") {
					t.Fatalf("Check returned %v", err)
				}
			})
		}
	}
}

// Tables shared on purpose, as espfix's are, pass with Shared over their
// range and fail without it.
func TestCheckShared(t *testing.T) {
	for _, mode := range modes {
		e, base := healthy(t, mode)
		// The pmd entry over the 4K leaf, copied into the next 7 (the
		// first overwrites the 2M leaf there).
		pa, ent := entryAt(t, e.as, base, PMD)
		for i := 1; i < 8; i++ {
			e.mem.Write64(pa.Add(uint64(i)*8), uint64(ent))
		}
		opt := CheckOptions{Owns: e.alloc.Owns}
		if err := Check(e.as, opt); err == nil {
			t.Errorf("%v: a pte table behind 8 pmd entries passes without Shared", mode)
		}
		opt.Shared = []VirtRange{{base, base.Add(8 * uint64(Size2M))}}
		if err := Check(e.as, opt); err != nil {
			t.Errorf("%v: shared on purpose: %v", mode, err)
		}
		n := 0
		for range e.as.Leaves(VirtRange{base, base.Add(8 * uint64(Size2M))}) {
			n++
		}
		if n != 8 { // the 4K leaf seen through each of the 8 entries
			t.Errorf("%v: %d leaves through the shared pte table, want 8", mode, n)
		}
	}
}

// A 5-level layout is not canonical for 4-level tables.
func TestCheckLayoutCanonical(t *testing.T) {
	e, _ := healthy(t, Mode4Level)
	ps := Problems(e.as, CheckOptions{Layout: DefaultLayout(Mode5Level)})
	n := 0
	for _, p := range ps {
		if strings.Contains(p.What, "is not canonical in 4-level mode") {
			n++
		}
	}
	if n == 0 {
		t.Fatalf("problems %v", ps)
	}
	if s := ps[len(ps)-1].Error(); !strings.HasPrefix(s, "mm: check: layout region") {
		t.Fatal(s)
	}
	if s := (Problem{Level: PGD, Table: 0x1000, Index: -1, What: "x"}).Error(); s != "mm: check: pgd table 0x1000: x" {
		t.Fatal(s)
	}
}

func TestCheckPS5LevelP4D(t *testing.T) {
	e, _ := healthy(t, Mode5Level)
	pa, ent := entryAt(t, e.as, 0x40_0000_0000, P4D)
	e.mem.Write64(pa, uint64(ent|PS))
	ps := Problems(e.as, CheckOptions{})
	if len(ps) != 1 || ps[0].Level != P4D || !strings.Contains(ps[0].What, "PS set at p4d") {
		t.Fatalf("problems %v", ps)
	}
}

// The direct map may alias table pages; elsewhere a leaf may not.
func TestCheckAliases(t *testing.T) {
	for _, mode := range modes {
		e, base := healthy(t, mode)
		_, ent := entryAt(t, e.as, base, PMD)
		if err := e.as.Map(base.Add(0x5000), ent.Addr(PMD), 0x1000, PageKernel, AllowAll); err != nil {
			t.Fatal(err)
		}
		dm, _ := DefaultLayout(mode).Region(KindDirectMap)
		opt := CheckOptions{Owns: e.alloc.Owns, Aliases: []VirtRange{{dm.Start, dm.Last()}}}
		if err := Check(e.as, opt); err != nil {
			t.Fatalf("alias in the direct map reported: %v", err)
		}
	}
}

func TestWX(t *testing.T) {
	for _, mode := range modes {
		e, base := healthy(t, mode)
		if n := AllWXPages(e.as); n != 0 {
			t.Fatalf("healthy W+X %d", n)
		}
		if got := WXReport(0); got != "x86/mm: Checked W+X mappings: passed, no W+X pages found." {
			t.Fatal(got)
		}
		if err := e.as.Protect(base.Add(uint64(Size1G)), uint64(Size2M)+0x3000, AttrWrite); err != nil {
			t.Fatal(err)
		}
		if n := AllWXPages(e.as); n != 512+3 {
			t.Fatalf("W+X pages %d, want 515", n)
		}
		if n := WXPages(e.as, VirtRange{base.Add(uint64(Size1G) + 0x1000), base.Add(uint64(Size1G) + 0x3000)}); n != 2 {
			t.Fatalf("W+X pages in range %d, want 2", n)
		}
		if got := WXReport(515); got != "x86/mm: Checked W+X mappings: FAILED, 515 W+X pages found." {
			t.Fatal(got)
		}
		if err := Check(e.as, CheckOptions{AllowWX: true}); err != nil {
			t.Fatal(err)
		}
	}
}
