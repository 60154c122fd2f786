package main

import (
	"strings"

	"github.com/physmap/physmap/kernel/selftest"
	"github.com/physmap/physmap/qemu"
)

// A Case is one boot of the matrix.
type Case struct {
	Name   string // unique; -run selects on it
	Memory string // QEMU -m
	CPU    string // QEMU -cpu
	Append string // kernel command line
	// Expect is what the self-test must show: by default a pass with
	// every check of the boot's manifest.
	Expect qemu.Expect
	// Exclusive runs the boot with no other beside it: the clock check
	// compares guest and host time, and a second emulator competing for
	// the cores can stall the guest between the two lines it times.
	Exclusive bool
	// CrossCheck holds the machine after the self-test and compares QEMU's
	// own walk of the live page tables with the kernel's dump, in the same
	// boot (see qemu.CrossCheck).
	CrossCheck bool
	// Shell is typed at the kernel's shell (Append has physmap.shell=1),
	// each answer checked; it ends with exit.
	Shell []qemu.Exchange
	// EarlyBoot, if set, is part of the line the early boot must print
	// when it refuses the machine (QEMU exit 5 or 7, harness exit 2).
	EarlyBoot string
}

func (c Case) config(kernel string) qemu.Config {
	cfg := qemu.Config{Kernel: kernel, Memory: c.Memory, CPU: c.CPU, Accel: qemu.TCG, Append: c.Append}
	if c.CrossCheck {
		// A command line that sets another physmap.hold keeps it: the
		// boot then fails for not holding.
		if a, err := qemu.WithHold(c.Append); err == nil {
			cfg.Append = a
		}
	}
	return cfg
}

// Axes of the passing part of the matrix: every memory size with every CPU.
var (
	memories = []string{"512M", "2G", "6G"}
	// max has LA57 under TCG (5-level paging), max,-la57 does not (4-level),
	// qemu64,+rdrand has neither LA57 nor Page1GB.
	cpus = []string{"max", "max,-la57", "qemu64,+rdrand"}
)

// modes are the two paging modes every injection is booted in.
var modes = []struct {
	name, cpu string
	levels    int
}{{"5-level", "max", 5}, {"4-level", "max,-la57", 4}}

// extra lists further boots that must pass. clock/sleep makes the guest
// sleep 2 s by its own clock between two lines the harness times with the
// host's: they must agree within qemu.ClockTolerance.
var extra = []Case{
	{Name: "clock/sleep=2s", Memory: "2G", CPU: "max", Append: "physmap.sleep=2", Exclusive: true},
	{Name: "levels/4-on-la57", Memory: "2G", CPU: "max", Append: "physmap.levels=4"},
	{Name: "kaslr/5-level/rdrand", Memory: "6G", CPU: "max", Append: "physmap.kaslr=on"},
	{Name: "kaslr/4-level/rdrand", Memory: "6G", CPU: "max,-la57", Append: "physmap.kaslr=on"},
	// mm.rst's 512 MiB image layout, modules at 0xffffffffa0000000
	// (Debian's configuration is the default).
	{Name: "config/mmrst/5-level", Memory: "2G", CPU: "max", Append: "physmap.config=mmrst"},
	{Name: "config/mmrst/4-level", Memory: "6G", CPU: "max,-la57", Append: "physmap.config=mmrst"},
	// map_vsyscall's other two modes (none is the default).
	{Name: "vsyscall/emulate", Memory: "2G", CPU: "max", Append: "vsyscall=emulate"},
	{Name: "vsyscall/xonly", Memory: "2G", CPU: "max,-la57", Append: "vsyscall=xonly"},
	// XPFO: the processes' frames out of the direct map, on 1 GiB pages
	// (5-level) and on a CPU without them (4-level, 2 MiB pages).
	{Name: "xpfo/5-level", Memory: "2G", CPU: "max", Append: "physmap.xpfo=on"},
	{Name: "xpfo/4-level", Memory: "2G", CPU: "max,-la57,-pdpe1gb", Append: "physmap.xpfo=on"},
	{Name: "pti/5-level", Memory: "2G", CPU: "max", Append: "pti=on"},
	{Name: "pti/4-level", Memory: "2G", CPU: "max,-la57,-pdpe1gb", Append: "pti=on"},
	{Name: "pti/xpfo", Memory: "2G", CPU: "max", Append: "pti=on physmap.xpfo=on"},
	// QEMU's info tlb under a process's CR3 (physmap.mm): its user half
	// and the kernel half it shares; under PTI the user copy it runs on;
	// with XPFO the direct map its frames were split out of.
	{Name: "process/5-level", Memory: "2G", CPU: "max", Append: "physmap.mm=1", CrossCheck: true},
	{Name: "process/4-level", Memory: "2G", CPU: "max,-la57", Append: "physmap.mm=2", CrossCheck: true},
	{Name: "process/pti/5-level", Memory: "2G", CPU: "max", Append: "pti=on physmap.mm=2", CrossCheck: true},
	{Name: "process/pti/4-level", Memory: "2G", CPU: "max,-la57,-pdpe1gb", Append: "pti=on physmap.mm=1", CrossCheck: true},
	{Name: "process/xpfo", Memory: "2G", CPU: "max", Append: "physmap.xpfo=on physmap.mm=1", CrossCheck: true},
}

// variants are injections booted once more on another machine, where what
// they break lies elsewhere.
var variants = []Case{
	// Without Page1GB the hole splits 2 MiB pages, not a 1 GiB one.
	{Name: "inject/directmap-hole-no-1g", CPU: "qemu64,+rdrand", Memory: "6G", Append: "physmap.inject=directmap-hole",
		Expect: qemu.Expect{Fails: []string{"walk.directmap", "user.ring3", "user.kernel-half", "user.isolation", "user.supervisor", "user.syscall", "user.timer"}, Exact: true}},
	// The sampled descriptor the injection moves lies above 4 GiB here.
	{Name: "inject/vmemmap-off-by-one-6g", Memory: "6G", Append: "physmap.inject=vmemmap-off-by-one",
		Expect: qemu.Expect{Fails: []string{"region.vmemmap"}, Exact: true}},
}

// refused are boots whose injection the kernel must refuse.
var refused = []Case{
	{Name: "inject/unknown", Append: "physmap.inject=bogus", Expect: qemu.ExpectFailing("inject")},
	{Name: "inject/vmalloc-misaligned-without-kaslr", Append: "physmap.inject=vmalloc-misaligned", Expect: qemu.ExpectFailing("inject")},
}

// early are machines the early boot must refuse, before the runtime
// starts, with one line naming what is missing.
var early = []Case{
	{Name: "early/no-rdrand", CPU: "qemu64", EarlyBoot: "no RDRAND (CPUID.01H:ECX[30])"},
	{Name: "early/no-long-mode", CPU: "qemu32", EarlyBoot: "no long mode (CPUID.80000001H:EDX[29])"},
}

// kaslrSeeds are the fixed KASLR seeds every make test boots in both paging
// modes: each must pass every proof at the bases it gives. Seed 10, at
// 2G in 5-level mode, draws vmemmap_base 0xfffe759180000000, less than
// mm.rst's 0.5 PB below 2^64: the proofs once searched a range that
// wrapped to nothing there.
var kaslrSeeds = []string{"1", "2", "10", "0xfeedface", "0xffffffffffffffff"}

// injectionCases are every injection of the registry in both paging modes,
// each failing exactly the checks it names, in the first of the registry's
// variants (a plain boot, KASLR, vsyscall=emulate) it applies to.
func injectionCases() []Case {
	var out []Case
	for _, r := range selftest.Registry {
		for _, in := range r.Injections {
			for _, m := range modes {
				// Both modes boot -cpu max, which has SMEP and SMAP.
				v, c, ok := selftest.VariantFor(in.When, selftest.Config{Levels: m.levels, Page1GB: true, SMEP: true, SMAP: true})
				if !ok {
					continue // applies to no configuration of this mode
				}
				appendLine := strings.TrimSpace(v.Append + " physmap.inject=" + in.Name)
				out = append(out, Case{Name: "inject/" + m.name + "/" + in.Name, CPU: m.cpu, Append: appendLine,
					Expect: qemu.Expect{Fails: in.FailsIn(c), Exact: true}})
			}
		}
	}
	return out
}

// environmentCases are the registry's failing environments.
func environmentCases() []Case {
	var out []Case
	for _, r := range selftest.Registry {
		for _, e := range r.Environments {
			out = append(out, Case{Name: e.Name, CPU: e.CPU, Memory: e.Memory, Append: e.Append, Expect: qemu.Expect{Fails: e.Fails}})
		}
	}
	return out
}

// matrix returns every case in a stable order.
func matrix() []Case {
	var cases []Case
	for _, m := range memories {
		for _, c := range cpus {
			cases = append(cases, Case{Name: "m=" + m + "/cpu=" + c, Memory: m, CPU: c, CrossCheck: true})
		}
	}
	cases = append(cases, extra...)
	cases = append(cases, shellCases...)
	for _, seed := range kaslrSeeds {
		for _, m := range modes {
			cases = append(cases, Case{Name: "kaslr/" + m.name + "/seed=" + seed, Memory: "2G", CPU: m.cpu,
				Append: "physmap.kaslr=" + seed, CrossCheck: true})
		}
	}
	var neg []Case
	neg = append(neg, environmentCases()...)
	neg = append(neg, refused...)
	neg = append(neg, early...)
	neg = append(neg, injectionCases()...)
	neg = append(neg, variants...)
	for _, n := range neg {
		if n.Memory == "" {
			n.Memory = "2G"
		}
		if n.CPU == "" {
			n.CPU = "max"
		}
		cases = append(cases, n)
	}
	return cases
}
