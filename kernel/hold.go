//go:build tamago

package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/physmap/physmap/boot"
	"github.com/physmap/physmap/kernel/dump"
	"github.com/physmap/physmap/kernel/region"
)

// dumpMM writes the JSON dump of the process physmap.mm names, as its
// tables are after the report (and the shell, if it ran), and returns the
// CR3 and the holdLoop address physmap.hold holds it with: the host's
// cross-check then reads, with QEMU's info tlb, the tables the process
// runs on, its user half and the kernel half it shares.
func (k *kernel) dumpMM(pid int) (cr3, pc uint64, err error) {
	u := region.Find[*region.User](k.space)
	if u == nil {
		return 0, 0, fmt.Errorf("no user region")
	}
	h, err := u.Held(k.space, pid)
	if err != nil {
		return 0, 0, err
	}
	runs := dump.Runs(h.AS, k.space.Layout)
	d := &dump.Dump{Mode: h.AS.Mode().Levels(), CR3: dump.Addr(h.AS.Root()),
		Regions: dump.RegionsOf(k.space.Layout), Runs: runs, Aliases: k.showAliases(io.Discard, runs),
		Process: &dump.Process{PID: pid, UserCopy: h.UserCopy}}
	for _, pg := range h.Proc.Pages {
		d.Process.Pages = append(d.Process.Pages, dump.Page{VA: dump.Addr(pg.VA), PA: dump.Addr(pg.PA), What: pg.What})
	}
	d.IDTR, d.GDTR, d.TR = descriptorRegs()
	if err := dump.Write(boot.Bulk, d); err != nil {
		return 0, 0, err
	}
	which := "its root"
	if h.UserCopy {
		which = "PTI's user copy"
	}
	fmt.Printf("physmap: JSON dump of process %d's address space (%s, %#x: %d runs) sent to the bulk channel (isa-debugcon, port %#x)\n",
		pid, which, uint64(h.AS.Root()), len(runs), boot.DEBUGCON_PORT)
	return uint64(h.AS.Root()), uint64(h.HoldPC), nil
}

// mmPID is physmap.mm's process, 0 for the kernel's address space.
func mmPID(mm string) int {
	n, _ := strconv.Atoi(mm) // the option's parser admits only 0, 1 and 2
	return n
}
