package region

import (
	"math/rand/v2"
	"testing"

	"github.com/physmap/physmap/mm"
)

// TestPokingAddr holds poking_init's choice to its rules in both modes:
// TASK_UNMAPPED_BASE = PAGE_ALIGN(((1 << 47) - 4096) / 3) without
// randomization, otherwise a page-aligned address from there up to three
// pages below TASK_SIZE whose next page shares its pmd.
func TestPokingAddr(t *testing.T) {
	if got := taskUnmappedBase(); got != 0x2aaaaaaab000 {
		t.Errorf("TASK_UNMAPPED_BASE = %v", got)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, mode := range []mm.Mode{mm.Mode4Level, mm.Mode5Level} {
		if got := pokingAddr(mode, false, rng.Uint64()); got != 0x2aaaaaaab000 {
			t.Errorf("%v: fixed poking_addr %v", mode, got)
		}
		high := false
		for range 10000 {
			va := pokingAddr(mode, true, rng.Uint64())
			if err := pokingAddrValid(mode, va, true); err != nil {
				t.Fatalf("%v: %v", mode, err)
			}
			if !mode.Canonical(va) || !mode.Canonical(va.Add(2*page-1)) || va.Add(2*page) > mode.UserEnd() {
				t.Fatalf("%v: poking_addr %v and its next page are not user addresses", mode, va)
			}
			high = high || va >= 1<<47
		}
		if high != (mode == mm.Mode5Level) {
			t.Errorf("%v: addresses above 2^47 drawn: %v (TASK_SIZE is 2^56 only with 5-level paging)", mode, high)
		}
		// The last page of a pmd moves to the next: both pages then share one.
		edge := mm.VirtAddr(0x2aaaaaa00000 + 0x200000 - 0x1000)
		r := uint64(edge - taskUnmappedBase())
		if got := pokingAddr(mode, true, r); got != edge.Add(page) {
			t.Errorf("%v: poking_addr %v for the pmd's last page, want %v", mode, got, edge.Add(page))
		}
	}
	if err := pokingAddrValid(mm.Mode4Level, mm.VirtAddr(0x2aaaaaaab000+page), false); err == nil {
		t.Error("a moved poking_addr accepted without randomization")
	}
}
