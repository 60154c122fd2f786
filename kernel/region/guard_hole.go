package region

import (
	"fmt"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/mm"
)

// GuardHole is the guard hole at the start of the kernel half
// (GUARD_HOLE_BASE_ADDR, arch/x86/include/asm/pgtable_64_types.h), which
// Linux never maps: it is reserved for a hypervisor.
type GuardHole struct{}

func (GuardHole) Populate(*Space) error { return nil }

func (GuardHole) Inject(s *Space, name string) error {
	if name != "guard-mapped" {
		return fmt.Errorf("guard hole: no injection %q", name)
	}
	return mapScratch(s, s.region(mm.KindGuardHole).Start)
}

// mapScratch maps a fresh RAM frame at va, RW+NX.
func mapScratch(s *Space, va mm.VirtAddr) error {
	pa, err := s.Frames.AllocFrame()
	if err != nil {
		return err
	}
	return s.AS.Map(va, pa, page, mm.PageKernel, mm.Only(mm.Size4K))
}

// Prove checks region.guard (no leaf there: mm.rst) and fault.guard (a
// read faults as not present: the CPU's error code).
func (GuardHole) Prove(p *Proof) {
	g := p.spec(mm.KindGuardHole)
	if err := noLeaves(p.Live, g); err != nil {
		fail(p.R, "region.guard", "%v", err)
	} else {
		pass(p.R, "region.guard", "no leaf in the guard hole %v-%v (%s)", g.Start, g.Last(), humanSize(g.Size))
	}
	var b [8]byte
	_, f := p.CPU.Read(g.Start, b[:])
	what := fmt.Sprintf("reading the guard hole at %v", g.Start)
	switch err := expectFault(what, f, 0); {
	case err != nil:
		fail(p.R, "fault.guard", "%v", err)
	case f.Code&amd64.PF_P != 0:
		fail(p.R, "fault.guard", "%s faulted on a present page (%v)", what, f.Code)
	default:
		pass(p.R, "fault.guard", "%s: #PF cr2=%#x code=%#x (%v)", what, f.CR2, uint64(f.Code), f.Code)
	}
}
