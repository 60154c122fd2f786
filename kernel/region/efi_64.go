package region

import (
	"fmt"

	"github.com/physmap/physmap/mm"
)

// EFIRegion is the EFI region mapping space, where efi_map_region
// (arch/x86/platform/efi/efi_64.c) maps the EFI runtime services. QEMU's
// microvm boots physmap by PVH, with no EFI, so Linux would map nothing
// there either.
type EFIRegion struct{}

func (EFIRegion) Populate(*Space) error { return nil }

func (EFIRegion) Inject(s *Space, name string) error {
	if name != "efi-mapped" {
		return fmt.Errorf("EFI region: no injection %q", name)
	}
	return mapScratch(s, s.region(mm.KindEFI).Start)
}

func (EFIRegion) Prove(p *Proof) {
	e := p.spec(mm.KindEFI)
	if err := noLeaves(p.Live, e); err != nil {
		fail(p.R, "region.efi", "%v", err)
		return
	}
	pass(p.R, "region.efi", "EFI region %v-%v empty: no EFI runtime services on a PVH boot", e.Start, e.Last())
}
