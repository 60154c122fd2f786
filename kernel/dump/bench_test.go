package dump

import (
	"testing"

	"github.com/physmap/physmap/mm"
)

// BenchmarkRuns merges 65536 clones of one frame 128 KiB apart, the shape
// of espfix's, and 9216 contiguous 4 KiB pages, the image's.
func BenchmarkRuns(b *testing.B) {
	pool := mm.PhysRange{Start: 0x7_4000_0000, End: 0x7_6000_0000}
	as, err := mm.New(mm.Mode4Level, mm.NewSparseMem(pool), mm.NewMemblock([]mm.PhysRange{pool}, nil), mm.NopTLB)
	if err != nil {
		b.Fatal(err)
	}
	const clones = 65536
	for i := range uint64(clones) {
		if err := as.Map(mm.VirtAddr(0xffffff0000000000+i<<17), 0x100000, 0x1000, mm.PageKernelRO, mm.Only(mm.Size4K)); err != nil {
			b.Fatal(err)
		}
	}
	if err := as.Map(0xffffffff80200000, 0x200000, 9216*0x1000, mm.PageKernel, mm.Only(mm.Size4K)); err != nil {
		b.Fatal(err)
	}
	layout := mm.DefaultLayout(mm.Mode4Level)
	b.ResetTimer()
	for b.Loop() {
		if runs := Runs(as, layout); len(runs) != 2 {
			b.Fatalf("%d runs, want 2: %v", len(runs), runs)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(clones+9216), "ns/leaf")
}
