package mm

import (
	"io"
	"iter"
	"testing"
)

// The benchmarks work on the direct map of a 64 GiB machine in 2 MiB pages
// (32768 pmd leaves under 64 pmd tables), the shape PlanDirectMap gives a
// CPU without Page1GB, in both paging modes. Compare runs with benchstat.

const (
	benchRAM    = 64 << 30
	benchLeaves = benchRAM / uint64(Size2M)
)

// benchTableRAM holds the tables of the benchmarks: room for a pte table
// under every 2 MiB leaf that BenchmarkProtectSplit splits before it
// rebuilds.
var benchTableRAM = PhysRange{0x7_4000_0000, 0x7_4000_0000 + 256<<20}

// countTLB counts invalidations without keeping them.
type countTLB struct{ pages, flushes int }

func (c *countTLB) InvalidatePage(VirtAddr) { c.pages++ }
func (c *countTLB) FlushAll()               { c.flushes++ }

type benchEnv struct {
	mem   *SparseMem
	alloc *Memblock
	tlb   *countTLB
	as    *AddressSpace
}

func newBenchEnv(b *testing.B, mode Mode) *benchEnv {
	b.Helper()
	e := &benchEnv{mem: NewSparseMem(benchTableRAM), alloc: NewMemblock([]PhysRange{benchTableRAM}, nil), tlb: &countTLB{}}
	e.reset(b, mode, false)
	return e
}

// reset replaces the address space by an empty one, or by one holding the
// 64 GiB direct map.
func (e *benchEnv) reset(b *testing.B, mode Mode, mapped bool) {
	b.Helper()
	if e.as != nil {
		if err := e.as.Release(); err != nil {
			b.Fatal(err)
		}
	}
	as, err := New(mode, e.mem, e.alloc, e.tlb)
	if err != nil {
		b.Fatal(err)
	}
	e.as = as
	if mapped {
		e.mapDirect(b)
	}
}

func (e *benchEnv) mapDirect(b *testing.B) {
	b.Helper()
	if err := e.as.Map(kbase(e.as.Mode()), 0, benchRAM, PageKernel, Allow2M); err != nil {
		b.Fatal(err)
	}
}

func perLeaf(b *testing.B, leaves uint64) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(uint64(b.N)*leaves), "ns/leaf")
}

func BenchmarkMapDirectMap64G(b *testing.B) {
	for _, mode := range modes {
		b.Run(mode.String(), func(b *testing.B) {
			e := newBenchEnv(b, mode)
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				e.reset(b, mode, false)
				b.StartTimer()
				e.mapDirect(b)
			}
			perLeaf(b, benchLeaves)
		})
	}
}

func BenchmarkUnmapDirectMap64G(b *testing.B) {
	for _, mode := range modes {
		b.Run(mode.String(), func(b *testing.B) {
			e := newBenchEnv(b, mode)
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				e.mapDirect(b)
				b.StartTimer()
				if err := e.as.Unmap(kbase(mode), benchRAM); err != nil {
					b.Fatal(err)
				}
			}
			perLeaf(b, benchLeaves)
		})
	}
}

func BenchmarkLeavesDirectMap64G(b *testing.B) {
	for _, mode := range modes {
		b.Run(mode.String(), func(b *testing.B) {
			e := newBenchEnv(b, mode)
			e.mapDirect(b)
			b.ResetTimer()
			countLeaves(b, e.as.AllLeaves(), benchLeaves)
		})
	}
}

func BenchmarkTranslate(b *testing.B) {
	for _, mode := range modes {
		b.Run(mode.String(), func(b *testing.B) {
			e := newBenchEnv(b, mode)
			e.mapDirect(b)
			// A 4 KiB page too, so both leaf depths are walked.
			user := VirtAddr(0x40_0000_0000)
			if err := e.as.Map(user, 0x1000, 0x1000, AttrUser, AllowAll); err != nil {
				b.Fatal(err)
			}
			base := kbase(mode)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				va := base.Add(uint64(i) * 0x9e3779b97f4a7c15 % benchRAM)
				if i&1 != 0 {
					va = user
				}
				if _, err := e.as.Translate(va); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkTranslateNotMapped(b *testing.B) {
	for _, mode := range modes {
		b.Run(mode.String(), func(b *testing.B) {
			e := newBenchEnv(b, mode)
			e.mapDirect(b)
			va := kbase(mode).Add(benchRAM)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := e.as.Translate(va); err == nil {
					b.Fatal("translated a hole")
				}
			}
		})
	}
}

// BenchmarkProtectSplit makes one 4 KiB page read-only inside a different
// 2 MiB page each time, which splits it into 512 ptes.
func BenchmarkProtectSplit(b *testing.B) {
	const perBuild = 8192 // splits before the direct map is rebuilt
	for _, mode := range modes {
		b.Run(mode.String(), func(b *testing.B) {
			e := newBenchEnv(b, mode)
			base := kbase(mode)
			for i := 0; i < b.N; i++ {
				k := uint64(i % perBuild)
				if k == 0 {
					b.StopTimer()
					e.reset(b, mode, true)
					b.StartTimer()
				}
				va := base.Add(k*uint64(Size2M) + 0x1000)
				if err := e.as.Protect(va, 0x1000, PageKernelRO); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkProtectDirectMap64G changes the attributes of every leaf, no
// split needed.
func BenchmarkProtectDirectMap64G(b *testing.B) {
	for _, mode := range modes {
		b.Run(mode.String(), func(b *testing.B) {
			e := newBenchEnv(b, mode)
			e.mapDirect(b)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				attrs := PageKernel
				if i&1 == 0 {
					attrs = PageKernelRO
				}
				if err := e.as.Protect(kbase(mode), benchRAM, attrs); err != nil {
					b.Fatal(err)
				}
			}
			perLeaf(b, benchLeaves)
		})
	}
}

func BenchmarkTablePagesDirectMap64G(b *testing.B) {
	for _, mode := range modes {
		b.Run(mode.String(), func(b *testing.B) {
			e := newBenchEnv(b, mode)
			e.mapDirect(b)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				e.as.TablePages()
			}
		})
	}
}

func BenchmarkCheckDirectMap64G(b *testing.B) {
	for _, mode := range modes {
		b.Run(mode.String(), func(b *testing.B) {
			e := newBenchEnv(b, mode)
			e.mapDirect(b)
			base := kbase(mode)
			opt := CheckOptions{Owns: e.alloc.Owns, Aliases: []VirtRange{{base, base.Add(benchRAM)}}}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := Check(e.as, opt); err != nil {
					b.Fatal(err)
				}
			}
			perLeaf(b, benchLeaves)
		})
	}
}

func BenchmarkPtdumpDirectMap64G(b *testing.B) {
	for _, mode := range modes {
		b.Run(mode.String(), func(b *testing.B) {
			e := newBenchEnv(b, mode)
			e.mapDirect(b)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := Ptdump(io.Discard, e.as, PtdumpOptions{PhysAddr: true}); err != nil {
					b.Fatal(err)
				}
			}
			perLeaf(b, benchLeaves)
		})
	}
}

// The espfix benchmarks add to the direct map the espfix area as the
// kernel builds it (kernel/region/espfix_64.go, after init_espfix_ap): one
// 4 KiB page mapped at 65536 places through one pte page holding it every
// 16th entry, a pmd page all of whose 512 entries point to that pte page,
// and 4 pud entries pointing to that pmd page, the pud and pmd entries
// read-only and NX. Most of a full walk of the kernel's tables is there.
const (
	espfixPTEClones = 32
	espfixPUDClones = 4
	espfixLeaves    = espfixPTEClones * entriesPerPT * espfixPUDClones
)

// mapESPFix writes the espfix clones into as and returns their range.
func mapESPFix(b testing.TB, as *AddressSpace, mem PhysMem) VirtRange {
	b.Helper()
	r, _ := DefaultLayout(as.Mode()).Region(KindESPFix)
	if err := as.Map(r.Start, 0x1000, 0x1000, PageKernelRO, Only(Size4K)); err != nil {
		b.Fatal(err)
	}
	t, err := as.Translate(r.Start)
	if err != nil {
		b.Fatal(err)
	}
	// As init_espfix_ap does, straight into the tables: no mm operation
	// points many entries to one table.
	for _, st := range t.Path() {
		switch st.Level {
		case PTE:
			for n := range espfixPTEClones {
				mem.Write64(st.Table.Add(uint64(st.Index+n*entriesPerPT/espfixPTEClones)*entrySize), uint64(st.Entry))
			}
		case PMD, PUD:
			n := entriesPerPT
			if st.Level == PUD {
				n = espfixPUDClones
			}
			for i := range n {
				mem.Write64(st.Table.Add(uint64(st.Index+i)*entrySize), uint64(st.Entry&^RW|NX))
			}
		}
	}
	return VirtRange{r.Start, r.Start.Add(espfixPUDClones * uint64(Size1G))}
}

// countLeaves runs the benchmark's loop: each time, every leaf of leaves,
// which must be want of them; then the time per leaf.
func countLeaves(b *testing.B, leaves iter.Seq[Leaf], want uint64) {
	b.Helper()
	for i := 0; i < b.N; i++ {
		n := uint64(0)
		for range leaves {
			n++
		}
		if n != want {
			b.Fatalf("%d leaves, want %d", n, want)
		}
	}
	perLeaf(b, want)
}

// newESPFixBench returns the benchmarks' direct map with the espfix area
// added, and the area's range.
func newESPFixBench(b *testing.B, mode Mode) (*benchEnv, VirtRange) {
	b.Helper()
	e := newBenchEnv(b, mode)
	e.mapDirect(b)
	return e, mapESPFix(b, e.as, e.mem)
}

func BenchmarkLeavesESPFix(b *testing.B) {
	const leaves = benchLeaves + espfixLeaves
	for _, mode := range modes {
		b.Run(mode.String(), func(b *testing.B) {
			e, _ := newESPFixBench(b, mode)
			b.ReportAllocs()
			b.ResetTimer()
			countLeaves(b, e.as.AllLeaves(), leaves)
		})
	}
}

// BenchmarkLeavesESPFixRange walks the espfix area alone, as the kernel's
// region.espfix proof does.
func BenchmarkLeavesESPFixRange(b *testing.B) {
	for _, mode := range modes {
		b.Run(mode.String(), func(b *testing.B) {
			e, r := newESPFixBench(b, mode)
			b.ReportAllocs()
			b.ResetTimer()
			countLeaves(b, e.as.Leaves(r), espfixLeaves)
		})
	}
}

func BenchmarkCheckESPFix(b *testing.B) {
	for _, mode := range modes {
		b.Run(mode.String(), func(b *testing.B) {
			e, r := newESPFixBench(b, mode)
			base := kbase(mode)
			opt := CheckOptions{Owns: e.alloc.Owns, Aliases: []VirtRange{{base, base.Add(benchRAM)}}, Shared: []VirtRange{r}}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := Check(e.as, opt); err != nil {
					b.Fatal(err)
				}
			}
			perLeaf(b, benchLeaves+espfixLeaves)
		})
	}
}

func BenchmarkWXESPFix(b *testing.B) {
	for _, mode := range modes {
		b.Run(mode.String(), func(b *testing.B) {
			e, _ := newESPFixBench(b, mode)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if n := AllWXPages(e.as); n != 0 {
					b.Fatalf("%d W+X pages", n)
				}
			}
			perLeaf(b, benchLeaves+espfixLeaves)
		})
	}
}
