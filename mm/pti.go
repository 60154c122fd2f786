package mm

import (
	"errors"
	"fmt"
)

// Page-table isolation's second set of tables. Linux's PTI gives every
// process an 8 KiB pgd, two tables 4 KiB apart: the kernel copy, with the
// whole kernel half, and the user copy, whose kernel half maps only what
// entering the kernel needs; entry code switches between them by flipping
// CR3 bit 12 (arch/x86/mm/pti.c, arch/x86/entry/calling.h). These are the
// table operations that builds them.

// ErrNotShareable says the entry to share is missing in the source or a
// huge page is in the way in either address space.
var ErrNotShareable = errors.New("no table entry to share at that level")

// NewAt returns an address space for building whose root is the frame
// root, which the caller allocated from alloc (PTI's user copy is the
// second page of an 8 KiB pair); root is zeroed. Release frees it to
// alloc like any other table.
//
// Precondition: mode is valid; mem, alloc and tlb are not nil; root is
// 4 KiB aligned.
func NewAt(mode Mode, root PhysAddr, mem PhysMem, alloc FrameAllocator, tlb TLB) *AddressSpace {
	mode.mustValid()
	if mem == nil || alloc == nil || tlb == nil || !root.IsAligned(frameSize) {
		panic(fmt.Sprintf("mm: NewAt(%v, %v): nil dependency or misaligned root", mode, root))
	}
	mem.ZeroFrame(root)
	return newSpace(mode, root, mem, alloc, tlb)
}

// ShareEntry copies from's entry at level l for va into as, making the
// tables above it in as as needed (kernel tables: present, writable,
// supervisor), as pti_clone_p4d copies the kernel's p4d entry for the
// cpu_entry_area into the user copy: the tables below the entry are then
// the same in both. The entry in as must be empty.
//
// Precondition: both address spaces have the same mode and memory; as is
// not live (its TLB is not told); mode.Has(l).
func (as *AddressSpace) ShareEntry(from *AddressSpace, va VirtAddr, l Level) error {
	if as.alloc == nil {
		return opErr("share", va, l, ErrReadOnly)
	}
	if _, err := as.checkRange("share", va.AlignDown(frameSize), frameSize); err != nil {
		return err
	}
	src, ok := from.entryAt(va, l)
	if !ok || !src.IsPresent() {
		return opErr("share", va, l, ErrNotShareable)
	}
	s := sharer{level: l, entry: src}
	return as.edit("share", func(w *walker) { w.walk(va, va, &s) })
}

// sharer puts entry at level, growing tables on the way down.
type sharer struct {
	level Level
	entry Entry
}

func (s *sharer) visit(w *walker, v *slot) walkAction {
	if v.level == s.level {
		if v.entry.IsPresent() {
			w.fail(v.lo, v.level, ErrAlreadyMapped)
			return walkStop
		}
		v.entry = s.entry
		return walkSkip
	}
	if !v.entry.IsPresent() {
		return walkAlloc
	}
	if v.entry.IsLeaf(v.level) {
		w.fail(v.lo, v.level, ErrNotShareable)
		return walkStop
	}
	return walkDescend
}

// entryAt returns the entry at level l on va's path, if the walk gets
// there without a huge page or a hole above it.
func (as *AddressSpace) entryAt(va VirtAddr, l Level) (Entry, bool) {
	t := as.root
	for lv := as.mode.levelAt(as.top()); ; lv = as.mode.Below(lv) {
		e := as.read(t, as.mode.Index(va, lv))
		if lv == l {
			return e, true
		}
		if !e.IsPresent() || e.IsLeaf(lv) {
			return 0, false
		}
		t = e.Addr(lv)
	}
}

// SetTopNX sets NX in as's top-level entry for va, if present: Linux sets
// it in the kernel copy's user-half pgd entries that have U/S set, so
// that the kernel cannot run user code through them even without SMEP
// (pti.c: __pti_set_user_pgtbl). It reports whether the entry is present.
//
// Precondition: as is not live (its TLB is not told).
func (as *AddressSpace) SetTopNX(va VirtAddr) bool {
	i := as.mode.Index(va, PGD)
	e := as.read(as.root, i)
	if !e.IsPresent() {
		return false
	}
	as.write(as.root, i, e|NX)
	return true
}

// TopEntry returns as's top-level entry for va.
func (as *AddressSpace) TopEntry(va VirtAddr) Entry {
	return as.read(as.root, as.mode.Index(va, PGD))
}

// Unshare clears as's entry at level l for va without freeing what it
// points to (the tables ShareEntry shared belong to the address space
// they came from), as Linux's user copy is freed with the pgd pair while
// the cpu_entry_area's tables stay the kernel's. It reports whether the
// entry was present.
//
// Precondition: as is not live (its TLB is not told).
func (as *AddressSpace) Unshare(va VirtAddr, l Level) bool {
	t := as.root
	for lv := as.mode.levelAt(as.top()); ; lv = as.mode.Below(lv) {
		i := as.mode.Index(va, lv)
		e := as.read(t, i)
		if lv == l {
			as.write(t, i, 0)
			return e.IsPresent()
		}
		if !e.IsPresent() || e.IsLeaf(lv) {
			return false
		}
		t = e.Addr(lv)
	}
}

// Withhold makes Map and Protect leave the attributes a out of every page
// they map or change from now on, as Linux's __default_kernel_pte_mask
// leaves _PAGE_GLOBAL out of every PAGE_KERNEL protection under PTI
// (arch/x86/mm/init.c, probe_page_size_mask). SetGlobal still sets G.
func (as *AddressSpace) Withhold(a Attr) { as.withheld = a }

// SetGlobal sets (or clears) G in every leaf that overlaps [va,
// va+length), whole: a huge page is not split, as pti_clone_pgtable sets
// _PAGE_GLOBAL on a whole pmd it clones. Holes are not an error.
func (as *AddressSpace) SetGlobal(va VirtAddr, length uint64, global bool) error {
	last, err := as.checkRange("global", va, length)
	if err != nil {
		return err
	}
	return as.edit("global", func(w *walker) { w.walk(va, last, &globalSetter{global: global}) })
}

// globalSetter sets or clears G in the leaves it visits.
type globalSetter struct{ global bool }

func (g *globalSetter) visit(w *walker, v *slot) walkAction {
	e := v.entry
	switch {
	case !e.IsPresent():
		return walkSkip
	case !e.IsLeaf(v.level):
		return walkDescend
	case g.global:
		v.entry = e | Global
	default:
		v.entry = e &^ Global
	}
	return walkSkip
}
