package region

import (
	"errors"
	"fmt"

	"github.com/physmap/physmap/mm"
)

// Vmalloc is one vmalloc(4 pages) (mm/vmalloc.c: __vmalloc_node_range): a
// vmap area at VMALLOC_START, vmalloc_base, as the first area allocated
// starts there, its pages mapped PAGE_KERNEL over frames alloc_pages gives
// one at a time (none adjacent here), followed by an unmapped guard page,
// as every vmap area is unless VM_NO_GUARD. The next area holds the TLB
// proof's page.
type Vmalloc struct {
	noFlush bool // the no-invlpg injection
}

// vmallocPages is the size of the area.
const vmallocPages = 4

// vmallocTag marks each page's first quadword with its index.
const vmallocTag = 0x636f_6c6c_616d_7600 // "\0vmalloc"

// tlbPageOffset is where the TLB proof's page lies: the next vmap area,
// after the first area and its guard page.
const tlbPageOffset = (vmallocPages + 1) * page

func (v *Vmalloc) Populate(s *Space) error {
	frames, err := s.Frames.AllocScattered(vmallocPages)
	if err != nil {
		return err
	}
	base := s.region(mm.KindVmalloc).Start
	for i, pa := range frames {
		lo := s.DirectVA(pa)
		if err := writeBytes(s.CPU, "a vmalloc frame", lo, zeroPage[:]); err != nil {
			return err
		}
		if err := write64(s.CPU, "a vmalloc tag", lo, vmallocTag|uint64(i)); err != nil {
			return err
		}
		if err := s.AS.Map(base.Add(uint64(i)*page), pa, page, mm.PageKernel, mm.Only(mm.Size4K)); err != nil {
			return err
		}
	}
	return nil
}

func (v *Vmalloc) Inject(s *Space, name string) error {
	switch name {
	case "vmalloc-guard-mapped":
		return mapScratch(s, s.region(mm.KindVmalloc).Start.Add(vmallocPages*page))
	case "no-invlpg":
		v.noFlush = true
		return nil
	case "vmalloc-misaligned":
		return mapScratch(s, s.region(mm.KindVmalloc).Start.Sub(page))
	}
	return fmt.Errorf("vmalloc: no injection %q", name)
}

func (v *Vmalloc) Prove(p *Proof) {
	p.proveVmalloc()
	p.proveTLB(v.noFlush)
}

// proveVmalloc: at vmalloc_base (mm.rst's without KASLR, else as found),
// vmallocPages pages, each a frame no other is adjacent to, also at
// page_offset_base+pa, tagged with its index through page_offset_base,
// written through; then an unmapped guard page.
func (p *Proof) proveVmalloc() {
	const name = "region.vmalloc"
	if p.Bases.VmallocErr != nil {
		fail(p.R, name, "%v", p.Bases.VmallocErr)
		return
	}
	base := p.Bases.Vmalloc
	if spec := p.spec(mm.KindVmalloc); !p.Ref.KASLR && base != spec.Start {
		fail(p.R, name, "the first vmalloc leaf is at %v, not at VMALLOC_START %v", base, spec.Start)
		return
	}
	var frames []mm.PhysAddr
	err := func() error {
		for i := range vmallocPages {
			va := base.Add(uint64(i) * page)
			what := fmt.Sprintf("vmalloc page %d", i)
			t, err := expectLeaf(p.Live, what, va, anyPA, mm.PageKernel)
			if err != nil {
				return err
			}
			for _, f := range frames {
				if t.PA == f.Add(page) || f == t.PA.Add(page) || f == t.PA {
					return fmt.Errorf("vmalloc frames %v and %v are adjacent or the same", f, t.PA)
				}
			}
			frames = append(frames, t.PA)
			if err := p.expectDirect(what, t.PA); err != nil {
				return err
			}
			got, err := read64(p.CPU, what, va)
			if err != nil {
				return err
			}
			if got != vmallocTag|uint64(i) {
				return fmt.Errorf("%s at %v reads %#x, not its tag %#x", what, va, got, vmallocTag|uint64(i))
			}
			if err := p.expectWriteThrough(what, va.Add(page/2), p.DirectVA(t.PA).Add(page/2)); err != nil {
				return err
			}
		}
		return p.expectUnmapped("the vmalloc guard page", base.Add(vmallocPages*page))
	}()
	if err != nil {
		fail(p.R, name, "%v", err)
		return
	}
	pass(p.R, name, "%d pages at vmalloc_base %v RW NX GLB over scattered frames %v, each also at page_offset_base+pa, tagged and written through; guard page %v unmapped",
		vmallocPages, base, frames, base.Add(vmallocPages*page))
}

// proveTLB maps a page at the next vmap area, reads it, remaps it to
// another frame and reads again: a forgotten invalidation leaves the old
// translation in the TLB. The expectation is the two values written.
func (p *Proof) proveTLB(noFlush bool) {
	const name = "tlb"
	s := p.Act
	va := s.region(mm.KindVmalloc).Start.Add(tlbPageOffset)
	a, errA := s.Tables.AllocFrame()
	b, errB := s.Tables.AllocFrame()
	if err := errors.Join(errA, errB); err != nil {
		fail(p.R, name, "scratch frames: %v", err)
		return
	}
	const va1, va2 = 0xaaaa_aaaa_aaaa_aaaa, 0xbbbb_bbbb_bbbb_bbbb
	s.Mem.Write64(a, va1)
	s.Mem.Write64(b, va2)
	err := s.AS.Map(va, a, page, mm.PageKernel, mm.Only(mm.Size4K))
	var first, second uint64
	if err == nil {
		first, err = read64(p.CPU, "the TLB page", va) // now in the TLB
	}
	if err == nil {
		s.TLB.Skip = noFlush
		err = errors.Join(s.AS.Unmap(va, page), s.AS.Map(va, b, page, mm.PageKernel, mm.Only(mm.Size4K)))
		s.TLB.Skip = false
		second, _ = read64(p.CPU, "the TLB page", va)
		err = errors.Join(err, s.AS.Unmap(va, page))
		s.TLB.InvalidatePage(va) // whatever the injection left
	}
	err = errors.Join(err, s.Tables.FreeFrame(a), s.Tables.FreeFrame(b))
	switch {
	case err != nil:
		fail(p.R, name, "%v", err)
	case first != va1 || second != va2:
		fail(p.R, name, "%v remapped from frame %v to %v, but the CPU read %#x then %#x: a stale TLB entry", va, a, b, first, uint64(second))
	default:
		pass(p.R, name, "%v remapped from frame %v to %v with INVLPG: the CPU read %#x then %#x", va, a, b, first, second)
	}
}
