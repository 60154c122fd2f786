//go:build tamago

package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/boot"
	"github.com/physmap/physmap/kernel/option"
	"github.com/physmap/physmap/kernel/region"
	"github.com/physmap/physmap/kernel/selftest"
	"github.com/physmap/physmap/mm"
)

// kernel is what the boot built and found, passed explicitly to the
// report and the shell.
type kernel struct {
	space    *region.Space
	ref      region.Reference
	bases    region.Bases
	physBits uint
	fw       *firmware
	opts     option.Options
	config   selftest.Config
}

// live opens the tables the CPU uses, from CR3, independently of the
// builder's handle.
func (k *kernel) live() *mm.AddressSpace {
	return mm.Open(k.space.AS.Mode(), hwCPU{}.CR3(), k.space.Mem)
}

// The injections the boot entry applies itself, outside any region.
const (
	injectPVH   = "pvh-memmap-differs"
	injectClock = "clock-fast"
	injectNoPGE = "no-pge"
	injectNoWP  = "no-wp"
)

func main() {
	fmt.Printf("physmap: booting on QEMU microvm (TamaGo %s/%s, %s)\n", runtime.GOOS, runtime.GOARCH, runtime.Version())
	var r report
	mode := mm.Mode4Level
	if amd64.ReadCR4()&amd64.CR4_LA57 != 0 {
		mode = mm.Mode5Level
	}
	f := amd64.ReadFeatures(amd64.Cpuid)

	fwc, err := boot.OpenFwCfg()
	if err != nil {
		r.fail("fwcfg", "%v", err)
		finish(&r, option.Defaults(), nil, nil)
		return
	}
	fw := &firmware{cmdline: fwc.CommandLine()}
	fmt.Printf("Command line: %s\n", fw.cmdline)
	opts := checkOptions(&r, fw.cmdline)
	// The boot log (firmware map, init_memory_mapping, DirectMap, tables)
	// goes to the console with physmap.verbose=1 only.
	var log io.Writer = io.Discard
	if opts.Verbose {
		log = os.Stdout
	}
	cfg := configOf(opts, f, mode)
	fmt.Println(cfg)
	manifest := selftest.Manifest(cfg)

	inject := opts.Inject
	if inject != "" {
		in, _, ok := selftest.LookupInjection(inject)
		switch {
		case !ok:
			r.fail("inject", "unknown injection %q; known: %s", inject, strings.Join(selftest.InjectionNames(), ", "))
			inject = ""
		case in.When != nil && !in.When(cfg):
			r.fail("inject", "%s does not apply to this boot (%s): %s", inject, strings.TrimPrefix(cfg.String(), selftest.ConfigPrefix), in.What)
			inject = ""
		}
		if inject == "" {
			finish(&r, opts, manifest, nil)
			return
		}
	}

	if inject == injectPVH {
		if err := boot.ShortenPVHMemmapRAM(uint64(mm.Size2M)); err != nil {
			r.fail("inject", "%s: %v", inject, err)
		}
	}
	fw.pvh, fw.pvhErr = boot.PVHMemmap()
	if fw.e820, err = fwc.File("etc/e820"); err != nil {
		r.fail("e820", "fw_cfg: %v", err)
	}
	memmap := checkMemoryMap(&r, fw, log)
	phase("firmware-map")
	checkClock(&r, inject == injectClock)
	checkCPU(&r, f, opts.Levels, mode)

	var k *kernel
	if memmap != nil && f.NX {
		k = proveLayout(&r, fw, opts, f, mode, cfg, inject, log)
	} else if !f.NX {
		// An NX bit with EFER.NXE unavailable is a reserved bit: the first
		// walk through such a table would fault.
		r.fail("layout.build", "not built: the CPU has no NX, so Linux's NX permissions cannot be expressed")
	}
	if opts.Sleep > 0 {
		sleep(opts.Sleep)
	}
	finish(&r, opts, manifest, k)
}

// proveLayout builds the Linux layout, switches CR3 to it, applies the
// injection and proves it.
func proveLayout(r *report, fw *firmware, opts option.Options, f amd64.Features, mode mm.Mode, cfg selftest.Config, inject string, log io.Writer) *kernel {
	physBits := uint(f.PhysAddrBits)
	ram := clampToPhysBits(r, fw.memmap.RAM(), physBits)
	if err := amd64.InstallFaultHandler(); err != nil {
		r.fail("fault.handler", "%v", err)
		return nil
	}
	if err := amd64.InstallUserTraps(); err != nil {
		r.fail("fault.handler", "%v", err)
		return nil
	}
	enableCPU(f)
	s, err := build(mode, ram, f.Page1GB, opts, cfg, log)
	if err != nil {
		r.fail("layout.build", "%v", err)
		return nil
	}
	dm := region.Find[*region.DirectMap](s)
	fmt.Fprint(log, dm.Meminfo(s))
	fmt.Fprintf(log, "physmap: %v tables at %v live in CR3: %d table pages (the direct map alone needs at least %d)\n",
		mode, s.AS.Root(), s.AS.TablePages(), dm.Plan.MinTablePages)

	switch inject {
	case "", injectPVH, injectClock:
	case injectNoPGE:
		amd64.WriteCR4(amd64.ReadCR4() &^ amd64.CR4_PGE)
	case injectNoWP:
		amd64.WriteCR0(amd64.ReadCR0() &^ amd64.CR0_WP)
	default:
		if err := s.Inject(inject); err != nil {
			r.fail("inject", "%s: %v", inject, err)
			return nil
		}
	}
	if inject != "" {
		fmt.Printf("physmap: injected %s\n", inject)
	}

	// The documented layout of the configuration: KERNEL_IMAGE_SIZE as
	// page_64_types.h sets it for it (1 GiB with CONFIG_RANDOMIZE_BASE).
	spec := mm.LayoutOptions{KernelImageSize: opts.Config.KernelImageSize()}
	pvh, _ := region.ParsePVHMemmap(fw.pvh, physBits) // checkMemoryMap parsed it already
	k := &kernel{
		space: s,
		ref: region.Reference{
			Mode: mode, RAM: pvh, PhysBits: physBits, Image: readImage(), Window: runtimeWindow(),
			Spec: mm.NewLayout(mode, spec), KASLR: opts.KASLR.On, Config: cfg, Exports: kernelExports(),
		},
		physBits: physBits, fw: fw, opts: opts, config: cfg,
	}
	k.prove(r)
	phase("proofs")
	if opts.Verbose {
		// Walks every region: only for the verbose log that prints it.
		k.printFootprint(log)
	}
	k.show(r, log, opts.Ptdump)
	return k
}

// prove runs the regions' proofs on the tables in CR3, after the boot
// entry's last check: at boot, and again from the shell's selftest.
func (k *kernel) prove(r *report) {
	checkCPUState(r)
	live := k.live()
	k.bases = region.Discover(live, hwCPU{}, k.ref)
	k.space.Prove(&region.Proof{Live: live, CPU: hwCPU{}, Ref: k.ref, Bases: k.bases, R: r, Act: k.space})
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
func finish(r *report, opts option.Options, manifest []string, k *kernel) {
	phase("report")
	sum := r.close(manifest)
	written := k == nil || k.deferredInit()
	ok := sum.OK() && written
	if opts.Shell {
		ok = runShell(k, sum) && written
	}
	var cr3, pc uint64
	if pid := mmPID(opts.MM); pid != 0 && k != nil {
		var err error
		if cr3, pc, err = k.dumpMM(pid); err != nil {
			fmt.Printf("physmap: physmap.mm=%d: %v; no dump, no hold\n", pid, err)
			os.Exit(1)
		}
	}
	if opts.Hold {
		fmt.Println(selftest.HoldLine)
		if cr3 != 0 {
			amd64.HoldIn(cr3, pc)
		}
		boot.Halt()
	}
	if ok {
		os.Exit(0)
	}
	os.Exit(1)
}

// configOf is the boot's configuration as the kernel will act on it.
func configOf(opts option.Options, f amd64.Features, mode mm.Mode) selftest.Config {
	c := selftest.Config{Levels: mode.Levels(), KASLR: opts.KASLR.On, Page1GB: f.Page1GB,
		// Debian's 6.1 (KERNEL_IMAGE_SIZE 1 GiB, CONFIG_RANDOMIZE_BASE)
		// unless physmap.config=mmrst asks for mm.rst's 512 MiB.
		Layout: string(opts.Config),
		// map_vsyscall's mode, as vsyscall= (or Debian's default, none)
		// asks: the vsyscall region acts on it.
		Vsyscall: string(opts.Vsyscall),
		// XPFO as physmap.xpfo asks: the user region acts on it.
		XPFO: opts.XPFO,
		// PTI with pti=on. pti=auto leaves it off: physmap does not
		// read the CPU's Meltdown status (cpu_vulnerable's whitelist,
		// ARCH_CAPABILITIES.RDCL_NO) as Linux's auto does.
		PTI: opts.PTI == option.PTIOn,
	}
	// SMEP and SMAP where CPUID has them, as Linux's identify_cpu sets
	// them (arch/x86/kernel/cpu/common.c: setup_smep, setup_smap; Debian
	// builds CONFIG_X86_SMAP): build turns them on once its tables are
	// in CR3, as Linux 6.1's identify_boot_cpu runs after setup_arch's
	// switch to init_top_pgt (start_kernel, check_bugs).
	cr4 := amd64.ReadCR4()
	c.SMEP, c.SMAP, c.PCID = f.SMEP, f.SMAP, cr4&amd64.CR4_PCIDE != 0
	return c
}
