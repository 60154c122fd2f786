// Package mm builds and inspects x86-64 page tables for 4- and 5-level
// paging, and describes the Linux x86-64 kernel address space as data.
//
// It is plain Go on the standard library: it executes no privileged
// instruction and never dereferences a physical address itself. Table memory
// is reached through a [PhysMem], frames come from a [FrameAllocator] and
// stale translations are dropped through a [TLB], all passed in, so the same
// code runs in the kernel on the real MMU and in `go test` on any host
// against a simulated memory ([SparseMem]).
//
// # Levels
//
// Code uses Linux's names for the levels. This is the one table that maps
// them to Intel's (SDM Vol. 3A 4.5):
//
//	Linux  Intel, 4-level  Intel, 5-level  one entry maps         leaf
//	pgd    PML4            PML5            512 GiB / 256 TiB (5)  never
//	p4d    (folded)        PML4            512 GiB                never
//	pud    PDPT            PDPT            1 GiB                  if PS (Page1GB)
//	pmd    PD              PD              2 MiB                  if PS
//	pte    PT              PT              4 KiB                  always
//
// In 4-level mode the p4d is folded as in Linux: the pgd is the PML4, and
// [Mode.Below] goes from PGD straight to PUD. The paging mode is a value
// ([Mode4Level], [Mode5Level]) held by each [AddressSpace], never a global,
// so both modes are tested on every host whether or not its CPU has LA57.
//
// # Pieces
//
//   - [PhysAddr], [VirtAddr], [PhysRange], [VirtRange], [PageSize]: distinct
//     address types and half-open ranges.
//   - [Entry]: the hardware entry format, with [Entry.Reserved] and
//     [Entry.Decode]; [Attr] is the permission and caching part of a leaf.
//   - [AddressSpace]: [AddressSpace.Map], [AddressSpace.Unmap],
//     [AddressSpace.Protect], [AddressSpace.Translate] and leaf iteration.
//     [Open] gives a read-only view of live tables (from CR3). A failed
//     translation's error holds a [WalkError] with the walk as far as it
//     went.
//   - One range walker (walk.go) under all of them, Check and Ptdump
//     included, with a small visitor per operation, after the design of
//     gVisor's pkg/ring0/pagetables: it descends the tables over a range
//     and the visitor rewrites entries, puts in new tables, splits huge
//     pages, has emptied tables freed or stops the walk. Every changed
//     entry that was present is invalidated before the operation returns.
//   - [Memblock]: a frame allocator over the firmware's RAM ranges.
//   - [Check]: structural invariants of any address space, W+X included.
//   - [Layout]: Linux's regions per mode, printable like mm.rst.
//   - [PlanDirectMap]: the leaves of Linux's direct map and the fewest
//     table pages they need.
//   - [Ptdump]: a dump in the format of Linux's
//     /sys/kernel/debug/page_tables/kernel.
//
// Effective permissions follow the hardware (SDM Vol. 3A 4.6): R/W and U/S
// are ANDed across the levels of a walk, XD is ORed. Tables this package
// creates are permissive (RW, no XD; U/S only above user mappings) so leaves
// decide.
package mm
