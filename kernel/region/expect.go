package region

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/mm"
)

// canary is written through one alias and read back through another.
const canary = 0x5048_5953_4d41_5021 // "!PAMSYHP"

// permMask is the part of the effective attributes the proofs compare:
// what a mapping allows and whether it is global.
const permMask = mm.AttrWrite | mm.AttrUser | mm.AttrNX | mm.AttrGlobal

// anyPA tells expectLeaf not to compare the frame.
const anyPA = ^mm.PhysAddr(0)

// expectLeaf checks, on the live tables, that va maps pa (unless anyPA)
// with exactly the permissions want.
func expectLeaf(live *mm.AddressSpace, what string, va mm.VirtAddr, pa mm.PhysAddr, want mm.Attr) (mm.Translation, error) {
	t, err := live.Translate(va)
	if err != nil {
		return t, fmt.Errorf("%s at %v: %w", what, va, err)
	}
	if pa != anyPA && t.PA != pa {
		return t, fmt.Errorf("%s at %v maps %v, want %v", what, va, t.PA, pa)
	}
	if got := t.Attrs & permMask; got != want {
		return t, fmt.Errorf("%s at %v is %v, want %v", what, va, got, want)
	}
	return t, nil
}

// expectLeaf is expectLeaf on the live tables, with G expected as Linux
// 6.1 leaves it under pti=on: off in every kernel mapping
// (probe_page_size_mask clears _PAGE_GLOBAL from
// __default_kernel_pte_mask) but the cpu_entry_area's (cea_set_pte) and
// the leaves that hold the entry text (pti_clone_pgtable).
func (p *Proof) expectLeaf(what string, va mm.VirtAddr, pa mm.PhysAddr, want mm.Attr) (mm.Translation, error) {
	if p.Ref.Config.PTI && want&mm.AttrGlobal != 0 {
		if t, err := p.Live.Translate(va); err == nil && !p.ptiGlobal(va.AlignDown(uint64(t.Size)), t.Size) {
			want &^= mm.AttrGlobal
		}
	}
	return expectLeaf(p.Live, what, va, pa, want)
}

// ptiGlobal says whether the leaf at va of size sz stays global under PTI:
// it is in the cpu_entry_area or holds part of the entry text, whose
// frames come from the linker's symbols.
func (p *Proof) ptiGlobal(va mm.VirtAddr, sz mm.PageSize) bool {
	cea := p.spec(mm.KindCPUEntryArea)
	if va >= cea.Start && va <= cea.Last() {
		return true
	}
	et := p.Ref.Image.EntryText
	text := mm.VirtRange{Start: p.KernelVA(et.Start), End: p.KernelVA(et.End)}
	return !et.Empty() && text.Overlaps(mm.VirtRange{Start: va, End: va.Add(uint64(sz))})
}

// expectDirect checks that the frame at pa is reachable at
// page_offset_base+pa.
func (p *Proof) expectDirect(what string, pa mm.PhysAddr) error {
	if p.Bases.PageOffsetErr != nil {
		return p.Bases.PageOffsetErr
	}
	d, err := p.Live.Translate(p.DirectVA(pa))
	if err != nil || d.PA != pa {
		return fmt.Errorf("%s frame %v is not at page_offset_base+pa %v (%v)", what, pa, p.DirectVA(pa), err)
	}
	return nil
}

// expectUnmapped checks that va has no translation in the live tables and
// that reading it faults with a not-present page fault.
func (p *Proof) expectUnmapped(what string, va mm.VirtAddr) error {
	if t, err := p.Live.Translate(va); !errors.Is(err, mm.ErrNotMapped) {
		return fmt.Errorf("%s at %v is mapped (to %v)", what, va, t.PA)
	}
	var b [8]byte
	_, f := p.CPU.Read(va, b[:])
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
func (p *Proof) expectReadOnly(what string, va mm.VirtAddr) error {
	b, err := readBytes(p.CPU, what, va, 1)
	if err != nil {
		return err
	}
	_, f := p.CPU.Write(va, b)
	switch {
	case !f.Faulted:
		return fmt.Errorf("writing %s at %v did not fault: it is writable", what, va)
	case f.Code&(amd64.PF_P|amd64.PF_W) != amd64.PF_P|amd64.PF_W:
		return fmt.Errorf("writing %s at %v faulted with %v, want a write to a present page", what, va, f.Code)
	}
	return nil
}

// expectWriteThrough writes a canary at va, reads it back at other (another
// alias of the same frame), and restores what was there, whether or not
// other could be read.
func (p *Proof) expectWriteThrough(what string, va, other mm.VirtAddr) error {
	old, err := read64(p.CPU, what, va)
	if err != nil {
		return err
	}
	if err := write64(p.CPU, what, va, canary); err != nil {
		return err
	}
	got, err := read64(p.CPU, what+"'s alias", other)
	if err2 := write64(p.CPU, what, va, old); err == nil {
		err = err2
	}
	if err != nil {
		return err
	}
	if got != canary {
		return fmt.Errorf("%s: canary %#x written at %v, read %#x at %v", what, uint64(canary), va, got, other)
	}
	return nil
}

// sameBytes compares n bytes at two addresses.
func (p *Proof) sameBytes(what string, a, b mm.VirtAddr, n int) error {
	x, err := readBytes(p.CPU, what, a, n)
	if err != nil {
		return err
	}
	y, err := readBytes(p.CPU, what, b, n)
	if err != nil {
		return err
	}
	if !bytes.Equal(x, y) {
		i := 0
		for x[i] == y[i] {
			i++
		}
		return fmt.Errorf("%s: %v reads %#02x at offset %#x, %v reads %#02x", what, a, x[i], i, b, y[i])
	}
	return nil
}

// noLeaves checks that the live tables map nothing in reg.
func noLeaves(live *mm.AddressSpace, reg mm.Region) error {
	for lf := range live.Leaves(mm.VirtRange{Start: reg.Start, End: reg.Last()}) {
		return fmt.Errorf("a %v leaf at %v maps %v in %s %v-%v", lf.Size, lf.VA, lf.PA, reg.Name, reg.Start, reg.Last())
	}
	return nil
}

// expectFault checks that an access faulted with the wanted error-code
// bits set.
func expectFault(what string, f amd64.Fault, want amd64.PFError) error {
	if !f.Faulted {
		return fmt.Errorf("%s did not fault", what)
	}
	if f.Code&want != want {
		return fmt.Errorf("%s faulted with %v (code %#x), want bits %v", what, f.Code, uint64(f.Code), want)
	}
	return nil
}

// HumanSize prints a byte count in the largest binary unit that divides
// it, as mm.rst and Linux's tools name them (kB, MB, GB, TB, PB).
func HumanSize(n uint64) string {
	for _, u := range []struct {
		size uint64
		name string
	}{{mm.PB, "PB"}, {mm.TB, "TB"}, {mm.GB, "GB"}, {mm.MB, "MB"}, {1 << 10, "kB"}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d %s", n/u.size, u.name)
		}
	}
	if n >= 1<<60 {
		return fmt.Sprintf("~%.4g EB", float64(n)/float64(1<<60))
	}
	if n >= mm.TB {
		return fmt.Sprintf("%.1f TB", float64(n)/float64(mm.TB))
	}
	return fmt.Sprintf("%d B", n)
}

func humanSize(n uint64) string { return HumanSize(n) }
