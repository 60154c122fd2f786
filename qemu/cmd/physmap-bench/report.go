package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"

	"github.com/physmap/physmap/qemu"
)

// Machine is the host the numbers come from.
type Machine struct {
	CPU     string `json:"cpu"`
	Cores   int    `json:"cores"`
	MemMiB  uint64 `json:"mem_mib"`
	QEMU    string `json:"qemu"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Commit  string `json:"commit,omitempty"`
	LoadAvg string `json:"loadavg_at_start,omitempty"`
}

// Settings say how the boots were run.
type Settings struct {
	Headline string `json:"headline"`
	N        int    `json:"n"`
	SweepN   int    `json:"sweep_n"`
	Parallel int    `json:"parallel"`
	Console  string `json:"console"`
	Sweep    string `json:"sweep"`
}

// KernelStats summarizes one kernel's headline boots.
type KernelStats struct {
	OK       int              `json:"ok"`
	VerdictS Stats            `json:"verdict_s"`
	ExitS    Stats            `json:"exit_s"`
	PhaseMs  map[string]Stats `json:"phase_ms,omitempty"`    // each phase's own duration
	PhaseAt  map[string]Stats `json:"phase_at_ms,omitempty"` // when each phase ended
	Phases   []string         `json:"phases,omitempty"`      // names in console order
	CheckMs  map[string]Stats `json:"check_ms,omitempty"`    // each check's own guest time
	Checks   []string         `json:"checks,omitempty"`      // names in report order
}

// Headline compares physmap with the baseline.
type Headline struct {
	Physmap        KernelStats `json:"physmap"`
	Baseline       KernelStats `json:"baseline"`
	VerdictRatio   float64     `json:"verdict_ratio_median"` // physmap/baseline
	ExitRatio      float64     `json:"exit_ratio_median"`
	VerdictRatioMn float64     `json:"verdict_ratio_min"`
	CostliestPhase string      `json:"costliest_phase"`
}

// ScaleRow is the scaling numbers of one paging configuration and size.
type ScaleRow struct {
	Paging     string  `json:"paging"`
	Memory     string  `json:"memory"`
	RAMMiB     uint64  `json:"ram_mib"`
	OK         bool    `json:"ok"`
	Leaves     uint64  `json:"leaves"`
	TablePages int     `json:"table_pages"`
	DirectUsed int     `json:"directmap_tables"`
	DirectMin  int     `json:"directmap_min"`
	RegionsMs  float64 `json:"regions_ms"`
	ProofsMs   float64 `json:"proofs_ms"`
	NsPerLeaf  float64 `json:"proofs_ns_per_leaf"` // NaN (null in JSON) for a failed boot
	// NsPerLeafVar divides only the proofs' part above the fixed time the
	// fit against leaves finds (its intercept); NaN without a fit.
	NsPerLeafVar float64 `json:"proofs_ns_per_leaf_above_fixed"`
	NsPerMiB     float64 `json:"proofs_ns_per_mib"`
	VerdictS     float64 `json:"verdict_s"`
	MaxRSSMiB    float64 `json:"qemu_maxrss_mib"`
}

// Report is everything make bench measured.
type Report struct {
	Machine  Machine    `json:"machine"`
	Settings Settings   `json:"settings"`
	WallS    float64    `json:"wall_s"`
	Headline Headline   `json:"headline"`
	Largest  string     `json:"largest,omitempty"`
	Scaling  []ScaleRow `json:"scaling,omitempty"`
	// FitLeaves and FitMiB fit the proofs' time (ns) against the leaf
	// count and against the RAM size over every passing sweep boot.
	FitLeaves *Fit   `json:"proofs_fit_leaves,omitempty"`
	FitMiB    *Fit   `json:"proofs_fit_mib,omitempty"`
	Probes    []Boot `json:"probes,omitempty"`
	Boots     []Boot `json:"boots"`
}

// kernelStats summarizes the passing headline boots of one kernel.
func kernelStats(boots []Boot, kind string) KernelStats {
	ks := KernelStats{PhaseMs: map[string]Stats{}, PhaseAt: map[string]Stats{}, CheckMs: map[string]Stats{}}
	var verdict, exit []float64
	took, at, checks := map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
	for _, b := range boots {
		if b.Set != "headline" || b.Kind != kind || !b.OK {
			continue
		}
		ks.OK++
		verdict, exit = append(verdict, b.VerdictS), append(exit, b.ExitS)
		for _, p := range b.Guest.Phases {
			if _, seen := took[p.Name]; !seen {
				ks.Phases = append(ks.Phases, p.Name)
			}
			took[p.Name] = append(took[p.Name], p.Ms)
			at[p.Name] = append(at[p.Name], p.AtMs)
		}
		for _, c := range b.Guest.Checks {
			if _, seen := checks[c.Name]; !seen {
				ks.Checks = append(ks.Checks, c.Name)
			}
			checks[c.Name] = append(checks[c.Name], c.Ms)
		}
	}
	for name, ms := range checks {
		ks.CheckMs[name] = Summarize(ms)
	}
	ks.VerdictS, ks.ExitS = Summarize(verdict), Summarize(exit)
	for name := range took {
		ks.PhaseMs[name], ks.PhaseAt[name] = Summarize(took[name]), Summarize(at[name])
	}
	return ks
}

// scaleRow extracts a sweep boot's scaling numbers.
func scaleRow(b Boot) ScaleRow {
	g := b.Guest
	row := ScaleRow{Paging: b.Paging, Memory: b.Memory, RAMMiB: g.RAMMiB, OK: b.OK, Leaves: g.Leaves,
		TablePages: g.TablePages, DirectMin: g.DirectMin, VerdictS: b.VerdictS, MaxRSSMiB: b.MaxRSSMiB,
		NsPerLeaf: math.NaN(), NsPerMiB: math.NaN(), NsPerLeafVar: math.NaN()}
	for _, t := range g.Tables {
		if t.Region == "page_offset_base" {
			row.DirectUsed = t.Pages
		}
	}
	if p, ok := g.Phase("regions"); ok {
		row.RegionsMs = p.Ms
	}
	if ms, ok := g.ProofsMs(); ok {
		row.ProofsMs = ms
		row.NsPerLeaf = PerUnit(ms*1e6, g.Leaves)
		row.NsPerMiB = PerUnit(ms*1e6, g.RAMMiB)
	}
	return row
}

// analyse fills in the summaries from the boots.
func (r *Report) analyse() {
	h := &r.Headline
	h.Physmap, h.Baseline = kernelStats(r.Boots, "physmap"), kernelStats(r.Boots, "baseline")
	h.VerdictRatio = Ratio(h.Physmap.VerdictS.Median, h.Baseline.VerdictS.Median)
	h.ExitRatio = Ratio(h.Physmap.ExitS.Median, h.Baseline.ExitS.Median)
	h.VerdictRatioMn = Ratio(h.Physmap.VerdictS.Min, h.Baseline.VerdictS.Min)
	h.CostliestPhase = costliest(h.Physmap)

	var leaves, mib, ns []float64
	for _, row := range groupSweep(r.Boots) {
		r.Scaling = append(r.Scaling, row)
		if row.OK && row.Leaves > 0 && row.ProofsMs > 0 {
			leaves, mib, ns = append(leaves, float64(row.Leaves)), append(mib, float64(row.RAMMiB)), append(ns, row.ProofsMs*1e6)
		}
	}
	if f, ok := LinearFit(leaves, ns); ok {
		r.FitLeaves = &f
		for i := range r.Scaling {
			if row := &r.Scaling[i]; row.OK && row.ProofsMs > 0 {
				row.NsPerLeafVar = PerUnit(row.ProofsMs*1e6-f.Intercept, row.Leaves)
			}
		}
	}
	if f, ok := LinearFit(mib, ns); ok {
		r.FitMiB = &f
	}
}

// groupSweep makes one row per paging configuration and size from the
// sweep's boots: of repeated boots, the fastest proofs, regions and verdict
// (the least disturbed by the host) and the largest RSS; a configuration
// passes only if every boot of it passed.
func groupSweep(boots []Boot) []ScaleRow {
	var rows []ScaleRow
	index := map[[2]string]int{}
	for _, b := range boots {
		if b.Set != "sweep" {
			continue
		}
		row := scaleRow(b)
		key := [2]string{b.Paging, b.Memory}
		i, seen := index[key]
		if !seen {
			index[key] = len(rows)
			rows = append(rows, row)
			continue
		}
		g := &rows[i]
		g.OK = g.OK && row.OK
		if row.ProofsMs < g.ProofsMs {
			g.ProofsMs, g.NsPerLeaf, g.NsPerMiB = row.ProofsMs, row.NsPerLeaf, row.NsPerMiB
		}
		g.RegionsMs = math.Min(g.RegionsMs, row.RegionsMs)
		g.VerdictS = math.Min(g.VerdictS, row.VerdictS)
		g.MaxRSSMiB = math.Max(g.MaxRSSMiB, row.MaxRSSMiB)
	}
	return rows
}

// costliest names the phase with the longest median duration.
func costliest(ks KernelStats) string {
	best, bestMs := "", -1.0
	for _, name := range ks.Phases {
		if s := ks.PhaseMs[name]; s.Median > bestMs {
			best, bestMs = name, s.Median
		}
	}
	return best
}

// Print writes the tables for people.
func (r *Report) Print(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "physmap-bench on %s, %d cores, %d MiB, %s, %s (load %s at start), commit %s\n",
		m.CPU, m.Cores, m.MemMiB, m.QEMU, m.Go, m.LoadAvg, m.Commit)
	s := r.Settings
	fmt.Fprintf(w, "headline: %s, %s; %d boots of each kernel, %d at a time\n\n", s.Headline, s.Console, s.N, s.Parallel)

	h := r.Headline
	fmt.Fprintf(w, "%-32s %8s %8s %8s %4s\n", "host wall time (s)", "min", "median", "max", "ok")
	for _, k := range []struct {
		name string
		ks   KernelStats
	}{{"physmap", h.Physmap}, {"baseline", h.Baseline}} {
		fmt.Fprintf(w, "%-32s %8.3f %8.3f %8.3f %4d\n", k.name+": QEMU start to verdict", k.ks.VerdictS.Min, k.ks.VerdictS.Median, k.ks.VerdictS.Max, k.ks.OK)
		fmt.Fprintf(w, "%-32s %8.3f %8.3f %8.3f\n", k.name+": QEMU start to exit", k.ks.ExitS.Min, k.ks.ExitS.Median, k.ks.ExitS.Max)
	}
	fmt.Fprintf(w, "ratio physmap/baseline (medians): verdict %.2f, exit %.2f (minimums: verdict %.2f)\n\n", h.VerdictRatio, h.ExitRatio, h.VerdictRatioMn)

	fmt.Fprintf(w, "guest phases by the TSC (ms; \"took\" is since the previous phase)\n")
	fmt.Fprintf(w, "%-14s %10s %10s %10s %12s\n", "phase", "took min", "median", "max", "ended (med)")
	for _, name := range h.Physmap.Phases {
		t, a := h.Physmap.PhaseMs[name], h.Physmap.PhaseAt[name]
		fmt.Fprintf(w, "%-14s %10.1f %10.1f %10.1f %12.1f\n", name, t.Min, t.Median, t.Max, a.Median)
	}
	if a, ok := h.Baseline.PhaseAt["report"]; ok {
		fmt.Fprintf(w, "%-14s %10s %10s %10s %12.1f\n", "baseline", "", "", "", a.Median)
	}
	fmt.Fprintf(w, "costliest phase: %s\n\n", h.CostliestPhase)
	printChecks(w, h.Physmap)

	if len(r.Probes) > 0 {
		fmt.Fprintf(w, "largest guest RAM (probed ascending, -cpu %s):\n", pagings[0].CPU)
		for _, p := range r.Probes {
			st := "boots and passes"
			if !p.OK {
				st = "no: " + p.Err
			}
			fmt.Fprintf(w, "  -m %-6s %s (qemu peak RSS %.0f MiB, verdict %.1fs)\n", p.Memory, st, p.MaxRSSMiB, p.VerdictS)
		}
		fmt.Fprintf(w, "\n")
	}
	if len(r.Scaling) == 0 {
		return
	}
	fmt.Fprintf(w, "scaling: %d boot(s) per row, the fastest shown; %s\n", s.SweepN, s.Sweep)
	fmt.Fprintf(w, "%-11s %7s %7s %6s %9s %8s %9s %10s %11s %8s %9s\n",
		"paging", "-m", "leaves", "tables", "dm(min)", "regions", "proofs", "ns/leaf*", "ns/MiB", "verdict", "rss MiB")
	rows := append([]ScaleRow(nil), r.Scaling...)
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Paging < rows[j].Paging })
	for _, row := range rows {
		if !row.OK {
			fmt.Fprintf(w, "%-11s %7s FAILED\n", row.Paging, row.Memory)
			continue
		}
		fmt.Fprintf(w, "%-11s %7s %7d %6d %9s %6.0fms %7.0fms %10.0f %11.0f %7.2fs %9.0f\n",
			row.Paging, row.Memory, row.Leaves, row.TablePages, fmt.Sprintf("%d(%d)", row.DirectUsed, row.DirectMin),
			row.RegionsMs, row.ProofsMs, row.NsPerLeafVar, row.NsPerMiB, row.VerdictS, row.MaxRSSMiB)
	}
	fmt.Fprintf(w, "* the proofs' time above the fixed part the fit against leaves finds, per leaf (NaN without a fit)\n")
	if r.FitLeaves != nil && r.FitMiB != nil {
		fmt.Fprintf(w, "proofs time fitted against leaves: %.0f ms + %.0f ns/leaf (R² %.2f); against RAM: %.0f ms + %.1f ns/MiB (R² %.2f)\n",
			r.FitLeaves.Intercept/1e6, r.FitLeaves.Slope, r.FitLeaves.R2, r.FitMiB.Intercept/1e6, r.FitMiB.Slope, r.FitMiB.R2)
	}
	r.printFootprint(w)
}

// printFootprint prints, for the largest size that passed in every paging
// configuration, each region's table pages against the minimum.
func (r *Report) printFootprint(w io.Writer) {
	bySize := map[string]map[string]Boot{}
	var order []string
	for _, b := range r.Boots {
		if b.Set != "sweep" || !b.OK {
			continue
		}
		if bySize[b.Memory] == nil {
			bySize[b.Memory] = map[string]Boot{}
			order = append(order, b.Memory)
		}
		if _, dup := bySize[b.Memory][b.Paging]; !dup {
			bySize[b.Memory][b.Paging] = b
		}
	}
	sort.SliceStable(order, func(i, j int) bool {
		a, _ := qemu.ParseMemory(order[i])
		b, _ := qemu.ParseMemory(order[j])
		return a < b
	})
	for i := len(order) - 1; i >= 0; i-- {
		set := bySize[order[i]]
		if len(set) < len(pagings) {
			continue
		}
		fmt.Fprintf(w, "\npage-table pages per region at -m %s, used (min), shared upper tables counted in each region\n", order[i])
		var regions []string
		seen := map[string]bool{}
		for _, p := range pagings {
			for _, t := range set[p.Name].Guest.Tables {
				if !seen[t.Region] {
					seen[t.Region] = true
					regions = append(regions, t.Region)
				}
			}
		}
		fmt.Fprintf(w, "%-20s", "region")
		for _, p := range pagings {
			fmt.Fprintf(w, " %11s", p.Name)
		}
		fmt.Fprintln(w)
		for _, reg := range regions {
			fmt.Fprintf(w, "%-20s", reg)
			for _, p := range pagings {
				cell := "-"
				for _, t := range set[p.Name].Guest.Tables {
					if t.Region == reg {
						cell = fmt.Sprintf("%d (%d)", t.Pages, t.Min)
					}
				}
				fmt.Fprintf(w, " %11s", cell)
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%-20s", "all (distinct)")
		for _, p := range pagings {
			fmt.Fprintf(w, " %11d", set[p.Name].Guest.TablePages)
		}
		fmt.Fprintln(w)
		return
	}
	fmt.Fprintf(w, "\n(no size passed in every paging configuration: no footprint table; see the JSON file)\n")
}

// MarshalJSON writes the row with NaN costs (a failed boot) as null, which
// JSON has and encoding/json's float64 refuses.
func (r ScaleRow) MarshalJSON() ([]byte, error) {
	type plain ScaleRow // without this method
	out := struct {
		plain
		NsPerLeaf    *float64 `json:"proofs_ns_per_leaf"`
		NsPerMiB     *float64 `json:"proofs_ns_per_mib"`
		NsPerLeafVar *float64 `json:"proofs_ns_per_leaf_above_fixed"`
	}{plain: plain(r), NsPerLeaf: finite(r.NsPerLeaf), NsPerMiB: finite(r.NsPerMiB), NsPerLeafVar: finite(r.NsPerLeafVar)}
	return json.Marshal(out)
}

// finite returns &v, or nil for NaN and infinities.
func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// maxCheckRows bounds the per-check table: the costliest checks, then one
// line for the rest.
const maxCheckRows = 15

// printChecks writes the checks' guest times, costliest median first, each
// with its share of the sum of the medians.
func printChecks(w io.Writer, ks KernelStats) {
	if len(ks.Checks) == 0 {
		return
	}
	names := append([]string(nil), ks.Checks...)
	sort.SliceStable(names, func(i, j int) bool { return ks.CheckMs[names[i]].Median > ks.CheckMs[names[j]].Median })
	var total float64
	for _, n := range names {
		total += ks.CheckMs[n].Median
	}
	fmt.Fprintf(w, "checks by guest time (ms; each from the previous result or phase line to its own)\n")
	fmt.Fprintf(w, "%-22s %10s %10s %10s %7s\n", "check", "min", "median", "max", "share")
	var rest float64
	for i, n := range names {
		st := ks.CheckMs[n]
		if i >= maxCheckRows {
			rest += st.Median
			continue
		}
		fmt.Fprintf(w, "%-22s %10.1f %10.1f %10.1f %6.1f%%\n", n, st.Min, st.Median, st.Max, 100*Ratio(st.Median, total))
	}
	if len(names) > maxCheckRows {
		fmt.Fprintf(w, "%-22s %10s %10.1f %10s %6.1f%%\n", fmt.Sprintf("%d others", len(names)-maxCheckRows), "", rest, "", 100*Ratio(rest, total))
	}
	fmt.Fprintf(w, "%-22s %10s %10.1f\n\n", "sum of medians", "", total)
}
