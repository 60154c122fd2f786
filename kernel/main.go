//go:build tamago

package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/goos"
	"strings"
	"time"

	"github.com/physmap/physmap/boot"
	"github.com/physmap/physmap/kernel/option"
	"github.com/physmap/physmap/kernel/selftest"
	"github.com/physmap/physmap/mm"
)

func main() {
	fmt.Printf("physmap: booting on QEMU microvm (TamaGo %s/%s, %s)\n", runtime.GOOS, runtime.GOARCH, runtime.Version())
	var r report

	fw, err := boot.OpenFwCfg()
	if err != nil {
		r.fail("fwcfg", "%v", err)
		finish(&r, option.Defaults())
		return
	}
	cmdline := fw.CommandLine()
	fmt.Printf("Command line: %s\n", cmdline)
	opts := checkOptions(&r, cmdline)

	memmap := readMemoryMap(&r, fw)
	phase("firmware-map")
	checkRuntimeWindow(&r, memmap)
	checkClock(&r)
	f := checkCPU(&r, opts.Levels)
	if memmap != nil {
		proveLayout(&r, memmap, opts, uint(f.PhysAddrBits))
	}
	if opts.Sleep > 0 {
		sleep(opts.Sleep)
	}

	finish(&r, opts)
}

// checkOptions parses the command line and reports every bad word.
func checkOptions(r *report, cmdline string) option.Options {
	l := option.ParseLine(cmdline)
	opts, others, errs := l.Options, l.Others, l.Errs
	for _, w := range l.Warnings {
		fmt.Printf("physmap: warning: %s\n", w)
	}
	for _, err := range errs {
		r.fail("option", "%v", err)
	}
	if len(errs) == 0 {
		detail := opts.String()
		if len(others) > 0 {
			detail += fmt.Sprintf("; not physmap's, left alone: %s", strings.Join(others, " "))
		}
		r.pass("option", "%s", detail)
	}
	return opts
}

// readMemoryMap reads, prints and validates the firmware memory map.
func readMemoryMap(r *report, fw *boot.FwCfg) boot.MemoryMap {
	raw, err := fw.File("etc/e820")
	if err != nil {
		r.fail("e820", "%v", err)
		return nil
	}
	m, err := boot.ParseE820(raw)
	if err != nil {
		r.fail("e820", "%v", err)
		return nil
	}
	fmt.Println("BIOS-provided physical RAM map:")
	for _, e := range m {
		fmt.Println(e)
	}
	if err := m.Validate(); err != nil {
		r.fail("e820", "%v", err)
		return m
	}
	r.pass("e820", "%d ranges, sorted and disjoint, %d MiB of RAM", len(m), m.RAMBytes()>>20)
	return m
}

// checkRuntimeWindow checks that the memory TamaGo's runtime already uses
// (image, heap, stacks) is RAM according to the firmware.
func checkRuntimeWindow(r *report, m boot.MemoryMap) {
	win := mm.PhysRange{Start: mm.PhysAddr(goos.RamStart), End: mm.PhysAddr(goos.RamStart + goos.RamSize)}
	if goos.RamStart != boot.RuntimeStart {
		// The early boot checked RAM for a window at RuntimeStart.
		r.fail("ram.window", "TamaGo's RamStart %#x is not the %#x the early boot checked", goos.RamStart, uint64(boot.RuntimeStart))
		return
	}
	if m.CoversRAM(win) {
		r.pass("ram.window", "runtime window %v lies in RAM", win)
		return
	}
	fmt.Printf("physmap: the runtime window %v is not RAM: this machine has %d MiB; give it at least %d MiB\n",
		win, m.RAMBytes()>>20, win.End>>20)
	r.fail("ram.window", "runtime window %v is not covered by RAM in the memory map", win)
}

// sleep sleeps between two console lines the host harness times.
func sleep(d time.Duration) {
	fmt.Printf("%s%v\n", selftest.SleepingPrefix, d)
	t0 := time.Now()
	time.Sleep(d)
	fmt.Printf("%s%v by the guest clock\n", selftest.SleptPrefix, time.Since(t0))
}

// finish prints the closing line, then runs the shell if asked, then holds
// or exits.
func finish(r *report, opts option.Options) {
	phase("report")
	ok := r.close()
	if opts.Shell {
		ok = runShell(r.tally.Summary())
	}
	if opts.Hold {
		fmt.Println(selftest.HoldLine)
		boot.Halt()
	}
	if ok {
		os.Exit(0)
	}
	os.Exit(1)
}
