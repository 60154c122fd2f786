package mm

// The walker is the one loop over paging structures that every operation
// shares: Map, Unmap, Protect, Translate, the leaf iterators, TablePages,
// Release, Check and Ptdump differ only in their visitor. The walker goes
// through a range of virtual addresses level by level and shows the
// visitor each entry it reaches, with its level and place, the addresses it
// maps and the effective attributes of the entries above. The visitor may
// change the entry and says what to do next: go into the table it points
// to, skip it, stop the walk (translate, the prechecks), or go in and then
// free the table if the walk left it empty (unmap). To go into a table that
// is not there yet, a visitor puts in a new one ([walker.newTable], for
// map) or the table that replaces a huge page it splits, with the same
// frames and attributes ([walker.split], for unmap and protect over part
// of a huge page).
//
// The walker writes every changed entry itself, and hands the address of
// each entry that was present, and so may be cached in the TLB or the
// paging-structure caches, to its flusher. Only a walker made by
// [AddressSpace.edit] may change entries, and edit flushes before it
// returns: no change can skip its invalidation.

// walkAction tells the walker what to do after a visit.
type walkAction uint8

const (
	walkDescend walkAction = iota // go into the table the entry points to, if it points to one
	walkSkip                      // do not go into this entry
	walkStop                      // end the walk
	walkPrune                     // as walkDescend, then free the table if the walk left it empty
	// The walker changes the entry, then visits it again: the visitor
	// sees the table it asked for in place of what was there.
	walkAlloc // put in a new empty table (for a not-present entry)
	walkSplit // split the huge page (a pmd or pud leaf) into a table of the next size down
)

// slot is one entry the walker reached.
type slot struct {
	va    VirtAddr // first address the entry maps
	last  VirtAddr // last address the entry maps
	lo    VirtAddr // first address of the walked range the entry maps
	hi    VirtAddr // last address of the walked range the entry maps
	level Level
	table PhysAddr // the table holding the entry
	index int      // the entry's index in it
	entry Entry    // the entry; a visitor changes it by assigning to it
	up    Attr     // effective R/W, U/S and XD of the entries above
}

// size returns the bytes the entry maps.
func (v *slot) size() uint64 { return uint64(v.last-v.va) + 1 }

// whole reports whether the walked range covers everything the entry maps.
func (v *slot) whole() bool { return v.lo == v.va && v.hi == v.last }

// eff returns the effective attributes down to the entry, which must be
// present: R/W and U/S ANDed with the entries above, XD ORed.
func (v *slot) eff() Attr { return combine(v.up, v.entry.Attrs(v.level)) }

// visitor is what a walk does at each entry: visit may change v.entry,
// which the walker then writes, and says what to do next.
type visitor interface {
	visit(w *walker, v *slot) walkAction
}

// below returns the effective R/W, U/S and XD under the table entry e,
// given those above it, up (SDM Vol. 3A 4.6: R/W and U/S are ANDed across
// the levels, XD is ORed).
func below(up Attr, e Entry) Attr {
	if e&RW == 0 {
		up &^= AttrWrite
	}
	if e&User == 0 {
		up &^= AttrUser
	}
	if e&NX != 0 {
		up |= AttrNX
	}
	return up
}

// walker walks the tables of one address space.
type walker struct {
	as  *AddressSpace
	op  string   // the operation, for errors
	err error    // why a visitor or the walker stopped the walk
	f   *flusher // invalidations to send; nil in a walk that may not change entries
}

// edit runs fn with a walker that may change entries, then sends the
// invalidations the changes need, and returns the error that stopped a
// walk, if any.
func (as *AddressSpace) edit(op string, fn func(w *walker)) error {
	e := &struct {
		w walker
		f flusher
	}{w: walker{as: as, op: op}}
	e.w.f = &e.f
	fn(&e.w)
	e.f.flush(as.tlb)
	return e.w.err
}

// walk visits, in address order, every entry at every level reached that
// maps part of [lo, hi] (hi inclusive, so that a range can end at the top
// of the address space; lo and hi in the same canonical half). It reports
// false if the walk was stopped.
func (w *walker) walk(lo, hi VirtAddr, vis visitor) bool {
	_, ok := w.walkTable(w.as.root, w.as.top(), lo, hi, topAttrs, false, vis)
	return ok
}

// walkTable visits the entries of the table at height h (0 for a pte
// table) that map part of [lo, hi], under entries whose effective R/W, U/S
// and XD are up. It returns false if the walk was stopped and, if count,
// how many of those entries are left present (for walkPrune: a table whose
// walked entries are all gone is freed if the walk covered all of it, as
// Unmap always did, or if it is all zero).
//
// Below the last entry of the range, when the caller does not count, the
// walk goes down in place instead of recursing, so a walk of one address
// (Translate's) is a loop.
func (w *walker) walkTable(table PhysAddr, h int, lo, hi VirtAddr, up Attr, count bool, vis visitor) (int, bool) {
	as := w.as
	var v slot
	live := 0
	// Read-only walks whose visitor passes over empty entries skip them
	// here without a visit: a table shared 2048 times over (espfix's)
	// then costs a load and a compare per entry.
	skipEmpty := false
	if w.f == nil {
		switch vis.(type) {
		case *leafVisitor, *checker, *tableCounter:
			skipEmpty = true
		}
	}
down:
	shift := shiftH(h) & 63
	span := uint64(1) << shift
	v.level, v.table, v.up = as.mode.levelAt(h), table, up
	v.index, v.va, v.lo = int(uint64(lo)>>shift)&(entriesPerPT-1), lo.AlignDown(span), lo
	// The table's entries in place, if the memory can show them: then
	// an entry costs a load, not a call through PhysMem. The view is the
	// memory itself, so it sees what the walk or a visitor writes.
	tbl := as.viewTable(table)
	end := int(uint64(hi)>>shift) & (entriesPerPT - 1) // the index of hi's entry, the walk's last here
	for {
		v.last = v.va.Add(span - 1)
		v.hi = min(hi, v.last)
		var old Entry
		if tbl != nil {
			old = Entry(tbl[v.index])
		} else {
			old = as.read(table, v.index)
		}
		if old == 0 && skipEmpty {
			if v.hi == hi {
				return live, true
			}
			// On to the next entry that is not empty, or to the last:
			// espfix's pte page has 31 empty entries between clones.
			i := v.index + 1
			if tbl != nil && i < end {
				// Four entries per test while they are all empty.
				rest := tbl[i:end]
				for len(rest) >= 4 && rest[0]|rest[1]|rest[2]|rest[3] == 0 {
					rest = rest[4:]
				}
				for len(rest) > 0 && rest[0] == 0 {
					rest = rest[1:]
				}
				i = end - len(rest)
			}
			v.va = v.va.Add(uint64(i-v.index) << shift)
			v.index, v.lo = i, v.va
			continue
		}
		v.entry = old
		var act walkAction
		for {
			// Call visit on the concrete type of vis, so this must name
			// every visitor of the package. Called through the
			// interface, visit would make Go's escape analysis move v
			// to the heap, as it cannot see that no visitor keeps the
			// pointer; called on the concrete type, v stays on the
			// stack and small visitors are inlined here.
			switch x := vis.(type) {
			case *translator:
				act = x.visit(w, &v)
			case *leafVisitor:
				act = x.visit(w, &v)
			case *mapper:
				act = x.visit(w, &v)
			case *unmapper:
				act = x.visit(w, &v)
			case *protector:
				act = x.visit(w, &v)
			case *mapCheck:
				act = x.visit(w, &v)
			case *holeCheck:
				act = x.visit(w, &v)
			case *tableCounter:
				act = x.visit(w, &v)
			case *checker:
				act = x.visit(w, &v)
			case *dumper:
				act = x.visit(w, &v)
			case *sharer:
				act = x.visit(w, &v)
			case *globalSetter:
				act = x.visit(w, &v)
			default:
				panic("mm: a walk with a visitor walkTable does not list")
			}
			if act < walkAlloc {
				break
			}
			if !w.grow(&v, act) {
				act = walkStop
				break
			}
		}
		e := v.entry
		if e != old {
			// Only the flusher's owner may change entries, and it
			// flushes: an entry the TLB may cache (a present one) is
			// invalidated before the operation returns.
			if w.f == nil {
				panic("mm: " + w.op + ": a read-only walk changed an entry")
			}
			if old.IsPresent() {
				w.f.add(v.lo)
			}
			as.write(table, v.index, e)
		}
		if act == walkStop {
			return live, false
		}
		if act != walkSkip && h > 0 && e.IsPresent() && !e.IsLeaf(v.level) {
			child := e.Addr(v.level)
			if act == walkDescend && v.hi == hi && !count {
				table, h, lo, up = child, h-1, v.lo, below(up, e)
				goto down
			}
			n, ok := w.walkTable(child, h-1, v.lo, v.hi, below(up, e), act == walkPrune, vis)
			if !ok {
				return live, false
			}
			if act == walkPrune && n == 0 && (v.whole() || as.tableEmpty(child)) {
				if !w.free(&v, e, child) {
					return live, false
				}
				e = 0
			}
		}
		if e.IsPresent() {
			live++
		}
		if v.hi == hi {
			return live, true
		}
		v.index++
		v.va = v.last + 1
		v.lo = v.va
	}
}

// walkAll walks both canonical halves.
func (w *walker) walkAll(vis visitor) bool {
	m := w.as.mode
	return w.walk(0, m.UserEnd()-1, vis) && w.walk(m.KernelStart(), ^VirtAddr(0), vis)
}

// write replaces old, v's entry, by e. If old was present, its address
// goes to the flusher.
func (w *walker) write(v *slot, old, e Entry) {
	if w.f == nil {
		panic("mm: " + w.op + ": a read-only walk changed an entry")
	}
	if old.IsPresent() {
		w.f.add(v.lo)
	}
	w.as.write(v.table, v.index, e)
}

// fail records why the walk stops at va, at level l.
func (w *walker) fail(va VirtAddr, l Level, err error) {
	w.err = opErr(w.op, va, l, err)
}

// grow does what a visitor asked with walkAlloc or walkSplit: it puts a
// new table in v.entry, empty (RW, no XD and no U/S: the visitor adds U/S
// if it wants it) or holding the huge page's 512 pages of the next size
// down with its frames and attributes (Accessed, Dirty and the software
// bits included). It reports false, with the walk's error set, if no frame
// was found for the table.
//
// Precondition: for walkAlloc v.entry is not present, for walkSplit it is
// a pmd or pud leaf.
func (w *walker) grow(v *slot, act walkAction) bool {
	as := w.as
	e := v.entry
	child, err := as.alloc.AllocFrame()
	if err != nil {
		if act == walkAlloc {
			w.fail(v.lo, as.mode.Below(v.level), err)
		} else {
			w.fail(v.lo, v.level, err)
		}
		return false
	}
	if act == walkAlloc {
		as.mem.ZeroFrame(child)
		v.entry = makeTable(child, false)
		return true
	}
	base := e.Addr(v.level)
	flags := e & flagsMask
	if v.level == PMD { // children are ptes: no PS, PAT moves from bit 12 to bit 7
		flags &^= PS
		if e&PATHuge != 0 {
			flags |= PAT
		}
	} else {
		flags |= e & PATHuge
	}
	step := v.size() / entriesPerPT
	for j := range entriesPerPT {
		as.write(child, j, flags|Entry(base.Add(uint64(j)*step)))
	}
	v.entry = makeTable(child, e&User != 0)
	return true
}

// free clears e, v's entry, and frees the table child it points to.
func (w *walker) free(v *slot, e Entry, child PhysAddr) bool {
	as := w.as
	w.write(v, e, 0)
	if err := as.alloc.FreeFrame(child); err != nil {
		w.fail(v.lo, as.mode.Below(v.level), err)
		return false
	}
	return true
}

func (as *AddressSpace) tableEmpty(table PhysAddr) bool {
	if tbl := as.viewTable(table); tbl != nil {
		return *tbl == [entriesPerPT]uint64{}
	}
	for i := range entriesPerPT {
		if as.read(table, i) != 0 {
			return false
		}
	}
	return true
}

// flushCeiling is how many single-page invalidations one operation sends
// before it asks for a full flush instead (Linux's
// tlb_single_page_flush_ceiling is 33).
const flushCeiling = 32

// flusher gathers the invalidations of one operation.
type flusher struct {
	n     int
	all   bool
	pages [flushCeiling]VirtAddr
}

func (f *flusher) add(va VirtAddr) {
	switch {
	case f.all:
	case f.n == len(f.pages):
		f.all = true
	default:
		f.pages[f.n] = va
		f.n++
	}
}

func (f *flusher) flush(t TLB) {
	if f.all {
		t.FlushAll()
		return
	}
	for _, va := range f.pages[:f.n] {
		t.InvalidatePage(va)
	}
}
