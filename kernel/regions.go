//go:build tamago

package main

import (
	"errors"
	"fmt"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/mm"
)

// regions is what populateRegions built in the regions of the Linux table
// beyond the direct map, the kernel image and the module area, kept for
// the proofs and the fault injections.
type regions struct {
	// Frames come from kspace.frames, shared with the module; their
	// contents are written through the direct map, as Linux writes
	// through __va().
	ldt      ldtRemap
	vmalloc  vmallocArea
	vmemmap  vmemmap
	cea      cpuEntryArea
	espfix   espfixArea
	fix      fixmap
	vsyscall vsyscallPage
	// inject is a region injection that acts during the proofs rather
	// than on the tables (poke-no-flush).
	inject string
}

// populateRegions fills the regions of the Linux table beyond the direct
// map, the kernel image and the module area, each as Linux populates it.
// It runs with the tables live in CR3 and the module loaded.
func (k *kspace) populateRegions() error {
	k.reg = &regions{}
	for _, s := range []struct {
		name string
		fn   func() error
	}{
		{"LDT remap", k.populateLDT},
		{"vmalloc", k.populateVmalloc},
		{"vmemmap", k.populateVmemmap},
		{"cpu_entry_area", k.populateCEA},
		{"espfix", k.populateESPFix},
		{"fixmap", k.populateFixmap},
		{"vsyscall", k.populateVsyscall},
	} {
		if err := s.fn(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// proveRegions proves each populated region.
func (k *kspace) proveRegions(r *report, live *mm.AddressSpace) {
	if k.reg == nil {
		r.fail("region", "the regions were not populated")
		return
	}
	k.proveGuard(r, live)
	k.proveLDT(r, live)
	k.proveVmalloc(r, live)
	k.proveVmemmap(r, live)
	k.proveCEA(r, live)
	k.proveESPFix(r, live)
	k.proveEFI(r, live)
	k.proveTextPoke(r, live)
	k.proveVsyscall(r, live)
}

// injectRegion applies one of the regions' injections (live.go lists them).
func (k *kspace) injectRegion(name string) error {
	switch name {
	case "vmemmap-off-by-one":
		return k.injectVmemmapOffByOne()
	case "cpu-entry-gdt-writable":
		return k.as.Protect(k.reg.cea.gdt.va, k.reg.cea.gdt.size(), mm.PageKernel)
	case "vsyscall-no-user":
		return k.as.Protect(k.reg.vsyscall.va, page, mm.PageKernelRO)
	case "poke-no-flush":
		k.reg.inject = name
		return nil
	}
	return fmt.Errorf("%s is not a region injection", name)
}

// region returns the layout's region of kind kind; every layout has them all.
func (k *kspace) region(kind mm.RegionKind) mm.Region {
	r, ok := k.layout.Region(kind)
	if !ok {
		panic(fmt.Sprintf("layout has no region of kind %d", kind))
	}
	return r
}

// zeroFrame clears a frame through the direct map.
func (k *kspace) zeroFrame(pa mm.PhysAddr) {
	va := k.directVA(pa)
	for off := uint64(0); off < page; off += 8 {
		write64(va.Add(off), 0)
	}
}

// writeBytes copies b to va.
func writeBytes(va mm.VirtAddr, b []byte) {
	for i, c := range b {
		*(*byte)(ptrAt(va.Add(uint64(i)))) = c
	}
}

// permMask is the part of the effective attributes the region proofs
// compare: what a mapping allows and whether it is global.
const permMask = mm.AttrWrite | mm.AttrUser | mm.AttrNX | mm.AttrGlobal

// expectLeaf checks, on the live tables, that va maps pa (when pa is not
// noPA) with exactly the permissions want, and that the frame is also
// reachable at page_offset_base+pa when it is RAM.
func (k *kspace) expectLeaf(live *mm.AddressSpace, what string, va mm.VirtAddr, pa mm.PhysAddr, want mm.Attr) (mm.Translation, error) {
	t, err := live.Translate(va)
	if err != nil {
		return t, fmt.Errorf("%s at %v: %w", what, va, err)
	}
	if pa != noPA && t.PA != pa {
		return t, fmt.Errorf("%s at %v maps %v, want %v", what, va, t.PA, pa)
	}
	if got := t.Attrs & permMask; got != want {
		return t, fmt.Errorf("%s at %v is %v, want %v", what, va, got, want)
	}
	return t, nil
}

// noPA tells expectLeaf not to compare the frame.
const noPA = ^mm.PhysAddr(0)

// expectDirect checks that the frame at pa is reachable through the
// direct map, at page_offset_base+pa.
func expectDirect(k *kspace, live *mm.AddressSpace, what string, pa mm.PhysAddr) error {
	d, err := live.Translate(k.directVA(pa))
	if err != nil || d.PA != pa {
		return fmt.Errorf("%s frame %v is not at page_offset_base+pa %v (%v)", what, pa, k.directVA(pa), err)
	}
	return nil
}

// expectUnmapped checks that va has no translation in the live tables and
// that reading it faults with a not-present page fault.
func expectUnmapped(live *mm.AddressSpace, what string, va mm.VirtAddr) error {
	if t, err := live.Translate(va); !errors.Is(err, mm.ErrNotMapped) {
		return fmt.Errorf("%s at %v is mapped (to %v)", what, va, t.PA)
	}
	_, f := amd64.ProbeRead64(uint64(va))
	switch {
	case !f.Faulted:
		return fmt.Errorf("reading %s at %v did not fault", what, va)
	case f.Code&amd64.PF_P != 0:
		return fmt.Errorf("reading %s at %v faulted on a present page (%v)", what, va, f.Code)
	}
	return nil
}

// expectReadOnly checks that a write at va faults as a write to a present
// read-only page. It writes the byte already there, so a write that lands
// changes nothing.
func expectReadOnly(what string, va mm.VirtAddr) error {
	if _, err := probe(va.AlignDown(8)); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	b := *(*byte)(ptrAt(va))
	f := amd64.ProbeWrite8(uint64(va), b)
	switch {
	case !f.Faulted:
		return fmt.Errorf("writing %s at %v did not fault: the alias is writable", what, va)
	case f.Code&(amd64.PF_P|amd64.PF_W) != amd64.PF_P|amd64.PF_W:
		return fmt.Errorf("writing %s at %v faulted with %v, want a write to a present page", what, va, f.Code)
	}
	return nil
}

// noLeaves checks that the live tables map nothing in a region.
func noLeaves(live *mm.AddressSpace, reg mm.Region) error {
	for lf := range live.Leaves(mm.VirtRange{Start: reg.Start, End: reg.Last()}) {
		return fmt.Errorf("a %v leaf at %v maps %v in %s %v-%v", lf.Size, lf.VA, lf.PA, reg.Name, reg.Start, reg.Last())
	}
	return nil
}

// proveGuard checks that no leaf lies in the guard hole (fault.guard then
// shows an access there faults).
func (k *kspace) proveGuard(r *report, live *mm.AddressSpace) {
	g := k.region(mm.KindGuardHole)
	if err := noLeaves(live, g); err != nil {
		r.fail("region.guard", "%v", err)
		return
	}
	r.pass("region.guard", "no leaf in the guard hole %v-%v (%s)", g.Start, g.Last(), humanSize(g.Size))
}

// proveEFI checks that the EFI region is empty: physmap boots without
// EFI runtime services (QEMU microvm boots by PVH), so Linux would map
// nothing there either.
func (k *kspace) proveEFI(r *report, live *mm.AddressSpace) {
	e := k.region(mm.KindEFI)
	if err := noLeaves(live, e); err != nil {
		r.fail("region.efi", "%v", err)
		return
	}
	r.pass("region.efi", "EFI region %v-%v empty: no EFI runtime services on a PVH boot", e.Start, e.Last())
}
