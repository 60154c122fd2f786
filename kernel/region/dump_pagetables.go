package region

import (
	"fmt"
	"strings"

	"github.com/physmap/physmap/mm"
)

// Audit runs the whole-table audits on the live tables: mm's structural
// checker, and the W+X audit Linux runs with CONFIG_DEBUG_WX
// (arch/x86/mm/dump_pagetables.c: ptdump_walk_pgd_level_checkwx).
type Audit struct {
	// WXLines are the audit's lines, Linux's wording, for the report.
	WXLines []string
}

func (*Audit) Populate(*Space) error { return nil }

func (*Audit) Inject(_ *Space, name string) error {
	return fmt.Errorf("audit: no injection %q", name)
}

func (a *Audit) Prove(p *Proof) {
	opt := mm.CheckOptions{
		PhysBits: p.Ref.PhysBits,
		Owns:     p.Act.Tables.Owns,
		Aliases:  []mm.VirtRange{{Start: mm.VirtAddr(p.Ref.Window.Start), End: mm.VirtAddr(p.Ref.Window.End)}},
		Layout:   p.Ref.Spec,
	}
	// espfix shares its pmd and pte pages among its clone entries on
	// purpose (init_espfix_ap).
	esp := p.spec(mm.KindESPFix)
	opt.Shared = []mm.VirtRange{{Start: esp.Start, End: esp.Start.Add(esp.Size)}}
	if p.Bases.PageOffsetErr == nil {
		// The direct map maps every frame, table frames included.
		opt.Aliases = append(opt.Aliases, mm.VirtRange{Start: p.Bases.PageOffset, End: p.Bases.PageOffset.Add(uint64(maxRAM(p.Ref.RAM)))})
	}
	if ps := mm.Problems(p.Live, opt); len(ps) > 0 {
		// One line: the first problems, and how many there are.
		const shown = 2
		var parts []string
		for _, pr := range ps[:min(shown, len(ps))] {
			parts = append(parts, pr.Error())
		}
		more := ""
		if len(ps) > shown {
			more = fmt.Sprintf("; and %d more", len(ps)-shown)
		}
		fail(p.R, "mm.check", "%d problems: %s%s", len(ps), strings.Join(parts, "; "), more)
	} else {
		pass(p.R, "mm.check", "%d table pages: reserved bits clear, huge pages aligned, no table shared or mapped outside the aliases, all owned, no W+X leaf", p.Live.TablePages())
	}
	guard := p.spec(mm.KindGuardHole)
	half := mm.VirtRange{Start: guard.Start, End: mm.VirtAddr(^uint64(0) &^ (page - 1))}
	wx := mm.WXPages(p.Live, half)
	low := mm.WXPages(p.Live, mm.VirtRange{Start: mm.VirtAddr(p.Ref.Window.Start), End: mm.VirtAddr(p.Ref.Window.End)})
	a.WXLines = []string{mm.WXReport(wx), fmt.Sprintf("physmap: low window %v: %s", p.Ref.Window, mm.WXReport(low))}
	p.R.Check("wx", wx == 0 && low == 0, "%d W+X pages in the kernel half %v, %d in the low window", wx, half, low)
}
