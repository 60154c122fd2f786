package mm

import "fmt"

// Level names a level of the paging structures with Linux's names. The
// numbering counts from the bottom: a pte maps 4 KiB, each level above maps
// 512 times more. See doc.go for the Intel names.
type Level int8

// The paging levels. In 4-level mode the p4d is folded: PGD is the top
// table (Intel's PML4) and P4D does not exist.
const (
	PTE Level = iota // page table entry: maps 4 KiB
	PMD              // page middle directory entry: 2 MiB
	PUD              // page upper directory entry: 1 GiB
	P4D              // page level-4 directory entry: 512 GiB (5-level only)
	PGD              // page global directory entry: the top level

	// NoLevel marks an error or a result that is not tied to a level.
	NoLevel Level = -1
)

var levelNames = [...]string{"pte", "pmd", "pud", "p4d", "pgd"}

// String returns the Linux name: pte, pmd, pud, p4d or pgd.
func (l Level) String() string {
	if l >= PTE && l <= PGD {
		return levelNames[l]
	}
	return "-"
}

// Mode is a paging mode. It is a value held by an address space, never a
// global: both modes work on every host.
type Mode uint8

// The paging modes of x86-64 (SDM Vol. 3A 4.1.1).
const (
	Mode4Level Mode = 4 // CR4.LA57 = 0: 48-bit linear addresses
	Mode5Level Mode = 5 // CR4.LA57 = 1: 57-bit linear addresses
)

const (
	pageShift    = 12 // log2 of 4 KiB
	levelBits    = 9  // index bits a level decodes
	entriesPerPT = 1 << levelBits
	entrySize    = 8 // bytes in an entry
	// MaxLevels is the deepest walk, in 5-level mode.
	MaxLevels = 5
)

// Valid reports whether m is Mode4Level or Mode5Level.
func (m Mode) Valid() bool { return m == Mode4Level || m == Mode5Level }

func (m Mode) mustValid() {
	if !m.Valid() {
		panic(fmt.Sprintf("mm: invalid paging mode %d", uint8(m)))
	}
}

// Levels returns the number of levels walked: 4 or 5.
func (m Mode) Levels() int { return int(m) }

// VABits returns the width of a linear address: 48 or 57.
func (m Mode) VABits() uint { return pageShift + levelBits*uint(m) }

// String returns "4-level" or "5-level".
func (m Mode) String() string {
	switch m {
	case Mode4Level:
		return "4-level"
	case Mode5Level:
		return "5-level"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// Canonical reports whether va is canonical in mode m: bits 63 down to
// VABits-1 all equal (SDM Vol. 1 3.3.7.1).
func (m Mode) Canonical(va VirtAddr) bool {
	shift := 64 - m.VABits()
	return VirtAddr(int64(va<<shift)>>shift) == va
}

// UserEnd returns the end of the lower canonical half (exclusive).
func (m Mode) UserEnd() VirtAddr { return VirtAddr(1) << (m.VABits() - 1) }

// KernelStart returns the start of the upper canonical half.
func (m Mode) KernelStart() VirtAddr { return ^VirtAddr(0) << (m.VABits() - 1) }

// Top returns the top level, PGD in both modes.
func (m Mode) Top() Level { return PGD }

// Has reports whether level l exists in mode m (P4D is folded in 4-level
// mode).
func (m Mode) Has(l Level) bool {
	return l >= PTE && l <= PGD && (l != P4D || m == Mode5Level)
}

// height returns how many levels lie below l in mode m: 0 for a pte.
func (m Mode) height(l Level) int {
	if l == PGD {
		return int(m) - 1
	}
	return int(l)
}

// levelAt is the inverse of height.
func (m Mode) levelAt(h int) Level {
	if h == int(m)-1 {
		return PGD
	}
	return Level(h)
}

// Shift returns log2 of the bytes one entry at level l maps.
//
// Precondition: m.Has(l).
func (m Mode) Shift(l Level) uint { return pageShift + levelBits*uint(m.height(l)) }

// EntrySpan returns the bytes one entry at level l maps.
//
// Precondition: m.Has(l).
func (m Mode) EntrySpan(l Level) uint64 { return 1 << m.Shift(l) }

// Index returns the index of va in the table at level l.
//
// Precondition: m.Has(l).
func (m Mode) Index(va VirtAddr, l Level) int {
	return int(uint64(va)>>m.Shift(l)) & (entriesPerPT - 1)
}

// Below returns the level under l (P4D is skipped in 4-level mode), or
// NoLevel under PTE.
func (m Mode) Below(l Level) Level {
	if l == PTE {
		return NoLevel
	}
	return m.levelAt(m.height(l) - 1)
}

// shiftH returns the shift of height h.
func shiftH(h int) uint { return pageShift + levelBits*uint(h) }

// signExtend makes a canonical address of a raw VABits-wide value.
func (m Mode) signExtend(va VirtAddr) VirtAddr {
	shift := 64 - m.VABits()
	return VirtAddr(int64(va<<shift) >> shift)
}
