package mm

import (
	"fmt"
	"testing"
)

func TestPlanDirectMap(t *testing.T) {
	const (
		k4 = PhysAddr(Size4K)
		m2 = PhysAddr(Size2M)
		g1 = PhysAddr(Size1G)
	)
	type want struct {
		pa   PhysAddr
		len  PhysAddr
		size PageSize
	}
	tests := []struct {
		name   string
		ram    []PhysRange
		page1G bool
		want   []want
	}{
		{"head-2M-1G-2M-tail", []PhysRange{{k4, 2*g1 + 3*m2 + 3*k4}}, true, []want{
			{k4, m2 - k4, Size4K}, {m2, g1 - m2, Size2M}, {g1, g1, Size1G},
			{2 * g1, 3 * m2, Size2M}, {2*g1 + 3*m2, 3 * k4, Size4K}}},
		{"no-Page1GB", []PhysRange{{k4, 2*g1 + 3*m2 + 3*k4}}, false, []want{
			{k4, m2 - k4, Size4K}, {m2, 2*g1 + 2*m2, Size2M}, {2*g1 + 3*m2, 3 * k4, Size4K}}},
		{"small-inside-2M", []PhysRange{{0x9_0000_3000, 0x9_0000_5000}}, true, []want{
			{0x9_0000_3000, 2 * k4, Size4K}}},
		{"holes-stay-unmapped", []PhysRange{{0, 0x9fc00}, {0x10_0000, 0xc000_0000}, {0x1_0000_0000, 0x1_c000_0000}}, true, []want{
			{0, 0x9f000, Size4K}, {0x10_0000, 0x10_0000, Size4K}, {m2, g1 - m2, Size2M},
			{g1, 2 * g1, Size1G}, {0x1_0000_0000, 3 * g1, Size1G}}},
		{"adjacent-joined-unsorted", []PhysRange{{2 * g1, 3 * g1}, {g1, 2 * g1}}, true, []want{{g1, 2 * g1, Size1G}}},
		// init_mem_mapping maps [0, 1 MiB) apart: the first 2 MiB in 4K.
		{"isa-range-apart", []PhysRange{{g1, 2 * g1}, {0, g1}}, true, []want{
			{0, m2, Size4K}, {m2, g1 - m2, Size2M}, {g1, g1, Size1G}}},
		{"empty", nil, true, nil},
	}
	for _, mode := range modes {
		base := kbase(mode)
		for _, tt := range tests {
			t.Run(mode.String()+"/"+tt.name, func(t *testing.T) {
				p, err := PlanDirectMap(mode, base, tt.ram, tt.page1G)
				if err != nil {
					t.Fatal(err)
				}
				var got, exp []string
				for _, r := range p.Runs {
					got = append(got, fmt.Sprintf("%v+%#x/%v", r.PA, r.Len, r.Size))
					if r.VA != base.Add(uint64(r.PA)) {
						t.Fatalf("run %v at %v, want base+pa", r.PA, r.VA)
					}
				}
				for _, w := range tt.want {
					exp = append(exp, fmt.Sprintf("%v+%#x/%v", w.pa, uint64(w.len), w.size))
				}
				if fmt.Sprint(got) != fmt.Sprint(exp) {
					t.Fatalf("runs\n got %v\nwant %v", got, exp)
				}
				// Build it: RAM maps at base+pa, holes do not, and the
				// tables used are the computed minimum.
				e := newEnv(t, mode)
				if err := p.Build(e.as, PageKernel); err != nil {
					t.Fatal(err)
				}
				if got := uint64(e.as.TablePages()); got != p.MinTablePages {
					t.Fatalf("built with %d table pages, minimum %d", got, p.MinTablePages)
				}
				var n4, n2, n1 uint64
				for lf := range e.as.AllLeaves() {
					switch lf.Size {
					case Size4K:
						n4++
					case Size2M:
						n2++
					case Size1G:
						n1++
					}
				}
				if n4 != p.Pages4K || n2 != p.Pages2M || n1 != p.Pages1G {
					t.Fatalf("leaves %d/%d/%d, plan %d/%d/%d", n4, n2, n1, p.Pages4K, p.Pages2M, p.Pages1G)
				}
				for _, r := range tt.ram {
					for _, pa := range []PhysAddr{r.Start.AlignUp(0x1000), r.End.AlignDown(0x1000) - 8} {
						if tr, err := e.as.Translate(base.Add(uint64(pa))); err != nil || tr.PA != pa {
							t.Fatalf("RAM %v: %v %v", pa, tr.PA, err)
						}
						if !p.Covers(pa) {
							t.Fatalf("plan does not cover %v", pa)
						}
					}
					if r.End.IsAligned(0x1000) && !p.Covers(r.End) {
						if _, err := e.as.Translate(base.Add(uint64(r.End))); err == nil {
							t.Fatalf("hole at %v is mapped", r.End)
						}
					}
				}
				e.check()
			})
		}
	}
}

func TestPlanDirectMapErrors(t *testing.T) {
	ram := []PhysRange{{1 << 30, 2 << 30}}
	if _, err := PlanDirectMap(Mode4Level, 0xffff888000000800, ram, true); err == nil {
		t.Error("misaligned base accepted")
	}
	if _, err := PlanDirectMap(Mode4Level, 0xffff888000000000, []PhysRange{{0, 1<<MaxPhysBits + 0x1000}}, true); err == nil {
		t.Error("RAM beyond MAXPHYADDR accepted")
	}
	if _, err := PlanDirectMap(Mode4Level, 0x7fff_c000_0000, []PhysRange{{0, 2 << 30}}, true); err == nil {
		t.Error("direct map across the canonical hole accepted")
	}
	// A base aligned only to 2 MiB (4 KiB) rules out 1 GiB (2 MiB) pages.
	p, err := PlanDirectMap(Mode4Level, 0xffff888000200000, ram, true)
	if err != nil || p.Pages1G != 0 || p.Pages2M != 512 {
		t.Errorf("2M-aligned base: %+v %v", p, err)
	}
	p, err = PlanDirectMap(Mode4Level, 0xffff888000001000, ram, true)
	if err != nil || p.Pages4K != 1<<18 {
		t.Errorf("4K-aligned base: %v", err)
	}
	if p.Covers(2<<30) || !p.Covers(1<<30) || p.Covers(0) {
		t.Error("Covers")
	}
	// From 0: the first 2 MiB in 4K (the ISA range apart), 2M to 1 GiB.
	p, _ = PlanDirectMap(Mode4Level, 0xffff888000000000, []PhysRange{{0, 2<<30 + 1<<21 + 1<<12}}, true)
	if got := p.Meminfo(); got != "DirectMap4k:     2052 kB\nDirectMap2M:  1048576 kB\nDirectMap1G:  1048576 kB\n" {
		t.Errorf("Meminfo:\n%s", got)
	}
}

// BenchmarkDirectMap plans and builds the direct map of a 64 GiB and a
// 1 TiB machine (with the PC hole below 4 GiB), with and without 1 GiB
// pages, in both modes, and reports table pages used against the minimum.
func BenchmarkDirectMap(b *testing.B) {
	for _, mode := range modes {
		for _, size := range []uint64{64 << 30, 1 << 40} {
			for _, page1G := range []bool{true, false} {
				ram := []PhysRange{{0, 0x9fc00}, {0x10_0000, 0xc000_0000}, {0x1_0000_0000, PhysAddr(0x1_0000_0000 + size - 0xc000_0000)}}
				name := fmt.Sprintf("%v/%dGiB/1G=%v", mode, size>>30, page1G)
				b.Run(name, func(b *testing.B) {
					base := kbase(mode)
					var tables, minimum uint64
					for b.Loop() {
						p, err := PlanDirectMap(mode, base, ram, page1G)
						if err != nil {
							b.Fatal(err)
						}
						mem := NewSparseMem(tableRAM)
						as, err := New(mode, mem, NewMemblock([]PhysRange{tableRAM}, nil), NopTLB)
						if err != nil {
							b.Fatal(err)
						}
						if err := p.Build(as, PageKernel); err != nil {
							b.Fatal(err)
						}
						tables, minimum = uint64(as.TablePages()), p.MinTablePages
					}
					b.ReportMetric(float64(tables), "tables")
					b.ReportMetric(float64(minimum), "min-tables")
				})
			}
		}
	}
}
