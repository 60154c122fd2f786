//go:build tamago

package main

import (
	"unsafe"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/mm"
)

// physMem reaches physical memory through a linear mapping of it: virtual =
// physical + off. physmap's table frames lie in the runtime's window, which
// is identity mapped before and after the switch, so off is 0 (Linux uses
// the direct map, __va(); physmap keeps its tables reachable even when a
// fault injection breaks the direct map).
type physMem struct {
	off uint64
}

func (m *physMem) ptr(pa mm.PhysAddr) *uint64 {
	return (*uint64)(amd64.Ptr(uint64(pa) + m.off))
}

func (m *physMem) Read64(pa mm.PhysAddr) uint64     { return *m.ptr(pa) }
func (m *physMem) Write64(pa mm.PhysAddr, v uint64) { *m.ptr(pa) = v }

func (m *physMem) ZeroFrame(pa mm.PhysAddr) {
	p := (*[512]uint64)(unsafe.Pointer(m.ptr(pa)))
	clear(p[:])
}

// cpuTLB invalidates the running CPU's TLB (SDM Vol. 3A 4.10.4.1).
type cpuTLB struct{}

func (cpuTLB) InvalidatePage(va mm.VirtAddr) { amd64.Invlpg(uint64(va)) }

// FlushAll toggles CR4.PGE, which drops global entries too.
func (cpuTLB) FlushAll() {
	cr4 := amd64.ReadCR4()
	amd64.WriteCR4(cr4 &^ amd64.CR4_PGE)
	amd64.WriteCR4(cr4)
}

// skippingTLB drops invalidations while skip is set: the no-invlpg fault
// injection, to show the TLB check catches a forgotten invalidation.
type skippingTLB struct {
	mm.TLB
	skip bool
}

func (t *skippingTLB) InvalidatePage(va mm.VirtAddr) {
	if !t.skip {
		t.TLB.InvalidatePage(va)
	}
}

// read64 and write64 access a virtual address directly.
func read64(va mm.VirtAddr) uint64     { return *(*uint64)(ptrAt(va)) }
func write64(va mm.VirtAddr, v uint64) { *(*uint64)(ptrAt(va)) = v }

// ptrAt turns a virtual address into a pointer.
func ptrAt(va mm.VirtAddr) unsafe.Pointer { return amd64.Ptr(uint64(va)) }
