package mm

import (
	"fmt"
	"iter"
)

// AddressSpace is one tree of x86-64 paging structures: a root table (the
// value of CR3) in a mode. Built with [New], it can map, unmap and protect;
// opened with [Open] over an existing root, it can only be read.
//
// Table memory is reached through a PhysMem, tables come from a
// FrameAllocator, and every change that may leave a stale translation is
// reported to the TLB before the operation returns. An AddressSpace keeps
// no bookkeeping besides the tables themselves, so a read-only view of the
// same root sees exactly what a builder sees.
//
// AddressSpace is not safe for concurrent use.
type AddressSpace struct {
	mode  Mode
	root  PhysAddr
	mem   PhysMem
	alloc FrameAllocator // nil when read-only
	tlb   TLB
}

// New allocates an empty root table and returns an address space for
// building.
//
// Precondition: mode is valid and mem, alloc and tlb are not nil.
func New(mode Mode, mem PhysMem, alloc FrameAllocator, tlb TLB) (*AddressSpace, error) {
	mode.mustValid()
	if mem == nil || alloc == nil || tlb == nil {
		panic("mm: New with a nil PhysMem, FrameAllocator or TLB")
	}
	root, err := alloc.AllocFrame()
	if err != nil {
		return nil, opErr("new", 0, PGD, err)
	}
	mem.ZeroFrame(root)
	return &AddressSpace{mode: mode, root: root, mem: mem, alloc: alloc, tlb: tlb}, nil
}

// Open returns a read-only view of the tables rooted at root, e.g. the
// live ones from CR3. Mutating operations return ErrReadOnly.
//
// Precondition: mode is valid, mem is not nil, root is 4 KiB aligned.
func Open(mode Mode, root PhysAddr, mem PhysMem) *AddressSpace {
	mode.mustValid()
	if mem == nil || !root.IsAligned(frameSize) {
		panic(fmt.Sprintf("mm: Open(%v, %v): nil PhysMem or misaligned root", mode, root))
	}
	return &AddressSpace{mode: mode, root: root, mem: mem, tlb: NopTLB}
}

// Mode returns the paging mode.
func (as *AddressSpace) Mode() Mode { return as.mode }

// Root returns the physical address of the top table (what CR3 holds).
func (as *AddressSpace) Root() PhysAddr { return as.root }

// ReadOnly reports whether as was opened with Open.
func (as *AddressSpace) ReadOnly() bool { return as.alloc == nil }

func (as *AddressSpace) read(table PhysAddr, i int) Entry {
	return Entry(as.mem.Read64(table.Add(uint64(i) * entrySize)))
}

func (as *AddressSpace) write(table PhysAddr, i int, e Entry) {
	as.mem.Write64(table.Add(uint64(i)*entrySize), uint64(e))
}

func (as *AddressSpace) top() int { return as.mode.Levels() - 1 }

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

// checkRange validates a virtual range [va, va+length) for op and returns
// its last byte.
func (as *AddressSpace) checkRange(op string, va VirtAddr, length uint64) (VirtAddr, error) {
	if as.alloc == nil {
		return 0, opErr(op, va, NoLevel, ErrReadOnly)
	}
	if length == 0 || length%frameSize != 0 {
		return 0, opErr(op, va, NoLevel, fmt.Errorf("%w: %#x", ErrBadLength, length))
	}
	if !va.IsAligned(frameSize) {
		return 0, opErr(op, va, NoLevel, ErrMisaligned)
	}
	last := va.Add(length - 1)
	if last < va || !as.mode.Canonical(va) || !as.mode.Canonical(last) ||
		(va < as.mode.UserEnd()) != (last < as.mode.UserEnd()) {
		return 0, opErr(op, va, NoLevel, ErrNonCanonical)
	}
	return last, nil
}

// Map maps [va, va+length) to [pa, pa+length) with attributes attrs, using
// for each piece the largest page size in sizes that the alignment of both
// va and pa and the rest of the range allow. Mapping over an existing
// mapping fails with ErrAlreadyMapped and changes nothing; running out of
// frames undoes what was mapped. New mappings replace only not-present
// entries, which the TLB does not cache, so Map asks for an invalidation
// only when it adds U/S to an existing table entry above a user mapping.
func (as *AddressSpace) Map(va VirtAddr, pa PhysAddr, length uint64, attrs Attr, sizes PageSizes) error {
	last, err := as.checkRange("map", va, length)
	if err != nil {
		return err
	}
	smallest := PageSize(0)
	for _, s := range []PageSize{Size1G, Size2M, Size4K} {
		if sizes.Has(s) {
			smallest = s
		}
	}
	if smallest == 0 {
		return opErr("map", va, NoLevel, fmt.Errorf("%w: no page size allowed", ErrMisaligned))
	}
	if !va.IsAligned(uint64(smallest)) || !pa.IsAligned(uint64(smallest)) || length%uint64(smallest) != 0 {
		return opErr("map", va, smallest.Level(), ErrMisaligned)
	}
	if pa.Add(length) < pa || uint64(pa)+length > 1<<MaxPhysBits {
		return opErr("map", va, NoLevel, ErrPhysRange)
	}
	var busy *visit
	as.walk(va, last, func(v *visit) walkAction {
		if v.entry.IsPresent() && v.entry.IsLeaf(v.level) {
			c := *v
			busy = &c
			return walkStop
		}
		return walkDescend
	})
	if busy != nil {
		return opErr("map", max(busy.va, va), busy.level, ErrAlreadyMapped)
	}
	m := mapper{as: as, attrs: attrs, sizes: sizes, user: attrs&AttrUser != 0}
	err = m.mapRange(as.root, as.top(), va, last, pa)
	if err != nil {
		as.unmapRange(as.root, as.top(), va, last, &m.f) // undo; frees cannot fail on our own tables
	}
	m.f.flush(as.tlb)
	return err
}

type mapper struct {
	as    *AddressSpace
	attrs Attr
	sizes PageSizes
	user  bool
	f     flusher
}

func (m *mapper) mapRange(table PhysAddr, h int, va, last VirtAddr, pa PhysAddr) error {
	as := m.as
	shift := shiftH(h)
	span := uint64(1) << shift
	l := as.mode.levelAt(h)
	for {
		i := int(uint64(va)>>shift) & (entriesPerPT - 1)
		spanLast := va.AlignDown(span).Add(span - 1)
		chunkLast := min(last, spanLast)
		e := as.read(table, i)
		switch {
		case h <= int(PUD) && m.sizes.Has(PageSize(span)) && va.IsAligned(span) &&
			pa.IsAligned(span) && chunkLast == spanLast && !e.IsPresent():
			as.write(table, i, MakeLeaf(l, pa, m.attrs))
		case h == 0 || (e.IsPresent() && e.IsLeaf(l)):
			return opErr("map", va, l, ErrAlreadyMapped)
		default:
			if !e.IsPresent() {
				child, err := as.alloc.AllocFrame()
				if err != nil {
					return opErr("map", va, as.mode.levelAt(h-1), err)
				}
				as.mem.ZeroFrame(child)
				e = makeTable(child, m.user)
				as.write(table, i, e)
			} else if m.user && e&User == 0 {
				e |= User // more permissive: flushed so no spurious fault follows
				as.write(table, i, e)
				m.f.add(va)
			}
			if err := m.mapRange(e.Addr(l), h-1, va, chunkLast, pa); err != nil {
				return err
			}
		}
		if chunkLast == last {
			return nil
		}
		pa = pa.Add(uint64(chunkLast-va) + 1)
		va = chunkLast + 1
	}
}

// Unmap removes every mapping in [va, va+length), splitting a huge page
// that straddles an end, and frees the tables that become empty. Holes in
// the range are not an error.
func (as *AddressSpace) Unmap(va VirtAddr, length uint64) error {
	last, err := as.checkRange("unmap", va, length)
	if err != nil {
		return err
	}
	var f flusher
	err = as.unmapRange(as.root, as.top(), va, last, &f)
	f.flush(as.tlb)
	return err
}

func (as *AddressSpace) unmapRange(table PhysAddr, h int, va, last VirtAddr, f *flusher) error {
	shift := shiftH(h)
	span := uint64(1) << shift
	l := as.mode.levelAt(h)
	for {
		i := int(uint64(va)>>shift) & (entriesPerPT - 1)
		spanStart := va.AlignDown(span)
		spanLast := spanStart.Add(span - 1)
		chunkLast := min(last, spanLast)
		whole := va == spanStart && chunkLast == spanLast
		e := as.read(table, i)
		if e.IsPresent() {
			if e.IsLeaf(l) && whole {
				as.write(table, i, 0)
				f.add(spanStart)
			} else {
				if e.IsLeaf(l) {
					var err error
					if e, err = as.split(table, i, h, spanStart, e, f); err != nil {
						return opErr("unmap", va, l, err)
					}
				}
				child := e.Addr(l)
				if err := as.unmapRange(child, h-1, va, chunkLast, f); err != nil {
					return err
				}
				if whole || as.tableEmpty(child) {
					as.write(table, i, 0)
					f.add(spanStart)
					if err := as.alloc.FreeFrame(child); err != nil {
						return opErr("unmap", va, as.mode.levelAt(h-1), err)
					}
				}
			}
		}
		if chunkLast == last {
			return nil
		}
		va = chunkLast + 1
	}
}

func (as *AddressSpace) tableEmpty(table PhysAddr) bool {
	for i := 0; i < entriesPerPT; i++ {
		if as.read(table, i) != 0 {
			return false
		}
	}
	return true
}

// split replaces the huge leaf e at table[i] (height h, mapping va) by a
// table of 512 smaller leaves with the same attributes, and returns the new
// table entry.
func (as *AddressSpace) split(table PhysAddr, i, h int, va VirtAddr, e Entry, f *flusher) (Entry, error) {
	l := as.mode.levelAt(h)
	child, err := as.alloc.AllocFrame()
	if err != nil {
		return 0, err
	}
	base := e.Addr(l)
	flags := e & flagsMask
	if l == PMD { // children are ptes: no PS, PAT moves from bit 12 to bit 7
		flags &^= PS
		if e&PATHuge != 0 {
			flags |= PAT
		}
	} else {
		flags |= e & PATHuge
	}
	step := uint64(1) << shiftH(h-1)
	for j := 0; j < entriesPerPT; j++ {
		as.write(child, j, flags|Entry(base.Add(uint64(j)*step)))
	}
	ne := makeTable(child, e&User != 0)
	as.write(table, i, ne)
	f.add(va)
	return ne, nil
}

// Protect sets the attributes of every page in [va, va+length) to attrs,
// keeping the frame, the Accessed and Dirty bits and the software bits. A
// huge page that straddles an end is split first; its other pages keep
// their attributes. The whole range must be mapped, else ErrNotMapped and
// nothing changes.
func (as *AddressSpace) Protect(va VirtAddr, length uint64, attrs Attr) error {
	last, err := as.checkRange("protect", va, length)
	if err != nil {
		return err
	}
	var hole *visit
	as.walk(va, last, func(v *visit) walkAction {
		if !v.entry.IsPresent() {
			c := *v
			hole = &c
			return walkStop
		}
		return walkDescend
	})
	if hole != nil {
		return opErr("protect", max(hole.va, va), hole.level, ErrNotMapped)
	}
	var f flusher
	err = as.protectRange(as.root, as.top(), va, last, attrs, &f)
	f.flush(as.tlb)
	return err
}

func (as *AddressSpace) protectRange(table PhysAddr, h int, va, last VirtAddr, attrs Attr, f *flusher) error {
	shift := shiftH(h)
	span := uint64(1) << shift
	l := as.mode.levelAt(h)
	user := attrs&AttrUser != 0
	for {
		i := int(uint64(va)>>shift) & (entriesPerPT - 1)
		spanStart := va.AlignDown(span)
		spanLast := spanStart.Add(span - 1)
		chunkLast := min(last, spanLast)
		e := as.read(table, i)
		if e.IsLeaf(l) && va == spanStart && chunkLast == spanLast {
			if ne := e&^attrBits(l) | attrs.bits(l); ne != e {
				as.write(table, i, ne)
				f.add(spanStart)
			}
		} else {
			if e.IsLeaf(l) {
				var err error
				if e, err = as.split(table, i, h, spanStart, e, f); err != nil {
					return opErr("protect", va, l, err)
				}
			}
			if user && e&User == 0 {
				e |= User
				as.write(table, i, e)
				f.add(va)
			}
			if err := as.protectRange(e.Addr(l), h-1, va, chunkLast, attrs, f); err != nil {
				return err
			}
		}
		if chunkLast == last {
			return nil
		}
		va = chunkLast + 1
	}
}

// Step is one entry a translation visited.
type Step struct {
	Level Level    // level of the table
	Table PhysAddr // physical address of the table
	Index int      // index of the entry in the table
	Entry Entry    // the raw entry
}

// Translation is the result of walking one virtual address.
type Translation struct {
	VA     VirtAddr
	PA     PhysAddr // VA's physical address (valid when mapped)
	Size   PageSize // size of the page holding VA
	Level  Level    // level of the leaf
	Attrs  Attr     // effective attributes across levels
	Entry  Entry    // the leaf entry
	Steps  [MaxLevels]Step
	NSteps int
}

// Path returns the entries visited, from the top level down.
func (t *Translation) Path() []Step { return t.Steps[:t.NSteps] }

// Translate walks va like the MMU does. It returns the translation and the
// entries visited; when va is not mapped the error wraps ErrNotMapped (and
// the path ends at the not-present entry).
func (as *AddressSpace) Translate(va VirtAddr) (Translation, error) {
	t := Translation{VA: va}
	if !as.mode.Canonical(va) {
		return t, opErr("translate", va, NoLevel, ErrNonCanonical)
	}
	table := as.root
	eff := topAttrs
	for h := as.top(); h >= 0; h-- {
		l := as.mode.levelAt(h)
		i := int(uint64(va)>>shiftH(h)) & (entriesPerPT - 1)
		e := as.read(table, i)
		t.Steps[t.NSteps] = Step{Level: l, Table: table, Index: i, Entry: e}
		t.NSteps++
		if !e.IsPresent() {
			return t, opErr("translate", va, l, ErrNotMapped)
		}
		eff = combine(eff, e.Attrs(l))
		if e.IsLeaf(l) {
			size := pageSizeAt(l)
			t.PA = e.Addr(l).Add(uint64(va) & uint64(size-1))
			t.Size, t.Level, t.Attrs, t.Entry = size, l, eff, e
			return t, nil
		}
		if r := e.Reserved(l, MaxPhysBits); r != 0 {
			return t, opErr("translate", va, l, fmt.Errorf("reserved bits %#x set", uint64(r)))
		}
		table = e.Addr(l)
	}
	panic("unreachable")
}

// Leaf is one present leaf entry: a mapped page.
type Leaf struct {
	VA    VirtAddr // first address of the page
	PA    PhysAddr // its frame
	Size  PageSize
	Level Level
	Entry Entry // the raw leaf entry
	Attrs Attr  // effective attributes across levels
}

// Range returns the virtual range of the page.
func (l Leaf) Range() VirtRange { return VirtRange{l.VA, l.VA.Add(uint64(l.Size))} }

// Leaves returns the leaves that overlap r, in address order.
func (as *AddressSpace) Leaves(r VirtRange) iter.Seq[Leaf] {
	return func(yield func(Leaf) bool) {
		if r.Empty() {
			return
		}
		as.walk(r.Start, r.End-1, leafVisitor(yield))
	}
}

// AllLeaves returns every leaf of the address space in address order.
func (as *AddressSpace) AllLeaves() iter.Seq[Leaf] {
	return func(yield func(Leaf) bool) {
		fn := leafVisitor(yield)
		if as.walk(0, as.mode.UserEnd()-1, fn) {
			as.walk(as.mode.KernelStart(), ^VirtAddr(0), fn)
		}
	}
}

func leafVisitor(yield func(Leaf) bool) func(*visit) walkAction {
	return func(v *visit) walkAction {
		if !v.entry.IsPresent() || !v.entry.IsLeaf(v.level) {
			return walkDescend
		}
		lf := Leaf{VA: v.va, PA: v.entry.Addr(v.level), Size: pageSizeAt(v.level),
			Level: v.level, Entry: v.entry, Attrs: v.eff}
		if !yield(lf) {
			return walkStop
		}
		return walkDescend
	}
}

// TablePages counts the table pages reachable from the root, root included.
func (as *AddressSpace) TablePages() int {
	n := 1
	as.walkAll(func(v *visit) walkAction {
		if v.entry.IsPresent() && !v.entry.IsLeaf(v.level) && v.level != PTE {
			n++
		}
		return walkDescend
	})
	return n
}

// Release unmaps everything and frees every table, the root included. The
// address space must not be used afterwards.
func (as *AddressSpace) Release() error {
	if as.alloc == nil {
		return opErr("release", 0, NoLevel, ErrReadOnly)
	}
	var f flusher
	err := as.unmapRange(as.root, as.top(), 0, as.mode.UserEnd()-1, &f)
	if err == nil {
		err = as.unmapRange(as.root, as.top(), as.mode.KernelStart(), ^VirtAddr(0), &f)
	}
	f.flush(as.tlb)
	if err != nil {
		return err
	}
	return as.alloc.FreeFrame(as.root)
}

// walkAction tells the walker what to do after a visit.
type walkAction uint8

const (
	walkDescend walkAction = iota // go into a present table entry
	walkSkip                      // do not go into this entry
	walkStop                      // end the walk
)

// visit describes one entry seen by the walker.
type visit struct {
	va    VirtAddr // first address the entry maps
	level Level
	table PhysAddr
	index int
	entry Entry
	eff   Attr // effective attributes down to this entry (if present)
}

// walk visits, in address order, every entry at every level reached that
// maps part of [lo, hi] (hi inclusive, lo and hi in the same canonical
// half). It reports false if the visitor stopped it.
func (as *AddressSpace) walk(lo, hi VirtAddr, fn func(*visit) walkAction) bool {
	var v visit
	return as.walkTable(as.root, as.top(), lo, hi, topAttrs, &v, fn)
}

func (as *AddressSpace) walkAll(fn func(*visit) walkAction) bool {
	return as.walk(0, as.mode.UserEnd()-1, fn) && as.walk(as.mode.KernelStart(), ^VirtAddr(0), fn)
}

func (as *AddressSpace) walkTable(table PhysAddr, h int, lo, hi VirtAddr, eff Attr, v *visit, fn func(*visit) walkAction) bool {
	shift := shiftH(h)
	span := uint64(1) << shift
	l := as.mode.levelAt(h)
	va := lo
	for {
		i := int(uint64(va)>>shift) & (entriesPerPT - 1)
		spanStart := va.AlignDown(span)
		spanLast := spanStart.Add(span - 1)
		e := as.read(table, i)
		*v = visit{va: spanStart, level: l, table: table, index: i, entry: e}
		if e.IsPresent() {
			v.eff = combine(eff, e.Attrs(l))
		}
		switch fn(v) {
		case walkStop:
			return false
		case walkDescend:
			if h > 0 && e.IsPresent() && !e.IsLeaf(l) {
				if !as.walkTable(e.Addr(l), h-1, va, min(hi, spanLast), combine(eff, e.Attrs(l)), v, fn) {
					return false
				}
			}
		}
		if spanLast >= hi {
			return true
		}
		va = spanLast + 1
	}
}
