package region

import (
	"testing"

	"github.com/physmap/physmap/mm"
)

// TestFoundArea: the range a proof searches for a found region. Seed 10 at
// 2G in 5-level mode drew vmemmap_base 0xfffe759180000000, where mm.rst's
// 0.5 PB would end past 2^64; the search must still reach the leaves and
// stop at CPU_ENTRY_AREA_BASE. vmalloc stops at vmemmap_base as found.
func TestFoundArea(t *testing.T) {
	const cea = mm.VirtAddr(0xfffffe0000000000)
	for _, tc := range []struct {
		name  string
		mode  mm.Mode
		kaslr bool
		kind  mm.RegionKind
		base  mm.VirtAddr
		bases Bases
		want  mm.VirtRange
	}{
		{"vmemmap near the top", mm.Mode5Level, true, mm.KindVmemmap, 0xfffe759180000000, Bases{}, mm.VirtRange{Start: 0xfffe759180000000, End: cea}},
		{"vmemmap low", mm.Mode5Level, true, mm.KindVmemmap, 0xffc58e9280000000, Bases{}, mm.VirtRange{Start: 0xffc58e9280000000, End: 0xffc78e9280000000}},
		{"vmalloc up to vmemmap", mm.Mode5Level, true, mm.KindVmalloc, 0xffd0000000000000, Bases{Vmemmap: 0xffe0000000000000}, mm.VirtRange{Start: 0xffd0000000000000, End: 0xffe0000000000000}},
		{"vmalloc without vmemmap", mm.Mode5Level, true, mm.KindVmalloc, 0xfff0000000000000, Bases{VmemmapErr: errNotFound}, mm.VirtRange{Start: 0xfff0000000000000, End: cea}},
		{"no kaslr: mm.rst", mm.Mode4Level, false, mm.KindVmemmap, 0xffffea0000000000, Bases{}, mm.VirtRange{Start: 0xffffea0000000000, End: 0xffffeb0000000000}},
	} {
		p := &Proof{Ref: Reference{Mode: tc.mode, KASLR: tc.kaslr, Spec: mm.DefaultLayout(tc.mode)}, Bases: tc.bases}
		if got := p.foundArea(tc.kind, tc.base); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
