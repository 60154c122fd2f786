package linux

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/physmap/physmap/kernel/dump"
	"github.com/physmap/physmap/mm"
)

// RunInfo says how the kernels were booted, for the report's header.
type RunInfo struct {
	Memory, CPU                  string
	Levels                       int // asked for; 0: the CPU's choice
	KASLR, PTI                   bool
	LinuxCmdline, PhysmapCmdline string
	Release                      string
	Attached                     string // the QMP socket of an inspected guest
}

// Report is the comparison of one Linux boot with one physmap boot.
type Report struct {
	Linux       *Analysis
	Physmap     *dump.Dump // nil: Linux alone
	Run         RunInfo
	Rows        []Row
	Differences []Difference
}

// NewReport compares a with physmap's dump pd (nil for none) using the
// departure table of this package.
func NewReport(a *Analysis, pd *dump.Dump, ri RunInfo) *Report {
	r := &Report{Linux: a, Physmap: pd, Run: ri}
	r.Rows = Rows(a.Layout, a.Dump, pd)
	var topics []Difference
	if pd != nil {
		topics = Topics(a, pd, ri)
		r.Differences = Compare(r.Rows, topics, ri, Departures)
	} else {
		r.Differences = Compare(nil, a.meminfoDifferences(), ri, Departures)
	}
	if pd != nil && pd.Mode != int(a.Mode) {
		r.Differences = append(r.Differences, Difference{Key: "paging:mode", What: "paging mode",
			Physmap: fmt.Sprintf("%d-level", pd.Mode), Linux: a.Mode.String()})
	}
	return r
}

// Unexplained lists the differences no departure documents.
func (r *Report) Unexplained() []Difference {
	var out []Difference
	for _, d := range r.Differences {
		if d.Departure == nil {
			out = append(out, d)
		}
	}
	return out
}

// Verdict is empty when every fact holds and every difference is
// documented, else a line saying what is wrong.
func (r *Report) Verdict() string {
	var parts []string
	if f := r.Linux.Failed(); len(f) > 0 {
		var names []string
		for _, x := range f {
			names = append(names, x.Name)
		}
		parts = append(parts, fmt.Sprintf("%d facts do not hold (%s)", len(f), strings.Join(names, ", ")))
	}
	if u := r.Unexplained(); len(u) > 0 {
		var keys []string
		for _, d := range u {
			keys = append(keys, d.Key)
		}
		parts = append(parts, fmt.Sprintf("%d unexplained differences (%s)", len(u), strings.Join(keys, ", ")))
	}
	return strings.Join(parts, "; ")
}

// Summary is a one-line account of a report that passed.
func (r *Report) Summary() string {
	s := fmt.Sprintf("%d facts hold", len(r.Linux.Facts))
	if r.Physmap != nil {
		s += fmt.Sprintf(", %d differences from physmap, each documented", len(r.Differences))
	}
	return s
}

// Write prints the whole report.
func (r *Report) Write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	r.writeHeader(bw)
	r.writeFacts(bw)
	r.writeTable(bw)
	r.writeFirstInsn(bw)
	r.writeAliases(bw)
	r.writeMeminfo(bw)
	r.writeAudit(bw)
	r.writeDifferences(bw)
	return bw.Flush()
}

func (r *Report) writeHeader(w io.Writer) {
	a := r.Linux
	fmt.Fprintf(w, "physmap-linux: %s\n", r.what())
	if g := a.Guest; g != nil {
		fmt.Fprintf(w, "  Linux %s, command line: %s\n", g.Release, g.Cmdline)
	}
	if r.Physmap != nil && r.Run.Attached == "" {
		fmt.Fprintf(w, "  physmap, command line: %s\n", orNone(r.Run.PhysmapCmdline))
	}
	fmt.Fprintf(w, "  CR3 %#x CR4 %#x: %v paging, tables at %v (%d table pages reachable, counting each shared one once per reference)\n",
		a.Regs.CR3, a.Regs.CR4, a.Mode, a.Root, a.Tables)
	if a.RootNote != "" {
		fmt.Fprintf(w, "  %s\n", a.RootNote)
	}
	for _, n := range a.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	fmt.Fprintf(w, "  memory read from %s\n", a.Mem.Source())
	b := a.Bases
	if a.Guest == nil {
		fmt.Fprintf(w, "  bases from the tables alone (no kallsyms): the direct map at %v\n", b.PageOffsetTables)
		return
	}
	fmt.Fprintf(w, "  bases: page_offset_base %v, vmalloc_base %v, vmemmap_base %v (the variables%s); _text %v at %v; phys_base %#x; KERNEL_IMAGE_SIZE %s (%s)\n",
		b.PageOffset, b.VmallocBase, b.VmemmapBase, map[bool]string{true: ", randomized: no nokaslr", false: ""}[b.Randomized],
		b.Text, b.TextPA, b.PhysBase, humanBytes(b.KernelImageSize), b.ImageSizeWhy)
}

func (r *Report) what() string {
	if r.Run.Attached != "" {
		return fmt.Sprintf("the guest behind QMP socket %s", r.Run.Attached)
	}
	s := fmt.Sprintf("Linux beside physmap, both on QEMU microvm -m %s -cpu %s", r.Run.Memory, orDefault(r.Run.CPU, "max"))
	if r.Physmap == nil {
		s = fmt.Sprintf("Linux on QEMU microvm -m %s -cpu %s", r.Run.Memory, orDefault(r.Run.CPU, "max"))
	}
	return s
}

func orNone(s string) string { return orDefault(s, "(none)") }

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func (r *Report) writeFacts(w io.Writer) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "physmap-linux: what Linux's live tables show, each from two sources")
	for _, f := range r.Linux.Facts {
		v := "PASS"
		if !f.OK {
			v = "FAIL"
		}
		fmt.Fprintf(w, "%s %s: %s\n", v, f.Name, f.Detail)
	}
}

// Column widths of the side-by-side table.
const (
	nameWidth   = 40
	mappedWidth = 40
	tableWidth  = 150
)

func (r *Report) writeTable(w io.Writer) {
	a := r.Linux
	fmt.Fprintln(w)
	who := "Linux"
	if r.Physmap != nil {
		who = "physmap beside Linux"
	}
	fmt.Fprintf(w, "physmap-linux: the %v kernel address space, %s (mm.rst rows; \"mapped\" from the live tables)\n", a.Mode, who)
	rule := strings.Repeat("=", tableWidth)
	fmt.Fprintln(w, rule)
	fmt.Fprintf(w, "    Start addr    |   Size   | %-*s | who     | %-*s | permissions\n", nameWidth, "VM area", mappedWidth, "mapped")
	fmt.Fprintln(w, rule)
	for _, row := range r.Rows {
		name := trim(row.Name, nameWidth)
		sides := []struct {
			who string
			s   Side
		}{{"physmap", row.Physmap}, {"Linux", row.Linux}}
		if r.Physmap == nil {
			sides = sides[1:]
		}
		for i, sd := range sides {
			n := ""
			if i == 0 {
				n = name
			}
			start, size := fmt.Sprintf("%016x", uint64(sd.s.Start)), sizeLabel(sd.s.Size)
			if !sd.s.Present {
				start, size = strings.Repeat(" ", 16), ""
			} else if i > 0 && sd.s.Start == sides[0].s.Start && sd.s.Size == sides[0].s.Size {
				start, size = strings.Repeat(" ", 16), ""
			}
			m := "-"
			switch {
			case !sd.s.Present:
				m = "(no such region)"
			case sd.s.Bytes > 0:
				m = humanBytes(sd.s.Bytes) + " in " + PageMix(sd.s)
			}
			fmt.Fprintf(w, " %s | %8s | %-*s | %-7s | %-*s | %s\n", start, size, nameWidth, n, sd.who, mappedWidth, trim(m, mappedWidth), PermMix(sd.s))
		}
	}
	fmt.Fprintln(w, strings.Repeat("_", tableWidth))
}

// sizeLabel writes a region's size as the layout table does.
func sizeLabel(n uint64) string {
	for _, u := range []struct {
		size uint64
		name string
	}{{1 << 50, "PB"}, {1 << 40, "TB"}, {1 << 30, "GB"}, {1 << 20, "MB"}, {1 << 10, "kB"}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d %s", n/u.size, u.name)
		}
	}
	for _, u := range []struct {
		size uint64
		name string
	}{{1 << 50, "PB"}, {1 << 40, "TB"}, {1 << 30, "GB"}, {1 << 20, "MB"}} {
		if n >= u.size {
			return fmt.Sprintf("~%d %s", (n+u.size/2)/u.size, u.name)
		}
	}
	return fmt.Sprintf("%d B", n)
}

func (r *Report) writeFirstInsn(w io.Writer) {
	ins := r.Linux.Insns
	if len(ins) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "physmap-linux: Linux's first instruction, three ways:")
	for _, in := range ins {
		if in.VA == 0 {
			fmt.Fprintf(w, "  %-22s %18s    frame %v read from guest RAM: %s\n", in.Way, "", in.Frame, in.Text)
			continue
		}
		fmt.Fprintf(w, "  %-22s %v -> frame %v (%v page, %v): %s\n", in.Way, in.VA, in.Frame, in.Page, in.Attrs, in.Text)
	}
}

func (r *Report) writeAliases(w io.Writer) {
	if len(r.Linux.Aliases) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "physmap-linux: aliases (each frame of the image and of each module, and every kernel-half VA mapping it)")
	for _, al := range r.Linux.Aliases {
		var frames uint64
		for _, g := range al.Groups {
			frames += g.Frames
		}
		if al.Range.Empty() {
			fmt.Fprintf(w, "  %s: %d frames\n", al.What, frames)
		} else {
			fmt.Fprintf(w, "  %s %v: %d frames\n", al.What, al.Range, frames)
		}
		for _, g := range al.Groups {
			var vas []string
			for _, va := range g.VAs {
				vas = append(vas, va.String())
			}
			fmt.Fprintf(w, "    %6d x %s\n", g.Frames, strings.Join(g.Where, " + "))
			fmt.Fprintf(w, "             e.g. frame %v at %s\n", g.Example, strings.Join(vas, ", "))
		}
	}
}

func (r *Report) writeMeminfo(w io.Writer) {
	ms := r.Linux.Meminfo()
	if len(ms) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "physmap-linux: /proc/meminfo against the tables (%d stretches of 2 MiB of the kernel text mapping in 4K pages)\n", r.Linux.HighMapSplits())
	fmt.Fprintf(w, "  %-12s %14s %14s %14s\n", "", "direct map", "expected", "/proc/meminfo")
	for _, m := range ms {
		mark := ""
		if m.Linux != m.Expected {
			mark = "  differs"
		}
		fmt.Fprintf(w, "  %-12s %11d kB %11d kB %11d kB%s\n", m.Name+":", m.Tables, m.Expected, m.Linux, mark)
	}
	fmt.Fprintf(w, "  expected: %s\n", MeminfoModel)
}

func (r *Report) writeAudit(w io.Writer) {
	a := r.Linux
	fmt.Fprintln(w)
	fmt.Fprintf(w, "physmap-linux: W+X audit of the kernel half, in Linux's words: %s\n", mm.WXReport(a.WXKernel))
	fmt.Fprintf(w, "physmap-linux: user half (the process CR3 belongs to): %d W+X pages\n", a.WXUser)
	fmt.Fprintln(w, "physmap-linux: mm.Check on Linux's tables (aliases of table pages allowed in the direct map and the kernel text mapping):")
	if len(a.Problems) == 0 {
		fmt.Fprintln(w, "  no problem")
	}
	for _, g := range a.Problems {
		why := g.Why
		if why == "" {
			why = "UNEXPLAINED"
		}
		fmt.Fprintf(w, "  %d x %s in %s, e.g. %v\n    why: %s\n", g.Count, g.What, g.Region, g.Example, why)
	}
}

// writeDifferences prints the differences grouped by the departure that
// explains them (each reason once), the unexplained ones first, then the
// departures this run did not show.
func (r *Report) writeDifferences(w io.Writer) {
	fmt.Fprintln(w)
	if r.Physmap == nil && len(r.Differences) == 0 {
		return
	}
	unexplained := r.Unexplained()
	fmt.Fprintf(w, "physmap-linux: %d differences, %d unexplained\n", len(r.Differences), len(unexplained))
	line := func(d Difference) {
		lp, ll := d.labels()
		fmt.Fprintf(w, "  %s: %s: %s %s, %s %s\n", d.Key, d.What, lp, d.Physmap, ll, d.Linux)
	}
	for _, d := range unexplained {
		line(d)
		fmt.Fprintf(w, "    UNEXPLAINED: no documented departure matches %q\n", d.Key)
	}
	var done []*Departure
	for _, d := range r.Differences {
		if d.Departure == nil || slices.Contains(done, d.Departure) {
			continue
		}
		done = append(done, d.Departure)
		for _, e := range r.Differences {
			if e.Departure == d.Departure {
				line(e)
			}
		}
		fmt.Fprintf(w, "    %s: %s\n", d.Departure.Kind, d.Departure.Why)
	}
	if r.Physmap == nil {
		return
	}
	if unused := Unused(r.Differences, r.Run, Departures); len(unused) > 0 {
		var keys []string
		for _, d := range unused {
			keys = append(keys, d.Key)
		}
		fmt.Fprintf(w, "physmap-linux: documented departures not seen in this run: %s\n", strings.Join(keys, ", "))
	}
}

// Ptdump writes Linux's tables in the format of
// /sys/kernel/debug/page_tables/kernel, which Debian's kernel does not
// offer (CONFIG_PTDUMP_DEBUGFS is off), with Linux's own markers at the
// bases found; phys adds a column with each run's physical address.
func (a *Analysis) Ptdump(w io.Writer, phys bool) error {
	return mm.Ptdump(w, a.AS, mm.PtdumpOptions{Layout: a.Layout, PhysAddr: phys})
}
