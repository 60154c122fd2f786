// Command physmap-linux boots a real Linux kernel on the QEMU machine
// physmap uses, reads that kernel's live page tables from the host with
// physmap's own mm package, and prints them beside physmap's: the layout
// table in the shape of mm.rst with both live columns, the kernel's first
// instruction three ways, the aliases of every frame of the image and of
// each module, Linux's DirectMap counters against its tables, and a list of
// every difference, each matched to a documented reason or flagged.
//
//	physmap-linux [-kernel vmlinuz] [-initrd FILE] [-m 2G] [-cpu max]
//	              [-levels 4|5] [-kaslr] [-pti] [-physmap build/physmap.elf |
//	              -physmap-console FILE] [-ptdump FILE] [-record FILE] [-xp]
//	physmap-linux -attach QMP_SOCKET [-mem FILE] [-ptdump FILE]
//	physmap-linux -replay FILE
//
// Without -kernel it boots the newest Debian kernel in /boot (make linux
// installs linux-image-amd64 and busybox-static). The guest's RAM is a
// memory-backend-file with share=on in /dev/shm, mapped read-only by this
// tool; -xp reads it through QEMU's monitor instead. -attach inspects any
// QEMU guest that serves QMP on a socket, without booting anything: with
// -mem, the file of its shared memory backend.
//
// Exit status: 0 the comparison holds (every fact established, every
// difference explained), 1 a fact failed or a difference is unexplained or
// the guest did not boot, 2 usage or environment error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/physmap/physmap/kernel/dump"
	"github.com/physmap/physmap/qemu"
	"github.com/physmap/physmap/qemu/linux"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type options struct {
	kernel, initrd, busybox, modules string
	mem, cpu                         string
	levels                           int
	kaslr, pti, xp, phys             bool
	appendLine                       string
	timeout                          time.Duration
	physmapELF, physmapConsole       string
	noPhysmap                        bool
	ptdump, record, replay, console  string
	attach, memFile                  string
	tscKHz                           uint64
	set                              map[string]bool
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("physmap-linux", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.kernel, "kernel", "", "Linux bzImage to boot (default: the newest /boot/vmlinuz-* with its modules)")
	fs.StringVar(&o.initrd, "initrd", "", "the kernel's own initrd, unpacked before physmap-linux's archive (whose /init wins)")
	fs.StringVar(&o.busybox, "busybox", "/bin/busybox", "statically linked busybox for the initramfs (busybox-static)")
	fs.StringVar(&o.modules, "modules", "crc7,crc8", "modules of the kernel to insmod, comma-separated (empty: none)")
	fs.StringVar(&o.mem, "m", "2G", "guest memory as QEMU -m takes it, for both kernels")
	fs.StringVar(&o.cpu, "cpu", qemu.DefaultCPU, "CPU model, for both kernels")
	fs.IntVar(&o.levels, "levels", 0, "paging levels, 4 or 5 (Linux no5lvl, physmap.levels=4); default: 5 where the CPU has LA57")
	fs.BoolVar(&o.kaslr, "kaslr", false, "boot Linux with KASLR (no nokaslr) and physmap with physmap.kaslr=on")
	fs.BoolVar(&o.pti, "pti", false, "boot Linux with pti=on")
	fs.StringVar(&o.appendLine, "append", "", "more Linux command line")
	fs.DurationVar(&o.timeout, "timeout", 150*time.Second, "bound on each boot")
	fs.StringVar(&o.physmapELF, "physmap", "build/physmap.elf", "physmap kernel to boot for its column")
	fs.StringVar(&o.physmapConsole, "physmap-console", "", "read physmap's column from this saved console log instead of booting it")
	fs.BoolVar(&o.noPhysmap, "no-physmap", false, "Linux only: no physmap column, no difference list")
	fs.StringVar(&o.ptdump, "ptdump", "", "write Linux's tables in the format of /sys/kernel/debug/page_tables/kernel to this file (- for stdout)")
	fs.StringVar(&o.console, "console", "", "write Linux's whole serial console to this file")
	fs.BoolVar(&o.phys, "phys", false, "with -ptdump: a column with each run's physical address")
	fs.StringVar(&o.record, "record", "", "write the table pages read, the guest's report and physmap's dump to this file (gzipped JSON) for host tests")
	fs.StringVar(&o.replay, "replay", "", "analyse a file written by -record instead of booting")
	fs.BoolVar(&o.xp, "xp", false, "read guest memory through QEMU's monitor (xp) instead of a shared file")
	fs.StringVar(&o.attach, "attach", "", "inspect the running QEMU guest serving QMP on this unix socket, booting nothing")
	fs.StringVar(&o.memFile, "mem", "", "with -attach: the file of the guest's shared memory backend (memory-backend-file share=on); without it, xp")
	fs.Uint64Var(&o.tscKHz, "tsc-khz", 0, "TSC rate Linux is told (tsc_early_khz); default: the host's, from /proc/cpuinfo")
	if err := fs.Parse(args); err != nil {
		return qemu.ExitUsage
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "physmap-linux: unexpected arguments %q\n", fs.Args())
		return qemu.ExitUsage
	}
	o.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	if err := o.validate(); err != nil {
		fmt.Fprintf(stderr, "physmap-linux: %v\n", err)
		return qemu.ExitUsage
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()

	var rep *linux.Report
	var err error
	switch {
	case o.attach != "":
		rep, err = attach(ctx, o, stderr)
	case o.replay != "":
		rep, err = replay(o)
	default:
		rep, err = boot(ctx, o, sigs, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "physmap-linux: %v\n", err)
		return exitCode(err)
	}
	if err := rep.Write(stdout); err != nil {
		fmt.Fprintf(stderr, "physmap-linux: %v\n", err)
		return qemu.ExitFailed
	}
	if o.ptdump != "" {
		if err := writePtdump(o.ptdump, rep.Linux, o.phys, stdout); err != nil {
			fmt.Fprintf(stderr, "physmap-linux: %v\n", err)
			return qemu.ExitUsage
		}
	}
	if bad := rep.Verdict(); bad != "" {
		fmt.Fprintf(stderr, "physmap-linux: %s\n", bad)
		return qemu.ExitFailed
	}
	fmt.Fprintf(stderr, "physmap-linux: ok: %s\n", rep.Summary())
	return qemu.ExitOK
}

func (o *options) validate() error {
	if o.levels != 0 && o.levels != 4 && o.levels != 5 {
		return fmt.Errorf("-levels %d: want 4 or 5", o.levels)
	}
	if o.attach != "" {
		for _, f := range []string{"kernel", "initrd", "m", "cpu", "levels", "kaslr", "pti", "append", "physmap", "physmap-console", "record", "replay", "xp", "tsc-khz", "modules", "busybox", "console", "no-physmap"} {
			if o.set[f] {
				return fmt.Errorf("-attach inspects a running guest: -%s is for booting", f)
			}
		}
		return nil
	}
	if o.set["mem"] {
		return fmt.Errorf("-mem goes with -attach")
	}
	if o.replay != "" {
		for _, f := range []string{"kernel", "initrd", "m", "cpu", "levels", "kaslr", "pti", "append", "physmap", "physmap-console", "record", "xp", "tsc-khz", "modules", "busybox", "console", "no-physmap"} {
			if o.set[f] {
				return fmt.Errorf("-replay reads a recording: -%s is for booting", f)
			}
		}
		return nil
	}
	if _, err := qemu.ParseMemory(o.mem); err != nil {
		return err
	}
	if o.physmapConsole != "" && o.noPhysmap {
		return fmt.Errorf("-physmap-console and -no-physmap do not go together")
	}
	return nil
}

// exitCode maps an error to the exit status.
func exitCode(err error) int {
	switch {
	case errors.Is(err, linux.ErrEnvironment):
		return qemu.ExitUsage
	case errors.Is(err, context.Canceled):
		return qemu.ExitFailed
	}
	var he *qemu.Error
	if errors.As(err, &he) {
		return qemu.ExitCode(err)
	}
	return qemu.ExitFailed
}

// linuxCmdline is the kernel command line of a boot with o's options.
//
// tsc_early_khz: microvm under TCG gives Linux nothing to calibrate its
// TSC against (no PIT gate at port 0x61, no HPET, no ACPI PM timer), and
// with pic=off no legacy timer interrupt either (arch/x86/kernel/tsc.c:
// native_calibrate_tsc, pit_hpet_ptimer_calibrate_cpu; Linux hangs before
// /init without it). The TSC under TCG counts at the host's rate.
func linuxCmdline(o options, khz uint64) string {
	parts := []string{"console=ttyS0", fmt.Sprintf("tsc_early_khz=%d", khz)}
	if !o.kaslr {
		parts = append(parts, "nokaslr")
	}
	if o.levels == 4 {
		parts = append(parts, "no5lvl")
	}
	if o.pti {
		parts = append(parts, "pti=on")
	}
	if o.appendLine != "" {
		parts = append(parts, o.appendLine)
	}
	return strings.Join(parts, " ")
}

// physmapCmdline is physmap's command line for the same options.
func physmapCmdline(o options) string {
	var parts []string
	if o.levels == 4 {
		parts = append(parts, "physmap.levels=4")
	}
	if o.kaslr {
		parts = append(parts, "physmap.kaslr=on")
	}
	return strings.Join(parts, " ")
}

func boot(ctx context.Context, o options, sigs <-chan os.Signal, stderr io.Writer) (*linux.Report, error) {
	var k *linux.Kernel
	var err error
	if o.kernel == "" {
		k, err = linux.DefaultKernel("/")
	} else {
		k, err = linux.OpenKernel("/", o.kernel)
	}
	if err != nil {
		return nil, err
	}
	fsys := &linux.Initramfs{}
	if fsys.Busybox, err = linux.ReadBusybox(o.busybox); err != nil {
		return nil, err
	}
	if names := splitList(o.modules); len(names) > 0 {
		if k.Modules == "" {
			return nil, fmt.Errorf("%w: no /lib/modules/%s for kernel %s; pass -modules '' to boot without modules", linux.ErrEnvironment, k.Release, k.Image)
		}
		if fsys.Modules, err = linux.FindModules(k.Modules, names); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "physmap-linux")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", linux.ErrEnvironment, err)
	}
	defer os.RemoveAll(dir)
	initrd, err := writeInitramfs(dir, fsys, o.initrd)
	if err != nil {
		return nil, err
	}
	khz := o.tscKHz
	if khz == 0 {
		var ok bool
		if khz, ok = hostTSCkHz(); !ok {
			khz = defaultTSCkHz
		}
	}
	lb := &linuxBoot{useXP: o.xp, record: o.record != ""}
	lb.cfg = qemu.Config{Binary: os.Getenv("QEMU"), Kernel: k.Image, Initrd: initrd, Memory: o.mem,
		Append: linuxCmdline(o, khz), Timeout: o.timeout}
	if o.set["cpu"] {
		lb.cfg.CPU = o.cpu
	}
	if k.Config != "" {
		lb.config, _ = os.ReadFile(k.Config)
	}
	if !o.xp {
		shm, err := os.MkdirTemp("/dev/shm", "physmap-linux")
		if err != nil {
			fmt.Fprintf(stderr, "physmap-linux: no shared memory file (%v): reading guest memory through xp\n", err)
			lb.useXP = true
		} else {
			defer os.RemoveAll(shm)
			lb.cfg.MemPath = filepath.Join(shm, "ram")
		}
	}

	// physmap's column boots at the same time, on the same flags.
	type physmapResult struct {
		d   *dump.Dump
		err error
	}
	pm := make(chan physmapResult, 1)
	switch {
	case o.noPhysmap:
		pm <- physmapResult{}
	case o.physmapConsole != "":
		d, err := readPhysmapDump(o.physmapConsole)
		pm <- physmapResult{d, err}
	default:
		if _, err := os.Stat(o.physmapELF); err != nil {
			return nil, fmt.Errorf("%w: physmap kernel %v; build it with: make kernel (or pass -no-physmap)", linux.ErrEnvironment, err)
		}
		pcfg := qemu.Config{Binary: os.Getenv("QEMU"), Kernel: o.physmapELF, Memory: o.mem, Append: physmapCmdline(o), Timeout: o.timeout}
		if o.set["cpu"] {
			pcfg.CPU = o.cpu
		}
		go func() {
			d, err := physmapBoot(ctx, pcfg, stderr)
			pm <- physmapResult{d, err}
		}()
	}

	fmt.Fprintf(stderr, "physmap-linux: booting Linux %s (%s) -m %s, command line %q\n", k.Release, k.Image, o.mem, lb.cfg.Append)
	lrun := &linux.Boot{Config: lb.cfg, Ready: linux.EndMark, Stderr: stderr, Interrupt: sigs, Inspect: lb.inspect}
	if o.console != "" {
		f, err := os.Create(o.console)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", linux.ErrEnvironment, err)
		}
		defer f.Close()
		lrun.Log = f
	}
	console, runErr := lrun.Run(ctx)
	p := <-pm
	if runErr != nil {
		var be *linux.BootError
		if errors.As(runErr, &be) {
			fmt.Fprintf(stderr, "physmap-linux: Linux did not reach its report; last %d console lines:\n", len(be.Tail))
			for _, l := range be.Tail {
				fmt.Fprintf(stderr, "  | %s\n", l)
			}
		}
		return nil, runErr
	}
	lb.console = console
	if p.err != nil {
		return nil, p.err
	}
	rep := linux.NewReport(lb.analysis, p.d, linux.RunInfo{Memory: o.mem, CPU: o.cpu, Levels: o.levels, KASLR: o.kaslr, PTI: o.pti,
		LinuxCmdline: lb.cfg.Append, PhysmapCmdline: physmapCmdline(o), Release: k.Release})
	if o.record != "" {
		if err := linux.WriteRecording(o.record, rep); err != nil {
			return nil, fmt.Errorf("%w: record: %v", linux.ErrEnvironment, err)
		}
		fmt.Fprintf(stderr, "physmap-linux: recorded %d frames in %s\n", len(lb.analysis.Mem.Pages()), o.record)
	}
	return rep, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func writePtdump(p string, a *linux.Analysis, phys bool, stdout io.Writer) error {
	w := stdout
	if p != "-" {
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	return a.Ptdump(w, phys)
}
