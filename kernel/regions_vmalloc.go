//go:build tamago

package main

import (
	"fmt"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/mm"
)

// vmallocPages is the size of physmap's vmalloc allocation.
const vmallocPages = 4

// vmallocArea is one vmalloc(4 pages): virtually contiguous at
// vmalloc_base, backed by frames no two of which are adjacent, mapped
// PAGE_KERNEL, followed by an unmapped guard page as every vmap area is
// (mm/vmalloc.c, unless VM_NO_GUARD). It starts two pages in: the tlb
// proof remaps the first page of vmalloc_base and the second is that
// page's guard.
type vmallocArea struct {
	va     mm.VirtAddr
	frames []mm.PhysAddr
}

// vmallocTag marks each page's first quadword with its index.
const vmallocTag = 0x636f_6c6c_616d_7600 // "\0vmalloc"

func (k *kspace) populateVmalloc() error {
	frames, err := k.frames.AllocScattered(vmallocPages)
	if err != nil {
		return err
	}
	v := &k.reg.vmalloc
	v.va, v.frames = k.region(mm.KindVmalloc).Start.Add(2*page), frames
	for i, pa := range frames {
		k.zeroFrame(pa)
		write64(k.directVA(pa), vmallocTag|uint64(i))
		if err := k.as.Map(v.va.Add(uint64(i)*page), pa, page, mm.PageKernel, mm.Only(mm.Size4K)); err != nil {
			return err
		}
	}
	return nil
}

func (k *kspace) proveVmalloc(r *report, live *mm.AddressSpace) {
	v := k.reg.vmalloc
	err := func() error {
		for i, pa := range v.frames {
			va := v.va.Add(uint64(i) * page)
			what := fmt.Sprintf("vmalloc page %d", i)
			if _, err := k.expectLeaf(live, what, va, pa, mm.PageKernel); err != nil {
				return err
			}
			if err := expectDirect(k, live, what, pa); err != nil {
				return err
			}
			if i > 0 && (pa == v.frames[i-1].Add(page) || v.frames[i-1] == pa.Add(page)) {
				return fmt.Errorf("vmalloc frames %v and %v are physically adjacent", v.frames[i-1], pa)
			}
			got, err := probe(va)
			if err != nil {
				return err
			}
			if got != vmallocTag|uint64(i) {
				return fmt.Errorf("%s at %v reads %#x, not the tag written through page_offset_base", what, va, got)
			}
			// Write-through: a canary in the middle of the page.
			hi, lo := va.Add(page/2), k.directVA(pa).Add(page/2)
			if f := amd64.ProbeWrite64(uint64(hi), canary); f.Faulted {
				return fmt.Errorf("writing %s at %v: %v", what, hi, f)
			}
			back := read64(lo)
			write64(hi, 0)
			if back != canary {
				return fmt.Errorf("canary written at %v read %#x at page_offset_base+pa %v", hi, back, lo)
			}
		}
		return expectUnmapped(live, "the vmalloc guard page", v.va.Add(vmallocPages*page))
	}()
	if err != nil {
		r.fail("region.vmalloc", "%v", err)
		return
	}
	r.pass("region.vmalloc", "%d pages at %v-%v RW NX GLB over scattered frames %v, each also at page_offset_base+pa, canaries written through; guard page %v unmapped",
		vmallocPages, v.va, v.va.Add(vmallocPages*page-1), v.frames, v.va.Add(vmallocPages*page))
}
