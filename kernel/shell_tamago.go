//go:build tamago

package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/boot"
	"github.com/physmap/physmap/kernel/dump"
	"github.com/physmap/physmap/kernel/region"
	"github.com/physmap/physmap/kernel/selftest"
	"github.com/physmap/physmap/kernel/shell"
	"github.com/physmap/physmap/mm"
)

// uartPoll is how long the console waits between two looks at an empty
// receive buffer: TamaGo has no UART interrupt, so reading is polling.
const uartPoll = 2 * time.Millisecond

// uartReader reads the serial console (COM1) a byte at a time, waiting for
// input.
type uartReader struct{}

func (uartReader) ReadByte() (byte, error) {
	for {
		if c, ok := boot.UART0.Rx(); ok {
			return c, nil
		}
		time.Sleep(uartPoll)
	}
}

// machine is the shell's view of the running kernel; k is nil when the
// layout was not built.
type machine struct {
	k *kernel
}

// Layout is the layout in force, or the documented one of the CPU's
// paging mode when none was built.
func (m machine) Layout() *mm.Layout {
	if m.k != nil {
		return m.k.space.Layout
	}
	mode := mm.Mode4Level
	if amd64.ReadCR4()&amd64.CR4_LA57 != 0 {
		mode = mm.Mode5Level
	}
	return mm.DefaultLayout(mode)
}

// Tables opens the tables in CR3, independently of the builder's
// bookkeeping, as the proofs do.
func (m machine) Tables() (*mm.AddressSpace, error) {
	if m.k == nil {
		return nil, fmt.Errorf("%w: physmap did not build its layout (see the FAIL lines above)", shell.ErrNoTables)
	}
	return m.k.live(), nil
}

func (m machine) PhysBits() uint {
	if m.k == nil {
		return 0
	}
	return m.k.physBits
}

// Read reads through the CPU a qword at a time with amd64.ProbeRead64, so a
// fault is caught and described instead of ending the machine. A qword is
// aligned, so it never straddles two pages: the first fault is at va+n.
func (m machine) Read(va mm.VirtAddr, p []byte) (int, error) {
	if m.k == nil {
		// Without the layout the fault handler may not be installed.
		return 0, fmt.Errorf("%w: physmap did not build its layout", shell.ErrNoTables)
	}
	n := 0
	for n < len(p) {
		a := va.Add(uint64(n))
		q := a.AlignDown(8)
		v, f := amd64.ProbeRead64(uint64(q))
		if f.Faulted {
			return n, fmt.Errorf("%v", f)
		}
		for sh := uint64(a-q) * 8; sh < 64 && n < len(p); sh += 8 {
			p[n] = byte(v >> sh)
			n++
		}
	}
	return n, nil
}

// ReadIn reads as Read does with CR3 at a process's root. Its kernel half
// is the kernel's top-level entries and the runtime's window is mapped in
// it, so this code runs on under it; user pages are read between STAC and
// CLAC where SMAP is on, as copy_from_user reads them.
func (m machine) ReadIn(root mm.PhysAddr, va mm.VirtAddr, p []byte) (int, error) {
	if m.k == nil {
		return 0, fmt.Errorf("%w: physmap did not build its layout", shell.ErrNoTables)
	}
	kernel := amd64.ReadCR3()
	amd64.WriteCR3(uint64(root))
	defer amd64.WriteCR3(kernel)
	if amd64.ReadCR4()&amd64.CR4_SMAP != 0 {
		amd64.Stac()
		defer amd64.Clac()
	}
	return m.Read(va, p)
}

// Regions prints the table the boot printed, from the live tables.
func (m machine) Regions(w io.Writer) error {
	as, err := m.Tables()
	if err != nil {
		return err
	}
	m.k.showLayout(w, dump.Runs(as, m.k.space.Layout))
	return nil
}

// Symbols returns the kernel image's bounds under Linux's names, at the
// addresses the live tables map them (from _text as found there), from the
// Go linker's symbols (page-aligned: the bounds the image is mapped with).
func (m machine) Symbols() []shell.Symbol {
	if m.k == nil {
		return nil
	}
	k := m.k
	im := k.ref.Image
	va := func(pa mm.PhysAddr) mm.VirtAddr { return k.bases.Text.Add(uint64(pa - im.Text.Start)) }
	out := []shell.Symbol{
		{Name: "_text", VA: va(im.Text.Start)},
		{Name: "_stext", VA: va(im.Text.Start)},
		{Name: "_etext", VA: va(im.Text.End)},
		{Name: "__start_rodata", VA: va(im.Rodata.Start)},
		{Name: "__end_rodata", VA: va(im.Rodata.End)},
		{Name: "_sdata", VA: va(im.Data.Start)},
		{Name: "_end", VA: va(im.Data.End)},
	}
	// The modules' own symbols, as Linux's kallsyms lists them.
	for _, lm := range region.Find[*region.Modules](k.space).Loaded {
		for _, sym := range lm.Img.Symbols() {
			out = append(out, shell.Symbol{Name: sym.Name, VA: sym.Addr, End: lm.Img.Range().End})
		}
	}
	return out
}

// Modules prints the loaded modules as /proc/modules does.
func (m machine) Modules(w io.Writer) error {
	if m.k == nil {
		return nil
	}
	reg := region.Find[*region.Modules](m.k.space).Registry()
	if reg == nil {
		return nil
	}
	_, err := io.WriteString(w, reg.ProcModules())
	return err
}

// Selftest runs the boot entry's checks and every region's proof again on
// the live tables, held to the boot's manifest, with their own closing
// line.
func (m machine) Selftest(w io.Writer) selftest.Summary {
	r := &report{}
	if m.k == nil {
		r.fail("layout.build", "physmap did not build its layout: nothing to prove")
		return r.close(nil)
	}
	k := m.k
	checkOptions(r, k.fw.cmdline)
	checkMemoryMap(r, k.fw, io.Discard)
	checkClock(r, false)
	checkCPU(r, amd64.ReadFeatures(amd64.Cpuid), k.opts.Levels, k.space.AS.Mode())
	k.prove(r)
	return r.close(selftest.Manifest(k.config))
}

// runShell runs the serial console's shell until exit and returns the
// status QEMU should exit with: the worse of the boot's self-test and the
// shell's selftest runs.
func runShell(k *kernel, boot selftest.Summary) bool {
	m := machine{k: k}
	s := shell.New(m, os.Stdout, boot)
	return s.Run(shell.NewLines(uartReader{}, os.Stdout))
}

// Processes returns the user region's processes of the last run, the
// spinner the timer ended among them, their kernel-half top-level entries
// compared with the kernel's raw entries.
func (m machine) Processes() []shell.Process {
	if m.k == nil {
		return nil
	}
	k := m.k
	kroot := hwCPU{}.CR3()
	var out []shell.Process
	for _, pr := range region.Find[*region.User](k.space).All() {
		sp := shell.Process{PID: pr.PID, State: pr.State(), Root: pr.AS.Root(), Syscalls: len(pr.Syscalls), Exceptions: len(pr.Traps)}
		if pr.Freed {
			sp.State += ", freed"
			out = append(out, sp)
			continue
		}
		sp.Tables = mm.Open(pr.AS.Mode(), pr.AS.Root(), k.space.Mem)
		if pr.UserAS != nil {
			sp.UserCopy = mm.Open(pr.AS.Mode(), pr.UserAS.Root(), k.space.Mem)
		}
		for _, pg := range pr.Pages {
			sp.Pages = append(sp.Pages, shell.ProcessPage{VA: pg.VA, What: pg.What})
		}
		for i := uint64(256); i < 512; i++ {
			ke := k.space.Mem.Read64(kroot.Add(8 * i))
			if ke&uint64(mm.Present) == 0 {
				continue
			}
			sp.KernelTop++
			if k.space.Mem.Read64(pr.AS.Root().Add(8*i)) == ke {
				sp.SharedTop++
			}
		}
		out = append(out, sp)
	}
	return out
}
