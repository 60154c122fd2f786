package mm

import "fmt"

// PhysAddr is a physical address. It is never a pointer of the program that
// holds it: reach the memory behind it through a [PhysMem].
type PhysAddr uint64

// VirtAddr is a linear (virtual) address in the address space being built or
// inspected, which is not necessarily the one the program runs in.
type VirtAddr uint64

// Add returns a+n. It wraps like the hardware does.
func (a PhysAddr) Add(n uint64) PhysAddr { return a + PhysAddr(n) }

// AlignDown rounds a down to a multiple of align.
//
// Precondition: align is a power of two.
func (a PhysAddr) AlignDown(align uint64) PhysAddr { return a &^ PhysAddr(align-1) }

// AlignUp rounds a up to a multiple of align; it wraps to 0 past the top.
//
// Precondition: align is a power of two.
func (a PhysAddr) AlignUp(align uint64) PhysAddr {
	return (a + PhysAddr(align-1)) &^ PhysAddr(align-1)
}

// IsAligned reports whether a is a multiple of align.
//
// Precondition: align is a power of two.
func (a PhysAddr) IsAligned(align uint64) bool { return uint64(a)&(align-1) == 0 }

// String formats a as %#x.
func (a PhysAddr) String() string { return fmt.Sprintf("%#x", uint64(a)) }

// Add returns a+n. It wraps like the hardware does.
func (a VirtAddr) Add(n uint64) VirtAddr { return a + VirtAddr(n) }

// Sub returns a-n.
func (a VirtAddr) Sub(n uint64) VirtAddr { return a - VirtAddr(n) }

// AlignDown rounds a down to a multiple of align.
//
// Precondition: align is a power of two.
func (a VirtAddr) AlignDown(align uint64) VirtAddr { return a &^ VirtAddr(align-1) }

// AlignUp rounds a up to a multiple of align; it wraps to 0 past the top.
//
// Precondition: align is a power of two.
func (a VirtAddr) AlignUp(align uint64) VirtAddr {
	return (a + VirtAddr(align-1)) &^ VirtAddr(align-1)
}

// IsAligned reports whether a is a multiple of align.
//
// Precondition: align is a power of two.
func (a VirtAddr) IsAligned(align uint64) bool { return uint64(a)&(align-1) == 0 }

// String formats a as %#x.
func (a VirtAddr) String() string { return fmt.Sprintf("%#x", uint64(a)) }

// PhysRange is the half-open physical range [Start, End).
type PhysRange struct {
	Start, End PhysAddr
}

// Len returns End-Start, or 0 for an empty or inverted range.
func (r PhysRange) Len() uint64 {
	if r.End <= r.Start {
		return 0
	}
	return uint64(r.End - r.Start)
}

// Empty reports whether r holds no address.
func (r PhysRange) Empty() bool { return r.End <= r.Start }

// Contains reports whether a lies in r.
func (r PhysRange) Contains(a PhysAddr) bool { return a >= r.Start && a < r.End }

// Overlaps reports whether r and o share an address.
func (r PhysRange) Overlaps(o PhysRange) bool {
	return !r.Empty() && !o.Empty() && r.Start < o.End && o.Start < r.End
}

// String formats r as [%#x, %#x).
func (r PhysRange) String() string {
	return fmt.Sprintf("[%#x, %#x)", uint64(r.Start), uint64(r.End))
}

// VirtRange is the half-open virtual range [Start, End). A range cannot
// reach the very top of the 64-bit space; walks of the whole space use
// [AddressSpace.AllLeaves] instead.
type VirtRange struct {
	Start, End VirtAddr
}

// Len returns End-Start, or 0 for an empty or inverted range.
func (r VirtRange) Len() uint64 {
	if r.End <= r.Start {
		return 0
	}
	return uint64(r.End - r.Start)
}

// Empty reports whether r holds no address.
func (r VirtRange) Empty() bool { return r.End <= r.Start }

// Contains reports whether a lies in r.
func (r VirtRange) Contains(a VirtAddr) bool { return a >= r.Start && a < r.End }

// Overlaps reports whether r and o share an address.
func (r VirtRange) Overlaps(o VirtRange) bool {
	return !r.Empty() && !o.Empty() && r.Start < o.End && o.Start < r.End
}

// String formats r as [%#x, %#x).
func (r VirtRange) String() string {
	return fmt.Sprintf("[%#x, %#x)", uint64(r.Start), uint64(r.End))
}

// PageSize is the size of a page a leaf entry maps.
type PageSize uint64

// The page sizes of x86-64 paging (SDM Vol. 3A 4.5).
const (
	Size4K PageSize = 1 << 12 // mapped by a pte
	Size2M PageSize = 1 << 21 // mapped by a pmd with PS set
	Size1G PageSize = 1 << 30 // mapped by a pud with PS set; needs CPUID Page1GB
)

// Level returns the level whose leaf entries map pages of size s.
//
// Precondition: s is Size4K, Size2M or Size1G.
func (s PageSize) Level() Level {
	switch s {
	case Size4K:
		return PTE
	case Size2M:
		return PMD
	case Size1G:
		return PUD
	}
	panic("mm: not a page size: " + fmt.Sprint(uint64(s)))
}

// String returns 4K, 2M or 1G (other values print in bytes).
func (s PageSize) String() string {
	switch s {
	case Size4K:
		return "4K"
	case Size2M:
		return "2M"
	case Size1G:
		return "1G"
	}
	return fmt.Sprintf("%dB", uint64(s))
}

// PageSizes is a set of page sizes a mapping may use.
type PageSizes uint8

// Members of [PageSizes].
const (
	Allow4K  PageSizes = 1 << iota // 4 KiB ptes
	Allow2M                        // 2 MiB pmd leaves
	Allow1G                        // 1 GiB pud leaves (CPUID Page1GB)
	AllowAll = Allow4K | Allow2M | Allow1G
)

// Has reports whether s contains the page size ps.
func (s PageSizes) Has(ps PageSize) bool {
	switch ps {
	case Size4K:
		return s&Allow4K != 0
	case Size2M:
		return s&Allow2M != 0
	case Size1G:
		return s&Allow1G != 0
	}
	return false
}

// Only returns the set holding only ps.
//
// Precondition: ps is Size4K, Size2M or Size1G.
func Only(ps PageSize) PageSizes {
	return PageSizes(1) << uint(ps.Level())
}
