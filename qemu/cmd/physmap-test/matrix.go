package main

import "github.com/physmap/physmap/qemu"

// A Case is one boot of the matrix.
type Case struct {
	Name       string // unique; -run selects on it
	Memory     string // QEMU -m
	CPU        string // QEMU -cpu
	Append     string // kernel command line
	ExpectFail string // check that must FAIL; empty: the self-test must pass
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

// injections are the fault injections of the kernel (physmap.inject=NAME)
// and the check each must make fail. Each is booted in both paging modes.
var injections = []struct{ name, check string }{
	{"kernel-frame-off", "walk.image"},
	{"directmap-hole", "walk.directmap"},
	{"directmap-exec", "walk.perms"},
	{"text-writable", "walk.perms"},
	{"no-invlpg", "tlb"},
	{"module-pt-frame", "walk.module"},
	{"old-base", "walk.directmap"},
	{"vmemmap-off-by-one", "region.vmemmap"},
	{"cpu-entry-gdt-writable", "region.cpu_entry_area"},
	{"vsyscall-no-user", "region.vsyscall"},
	{"poke-no-flush", "region.fixmap.text_poke"},
}

// negative lists boots that must fail with a named check. Add fault
// injections here as {Name: "inject/NAME", Append: "physmap.inject=NAME",
// ExpectFail: "CHECK"}; 5-level or KASLR cases go in matrix below as extra
// CPUs ("max,-la57") or Append values ("physmap.kaslr=SEED").
var negative = []Case{
	{Name: "option/unknown", Append: "physmap.bogus=1", ExpectFail: "option"},
	{Name: "option/malformed-hold", Append: "physmap.hold=x", ExpectFail: "option"},
	// An empty value is refused like any other, physmap.inject= included.
	{Name: "option/empty-inject", Append: "physmap.inject=", ExpectFail: "option"},
	// Linux's nokaslr against physmap's explicit seed.
	{Name: "option/nokaslr-with-seed", Append: "nokaslr physmap.kaslr=1", ExpectFail: "option"},
	{Name: "cpu/no-nx", CPU: "qemu64,+rdrand,-nx", ExpectFail: "cpu.nx"},
	{Name: "inject/unknown", Append: "physmap.inject=bogus", ExpectFail: "inject"},
	{Name: "inject/directmap-hole-no-1g", CPU: "qemu64,+rdrand", Memory: "6G", Append: "physmap.inject=directmap-hole", ExpectFail: "walk.directmap"},
	{Name: "levels/5-without-la57", CPU: "max,-la57", Append: "physmap.levels=5", ExpectFail: "paging.mode"},
	// The sampled descriptor the injection moves lies above 4 GiB here.
	{Name: "inject/vmemmap-off-by-one-6g", Memory: "6G", Append: "physmap.inject=vmemmap-off-by-one", ExpectFail: "region.vmemmap"},
	{Name: "inject/5-level/kaslr-misaligned", Append: "physmap.kaslr=3 physmap.inject=kaslr-misaligned", ExpectFail: "kaslr.memory"},
	{Name: "inject/4-level/kaslr-misaligned", CPU: "max,-la57", Append: "physmap.kaslr=3 physmap.inject=kaslr-misaligned", ExpectFail: "kaslr.memory"},
	{Name: "inject/kaslr-misaligned-without-kaslr", Append: "physmap.inject=kaslr-misaligned", ExpectFail: "inject"},
}

// extra lists further boots that must pass. clock/sleep makes the guest
// sleep 2 s by its own clock between two lines the harness times with the
// host's: they must agree within qemu.ClockTolerance.
var extra = []Case{
	{Name: "clock/sleep=2s", Memory: "2G", CPU: "max", Append: "physmap.sleep=2", Exclusive: true},
	{Name: "levels/4-on-la57", Memory: "2G", CPU: "max", Append: "physmap.levels=4"},
	{Name: "kaslr/5-level/rdrand", Memory: "6G", CPU: "max", Append: "physmap.kaslr=on"},
	{Name: "kaslr/4-level/rdrand", Memory: "6G", CPU: "max,-la57", Append: "physmap.kaslr=on"},
}

// kaslrSeeds are the fixed KASLR seeds every make test boots in both paging
// modes: each must pass every proof at the bases it gives.
var kaslrSeeds = []string{"1", "2", "0xfeedface", "0xffffffffffffffff"}

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
		for _, mode := range []struct{ name, cpu string }{{"5-level", "max"}, {"4-level", "max,-la57"}} {
			cases = append(cases, Case{Name: "kaslr/" + mode.name + "/seed=" + seed, Memory: "2G", CPU: mode.cpu,
				Append: "physmap.kaslr=" + seed, CrossCheck: true})
		}
	}
	neg := append([]Case(nil), negative...)
	for _, in := range injections {
		for _, mode := range []struct{ name, cpu string }{{"5-level", "max"}, {"4-level", "max,-la57"}} {
			neg = append(neg, Case{Name: "inject/" + mode.name + "/" + in.name, CPU: mode.cpu,
				Append: "physmap.inject=" + in.name, ExpectFail: in.check})
		}
	}
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
