//go:build tamago

package main

import (
	"fmt"
	"io"

	"github.com/physmap/physmap/kernel/region"
	"github.com/physmap/physmap/mm"
)

// footprintPrefix starts the lines that give the page-table pages each
// region uses against the least its leaves need:
// "tables: REGION PAGES (min MIN)", then "tables: total ...".
const footprintPrefix = "tables: "

// regionTables is one region's table pages: used, reached from its leaves
// through the live tables, and the least those leaves could live in.
type regionTables struct {
	used map[mm.PhysAddr]bool
	min  uint64
}

// footprintOf counts the table pages under [start, last]: every table on
// the walk to one of its leaves (the root and any upper table shared with
// a neighbour included), and the minimum: the root plus, at each height
// from a leaf's own table up, one table per table-sized block of address
// space that holds a leaf. Tables that hold no leaf of the range are not
// reached and not counted; the total line compares with TablePages.
func footprintOf(as *mm.AddressSpace, start, last mm.VirtAddr) regionTables {
	rt := regionTables{used: map[mm.PhysAddr]bool{}, min: 1}
	levels := as.Mode().Levels()
	// lastBlock[h] is the last block, at table height h, already counted.
	lastBlock := make([]uint64, levels)
	counted := make([]bool, levels)
	var lastTable mm.PhysAddr
	haveTable := false
	for leaf := range as.Leaves(mm.VirtRange{Start: start, End: last.Add(1)}) {
		if leaf.VA < start || leaf.VA > last {
			continue // a huge leaf straddling the region's edge belongs to its start
		}
		lh := int(leaf.Size.Level())
		for h := lh; h < levels-1; h++ {
			b := uint64(leaf.VA) >> (12 + 9*uint(h+1))
			if !counted[h] || b != lastBlock[h] {
				rt.min++
				lastBlock[h], counted[h] = b, true
			}
		}
		// One walk per leaf table: the leaves of one table share a path.
		b := uint64(leaf.VA) >> (12 + 9*uint(lh+1))
		if haveTable && b == uint64(lastTable) {
			continue
		}
		t, err := as.Translate(leaf.VA)
		if err != nil {
			continue
		}
		for _, s := range t.Path() {
			rt.used[s.Table] = true
		}
		lastTable, haveTable = mm.PhysAddr(b), true
	}
	return rt
}

// printFootprint prints one line per region with a mapping, named by its
// Linux symbol, with its table pages against the minimum; for the
// direct map the minimum is the plan's. Upper-level tables shared by
// several regions (the root always) count in each of them; the total line
// says how many distinct pages that is.
func (k *kernel) printFootprint(w io.Writer) {
	type row struct {
		name string
		rt   regionTables
	}
	var rows []row
	mode := k.space.AS.Mode()
	plan := region.Find[*region.DirectMap](k.space).Plan
	for _, reg := range k.space.Layout.Regions {
		if !mode.Canonical(reg.Start) || !mode.Canonical(reg.Last()) {
			continue // the non-canonical hole: nothing to walk
		}
		rt := footprintOf(k.space.AS, reg.Start, reg.Last())
		if len(rt.used) == 0 {
			continue
		}
		if reg.Kind == mm.KindDirectMap {
			rt.min = plan.MinTablePages
		}
		name := reg.Symbol
		switch {
		case reg.Kind == mm.KindUser:
			name = "low-window" // the runtime's identity map, in the user half
		case name == "":
			name = reg.Name
		}
		rows = append(rows, row{name, rt})
	}
	all := map[mm.PhysAddr]int{}
	var sum int
	for _, r := range rows {
		fmt.Fprintf(w, "%s%s %d (min %d)\n", footprintPrefix, r.name, len(r.rt.used), r.rt.min)
		for pa := range r.rt.used {
			all[pa]++
		}
		sum += len(r.rt.used)
	}
	shared := 0
	for _, n := range all {
		if n > 1 {
			shared++
		}
	}
	fmt.Fprintf(w, "%stotal %d (%d distinct reached from leaves, %d shared between regions, %d summed over regions)\n",
		footprintPrefix, k.space.AS.TablePages(), len(all), shared, sum)
}
