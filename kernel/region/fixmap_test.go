package region

import (
	"testing"

	"github.com/physmap/physmap/mm"
)

// TestFixToVirt: the slots as fix_to_virt places them for Debian's 6.1,
// FIXADDR_TOP 0xffffffffff7ff000 and VSYSCALL_PAGE 511, so that
// FIX_APIC_BASE is slot 514 and FIX_IO_APIC_BASE_0 slot 515.
func TestFixToVirt(t *testing.T) {
	const vsyscallAddr = mm.VirtAddr(0xffffffffff600000) // VSYSCALL_ADDR, -10 MB
	if got := fixmapTop(vsyscallAddr); got != 0xffffffffff7ff000 {
		t.Errorf("FIXADDR_TOP = %v", got)
	}
	for _, tc := range []struct {
		idx  uint64
		want mm.VirtAddr
	}{
		{0, vsyscallAddr}, // VSYSCALL_PAGE itself
		{fixDbgpBase, 0xffffffffff7ff000 - 512*0x1000},
		{fixEarlyconMemBase, 0xffffffffff7ff000 - 513*0x1000},
		{fixAPICBase, 0xffffffffff5fd000},
		{fixIOAPICBase0, 0xffffffffff5fc000},
	} {
		if got := fixToVirt(vsyscallAddr, tc.idx); got != tc.want {
			t.Errorf("fix_to_virt(VSYSCALL_PAGE+%d) = %v, want %v", tc.idx, got, tc.want)
		}
	}
}

// patCPU answers RDMSR of IA32_PAT; nothing else is called.
type patCPU struct {
	CPU
	pat uint64
}

func (c patCPU) ReadMSR(msr uint32) uint64 {
	if msr != msrIA32PAT {
		panic("unexpected MSR")
	}
	return c.pat
}

// TestPATType: the memory types ioremap's and set_fixmap_nocache's bits
// select, with the CPU's power-up PAT and with the one Linux's pat_bp_init
// writes.
func TestPATType(t *testing.T) {
	for name, pat := range map[string]uint64{
		"reset": 0x0007_0406_0007_0406, // WB WT UC- UC, twice (SDM Vol. 3A 12.12.4)
		"linux": 0x0407_0506_0007_0106, // WB WC UC- UC WB WP UC- WT
	} {
		c := patCPU{pat: pat}
		if got, i := patType(c, ioremapPerm|ioremapCache); got != memUCMinus || i != 2 {
			t.Errorf("%s PAT: ioremap's bits select entry %d, %v; want 2, UC-", name, i, got)
		}
		if got, i := patType(c, fixmapPerm|fixmapCache); got != memUC || i != 3 {
			t.Errorf("%s PAT: set_fixmap_nocache's bits select entry %d, %v; want 3, UC", name, i, got)
		}
		if got, _ := patType(c, mm.PageKernel); got != 6 {
			t.Errorf("%s PAT: PAGE_KERNEL selects %v, want WB", name, got)
		}
	}
}
