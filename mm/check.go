package mm

import (
	"errors"
	"fmt"
	"slices"
)

// Problem is one broken invariant found by [Check].
type Problem struct {
	VA    VirtAddr // first address the faulty entry maps
	Level Level    // level of the entry
	Table PhysAddr // table holding the entry
	Index int      // index of the entry in its table; -1 if not about an entry
	Entry Entry    // the raw entry
	What  string   // what is wrong
}

// Error formats the problem; a Problem is an error so Check can join them.
func (p Problem) Error() string {
	if p.Index < 0 {
		if p.Table != 0 {
			return fmt.Sprintf("mm: check: %v table %v: %s", p.Level, p.Table, p.What)
		}
		return "mm: check: " + p.What
	}
	return fmt.Sprintf("mm: check: %v %v[%d] = %#016x (va %v): %s",
		p.Level, p.Table, p.Index, uint64(p.Entry), p.VA, p.What)
}

// CheckOptions selects what Check knows beyond the tables themselves.
type CheckOptions struct {
	// PhysBits is MAXPHYADDR (CPUID 0x80000008 EAX[7:0]); 0 means 52.
	PhysBits uint
	// Owns, if set, must report true for every table page, the root
	// included (e.g. (*Memblock).Owns).
	Owns func(PhysAddr) bool
	// Aliases are virtual ranges whose leaves may map table pages, such as
	// the direct map, which maps all RAM. Elsewhere a leaf that maps a
	// table page is a problem.
	Aliases []VirtRange
	// Layout, if set, must be of the address space's mode with every region
	// canonical in it, and no leaf may lie in its guard hole.
	Layout *Layout
	// AllowWX stops Check from reporting writable and executable leaves.
	AllowWX bool
	// Shared are virtual ranges in which a table page may be referenced
	// more than once, by entries of one level that all map addresses in the
	// same range: tables shared on purpose, as espfix shares its pmd and pte
	// pages among clone entries (arch/x86/kernel/espfix_64.c,
	// init_espfix_ap). Any other second reference is a problem.
	Shared []VirtRange
}

// Check verifies the structural invariants of an address space in the
// manner of testing/fstest.TestFS: reserved bits clear; huge pages only at
// pmd and pud and aligned to their size; no table page referenced twice or
// mapped as data outside opt.Aliases; every table page owned by the
// allocator (with opt.Owns); every address canonical for the mode; and no
// W+X leaf (unless opt.AllowWX). It returns nil or the problems joined.
//
// Addresses decoded from table indices are canonical by construction (the
// walk sign-extends them), so the canonical check applies to what the
// tables are compared with: opt.Layout's regions must be canonical in the
// address space's mode. Without opt.Owns, a corrupt entry pointing outside
// the memory behind the PhysMem is followed; with it, unowned tables are
// reported and not entered.
func Check(as *AddressSpace, opt CheckOptions) error {
	ps := Problems(as, opt)
	if len(ps) == 0 {
		return nil
	}
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errors.Join(errs...)
}

// Problems returns what Check reports, as a list.
func Problems(as *AddressSpace, opt CheckOptions) []Problem {
	physBits := opt.PhysBits
	if physBits == 0 || physBits > MaxPhysBits {
		physBits = MaxPhysBits
	}
	c := checker{opt: opt, addrRes: addrMask &^ (Entry(1)<<physBits - 1), physBits: physBits,
		tables: map[PhysAddr]tableRef{as.root: {}}}
	if opt.Owns != nil && !opt.Owns(as.root) {
		c.probs = append(c.probs, Problem{Level: PGD, Table: as.root, Index: -1,
			What: "root table page not owned by the allocator"})
	}
	if l := opt.Layout; l != nil {
		if l.Mode != as.mode {
			c.probs = append(c.probs, Problem{Level: NoLevel, Index: -1,
				What: fmt.Sprintf("layout is for %v paging, address space is %v", l.Mode, as.mode)})
		}
		for _, r := range l.Regions {
			if r.Kind == KindNonCanonical {
				continue
			}
			if !as.mode.Canonical(r.Start) || !as.mode.Canonical(r.Last()) {
				c.probs = append(c.probs, Problem{VA: r.Start, Level: NoLevel, Index: -1,
					What: fmt.Sprintf("layout region %q is not canonical in %v mode", r.Name, as.mode)})
			}
		}
		if g, ok := l.Region(KindGuardHole); ok {
			c.guard = VirtRange{g.Start, g.Last()}
		}
	}
	w := walker{as: as}
	w.walkAll(&c)
	// Only now are all the table pages known: the leaves outside the
	// aliases, kept by the walk, are compared with them.
	sorted := make([]PhysAddr, 0, len(c.tables))
	for pa := range c.tables {
		sorted = append(sorted, pa)
	}
	slices.Sort(sorted)
	for _, lf := range c.outside {
		pa := lf.entry.Addr(lf.level)
		end := pa.Add(uint64(pageSizeAt(lf.level)))
		if i, _ := slices.BinarySearch(sorted, pa); i < len(sorted) && sorted[i] < end {
			c.add(&lf, "data mapping covers table page %v", sorted[i])
		}
	}
	return c.probs
}

// checker is Check's walk: every entry once; leaves over table pages are
// looked for after it, among the leaves it kept.
type checker struct {
	opt      CheckOptions
	physBits uint
	addrRes  Entry     // address bits beyond MAXPHYADDR
	guard    VirtRange // inclusive
	tables   map[PhysAddr]tableRef
	probs    []Problem
	// outside are the leaves met outside opt.Aliases, each entry once
	// (a table shared on purpose is walked once): the ones that must
	// not map a table page.
	outside []slot
}

// tableRef is the first entry found pointing at a table page.
type tableRef struct {
	va    VirtAddr
	level Level
}

// sharedOnPurpose reports whether two references to one table, from
// entries at va1 and va2 of one level, lie in the same Shared range.
func (c *checker) sharedOnPurpose(first tableRef, va VirtAddr, l Level) bool {
	if first.level != l {
		return false
	}
	for _, r := range c.opt.Shared {
		if r.Contains(first.va) && r.Contains(va) {
			return true
		}
	}
	return false
}

func (c *checker) add(v *slot, format string, args ...any) {
	c.probs = append(c.probs, Problem{VA: v.va, Level: v.level, Table: v.table,
		Index: v.index, Entry: v.entry, What: fmt.Sprintf(format, args...)})
}

func (c *checker) visit(w *walker, v *slot) walkAction {
	e, l := v.entry, v.level
	if !e.IsPresent() {
		return walkSkip
	}
	if r := e & c.addrRes; r != 0 {
		c.add(v, "reserved address bits %#x set (MAXPHYADDR %d)", uint64(r), c.physBits)
	}
	if (l == PGD || l == P4D) && e&PS != 0 {
		c.add(v, "PS set at %v: huge pages exist only at pmd and pud", l)
		return walkSkip
	}
	if e.IsLeaf(l) {
		size := pageSizeAt(l)
		if l != PTE && !PhysAddr(e&addrMask&^PATHuge).IsAligned(uint64(size)) {
			c.add(v, "huge page frame %#x not aligned to %v", uint64(e&addrMask&^PATHuge), size)
		}
		if !c.guard.Empty() && c.guard.Overlaps(VirtRange{v.va, v.va.Add(uint64(size) - 1)}) {
			c.add(v, "leaf in the guard hole %v", c.guard)
		}
		if eff := v.eff(); !c.opt.AllowWX && eff&AttrWrite != 0 && eff&AttrNX == 0 {
			c.add(v, "W+X mapping")
		}
		if !c.inAlias(v.va) {
			c.outside = append(c.outside, *v)
		}
		return walkSkip
	}
	child := e.Addr(l)
	if first, dup := c.tables[child]; dup {
		if !c.sharedOnPurpose(first, v.va, l) {
			c.add(v, "table page %v referenced twice (also for va %v)", child, first.va)
		}
		return walkSkip
	}
	c.tables[child] = tableRef{v.va, l}
	if c.opt.Owns != nil && !c.opt.Owns(child) {
		c.add(v, "table page %v not owned by the allocator", child)
		return walkSkip
	}
	return walkDescend
}

// inAlias reports whether va lies in one of opt.Aliases.
func (c *checker) inAlias(va VirtAddr) bool {
	for _, r := range c.opt.Aliases {
		if r.Contains(va) {
			return true
		}
	}
	return false
}

// WXPages returns the number of 4 KiB pages in r that are mapped writable
// and executable (effective permissions).
func WXPages(as *AddressSpace, r VirtRange) uint64 {
	var n uint64
	for lf := range as.Leaves(r) {
		if lf.Attrs&AttrWrite != 0 && lf.Attrs&AttrNX == 0 {
			lo, hi := max(lf.VA, r.Start), min(lf.VA.Add(uint64(lf.Size)-1), r.End-1)
			n += (uint64(hi-lo) + 1) / frameSize
		}
	}
	return n
}

// AllWXPages returns WXPages over the whole address space.
func AllWXPages(as *AddressSpace) uint64 {
	var n uint64
	for lf := range as.AllLeaves() {
		if lf.Attrs&AttrWrite != 0 && lf.Attrs&AttrNX == 0 {
			n += uint64(lf.Size) / frameSize
		}
	}
	return n
}

// WXReport returns the line Linux's CONFIG_DEBUG_WX prints for n W+X pages.
func WXReport(n uint64) string {
	if n == 0 {
		return "x86/mm: Checked W+X mappings: passed, no W+X pages found."
	}
	return fmt.Sprintf("x86/mm: Checked W+X mappings: FAILED, %d W+X pages found.", n)
}
