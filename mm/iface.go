package mm

// PhysMem reaches physical memory. The kernel implements it over its own
// mapping of RAM (identity or direct map); tests use [SparseMem], whose
// addresses are not host pointers.
type PhysMem interface {
	// Read64 returns the little-endian uint64 at pa (8-byte aligned).
	Read64(pa PhysAddr) uint64
	// Write64 stores v at pa (8-byte aligned).
	Write64(pa PhysAddr, v uint64)
	// ZeroFrame clears the 4 KiB frame at pa (4 KiB aligned).
	ZeroFrame(pa PhysAddr)
}

// FrameViewer is what a PhysMem can add to show the walker a table page
// in place. Walks read a table's entries through it with a plain load each
// instead of a call through PhysMem each: most of what a walk of espfix's
// clones does is read entries, 16 of them per leaf, nearly all empty.
// [SparseMem] implements it; a PhysMem without it is read entry by entry.
type FrameViewer interface {
	// ViewFrame returns the 4 KiB frame at pa (4 KiB aligned) as the
	// memory itself, not a copy: what Read64 and Write64 read and write,
	// now and later. The caller only reads through it. It returns nil
	// when it cannot show the frame so (the caller then uses Read64,
	// which does what it does for such a frame, e.g. panic).
	ViewFrame(pa PhysAddr) *[entriesPerPT]uint64
}

// FrameAllocator hands out 4 KiB frames for page tables.
type FrameAllocator interface {
	// AllocFrame returns a free 4 KiB frame, or an error wrapping ErrNoMemory.
	AllocFrame() (PhysAddr, error)
	// FreeFrame returns a frame obtained from AllocFrame.
	FreeFrame(pa PhysAddr) error
}

// TLB invalidates cached translations of the address space being changed.
// An address space that is not live (not in CR3 of any CPU) may use
// [NopTLB].
type TLB interface {
	// InvalidatePage drops the translation of the page holding va, and the
	// paging-structure caches for it (INVLPG, SDM Vol. 3A 4.10.4.1).
	InvalidatePage(va VirtAddr)
	// FlushAll drops every translation, global ones included, and all
	// paging-structure caches (toggle CR4.PGE, or reload CR3 if nothing
	// is global).
	FlushAll()
}

// NopTLB is a TLB for address spaces that no CPU uses yet.
var NopTLB TLB = nopTLB{}

type nopTLB struct{}

func (nopTLB) InvalidatePage(VirtAddr) {}
func (nopTLB) FlushAll()               {}
