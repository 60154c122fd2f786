package mm

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// kernelLike builds a small address space shaped like a Linux kernel's: a
// user page, the direct map of a small machine, kernel text and data,
// three scattered module pages, an uncached fixmap page, the vsyscall page
// and one W+X page in vmalloc space.
func kernelLike(t *testing.T, mode Mode) *env {
	t.Helper()
	e := newEnv(t, mode)
	l := DefaultLayout(mode)
	region := func(k RegionKind) VirtAddr { r, _ := l.Region(k); return r.Start }
	mustMap := func(va VirtAddr, pa PhysAddr, n uint64, a Attr) {
		t.Helper()
		if err := e.as.Map(va, pa, n, a, AllowAll); err != nil {
			t.Fatal(err)
		}
	}
	mustMap(0x40_0000, 0x2_0000_0000, 0x1000, AttrUser|AttrWrite|AttrNX)
	plan, err := PlanDirectMap(mode, l.PageOffset(), []PhysRange{{0, 0x9fc00}, {0x10_0000, 0x4060_0000}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.Build(e.as, PageKernel); err != nil {
		t.Fatal(err)
	}
	text := region(KindKernelText).Add(16 << 20)
	mustMap(text, 0x100_0000, 2<<20, PageKernelExec)
	mustMap(text.Add(2<<20), 0x120_0000, 2<<20, PageKernel)
	frames, err := NewMemblock([]PhysRange{{0x3000_0000, 0x3000_0000 + 1<<20}}, nil).AllocScattered(3)
	if err != nil {
		t.Fatal(err)
	}
	mod := region(KindModules)
	mustMap(mod, frames[0], 0x1000, PageKernelExec)
	mustMap(mod.Add(0x1000), frames[1], 0x1000, PageKernelExec)
	mustMap(mod.Add(0x2000), frames[2], 0x1000, PageKernel)
	mustMap(region(KindFixmap).Add(0x1000), 0xfee0_0000, 0x1000, PageKernel|AttrPCD|AttrPWT)
	mustMap(region(KindVsyscall), 0x2_0000_1000, 0x1000, AttrUser|AttrNX|AttrGlobal)
	mustMap(region(KindVmalloc), 0x2_0000_2000, 0x1000, AttrWrite|AttrGlobal)
	return e
}

func TestPtdumpGolden(t *testing.T) {
	for _, mode := range modes {
		for _, phys := range []bool{false, true} {
			e := kernelLike(t, mode)
			var b bytes.Buffer
			if err := Ptdump(&b, e.as, PtdumpOptions{PhysAddr: phys}); err != nil {
				t.Fatal(err)
			}
			b.WriteString(WXReport(AllWXPages(e.as)) + "\n")
			name := "ptdump-" + strings.ReplaceAll(mode.String(), "-", "")
			if phys {
				name += "-phys"
			}
			golden(t, name+".golden", b.Bytes())
			e.check()
		}
	}
}

// Runs break where the level, the flags or the effective permissions
// change, and at markers.
func TestPtdumpRuns(t *testing.T) {
	e := newEnv(t, Mode4Level)
	base := kbase(Mode4Level)
	for i := 0; i < 4; i++ {
		if err := e.as.Map(base.Add(uint64(i)<<12), PhysAddr(0x2_0000_0000+uint64(i)<<13), 0x1000, PageKernel, AllowAll); err != nil {
			t.Fatal(err)
		}
	}
	dump := func(phys bool) string {
		var b bytes.Buffer
		Ptdump(&b, e.as, PtdumpOptions{Layout: DefaultLayout(Mode4Level), PhysAddr: phys})
		return b.String()
	}
	want := "0xffff888000000000-0xffff888000004000          16K     RW                 GLB NX pte\n"
	if got := dump(false); !strings.Contains(got, want) {
		t.Fatalf("merged run missing:\n%s", got)
	}
	// With physical addresses the frames are not contiguous: four runs.
	if got := dump(true); strings.Count(got, "0x00000002000") != 4 {
		t.Fatalf("physical runs:\n%s", got)
	}
	// Effective permission change in an upper level breaks the run even
	// though the leaves are identical.
	tr, _ := e.as.Translate(base)
	pmd := tr.Path()[2]
	e.mem.Write64(pmd.Table.Add(uint64(pmd.Index)*8), uint64(pmd.Entry|NX))
	if got := dump(false); !strings.Contains(got, want) {
		t.Fatalf("NX on the pmd should not change the leaves' own columns:\n%s", got)
	}
}

// TestPtdumpESPfixCap: the ESPfix area prints at most 16 lines, then how
// many it left out, as dump_pagetables.c's address_markers cap it; the
// other stretches are not capped.
func TestPtdumpESPfixCap(t *testing.T) {
	for _, mode := range modes {
		e := newEnv(t, mode)
		l := DefaultLayout(mode)
		r, _ := l.Region(KindESPFix)
		for n := range 32 {
			if err := e.as.Map(r.Start.Add(uint64(n)<<16), 0x2_0000_0000, 0x1000, PageKernelRO, Only(Size4K)); err != nil {
				t.Fatal(err)
			}
		}
		stretch := func(l *Layout) []string {
			var b strings.Builder
			if err := Ptdump(&b, e.as, PtdumpOptions{Layout: l}); err != nil {
				t.Fatal(err)
			}
			_, after, _ := strings.Cut(b.String(), "---[ ESPfix Area ]---\n")
			before, _, _ := strings.Cut(after, "---[")
			return strings.Split(strings.TrimSuffix(before, "\n"), "\n")
		}
		capped := stretch(l)
		// The same tables under a layout whose ESPfix row is of another
		// kind: no cap.
		free := NewLayout(mode, LayoutOptions{})
		for i := range free.Regions {
			if free.Regions[i].Kind == KindESPFix {
				free.Regions[i].Kind = KindEFI
			}
		}
		all := stretch(free)
		if len(all) <= espfixMaxLines {
			t.Fatalf("%v: only %d lines to cap", mode, len(all))
		}
		want := fmt.Sprintf("... %d entries skipped ... ", len(all)-espfixMaxLines)
		if len(capped) != espfixMaxLines+1 || capped[espfixMaxLines] != want || strings.Join(capped[:espfixMaxLines], "\n") != strings.Join(all[:espfixMaxLines], "\n") {
			t.Errorf("%v: capped stretch:\n%s\nwant the first %d of %d lines, then %q", mode, strings.Join(capped, "\n"), espfixMaxLines, len(all), want)
		}
	}
}
