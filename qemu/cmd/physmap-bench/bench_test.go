package main

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []float64
		want Stats
	}{
		{"none", nil, Stats{}},
		{"one", []float64{2}, Stats{N: 1, Min: 2, Median: 2, Max: 2}},
		{"odd", []float64{5, 1, 3}, Stats{N: 3, Min: 1, Median: 3, Max: 5}},
		{"even", []float64{4, 1, 3, 10}, Stats{N: 4, Min: 1, Median: 3.5, Max: 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]float64(nil), tc.in...)
			if got := Summarize(tc.in); got != tc.want {
				t.Errorf("Summarize(%v) = %+v, want %+v", tc.in, got, tc.want)
			}
			if !reflect.DeepEqual(in, tc.in) {
				t.Errorf("Summarize reordered its input: %v", tc.in)
			}
		})
	}
}

func TestRatioAndPerUnit(t *testing.T) {
	if got := Ratio(3, 2); got != 1.5 {
		t.Errorf("Ratio(3, 2) = %v", got)
	}
	if got := Ratio(1, 0); !math.IsNaN(got) {
		t.Errorf("Ratio(1, 0) = %v, want NaN", got)
	}
	if got := PerUnit(1e6, 4000); got != 250 {
		t.Errorf("PerUnit(1e6, 4000) = %v, want 250", got)
	}
	if got := PerUnit(1, 0); !math.IsNaN(got) {
		t.Errorf("PerUnit(1, 0) = %v, want NaN", got)
	}
}

func TestLinearFit(t *testing.T) {
	f, ok := LinearFit([]float64{1, 2, 3, 4}, []float64{12, 14, 16, 18})
	if !ok || math.Abs(f.Slope-2) > 1e-9 || math.Abs(f.Intercept-10) > 1e-9 || math.Abs(f.R2-1) > 1e-9 {
		t.Errorf("exact line: %+v, %v", f, ok)
	}
	f, ok = LinearFit([]float64{1, 2, 3, 4}, []float64{5, 1, 5, 1})
	if !ok || f.R2 > 0.25 {
		t.Errorf("no line: %+v, %v; want a small R²", f, ok)
	}
	if _, ok := LinearFit([]float64{3, 3}, []float64{1, 2}); ok {
		t.Error("one distinct x fitted")
	}
	if _, ok := LinearFit([]float64{1}, []float64{1}); ok {
		t.Error("one point fitted")
	}
}

// console is a shortened physmap boot.
const console = `physmap: booting on QEMU microvm (TamaGo tamago/amd64, go1.26.0)
BIOS-e820: [mem 0x0000000000000000-0x00000000bfffffff] usable
BIOS-e820: [mem 0x0000000100000000-0x00000001bfffffff] usable
PASS e820: fw_cfg's etc/e820 and the PVH memory map agree on the RAM the direct map covers
phase: firmware-map ended at 100.000000 ms
PASS paging.mode: 4-level paging (CR4.LA57=0), want 4-level: physmap.levels=4; CPUID Page1GB=yes, 40 physical address bits
phase: directmap ended at 105.000000 ms
phase: regions ended at 110.500000 ms
physmap: 4-level tables at 0x12480000 live in CR3: 13 table pages (the direct map alone needs at least 2)
phase: proofs ended at 360.500000 ms
tables: low-window 5 (min 5)
tables: page_offset_base 5 (min 2)
tables: kernel text mapping, mapped to physical address 0 6 (min 6)
tables: total 13 (13 distinct reached from leaves, 3 shared between regions, 16 summed over regions)
physmap: JSON dump of the live tables sent to the bulk channel (isa-debugcon, port 0xe9)
phase: report ended at 400.000000 ms
selftest: 22 passed, 0 failed
`

// bulk is that boot's bulk channel.
const bulk = `physmap: json begin
{"mode":4,"cr3":"0x12480000","regions":[],"runs":[{"va":"0xffff888000000000","pa":"0x0","size":"0x40000000","count":6,"level":"pud","flags":{"rw":true,"user":false,"nx":true,"global":true},"region":"direct"},
{"va":"0xffffffff90010000","pa":"0x10010000","size":"0x1000","count":100,"level":"pte","flags":{"rw":false,"user":false,"nx":false,"global":true},"region":"text"}],"aliases":[],
"check_ns":[{"name":"e820","ns":1500000},{"name":"walk.image","ns":250000}]}
physmap: json end
`

func TestParseConsole(t *testing.T) {
	// The dump on the bulk channel, and from a kernel that printed it on
	// its console.
	fromBulk := ParseConsole(strings.Split(console, "\n"), []byte(bulk))
	onConsole := strings.Replace(console, "phase: report", bulk+"phase: report", 1)
	if g := ParseConsole(strings.Split(onConsole, "\n"), nil); !reflect.DeepEqual(g, fromBulk) {
		t.Errorf("the dump on the console reads %+v, on the bulk channel %+v", g, fromBulk)
	}
	g := fromBulk
	if g.Levels != 4 || !g.Page1GB || g.RAMMiB != 6144 || g.TablePages != 13 || g.DirectMin != 2 {
		t.Errorf("header: %+v", g)
	}
	wantPhases := []Phase{{"firmware-map", 100, 100}, {"directmap", 105, 5}, {"regions", 110.5, 5.5}, {"proofs", 360.5, 250}, {"report", 400, 39.5}}
	if !reflect.DeepEqual(g.Phases, wantPhases) {
		t.Errorf("phases = %+v, want %+v", g.Phases, wantPhases)
	}
	wantTables := []Tables{{"low-window", 5, 5}, {"page_offset_base", 5, 2}, {"kernel text mapping, mapped to physical address 0", 6, 6}}
	if !reflect.DeepEqual(g.Tables, wantTables) {
		t.Errorf("tables = %+v, want %+v", g.Tables, wantTables)
	}
	if g.DumpMissing || g.Leaves != 106 || !reflect.DeepEqual(g.LeavesBySz, []uint64{100, 0, 6}) {
		t.Errorf("leaves = %d %v (dump missing %v), want 106 [100 0 6]", g.Leaves, g.LeavesBySz, g.DumpMissing)
	}
	if want := []CheckMs{{"e820", 1.5}, {"walk.image", 0.25}}; !reflect.DeepEqual(g.Checks, want) {
		t.Errorf("checks = %+v, want %+v", g.Checks, want)
	}
	if ms, ok := g.ProofsMs(); !ok || ms != 250 {
		t.Errorf("ProofsMs = %v, %v", ms, ok)
	}
	row := scaleRow(Boot{Set: "sweep", OK: true, Memory: "6G", Guest: g})
	if row.NsPerLeaf != 250e6/106 || row.NsPerMiB != 250e6/6144 || row.DirectUsed != 5 || row.DirectMin != 2 {
		t.Errorf("scale row = %+v", row)
	}
	if g := ParseConsole([]string{"selftest: 1 passed, 0 failed"}, nil); !g.DumpMissing || len(g.Phases) != 0 {
		t.Errorf("a console without a dump: %+v", g)
	}
}

func TestParseMaxRSS(t *testing.T) {
	if n, ok := ParseMaxRSS([]string{"qemu: warning", "physmap-bench: qemu maxrss 123456"}); !ok || n != 123456 {
		t.Errorf("got %d, %v", n, ok)
	}
	if _, ok := ParseMaxRSS([]string{"qemu: warning"}); ok {
		t.Error("found an RSS in none")
	}
}

func TestAnalyse(t *testing.T) {
	g := func(proofsAt float64) Guest {
		return Guest{Phases: []Phase{{"regions", 100, 100}, {"proofs", proofsAt, proofsAt - 100}, {"report", proofsAt + 10, 10}},
			Leaves: 1000, RAMMiB: 2048, Checks: []CheckMs{{"walk.image", 20}, {"content", proofsAt / 2}}}
	}
	rep := Report{Boots: []Boot{
		{Kind: "physmap", Set: "headline", OK: true, VerdictS: 1.0, ExitS: 1.1, Guest: g(400)},
		{Kind: "baseline", Set: "headline", OK: true, VerdictS: 0.2, ExitS: 0.25},
		{Kind: "physmap", Set: "headline", OK: true, VerdictS: 1.4, ExitS: 1.5, Guest: g(500)},
		{Kind: "baseline", Set: "headline", OK: true, VerdictS: 0.3, ExitS: 0.35},
		{Kind: "physmap", Set: "headline", OK: false, VerdictS: 9},
		{Kind: "physmap", Set: "sweep", Paging: "4-level 1G", Memory: "2G", OK: true, Guest: g(400)},
		{Kind: "physmap", Set: "sweep", Paging: "4-level 1G", Memory: "2G", OK: true, Guest: g(300)},
	}}
	rep.analyse()
	h := rep.Headline
	if h.Physmap.OK != 2 || h.Physmap.VerdictS.Median != 1.2 || h.Baseline.VerdictS.Median != 0.25 {
		t.Errorf("headline = %+v", h)
	}
	if math.Abs(h.VerdictRatio-4.8) > 1e-9 || math.Abs(h.ExitRatio-1.3/0.3) > 1e-9 || math.Abs(h.VerdictRatioMn-5) > 1e-9 {
		t.Errorf("ratios = %v %v %v", h.VerdictRatio, h.ExitRatio, h.VerdictRatioMn)
	}
	if h.CostliestPhase != "proofs" || !reflect.DeepEqual(h.Physmap.Phases, []string{"regions", "proofs", "report"}) {
		t.Errorf("phases %v, costliest %q", h.Physmap.Phases, h.CostliestPhase)
	}
	if len(rep.Scaling) != 1 || rep.Scaling[0].ProofsMs != 200 || rep.Scaling[0].NsPerLeaf != 200e6/1000 {
		t.Errorf("scaling = %+v", rep.Scaling)
	}
	// One size: no fit, so no part above the fixed one.
	if !math.IsNaN(rep.Scaling[0].NsPerLeafVar) {
		t.Errorf("ns/leaf above the fixed part without a fit: %v", rep.Scaling[0].NsPerLeafVar)
	}
	// Two sizes, 1000 and 3000 leaves, 200 and 400 ms: 100 ms fixed,
	// 100 µs a leaf above it.
	two := Report{Boots: []Boot{
		{Kind: "physmap", Set: "sweep", Paging: "4-level 2M", Memory: "2G", OK: true, Guest: Guest{Phases: []Phase{{"regions", 100, 100}, {"proofs", 300, 200}}, Leaves: 1000}},
		{Kind: "physmap", Set: "sweep", Paging: "4-level 2M", Memory: "8G", OK: true, Guest: Guest{Phases: []Phase{{"regions", 100, 100}, {"proofs", 500, 400}}, Leaves: 3000}},
	}}
	two.analyse()
	for _, row := range two.Scaling {
		if math.Abs(row.NsPerLeafVar-1e5) > 1e-6 {
			t.Errorf("%s: %v ns a leaf above the fixed part, want 1e5", row.Memory, row.NsPerLeafVar)
		}
	}
	if c := h.Physmap.CheckMs["content"]; c.Median != 225 || c.Min != 200 || !reflect.DeepEqual(h.Physmap.Checks, []string{"walk.image", "content"}) {
		t.Errorf("checks %v, content %+v", h.Physmap.Checks, c)
	}
	var out bytes.Buffer
	rep.Print(&out)
	if !strings.Contains(out.String(), "ratio physmap/baseline (medians): verdict 4.80") {
		t.Errorf("printed:\n%s", out.String())
	}
	// The costliest check first, with its share of the sum of medians.
	if !regexp.MustCompile(`(?m)^content +200\.0 +225\.0 +250\.0 +91\.8%\nwalk\.image +20\.0 +20\.0 +20\.0 +8\.2%\nsum of medians +245\.0$`).MatchString(out.String()) {
		t.Errorf("check table:\n%s", out.String())
	}
}

func TestLastInteresting(t *testing.T) {
	lines := []string{"a", "b", "phase: module ended at 1.000000 ms", "runtime: out of memory: cannot allocate", "fatal error: out of memory", "", "goroutine 1"}
	if got := lastInteresting(lines, 3); !reflect.DeepEqual(got, []string{"phase: module ended at 1.000000 ms", "runtime: out of memory: cannot allocate", "fatal error: out of memory"}) {
		t.Errorf("got %q", got)
	}
	if got := lastInteresting([]string{"a", "b"}, 3); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("got %q", got)
	}
}

func TestScaleRowJSONWithFailedBoot(t *testing.T) {
	row := scaleRow(Boot{Memory: "512G"})
	b, err := json.Marshal(row)
	if err != nil {
		t.Fatalf("Marshal of a failed boot's row: %v", err)
	}
	if !strings.Contains(string(b), `"proofs_ns_per_leaf":null`) || strings.Count(string(b), `"proofs_ns_per_leaf"`) != 1 {
		t.Errorf("Marshal = %s, want one null proofs_ns_per_leaf", b)
	}
	row.NsPerLeaf = 2.5
	if b, _ := json.Marshal(row); !strings.Contains(string(b), `"proofs_ns_per_leaf":2.5`) {
		t.Errorf("Marshal = %s, want proofs_ns_per_leaf 2.5", b)
	}
}
