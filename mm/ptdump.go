package mm

import (
	"bufio"
	"fmt"
	"io"
)

// PtdumpOptions adjusts Ptdump.
type PtdumpOptions struct {
	// Layout supplies the "---[ Name ]---" markers; nil means the
	// documented layout of the address space's mode.
	Layout *Layout
	// PhysAddr adds a column with the physical address of each run's first
	// page, and breaks runs where the frames stop being contiguous.
	PhysAddr bool
}

// Ptdump writes the address space in the format of Linux's
// /sys/kernel/debug/page_tables/kernel (arch/x86/mm/dump_pagetables.c):
// one line per run of entries with the same flags, effective permissions
// and level, as
//
//	0x%016x-0x%016x   %9d%c flags level
//
// with the end exclusive and the size divided by 1024 while it divides
// (units B K M G T P E). The flag columns are USR, RW or ro, PWT, PCD, PSE,
// PAT, GLB, NX or x, each blank but for its width when clear, and all blank
// for a not-present run; as in Linux they show the entry's own bits, while
// the effective permissions (RW and USR ANDed across levels, NX ORed) also
// break runs. A marker line is printed when a run crosses the start of a
// region. Differences from Linux: both canonical halves are walked whole
// (Linux skips the guard hole), no run spans the non-canonical hole, a
// top-level hole is named pgd in both modes (Linux's folded walk says p4d
// in 4-level mode), every marker crossed is printed, and the PAT bit of a
// huge page is shown. As in Linux, a marker's MaxLines caps its stretch
// (the ESPfix area: 16 lines), the rest counted in one
// "... N entries skipped ... " line.
func Ptdump(w io.Writer, as *AddressSpace, opt PtdumpOptions) error {
	l := opt.Layout
	if l == nil {
		l = DefaultLayout(as.mode)
	}
	d := &dumper{w: bufio.NewWriter(w), markers: l.Markers(), phys: opt.PhysAddr}
	wk := walker{as: as}
	wk.walk(0, as.mode.UserEnd()-1, d)
	d.end(as.mode.UserEnd())
	wk.walk(as.mode.KernelStart(), ^VirtAddr(0), d)
	d.end(0)
	d.skipped()
	return d.w.Flush()
}

type dumper struct {
	w       *bufio.Writer
	markers []Marker
	next    int // index of the next marker to print
	phys    bool
	lines   int // run lines of the current marker's stretch, printed or not
	max     int // its MaxLines; 0 for no cap

	open    bool // a run is pending
	start   VirtAddr
	level   Level
	prot    Entry
	eff     Attr
	present bool
	pa      PhysAddr // first frame of the run
	nextPA  PhysAddr // frame that would continue it
}

func (d *dumper) note(va VirtAddr, l Level, prot Entry, eff Attr, pa PhysAddr, present bool) {
	if d.open && prot == d.prot && eff == d.eff && l == d.level &&
		(d.next >= len(d.markers) || va < d.markers[d.next].Start) &&
		(!d.phys || !present || pa == d.nextPA) {
		d.nextPA = pa.Add(uint64(pageSizeAt(min(l, PUD))))
		return
	}
	d.end(va)
	for d.next < len(d.markers) && d.markers[d.next].Start <= va {
		d.skipped()
		fmt.Fprintf(d.w, "---[ %s ]---\n", d.markers[d.next].Name)
		d.lines, d.max = 0, d.markers[d.next].MaxLines
		d.next++
	}
	d.open, d.start, d.level, d.prot, d.eff, d.present, d.pa = true, va, l, prot, eff, present, pa
	d.nextPA = pa.Add(uint64(pageSizeAt(min(l, PUD))))
}

// visit notes each not-present entry and each leaf.
func (d *dumper) visit(w *walker, v *slot) walkAction {
	e := v.entry
	switch {
	case !e.IsPresent():
		d.note(v.va, v.level, e&flagsMask, 0, 0, false)
	case e.IsLeaf(v.level):
		prot := e & flagsMask
		if v.level != PTE {
			prot |= e & PATHuge
		}
		d.note(v.va, v.level, prot, v.eff(), e.Addr(v.level), true)
	}
	return walkDescend
}

// skipped prints how many lines the current stretch's cap left out, as
// note_page does when it reaches the next marker.
func (d *dumper) skipped() {
	if d.max > 0 && d.lines > d.max {
		n := d.lines - d.max
		plural := "ies"
		if n == 1 {
			plural = "y"
		}
		fmt.Fprintf(d.w, "... %d entr%s skipped ... \n", n, plural)
	}
	d.lines = 0
}

// end prints the pending run, which ends at end (exclusive; 0 is the top),
// unless the stretch's cap is reached.
func (d *dumper) end(end VirtAddr) {
	if !d.open {
		return
	}
	d.open = false
	d.lines++
	if d.max > 0 && d.lines > d.max {
		return
	}
	const units = "BKMGTPE"
	size, unit := uint64(end-d.start), 0
	for size&1023 == 0 && unit < len(units)-1 {
		size >>= 10
		unit++
	}
	fmt.Fprintf(d.w, "0x%016x-0x%016x   %9d%c ", uint64(d.start), uint64(end), size, units[unit])
	if d.phys {
		if d.present {
			fmt.Fprintf(d.w, "0x%016x ", uint64(d.pa))
		} else {
			fmt.Fprintf(d.w, "%18s ", "")
		}
	}
	if !d.present {
		d.w.WriteString("                              ")
	} else {
		p := d.prot
		col := func(on bool, set, clear string) {
			if on {
				d.w.WriteString(set)
			} else {
				d.w.WriteString(clear)
			}
		}
		col(p&User != 0, "USR ", "    ")
		col(p&RW != 0, "RW ", "ro ")
		col(p&PWT != 0, "PWT ", "    ")
		col(p&PCD != 0, "PCD ", "    ")
		col(d.level != PTE && p&PS != 0, "PSE ", "    ")
		col((d.level == PTE && p&PAT != 0) || (d.level != PTE && p&PATHuge != 0), "PAT ", "    ")
		col(p&Global != 0, "GLB ", "    ")
		col(p&NX != 0, "NX ", "x  ")
	}
	d.w.WriteString(d.level.String())
	d.w.WriteString("\n")
}
