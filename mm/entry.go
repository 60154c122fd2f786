package mm

import (
	"fmt"
	"strings"
)

// Entry is one 64-bit paging-structure entry in the hardware format
// (SDM Vol. 3A 4.5, Tables 4-15 to 4-20; AMD APM Vol. 2 5.3.3).
type Entry uint64

// Entry bits, with the manuals' names (SDM Vol. 3A 4.5).
const (
	Present  Entry = 1 << 0  // P: the entry is valid
	RW       Entry = 1 << 1  // R/W: writes allowed
	User     Entry = 1 << 2  // U/S: user-mode accesses allowed
	PWT      Entry = 1 << 3  // page-level write-through
	PCD      Entry = 1 << 4  // page-level cache disable
	Accessed Entry = 1 << 5  // A: set by the CPU on access
	Dirty    Entry = 1 << 6  // D: set by the CPU on write (leaves only)
	PS       Entry = 1 << 7  // page size: a pmd or pud entry maps a huge page
	PAT      Entry = 1 << 7  // PAT index bit in a pte (same bit as PS)
	Global   Entry = 1 << 8  // G: survives CR3 loads when CR4.PGE=1 (leaves only)
	PATHuge  Entry = 1 << 12 // PAT index bit in a huge pmd or pud
	NX       Entry = 1 << 63 // XD: instruction fetches disallowed (EFER.NXE=1)
)

const (
	// MaxPhysBits is the architectural limit of MAXPHYADDR (SDM Vol. 3A 4.1.4).
	MaxPhysBits = 52
	// addrMask selects bits 51:12, the frame address of a table or 4 KiB page.
	addrMask Entry = (1<<MaxPhysBits - 1) &^ (1<<pageShift - 1)
	// flagsMask selects every bit that is not part of the 4 KiB frame address,
	// like Linux's PTE_FLAGS_MASK.
	flagsMask = ^addrMask
)

// IsPresent reports whether the P bit is set.
func (e Entry) IsPresent() bool { return e&Present != 0 }

// IsLeaf reports whether e, found at level l, maps a page rather than a
// table: always at PTE, with PS at PMD and PUD. PS at P4D or PGD is a
// reserved bit, not a leaf.
func (e Entry) IsLeaf(l Level) bool {
	return l == PTE || ((l == PMD || l == PUD) && e&PS != 0)
}

// pageSizeAt returns the page size of a leaf at level l (l is PTE, PMD or PUD).
func pageSizeAt(l Level) PageSize { return PageSize(1) << (pageShift + levelBits*uint(l)) }

// Addr returns the physical address e holds at level l: a table or 4 KiB
// frame (bits 51:12), or a huge frame whose low bits, PAT included, are
// masked off.
func (e Entry) Addr(l Level) PhysAddr {
	a := e & addrMask
	if e.IsLeaf(l) && l != PTE {
		a &^= Entry(pageSizeAt(l) - 1)
	}
	return PhysAddr(a)
}

// Reserved returns the bits of e, read at level l with MAXPHYADDR physBits,
// that the SDM marks reserved (must be zero, else a #PF with RSVD=1): the
// address bits from physBits to 51; PS at the p4d and pgd levels; and in a
// huge page, the address bits below its size other than the PAT bit.
// NX is not reported: it is reserved only when EFER.NXE is clear.
func (e Entry) Reserved(l Level, physBits uint) Entry {
	if physBits == 0 || physBits > MaxPhysBits {
		physBits = MaxPhysBits
	}
	var r Entry
	r |= e & ((1<<MaxPhysBits - 1) &^ (1<<physBits - 1))
	if (l == P4D || l == PGD) && e&PS != 0 {
		r |= PS
	}
	if e.IsLeaf(l) && l != PTE {
		r |= e & (Entry(pageSizeAt(l)-1) &^ (PATHuge | (1<<pageShift - 1)))
	}
	return r
}

// Attrs returns the attribute bits of e as found at level l.
//
// Every leaf a walk yields goes through here, so each bit is moved to its
// Attr place by a shift rather than tested: R/W and U/S (bits 1, 2) down
// one, XD (63) to 2, PWT and PCD (3, 4) up one, G (8) to 3, PAT (7 in a
// pte, 12 in a huge page) to 6. TestEntryAttrs holds it to the tests.
func (e Entry) Attrs(l Level) Attr {
	a := Attr(e>>1)&(AttrWrite|AttrUser) | Attr(e>>61)&AttrNX | Attr(e<<1)&(AttrPWT|AttrPCD)
	if e.IsLeaf(l) {
		pat := e >> 1
		if l != PTE {
			pat = e >> 6
		}
		a |= Attr(e>>5)&AttrGlobal | Attr(pat)&AttrPAT
	}
	return a
}

// attrBits is every bit an Attr controls in a leaf at level l.
func attrBits(l Level) Entry {
	b := RW | User | NX | PWT | PCD | Global
	if l == PTE {
		return b | PAT
	}
	return b | PATHuge
}

// MakeLeaf encodes a present leaf at level l mapping pa with attributes a.
// Accessed is preset, as Linux does, so the CPU need not write it.
//
// Precondition: l is PTE, PMD or PUD and pa is aligned to its page size.
func MakeLeaf(l Level, pa PhysAddr, a Attr) Entry {
	if l < PTE || l > PUD || !pa.IsAligned(uint64(pageSizeAt(l))) {
		panic(fmt.Sprintf("mm: MakeLeaf(%v, %v): bad level or alignment", l, pa))
	}
	e := Present | Accessed | Entry(pa)&addrMask | a.bits(l)
	if l != PTE {
		e |= PS
	}
	return e
}

// makeTable encodes a present entry pointing to the table at pa.
// Upper levels are permissive (RW, no NX) so leaves decide, like Linux's
// _KERNPG_TABLE; User is set for tables under user mappings.
func makeTable(pa PhysAddr, user bool) Entry {
	e := Present | RW | Accessed | Entry(pa)&addrMask
	if user {
		e |= User
	}
	return e
}

var entryBitNames = []struct {
	bit  Entry
	name string
}{
	{Present, "P"}, {RW, "RW"}, {User, "US"}, {PWT, "PWT"}, {PCD, "PCD"},
	{Accessed, "A"}, {Dirty, "D"}, {Global, "G"}, {NX, "NX"},
}

// Decode describes e as found at level l: its flags, address and any
// reserved bits set (with MAXPHYADDR physBits; 0 means 52).
func (e Entry) Decode(l Level, physBits uint) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%#016x", uint64(e))
	if !e.IsPresent() {
		b.WriteString(" not-present")
		return b.String()
	}
	for _, f := range entryBitNames {
		if e&f.bit != 0 {
			b.WriteString(" " + f.name)
		}
	}
	switch {
	case l == PTE && e&PAT != 0:
		b.WriteString(" PAT")
	case l != PTE && e&PS != 0:
		b.WriteString(" PS")
		if e.IsLeaf(l) && e&PATHuge != 0 {
			b.WriteString(" PAT")
		}
	}
	fmt.Fprintf(&b, " addr=%v", e.Addr(l))
	if r := e.Reserved(l, physBits); r != 0 {
		fmt.Fprintf(&b, " reserved=%#x", uint64(r))
	}
	return b.String()
}

// Attr is a set of page attributes: what a mapping allows and how it is
// cached. The zero Attr is a read-only, executable, supervisor page.
type Attr uint8

// Members of [Attr].
const (
	AttrWrite  Attr = 1 << iota // writable (R/W)
	AttrUser                    // user accessible (U/S)
	AttrNX                      // not executable (XD)
	AttrGlobal                  // global (G)
	AttrPWT                     // write-through (PWT)
	AttrPCD                     // cache disabled (PCD)
	AttrPAT                     // PAT index bit
)

// Linux's common kernel protections (arch/x86/include/asm/pgtable_types.h).
const (
	PageKernel     = AttrWrite | AttrNX | AttrGlobal // PAGE_KERNEL: data, RW+NX
	PageKernelRO   = AttrNX | AttrGlobal             // PAGE_KERNEL_RO: rodata
	PageKernelExec = AttrGlobal                      // PAGE_KERNEL_ROX: text, RO+X
)

func (a Attr) bits(l Level) Entry {
	var e Entry
	if a&AttrWrite != 0 {
		e |= RW
	}
	if a&AttrUser != 0 {
		e |= User
	}
	if a&AttrNX != 0 {
		e |= NX
	}
	if a&AttrGlobal != 0 {
		e |= Global
	}
	if a&AttrPWT != 0 {
		e |= PWT
	}
	if a&AttrPCD != 0 {
		e |= PCD
	}
	if a&AttrPAT != 0 {
		if l == PTE {
			e |= PAT
		} else {
			e |= PATHuge
		}
	}
	return e
}

// String lists the attributes in ptdump's words, e.g. "RW NX GLB".
func (a Attr) String() string {
	var parts []string
	if a&AttrUser != 0 {
		parts = append(parts, "USR")
	}
	if a&AttrWrite != 0 {
		parts = append(parts, "RW")
	} else {
		parts = append(parts, "ro")
	}
	for _, f := range []struct {
		a    Attr
		name string
	}{{AttrPWT, "PWT"}, {AttrPCD, "PCD"}, {AttrPAT, "PAT"}, {AttrGlobal, "GLB"}} {
		if a&f.a != 0 {
			parts = append(parts, f.name)
		}
	}
	if a&AttrNX != 0 {
		parts = append(parts, "NX")
	} else {
		parts = append(parts, "x")
	}
	return strings.Join(parts, " ")
}

// combine folds the entry of a lower level into the effective permission
// of the levels above: RW and U/S are ANDed, XD is ORed (SDM Vol. 3A 4.6).
func combine(upper Attr, lower Attr) Attr {
	const anded = AttrWrite | AttrUser
	return (upper & lower & anded) | ((upper | lower) & AttrNX) | (lower &^ (anded | AttrNX))
}

// topAttrs is the neutral start for combine.
const topAttrs = AttrWrite | AttrUser
