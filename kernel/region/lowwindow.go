package region

import (
	"fmt"

	"github.com/physmap/physmap/mm"
)

// LowWindow is physmap's one departure from Linux: TamaGo links the kernel
// at its physical address and runs it there, so the runtime's own window
// (image, heap, stacks) stays identity mapped after the switch, its code
// RO+X, its read-only data RO+NX and everything else RW+NX, not global.
// Linux keeps an identity map only while booting (head_64.S's
// early_top_pgt, dropped by init_mem_mapping's switch to init_top_pgt). The
// page tables live in this window too, so an injection that breaks the
// direct map cannot cut physmap off from its own tables. It has no check of
// its own: walk.image proves the image's identity pages and wx audits the
// whole window.
type LowWindow struct{}

func (LowWindow) Populate(s *Space) error { return mapWindow(s.AS, s) }

// mapWindow maps the runtime's window into as, supervisor-only: the
// kernel's tables, and every process's, whose kernel code runs from it.
func mapWindow(as *mm.AddressSpace, s *Space) error {
	im := s.Image
	for _, sec := range []struct {
		r     mm.PhysRange
		attrs mm.Attr
	}{
		{mm.PhysRange{Start: s.Window.Start, End: im.Text.Start}, mm.AttrWrite | mm.AttrNX},
		{im.Text, 0},
		{im.Rodata, mm.AttrNX},
		{mm.PhysRange{Start: im.Data.Start, End: s.Window.End}, mm.AttrWrite | mm.AttrNX},
	} {
		if sec.r.Empty() {
			continue
		}
		if err := as.Map(mm.VirtAddr(sec.r.Start), sec.r.Start, sec.r.Len(), sec.attrs, imagePageSizes()); err != nil {
			return fmt.Errorf("low window %v: %w", sec.r, err)
		}
	}
	return nil
}

func (LowWindow) Prove(*Proof) {}

func (LowWindow) Inject(_ *Space, name string) error {
	return fmt.Errorf("low window: no injection %q", name)
}
