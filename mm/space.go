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
	view  FrameViewer    // mem, if it can show a table in place; else nil
	alloc FrameAllocator // nil when read-only
	tlb   TLB
	// withheld are the attributes Map and Protect leave out (Withhold).
	withheld Attr
}

// newSpace returns an address space over root, looking once for what
// mem can do beyond PhysMem.
func newSpace(mode Mode, root PhysAddr, mem PhysMem, alloc FrameAllocator, tlb TLB) *AddressSpace {
	view, _ := mem.(FrameViewer)
	return &AddressSpace{mode: mode, root: root, mem: mem, view: view, alloc: alloc, tlb: tlb}
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
	return newSpace(mode, root, mem, alloc, tlb), nil
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
	return newSpace(mode, root, mem, nil, NopTLB)
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

// viewTable returns the entries of table in place, or nil if they must
// be read one by one (see FrameViewer).
func (as *AddressSpace) viewTable(table PhysAddr) *[entriesPerPT]uint64 {
	if as.view == nil {
		return nil
	}
	return as.view.ViewFrame(table)
}

func (as *AddressSpace) write(table PhysAddr, i int, e Entry) {
	as.mem.Write64(table.Add(uint64(i)*entrySize), uint64(e))
}

func (as *AddressSpace) top() int { return as.mode.Levels() - 1 }

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
	attrs &^= as.withheld
	m := mapper{va: va, pa: pa, sizes: sizes, user: attrs&AttrUser != 0}
	for l := PTE; l <= PUD; l++ {
		m.leaf[l] = MakeLeaf(l, 0, attrs)
	}
	return as.edit("map", func(w *walker) {
		if !w.walk(va, last, &mapCheck{}) || w.walk(va, last, &m) {
			return
		}
		// Out of frames: undo, which cannot fail on tables just made.
		err := w.err
		w.walk(va, last, &unmapper{})
		w.err = err
	})
}

// mapCheck stops at the first leaf: Map refuses to overwrite.
type mapCheck struct{}

func (*mapCheck) visit(w *walker, v *slot) walkAction {
	if e := v.entry; e.IsPresent() && e.IsLeaf(v.level) {
		w.fail(v.lo, v.level, ErrAlreadyMapped)
		return walkStop
	}
	return walkDescend
}

// mapper maps [va, ...) to [pa, ...), in a range that holds no leaf.
type mapper struct {
	va    VirtAddr
	pa    PhysAddr
	sizes PageSizes
	user  bool
	leaf  [PUD + 1]Entry // the leaf of each level, but for its frame
}

func (m *mapper) visit(w *walker, v *slot) walkAction {
	if e := v.entry; e.IsPresent() { // a table: the range holds no leaf
		if m.user && e&User == 0 {
			// More permissive; if the table was there before, flushed
			// so that no spurious fault follows.
			v.entry = e | User
		}
		return walkDescend
	}
	// A huge page only where the size is allowed, the range covers it
	// and virtual and physical addresses are both aligned to it.
	pa := m.pa.Add(uint64(v.lo - m.va))
	if v.level == PTE || (v.level <= PUD && v.whole() && m.sizes.Has(PageSize(v.size())) && pa.IsAligned(v.size())) {
		v.entry = m.leaf[v.level] | Entry(pa)
		return walkSkip
	}
	return walkAlloc
}

// Unmap removes every mapping in [va, va+length), splitting a huge page
// that straddles an end, and frees the tables that become empty. Holes in
// the range are not an error.
func (as *AddressSpace) Unmap(va VirtAddr, length uint64) error {
	last, err := as.checkRange("unmap", va, length)
	if err != nil {
		return err
	}
	return as.edit("unmap", func(w *walker) { w.walk(va, last, &unmapper{}) })
}

// unmapper clears every entry of the range, splitting a huge page that
// straddles an end, and frees the tables it empties.
type unmapper struct{}

func (*unmapper) visit(w *walker, v *slot) walkAction {
	switch e := v.entry; {
	case !e.IsPresent():
		return walkSkip
	case !e.IsLeaf(v.level):
		return walkPrune
	case v.whole():
		v.entry = 0
		return walkSkip
	}
	return walkSplit
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
	attrs &^= as.withheld
	p := protector{user: attrs&AttrUser != 0}
	for l := PTE; l <= PUD; l++ {
		p.clear[l], p.set[l] = attrBits(l), attrs.bits(l)
	}
	return as.edit("protect", func(w *walker) {
		_ = w.walk(va, last, &holeCheck{}) && w.walk(va, last, &p)
	})
}

// holeCheck stops at the first entry not present: Protect refuses holes.
type holeCheck struct{}

func (*holeCheck) visit(w *walker, v *slot) walkAction {
	if !v.entry.IsPresent() {
		w.fail(v.lo, v.level, ErrNotMapped)
		return walkStop
	}
	return walkDescend
}

// protector sets the attributes of the leaves of a range that is all
// mapped.
type protector struct {
	user       bool
	clear, set [PUD + 1]Entry // what the attributes clear and set in a leaf of each level
}

func (p *protector) visit(w *walker, v *slot) walkAction {
	e := v.entry
	switch {
	case !e.IsLeaf(v.level):
		if p.user && e&User == 0 {
			v.entry = e | User
		}
		return walkDescend
	case v.whole():
		v.entry = e&^p.clear[v.level] | p.set[v.level]
		return walkSkip
	}
	return walkSplit
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

// WalkError says where and why a translation stopped short of a leaf.
// Translate's error wraps one, so that a caller holding only the error can
// recover the partial walk:
//
//	var we *mm.WalkError
//	if errors.As(err, &we) {
//		for _, s := range we.Reached() { ... } // the levels the walk got through
//	}
type WalkError struct {
	// Partial is the translation as far as it went: VA, and in Steps the
	// entries visited down to the one that stopped the walk, which is the
	// last; Attrs holds the effective R/W, U/S and XD of the entries above
	// it (RW and USR, executable, when there are none). PA, Size, Level and
	// Entry are zero.
	Partial Translation
	// Level is the level of the entry that stopped the walk.
	Level Level
	// Err is ErrNotMapped (the entry is not present) or ErrReservedBits (a
	// table entry has reserved bits set, which faults with RSVD=1).
	Err error
	// Reserved holds the reserved bits found, with ErrReservedBits.
	Reserved Entry
}

// Error says why the walk stopped; the *Error around it says where.
func (e *WalkError) Error() string {
	if e.Err == ErrReservedBits {
		return fmt.Sprintf("reserved bits %#x set", uint64(e.Reserved))
	}
	return e.Err.Error()
}

// Unwrap returns the cause.
func (e *WalkError) Unwrap() error { return e.Err }

// Stop returns the entry that stopped the walk.
func (e *WalkError) Stop() Step { return e.Partial.Steps[e.Partial.NSteps-1] }

// Reached returns the entries the walk went through before the one that
// stopped it, from the top level down: empty when the top-level entry
// itself stopped it.
func (e *WalkError) Reached() []Step { return e.Partial.Steps[:e.Partial.NSteps-1] }

// translateError holds both errors of a failed translation in one
// allocation.
type translateError struct {
	op   Error
	walk WalkError
}

// Translate walks va like the MMU does. It returns the translation and the
// entries visited. When va is not mapped the error wraps ErrNotMapped and
// the path ends at the not-present entry; the error's *Error gives the
// entry's level and its *WalkError the partial walk.
func (as *AddressSpace) Translate(va VirtAddr) (Translation, error) {
	tr := translator{t: Translation{VA: va}}
	if !as.mode.Canonical(va) {
		return tr.t, opErr("translate", va, NoLevel, ErrNonCanonical)
	}
	w := walker{as: as, op: "translate"}
	w.walk(va, va, &tr)
	if tr.why == nil {
		return tr.t, nil
	}
	t := tr.t
	l := t.Steps[t.NSteps-1].Level
	f := &translateError{
		op:   Error{Op: "translate", VA: va, Level: l},
		walk: WalkError{Partial: t, Level: l, Err: tr.why, Reserved: tr.reserved},
	}
	f.walk.Partial.Attrs = tr.above
	f.op.Err = &f.walk
	return t, &f.op
}

// translator walks one address like the MMU.
type translator struct {
	t        Translation
	why      error // why the walk stopped short of a leaf
	reserved Entry // the reserved bits that stopped it
	above    Attr  // effective attributes of the entries above the last
}

func (tr *translator) visit(w *walker, v *slot) walkAction {
	t, e := &tr.t, v.entry
	t.Steps[t.NSteps] = Step{Level: v.level, Table: v.table, Index: v.index, Entry: e}
	t.NSteps++
	if tr.above = v.up; !e.IsPresent() {
		tr.why = ErrNotMapped
		return walkStop
	}
	if e.IsLeaf(v.level) {
		size := pageSizeAt(v.level)
		t.PA = e.Addr(v.level).Add(uint64(t.VA) & uint64(size-1))
		t.Size, t.Level, t.Attrs, t.Entry = size, v.level, v.eff(), e
		return walkStop
	}
	// With MAXPHYADDR at its limit, PS is the only bit a table entry can
	// have reserved (at the p4d and pgd levels; see Entry.Reserved).
	if e&PS != 0 {
		if tr.reserved = e.Reserved(v.level, MaxPhysBits); tr.reserved != 0 {
			tr.why = ErrReservedBits
			return walkStop
		}
	}
	return walkDescend
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
		w := walker{as: as}
		w.walk(r.Start, r.End-1, &leafVisitor{yield})
	}
}

// AllLeaves returns every leaf of the address space in address order.
func (as *AddressSpace) AllLeaves() iter.Seq[Leaf] {
	return func(yield func(Leaf) bool) {
		w := walker{as: as}
		w.walkAll(&leafVisitor{yield})
	}
}

// leafVisitor yields each present leaf.
type leafVisitor struct{ yield func(Leaf) bool }

func (lv *leafVisitor) visit(w *walker, v *slot) walkAction {
	e := v.entry
	if !e.IsPresent() || !e.IsLeaf(v.level) {
		return walkDescend
	}
	if !lv.yield(Leaf{VA: v.va, PA: e.Addr(v.level), Size: pageSizeAt(v.level), Level: v.level, Entry: e, Attrs: v.eff()}) {
		return walkStop
	}
	return walkSkip
}

// TablePages counts the table pages reachable from the root, root included.
func (as *AddressSpace) TablePages() int {
	c := tableCounter{n: 1}
	w := walker{as: as}
	w.walkAll(&c)
	return c.n
}

// tableCounter counts the present table entries.
type tableCounter struct{ n int }

func (c *tableCounter) visit(w *walker, v *slot) walkAction {
	if e := v.entry; !e.IsPresent() || e.IsLeaf(v.level) {
		return walkSkip
	}
	c.n++
	if v.level == PMD { // a pte table holds no table
		return walkSkip
	}
	return walkDescend
}

// Release unmaps everything and frees every table, the root included. The
// address space must not be used afterwards.
func (as *AddressSpace) Release() error {
	if as.alloc == nil {
		return opErr("release", 0, NoLevel, ErrReadOnly)
	}
	if err := as.edit("unmap", func(w *walker) {
		w.walkAll(&unmapper{})
	}); err != nil {
		return err
	}
	return as.alloc.FreeFrame(as.root)
}

// kernelHalf is the first top-level index of the kernel half: Linux's
// KERNEL_PGD_BOUNDARY (pgd_index(PAGE_OFFSET) rounded to the half, 256 of
// 512 entries in both modes).
const kernelHalf = entriesPerPT / 2

// ShareKernelHalf copies from's kernel-half top-level entries into as, as
// Linux's pgd_alloc copies them from swapper_pg_dir into a new process's
// pgd (pgd_ctor, clone_pgd_range of KERNEL_PGD_PTRS entries): the tables
// below them are then shared, so a change below the top level shows in
// both. as's kernel half must be empty; its TLB is not told (a new
// address space is not live).
// Precondition: both address spaces have the same mode and memory.
func (as *AddressSpace) ShareKernelHalf(from *AddressSpace) error {
	if as.alloc == nil {
		return opErr("share", as.mode.KernelStart(), PGD, ErrReadOnly)
	}
	for i := kernelHalf; i < entriesPerPT; i++ {
		if as.read(as.root, i).IsPresent() {
			return opErr("share", as.topVA(i), PGD, ErrAlreadyMapped)
		}
	}
	for i := kernelHalf; i < entriesPerPT; i++ {
		as.write(as.root, i, from.read(from.root, i))
	}
	return nil
}

// topVA is the first address of top-level entry i.
func (as *AddressSpace) topVA(i int) VirtAddr {
	va := VirtAddr(uint64(i) << as.mode.Shift(PGD))
	if i >= kernelHalf {
		va |= as.mode.KernelStart()
	}
	return va
}

// ReleaseUser frees as's user half and root, leaving the kernel half's
// tables alone (ShareKernelHalf's, which belong to the kernel), as Linux's
// pgd_free frees only a process's own: it clears the kernel-half
// top-level entries, then releases the rest.
func (as *AddressSpace) ReleaseUser() error {
	if as.alloc == nil {
		return opErr("release", 0, NoLevel, ErrReadOnly)
	}
	for i := kernelHalf; i < entriesPerPT; i++ {
		as.write(as.root, i, 0)
	}
	return as.Release()
}
