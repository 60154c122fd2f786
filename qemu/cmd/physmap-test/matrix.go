package main

import "github.com/physmap/physmap/qemu"

// A Case is one boot of the matrix.
type Case struct {
	Name       string // unique; -run selects on it
	Memory     string // QEMU -m
	CPU        string // QEMU -cpu
	Append     string // kernel command line
	ExpectFail string // check that must FAIL; empty: the self-test must pass
}

func (c Case) config(kernel string) qemu.Config {
	return qemu.Config{Kernel: kernel, Memory: c.Memory, CPU: c.CPU, Accel: qemu.TCG, Append: c.Append}
}

// Axes of the passing part of the matrix: every memory size with every CPU.
var (
	memories = []string{"512M", "2G", "6G"}
	cpus     = []string{"max", "qemu64,+rdrand"}
)

// negative lists boots that must fail with a named check. Add fault
// injections here as {Name: "inject/NAME", Append: "physmap.inject=NAME",
// ExpectFail: "CHECK"}; 5-level or KASLR cases go in matrix below as extra
// CPUs ("max,-la57") or Append values ("physmap.kaslr=SEED").
var negative = []Case{
	{Name: "option/unknown", Append: "physmap.bogus=1", ExpectFail: "option"},
	{Name: "option/malformed-hold", Append: "physmap.hold=x", ExpectFail: "option"},
	{Name: "cpu/no-nx", CPU: "qemu64,+rdrand,-nx", ExpectFail: "cpu.nx"},
	{Name: "inject/unknown", Append: "physmap.inject=bogus", ExpectFail: "inject"},
	{Name: "inject/kernel-frame-off", Append: "physmap.inject=kernel-frame-off", ExpectFail: "walk.image"},
	{Name: "inject/directmap-hole", Append: "physmap.inject=directmap-hole", ExpectFail: "walk.directmap"},
	{Name: "inject/directmap-exec", Append: "physmap.inject=directmap-exec", ExpectFail: "walk.perms"},
	{Name: "inject/text-writable", Append: "physmap.inject=text-writable", ExpectFail: "walk.perms"},
	{Name: "inject/no-invlpg", Append: "physmap.inject=no-invlpg", ExpectFail: "tlb"},
	{Name: "inject/module-pt-frame", Append: "physmap.inject=module-pt-frame", ExpectFail: "walk.module"},
	{Name: "inject/old-base", Append: "physmap.inject=old-base", ExpectFail: "walk.directmap"},
	{Name: "inject/directmap-hole-no-1g", CPU: "qemu64,+rdrand", Memory: "6G", Append: "physmap.inject=directmap-hole", ExpectFail: "walk.directmap"},
}

// extra lists further boots that must pass. clock/sleep makes the guest
// sleep 2 s by its own clock between two lines the harness times with the
// host's: they must agree within qemu.ClockTolerance.
var extra = []Case{
	{Name: "clock/sleep=2s", Memory: "2G", CPU: "max", Append: "physmap.sleep=2"},
}

// matrix returns every case in a stable order.
func matrix() []Case {
	var cases []Case
	for _, m := range memories {
		for _, c := range cpus {
			cases = append(cases, Case{Name: "m=" + m + "/cpu=" + c, Memory: m, CPU: c})
		}
	}
	cases = append(cases, extra...)
	for _, n := range negative {
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
