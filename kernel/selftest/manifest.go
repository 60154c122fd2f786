package selftest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The manifest: which checks a boot must show, and how each can be made to
// fail. It is the one list behind the kernel's registry of regions
// (kernel/region builds and proves them in this order), the harness's
// verdict (a boot lacking a check of its manifest fails), the boot matrix
// (every injection and failing environment below is booted) and the
// README's tables. Host tests hold it to its promises: every check has a
// failing case, names are unique, every failing case names checks that
// exist.

// Config is what decides a boot's manifest. The kernel prints it as its
// ConfigPrefix line, stating what it does (not merely what it was asked);
// the harness compares what it can know (the options it passed) and
// computes the manifest from it.
type Config struct {
	Levels  int  // paging levels in force: 4 or 5
	KASLR   bool // memory and image KASLR on
	Page1GB bool // CPUID has 1 GiB pages
	// Layout is the kernel configuration laid out: "distro" (Debian's
	// Linux 6.1: KERNEL_IMAGE_SIZE 1 GiB) or "mmrst" (mm.rst's 512 MiB);
	// empty in a line that does not say.
	Layout string
	// Vsyscall is the vsyscall mode in force: "none", "xonly" or
	// "emulate"; empty in a line that does not say.
	Vsyscall string
	// PTI says page table isolation is on; XPFO that frames leave the
	// direct map while a process owns them.
	PTI, XPFO bool
	// SMEP, SMAP and PCID say CR4 has them on.
	SMEP, SMAP, PCID bool
}

// ConfigPrefix starts the line that states a boot's Config:
// "config: levels=5 kaslr=off page1g=yes layout=distro vsyscall=none
// smep=yes": pti, xpfo, smep, smap and pcid appear only when on.
const ConfigPrefix = "config: "

// String renders c as its console line, without the newline.
func (c Config) String() string {
	s := fmt.Sprintf("%slevels=%d kaslr=%s page1g=%s", ConfigPrefix, c.Levels, onOff(c.KASLR), yesNo(c.Page1GB))
	if c.Layout != "" {
		s += " layout=" + c.Layout
	}
	if c.Vsyscall != "" {
		s += " vsyscall=" + c.Vsyscall
	}
	// The rest only when on, to keep the line short: absent means off.
	for _, f := range []struct {
		on   bool
		word string
	}{{c.PTI, "pti=on"}, {c.XPFO, "xpfo=on"}, {c.SMEP, "smep=yes"}, {c.SMAP, "smap=yes"}, {c.PCID, "pcid=yes"}} {
		if f.on {
			s += " " + f.word
		}
	}
	return s
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// ParseConfig parses a config line. levels, kaslr and page1g are
// required; the other fields keep their zero values when absent.
func ParseConfig(line string) (Config, error) {
	rest, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), ConfigPrefix)
	if !ok {
		return Config{}, ErrNotProtocol
	}
	var c Config
	seen := map[string]bool{}
	for _, f := range strings.Fields(rest) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || seen[k] {
			return Config{}, fmt.Errorf("%w: malformed config field %q in %q", ErrNotProtocol, f, line)
		}
		seen[k] = true
		var err error
		switch k {
		case "levels":
			c.Levels, err = strconv.Atoi(v)
			if err == nil && c.Levels != 4 && c.Levels != 5 {
				err = fmt.Errorf("levels %d", c.Levels)
			}
		case "kaslr":
			c.KASLR, err = parseFlag(v, "on", "off")
		case "page1g":
			c.Page1GB, err = parseFlag(v, "yes", "no")
		case "layout":
			c.Layout, err = oneOf(v, "distro", "mmrst")
		case "vsyscall":
			c.Vsyscall, err = oneOf(v, "none", "xonly", "emulate")
		case "pti":
			c.PTI, err = parseFlag(v, "on", "off")
		case "xpfo":
			c.XPFO, err = parseFlag(v, "on", "off")
		case "smep":
			c.SMEP, err = parseFlag(v, "yes", "no")
		case "smap":
			c.SMAP, err = parseFlag(v, "yes", "no")
		case "pcid":
			c.PCID, err = parseFlag(v, "yes", "no")
		default:
			err = fmt.Errorf("unknown field")
		}
		if err != nil {
			return Config{}, fmt.Errorf("%w: config field %q: %v", ErrNotProtocol, f, err)
		}
	}
	for _, k := range []string{"levels", "kaslr", "page1g"} {
		if !seen[k] {
			return Config{}, fmt.Errorf("%w: config line %q lacks %s", ErrNotProtocol, line, k)
		}
	}
	return c, nil
}

func oneOf(v string, allowed ...string) (string, error) {
	if slices.Contains(allowed, v) {
		return v, nil
	}
	return "", fmt.Errorf("want one of %s", strings.Join(allowed, ", "))
}

func parseFlag(v, yes, no string) (bool, error) {
	switch v {
	case yes:
		return true, nil
	case no:
		return false, nil
	}
	return false, fmt.Errorf("want %s or %s", yes, no)
}

// A Check is one line of the self-test that a boot must show.
type Check struct {
	Name string
	// Claim is what the check proves, and Expect where its expectation
	// comes from: never the code that built what it checks.
	Claim, Expect string
	// When limits the check to some configurations; nil means all.
	When func(Config) bool
}

// An Injection corrupts the live machine (page-table entries, CPU state,
// a skipped TLB flush, memory contents; never a plan or an expectation)
// to show that checks catch it: booted with physmap.inject=NAME, the boot
// must fail exactly the checks in Fails and show every other check of its
// manifest passing.
type Injection struct {
	Name  string
	What  string
	Fails []string
	// When limits the injection to some configurations (it needs KASLR,
	// say); nil means all.
	When func(Config) bool
}

// FailsIn returns the checks of Fails that c's manifest has: on a CPU
// without SMAP, say, an injection cannot fail the SMAP checks the boot
// does not make.
func (in Injection) FailsIn(c Config) []string {
	m := Manifest(c)
	var out []string
	for _, f := range in.Fails {
		if slices.Contains(m, f) {
			out = append(out, f)
		}
	}
	return out
}

// An Environment is a machine or command line on which some checks must
// fail: a CPU without a feature, a bad option. The boot must fail at least
// the checks in Fails; checks that cannot run on such a machine may be
// missing.
type Environment struct {
	Name   string // the matrix case, e.g. "cpu/no-nx"
	CPU    string // QEMU -cpu; empty: the default
	Memory string // QEMU -m; empty: the default
	Append string // kernel command line
	What   string
	Fails  []string
}

// A Region is one entry of the registry: a part of the Linux x86-64 kernel
// address space (or of physmap's boot), the Linux source that fills it,
// its checks and its failing cases.
type Region struct {
	// Name is the registry's name for it, also the shell's short name.
	Name string
	// Source is the Linux file and function that fills the region, or
	// what physmap does instead.
	Source string
	// Early regions are built before the tables are loaded into CR3.
	Early        bool
	Checks       []Check
	Injections   []Injection
	Environments []Environment
}

func kaslrOnly(c Config) bool { return c.KASLR }

// smepOn and smapOn say CR4 has SMEP and SMAP: where CPUID has them
// (-cpu max does under TCG, qemu64 does not).
func smepOn(c Config) bool { return c.SMEP }
func smapOn(c Config) bool { return c.SMAP }

// ret2dirOn: ret2dir's read through the direct map works under SMAP
// unless XPFO took the frame out; xpfoOn: physmap.xpfo=on.
func ret2dirOn(c Config) bool { return c.SMAP && !c.XPFO }
func xpfoOn(c Config) bool    { return c.XPFO }

// ptiOn: pti=on; ptiOff: without it.
func ptiOn(c Config) bool  { return c.PTI }
func ptiOff(c Config) bool { return !c.PTI }

// vsyscallEmulate says map_vsyscall maps the page; a config line that does
// not say is vsyscall=none's, Debian's default.
func vsyscallEmulate(c Config) bool  { return c.Vsyscall == "emulate" }
func vsyscallUnmapped(c Config) bool { return !vsyscallEmulate(c) }

// A Variant is a configuration some checks and injections need beyond a
// plain boot's, with the kernel command-line words that give it. The boot
// matrix boots an injection in the first variant its When accepts, and
// the README says which boots a check or an injection belongs to.
type Variant struct {
	Name   string // for people: "KASLR", "vsyscall=emulate"
	Append string // what the command line adds
	Apply  func(*Config)
}

// Variants are the variants Whens ask for, a plain boot first.
var Variants = []Variant{
	{Name: "plain", Apply: func(*Config) {}},
	{Name: "KASLR", Append: "physmap.kaslr=3", Apply: func(c *Config) { c.KASLR = true }},
	{Name: "vsyscall=emulate", Append: "vsyscall=emulate", Apply: func(c *Config) { c.Vsyscall = "emulate" }},
	{Name: "physmap.xpfo=on", Append: "physmap.xpfo=on", Apply: func(c *Config) { c.XPFO = true }},
	{Name: "pti=on", Append: "pti=on", Apply: func(c *Config) { c.PTI = true }},
}

// VariantFor returns the first variant of base in which when holds.
func VariantFor(when func(Config) bool, base Config) (Variant, Config, bool) {
	for _, v := range Variants {
		c := base
		v.Apply(&c)
		if when == nil || when(c) {
			return v, c, true
		}
	}
	return Variant{}, base, false
}

// DescribeWhen says, for people, which boots a When admits: "" for all,
// "KASLR boots only" where one variant alone admits it, "boots without
// vsyscall=emulate" where one variant alone does not.
func DescribeWhen(when func(Config) bool) string {
	if when == nil {
		return ""
	}
	var in, out []string
	for _, v := range Variants {
		c := Config{Levels: 5, Page1GB: true, SMEP: true, SMAP: true} // -cpu max's
		v.Apply(&c)
		if when(c) {
			in = append(in, v.Name)
		} else {
			out = append(out, v.Name)
		}
	}
	switch {
	case len(out) == 0:
		return ""
	case len(in) == 1:
		return in[0] + " boots only"
	case len(out) == 1:
		return "boots without " + out[0]
	}
	return strings.Join(in, ", ") + " boots"
}

// Registry is the one list: every region in the order it is built and
// proved.
var Registry = []Region{
	{
		Name:   "boot",
		Source: "arch/x86/kernel/setup.c: setup_arch (e820__memory_setup, parse_early_param)",
		Checks: []Check{
			{Name: "option", Claim: "every physmap option on the command line is known and well formed",
				Expect: "the option table of kernel/option"},
			{Name: "e820", Claim: "the firmware's two memory maps agree: fw_cfg's etc/e820 (what physmap builds from) and the PVH start_info memory map; the runtime's window lies in RAM",
				Expect: "the PVH start_info memory map, a second firmware table read by a second parser"},
			{Name: "clock", Claim: "the runtime's clock (TamaGo's TSC-based time) keeps time with the PIT",
				Expect: "a fresh measurement against the PIT, apart from the boot's calibration"},
			{Name: "cpu.nx", Claim: "the CPU has NX, without which Linux's permissions cannot be expressed",
				Expect: "CPUID 0x80000001 EDX[20]"},
			{Name: "paging.mode", Claim: "CR4.LA57 matches the mode Linux would pick: 5-level where CPUID has LA57, unless physmap.levels=4",
				Expect: "CPUID leaf 7 and the command line"},
			{Name: "cpu.state", Claim: "EFER.NXE, CR0.WP and CR4.PGE are set when the proofs run, as Linux sets them",
				Expect: "the control registers and EFER, read back"},
		},
		Injections: []Injection{
			{Name: "pvh-memmap-differs", What: "the PVH start_info memory map's last RAM entry shortened by 2 MiB in memory: the direct map then covers RAM that map does not have",
				Fails: []string{"e820", "walk.directmap", "mmio.directmap"}},
			{Name: "clock-fast", What: "the runtime's clock multiplier (TamaGo's CPU.TimerMultiplier) scaled by 1.5 in memory", Fails: []string{"clock"}},
			{Name: "no-pge", What: "CR4.PGE cleared after the tables are built", Fails: []string{"cpu.state"}},
			{Name: "no-wp", What: "CR0.WP cleared: the kernel's writes ignore read-only pages",
				Fails: []string{"cpu.state", "fault.ro", "region.cpu_entry_area", "region.espfix", "module.load"}},
		},
		Environments: []Environment{
			{Name: "option/unknown", Append: "physmap.bogus=1", What: "an unknown physmap option", Fails: []string{"option"}},
			{Name: "option/malformed-hold", Append: "physmap.hold=x", What: "a malformed value", Fails: []string{"option"}},
			{Name: "option/empty-inject", Append: "physmap.inject=", What: "an empty value, refused like any other", Fails: []string{"option"}},
			{Name: "option/nokaslr-with-seed", Append: "nokaslr physmap.kaslr=1", What: "Linux's nokaslr against an explicit KASLR seed", Fails: []string{"option"}},
			{Name: "cpu/no-nx", CPU: "qemu64,+rdrand,-nx", What: "a CPU without NX", Fails: []string{"cpu.nx"}},
			{Name: "cpu/no-pge", CPU: "max,-pge", What: "a CPU without global pages (CPUID PGE)", Fails: []string{"cpu.state"}},
			{Name: "levels/5-without-la57", CPU: "max,-la57", Append: "physmap.levels=5", What: "5-level paging asked of a CPU without LA57", Fails: []string{"paging.mode"}},
		},
	},
	{
		Name:   "direct",
		Source: "arch/x86/mm/init.c: init_mem_mapping, arch/x86/mm/init_64.c: kernel_physical_mapping_init",
		Early:  true,
		Checks: []Check{
			{Name: "walk.directmap", Claim: "page_offset_base maps all RAM and the ISA range 1:1 and nothing else, at the documented base (or one memory KASLR may pick)",
				Expect: "RAM from the PVH memory map, page_offset_base from mm.rst's table (KASLR: found in the live tables, held to kaslr.c's rules)"},
			{Name: "fault.nx", Claim: "executing kernel text through the direct map faults with an instruction-fetch #PF",
				Expect: "the CPU's page-fault error code"},
		},
		Injections: []Injection{
			{Name: "directmap-hole", What: "the last 2 MiB of RAM unmapped from the direct map (where the processes' frames come from, so making them faults too)",
				Fails: []string{"walk.directmap", "user.ring3", "user.kernel-half", "user.isolation", "user.supervisor", "user.syscall", "user.timer", "smep", "smap", "ret2dir"}},
			{Name: "directmap-exec", What: "the direct map's RAM without NX",
				Fails: []string{"walk.perms", "fault.nx", "mm.check", "wx", "module.load", "module.reach", "module.unload", "ret2dir"}},
			{Name: "old-base", What: "the direct map moved one pgd slot down, to the pre-4.20 base 0xffff880000000000 (0xff10000000000000 in 5-level mode), over the LDT remap (page_offset_base, the variable modules read, keeps the base the kernel was built for, and so does the kernel's own __va, which fills the processes' frames)",
				Fails: []string{"walk.directmap", "region.ldt", "module.reloc", "module.deps", "module.unload",
					"user.ring3", "user.kernel-half", "user.isolation", "user.supervisor", "user.syscall", "user.timer", "smep", "smap", "ret2dir"}},
		},
	},
	{
		Name:   "image",
		Source: "arch/x86/kernel/head_64.S: level2_kernel_pgt, arch/x86/mm/init_64.c: mark_rodata_ro",
		Early:  true,
		Checks: []Check{
			{Name: "walk.image", Claim: "every image page is one frame at _text+offset in the kernel text mapping (__START_KERNEL_map+pa without KASLR), page_offset_base+pa and its identity address",
				Expect: "the image's frames from the linker's symbols, the bases from mm.rst's table (KASLR: found in the live tables)"},
			{Name: "walk.perms", Claim: "text RO+X, rodata RO+NX, data RW+NX through __START_KERNEL_map, and the direct-map aliases of text and rodata RO+NX; __va(__pa(_stext)) != _stext",
				Expect: "Linux's permissions per section, the sections from the linker's symbols"},
			{Name: "content", Claim: "every image page reads the same through __START_KERNEL_map and page_offset_base as at its identity address, where the running code is",
				Expect: "the bytes at the identity address"},
			{Name: "write-through", Claim: "a canary written through __START_KERNEL_map into every data page reads back through page_offset_base",
				Expect: "the canary written"},
			{Name: "exec.kernel", Claim: "code on every page of kernel text that holds a RET runs through __START_KERNEL_map",
				Expect: "the RIP a probe reports, and a fetch that does not fault"},
			{Name: "fault.ro", Claim: "writing kernel text through __START_KERNEL_map faults with a write #PF on a present page",
				Expect: "the CPU's page-fault error code"},
			{Name: "alias.first-insn", Claim: "the kernel's first instruction is one frame and one instruction through all three aliases",
				Expect: "the frame behind each alias in the live tables, the bytes decoded"},
		},
		Injections: []Injection{
			{Name: "kernel-frame-off", What: "the __START_KERNEL_map entries of the second text page and the first data page point one frame off",
				Fails: []string{"walk.image", "content", "write-through"}},
			{Name: "directmap-frame-off", What: "the direct-map entry of _text's page points one frame off",
				Fails: []string{"walk.directmap", "walk.image", "walk.perms", "content", "alias.first-insn"}},
			{Name: "text-writable", What: "kernel text writable through __START_KERNEL_map",
				Fails: []string{"walk.perms", "fault.ro", "mm.check", "wx", "user.syscall"}},
			{Name: "text-nx", What: "the last page of kernel text holding a RET byte NX through __START_KERNEL_map",
				Fails: []string{"walk.perms", "exec.kernel"}},
		},
	},
	{
		Name:   "lowwindow",
		Source: "none in Linux: TamaGo's runtime runs at its physical address, so its 128 MiB window stays identity mapped (physmap's departure)",
		Early:  true,
	},
	{
		Name:   "guard",
		Source: "arch/x86/include/asm/pgtable_64_types.h: GUARD_HOLE_BASE_ADDR (never mapped)",
		Checks: []Check{
			{Name: "region.guard", Claim: "no leaf in the guard hole", Expect: "mm.rst: the guard hole is reserved for the hypervisor"},
			{Name: "fault.guard", Claim: "reading the guard hole faults with a not-present #PF", Expect: "the CPU's page-fault error code"},
		},
		Injections: []Injection{
			{Name: "guard-mapped", What: "a page mapped at the start of the guard hole", Fails: []string{"region.guard", "fault.guard", "mm.check"}},
		},
	},
	{
		Name:   "ldt",
		Source: "arch/x86/kernel/ldt.c: map_ldt_struct (maps only with PTI)",
		Checks: []Check{
			{Name: "region.ldt", Claim: "the LDT remap is empty without PTI (map_ldt_struct maps a process's LDT there only with PTI); with pti=on it holds an LDT, read-only, NX, not global",
				Expect: "map_ldt_struct's early return without X86_FEATURE_PTI, mm.rst's LDT_BASE_ADDR"},
		},
		Injections: []Injection{
			{Name: "ldt-mapped", What: "a page mapped at LDT_BASE_ADDR as map_ldt_struct maps an LDT with PTI", Fails: []string{"region.ldt"}},
		},
	},
	{
		Name:   "vmalloc",
		Source: "mm/vmalloc.c: __vmalloc_node_range, vmap_pages_range; arch/x86/mm/ioremap.c: __ioremap_caller",
		Checks: []Check{
			{Name: "region.vmalloc", Claim: "a vmalloc area at vmalloc_base over scattered frames, each also at page_offset_base+pa, followed by an unmapped guard page",
				Expect: "the tags written through page_offset_base, the frames in the live tables"},
			{Name: "tlb", Claim: "a remapped page is seen by the CPU only after INVLPG", Expect: "the values the CPU reads before and after"},
			{Name: "region.ioremap", Claim: "the LAPIC and the IOAPIC ioremapped once each in the vmalloc area: a 4K page RW PCD GLB NX (ioremap's UC-), then an unmapped guard page; read through it, each answers as the device does",
				Expect: "IA32_APIC_BASE, CPUID leaf 1's initial APIC ID, QEMU's version registers, the CPU's IA32_PAT"},
			{Name: "mmio.directmap", Claim: "no direct-map leaf covers a physical page outside RAM above the ISA range (which init_mem_mapping maps whole): the LAPIC and IOAPIC, no RAM, are not in the direct map",
				Expect: "RAM from the PVH memory map, IA32_APIC_BASE"},
		},
		Injections: []Injection{
			{Name: "vmalloc-guard-mapped", What: "the vmalloc area's guard page mapped", Fails: []string{"region.vmalloc"}},
			{Name: "no-invlpg", What: "a changed entry left without TLB invalidation", Fails: []string{"tlb"}},
			{Name: "vmalloc-misaligned", What: "a page mapped 4 KiB below vmalloc_base, off its 1 GiB grid (with KASLR)",
				Fails: []string{"region.vmalloc", "kaslr.memory"}, When: kaslrOnly},
			{Name: "ioremap-guard-mapped", What: "the guard page after the LAPIC's ioremap mapped", Fails: []string{"region.ioremap"}},
			{Name: "ioremap-cached", What: "the IOAPIC's ioremap without PCD: write-back cached", Fails: []string{"region.ioremap"}},
			{Name: "mmio-in-directmap", What: "the LAPIC's page mapped in the direct map at page_offset_base+0xfee00000, past the end of RAM, where the search for vmalloc_base (the lowest leaf past the direct map's RAM) then finds it",
				Fails: []string{"walk.directmap", "region.vmalloc", "region.ioremap", "mmio.directmap"}},
		},
	},
	{
		Name:   "vmemmap",
		Source: "arch/x86/mm/init_64.c: vmemmap_populate, mm/sparse-vmemmap.c: vmemmap_populate_basepages, mm/page_alloc.c: defer_init",
		Checks: []Check{
			{Name: "region.vmemmap", Claim: "vmemmap_base+pfn*64 maps each frame's descriptor for every section with RAM, and no leaf lies over a section without RAM; those memmap_init writes hold their pfn, those CONFIG_DEFERRED_STRUCT_PAGE_INIT leaves for deferred_init_memmap (from first_deferred_pfn) not yet",
				Expect: "the sections with RAM from the PVH memory map, the pfn each descriptor must hold, first_deferred_pfn by defer_init's rule on that map"},
		},
		Injections: []Injection{
			{Name: "vmemmap-off-by-one", What: "one vmemmap page backed by the frame after its own", Fails: []string{"region.vmemmap"}},
			{Name: "vmemmap-deferred-early", What: "the descriptor at first_deferred_pfn written with its pfn before deferred_init_memmap", Fails: []string{"region.vmemmap"}},
		},
	},
	{
		Name:   "cpu_entry_area",
		Source: "arch/x86/mm/cpu_entry_area.c: setup_cpu_entry_area; arch/x86/kernel/cpu/common.c: cpu_init; arch/x86/kernel/idt.c: idt_map_in_cea",
		Checks: []Check{
			{Name: "region.cpu_entry_area", Claim: "the CPU uses it: IDTR and GDTR are its read-only IDT and GDT, TR a busy TSS descriptor for its read-only TSS; Linux's 16 pages for one CPU, #DF, NMI, #DB and #MC on IST stacks between unmapped guard pages, a fault delivered through it",
				Expect: "SIDT, SGDT and STR; the GDT's descriptor and the TSS's fields decoded; TamaGo's own IDT"},
		},
		Injections: []Injection{
			{Name: "cpu-entry-gdt-writable", What: "the cpu_entry_area's GDT alias writable", Fails: []string{"region.cpu_entry_area"}},
			{Name: "cpu-entry-ist-off", What: "the #DF gate of the IDT in use without its IST stack", Fails: []string{"region.cpu_entry_area"}},
			{Name: "cpu-entry-idt-low", What: "IDTR loaded with TamaGo's own IDT in the low window again", Fails: []string{"region.cpu_entry_area"}},
		},
	},
	{
		Name:   "espfix",
		Source: "arch/x86/kernel/espfix_64.c: init_espfix_bsp, init_espfix_random, init_espfix_ap",
		Checks: []Check{
			{Name: "region.espfix", Claim: "the ministack page read-only at 65536 places, every value of address bits 16-31 in a 4 GiB window of the ESPFIX slot (at ESPFIX_BASE_ADDR without KASLR), through pte, pmd and pud pages shared as init_espfix_ap shares them, under read-only NX pud and pmd entries",
				Expect: "the region's first leaf in the live tables and espfix_base_addr's arithmetic; the IRET frame written through page_offset_base"},
		},
		Injections: []Injection{
			{Name: "espfix-clone-off", What: "one espfix pte backed by another frame (2048 clones, through the shared pmd entries)", Fails: []string{"region.espfix"}},
		},
	},
	{
		Name:   "efi",
		Source: "arch/x86/platform/efi/efi_64.c: efi_map_region (none on a PVH boot)",
		Checks: []Check{
			{Name: "region.efi", Claim: "the EFI region is empty: a PVH boot has no EFI runtime services", Expect: "mm.rst, and the absence of EFI on PVH"},
		},
		Injections: []Injection{
			{Name: "efi-mapped", What: "a page mapped in the EFI region", Fails: []string{"region.efi"}},
		},
	},
	{
		Name:   "modules",
		Source: "kernel/module/main.c: load_module, arch/x86/kernel/module.c: module_alloc",
		Checks: []Check{
			{Name: "module.load", Claim: "each module's groups mapped 4K over the frames the loader copied them to, text ro x, rodata and ro_after_init ro NX, data RW NX, their direct-map aliases NX and read-only but for data, a guard page after each, the frames not one run",
				Expect: "the frames the loader was given; module_enable_ro/nx's permissions per group"},
			{Name: "module.reloc", Claim: "reloc's functions, called at their module addresses, return what each relocation kind gives: page_offset_base through PC32, the console write's return through PLT32, &page_offset_base through 64, reloc_words through 32S",
				Expect: "page_offset_base and _text found in the live tables, the Go linker's address of the variable, the constants of reloc.c"},
			{Name: "module.deps", Claim: "deps's function calls reloc's export reloc_add and counts itself in reloc's exported reloc_calls; reloc cannot unload while deps uses it",
				Expect: "page_offset_base found in the live tables plus deps.c's DEPS_ADDEND; reloc_calls read before and after"},
			{Name: "module.reach", Claim: "the loader refuses reloc at vmalloc and at its frames' direct-map address, outside the top 2 GiB its 32S relocations reach; its code fetched through the direct map faults (NX)",
				Expect: "the placements' distance from _text found in the live tables; the CPU's fault"},
			{Name: "module.unload", Claim: "unloading newest first unmaps each module's range and guard page, gives every frame back and makes their direct-map aliases RW NX again",
				Expect: "the live tables after unloading; the allocator's free count"},
		},
		Injections: []Injection{
			{Name: "module-data-frame-off", What: "reloc's data page mapped to a zeroed frame, not the one the loader filled",
				Fails: []string{"module.load", "module.reloc"}},
			{Name: "module-alias-rw", What: "the direct-map alias of reloc's text frame made writable",
				Fails: []string{"module.load"}},
			{Name: "module-alias-exec", What: "the direct-map alias of reloc's text frame made executable",
				Fails: []string{"module.load", "module.reach"}},
			{Name: "module-pob-changed", What: "the kernel's page_offset_base variable 1 GiB off, after the modules' init",
				Fails: []string{"module.reloc", "module.deps"}},
			{Name: "module-deps-patched", What: "deps_call's first bytes patched to return 0 (XOR EAX, EAX; RET)",
				Fails: []string{"module.deps"}},
			{Name: "module-guard-mapped", What: "the guard page after the last module mapped",
				Fails: []string{"module.load", "module.unload"}},
			{Name: "module-at-modules-vaddr", What: "a page mapped at MODULES_VADDR itself, below KASLR's 1 to 1024 pages (with KASLR)",
				Fails: []string{"kaslr.image"}, When: kaslrOnly},
		},
	},
	{
		Name:   "fixmap",
		Source: "arch/x86/include/asm/fixmap.h: __set_fixmap; arch/x86/kernel/apic/apic.c: register_lapic_address; arch/x86/kernel/apic/io_apic.c: io_apic_init_mappings",
		Checks: []Check{
			{Name: "region.fixmap", Claim: "FIX_APIC_BASE and FIX_IO_APIC_BASE_0 map the LAPIC and the IOAPIC RW PWT PCD GLB NX (UC), as set_fixmap_nocache does, and nothing else is in the fixmap; through them the devices answer",
				Expect: "fixmap.h's enum for Debian's configuration, IA32_APIC_BASE, CPUID leaf 1's initial APIC ID, QEMU's version registers, the CPU's IA32_PAT"},
		},
		Injections: []Injection{
			{Name: "fixmap-apic-cached", What: "FIX_APIC_BASE's pte without PCD and PWT: write-back cached", Fails: []string{"region.fixmap"}},
			{Name: "fixmap-apic-ram", What: "FIX_APIC_BASE backed by a RAM frame (the LAPIC timer, driven through it as Linux drives its LAPIC, then never fires, and the spinner runs its loop out)",
				Fails: []string{"region.fixmap", "user.timer"}},
			{Name: "fixmap-apic-stale-tlb", What: "FIX_APIC_BASE pointed at a zeroed RAM frame, read, and pointed back at the LAPIC without INVLPG: the tables right, the TLB not",
				Fails: []string{"region.fixmap"}},
		},
	},
	{
		Name:   "text_poke",
		Source: "arch/x86/mm/init.c: poking_init, arch/x86/kernel/alternative.c: __text_poke (poking_mm, a temporary mm)",
		Checks: []Check{
			{Name: "text_poke", Claim: "kernel text patched as __text_poke does: mapped writable and not global at poking_addr in poking_mm, whose kernel half is the kernel's, entered by loading CR3; the pte cleared and flushed so the alias faults, and absent from the kernel's tables",
				Expect: "the patched routine's result, poking_init's rules for poking_addr and __text_poke's protection held to the tables in CR3, the faults after pte_clear"},
		},
		Injections: []Injection{
			{Name: "poke-no-flush", What: "poking_addr's pte cleared without INVLPG", Fails: []string{"text_poke"}},
			{Name: "poke-kernel-alias", What: "a writable alias of kernel text at poking_addr in the kernel's own tables", Fails: []string{"text_poke"}},
		},
	},
	{
		Name:   "vsyscall",
		Source: "arch/x86/entry/vsyscall/vsyscall_64.c: map_vsyscall",
		Checks: []Check{
			{Name: "region.vsyscall", Claim: "the legacy vsyscall page user-readable at VSYSCALL_ADDR with U/S on every level, not executable",
				Expect: "the entry points written through page_offset_base, decoded", When: vsyscallEmulate},
			{Name: "region.vsyscall.unmapped", Claim: "no page at VSYSCALL_ADDR and no U/S on the entries above it, as map_vsyscall leaves it with vsyscall=none (Debian's default) and xonly",
				Expect: "map_vsyscall's modes, mm.rst's VSYSCALL_ADDR, the CPU's page-fault error code", When: vsyscallUnmapped},
		},
		Injections: []Injection{
			{Name: "vsyscall-no-user", What: "the vsyscall page without USR", Fails: []string{"region.vsyscall"}, When: vsyscallEmulate},
			{Name: "vsyscall-mapped", What: "the vsyscall page mapped as vsyscall=emulate maps it", Fails: []string{"region.vsyscall.unmapped"}, When: vsyscallUnmapped},
			{Name: "vsyscall-user-bits", What: "U/S set on the top-level entry above VSYSCALL_ADDR, as set_vsyscall_pgtable_user_bits sets it, without the page",
				Fails: []string{"region.vsyscall.unmapped"}, When: vsyscallUnmapped},
		},
	},
	{
		Name:   "kaslr",
		Source: "arch/x86/mm/kaslr.c: kernel_randomize_memory, arch/x86/boot/compressed/kaslr.c: choose_random_location",
		Checks: []Check{
			{Name: "kaslr.memory", Claim: "page_offset_base, vmalloc_base and vmemmap_base as found in the live tables are 1 GiB aligned, ordered, far enough apart for their regions and inside kaslr.c's range",
				Expect: "the bases found in the live tables, kaslr.c's rules", When: kaslrOnly},
			{Name: "kaslr.image", Claim: "the image in a 2 MiB-aligned slot of the 1 GiB kernel text mapping, the modules 1 to 1024 pages into MODULES_VADDR",
				Expect: "where the live tables map _text and the module", When: kaslrOnly},
		},
	},
	{
		Name:   "audit",
		Source: "arch/x86/mm/dump_pagetables.c: ptdump_walk_pgd_level_checkwx",
		Checks: []Check{
			{Name: "mm.check", Claim: "the live tables' structure: reserved bits clear, huge pages aligned, no table shared or mapped outside the aliases, all owned, no W+X leaf",
				Expect: "the x86-64 paging rules (SDM Vol. 3A 4.5), read from the tables in CR3"},
			{Name: "wx", Claim: "no W+X page in the kernel half or the low window, as CONFIG_DEBUG_WX audits",
				Expect: "the live tables"},
		},
	},
	{
		Name:   "user",
		Source: "fs/binfmt_elf.c: load_elf_binary; arch/x86/mm/pgtable.c: pgd_alloc; arch/x86/kernel/cpu/common.c: syscall_init; arch/x86/entry/entry_64.S: entry_SYSCALL_64",
		Checks: []Check{
			{Name: "user.ring3", Claim: "two processes of one static C program ran at CPL 3 and printed through write",
				Expect: "__USER_CS and __USER_DS in the exception frames the CPU pushed and in CS read in ring 3; probe.c's greeting"},
			{Name: "user.kernel-half", Claim: "every process's kernel-half top-level entries are the kernel's (pgd_alloc's copy), and kernel addresses translate identically under each process's root",
				Expect: "the top-level table in CR3 while the kernel runs; the live tables' translations"},
			{Name: "user.isolation", Claim: "the same user address maps a different frame in each process; each reads back only its own data",
				Expect: "the program's symbol table, probe.c's values, the frames read through page_offset_base"},
			{Name: "user.supervisor", Claim: "from ring 3, the process's own page through the direct map, kernel text and kernel data are present but supervisor-only (#PF P=1 U=1, W on the write; under PTI's user copy not present at all, P=0); a non-canonical address raises #GP",
				Expect: "the SDM's error codes as the CPU pushed them and as each process was handed them; a kernel word no process may change"},
			{Name: "user.syscall", Claim: "a system call enters the kernel's entry stub through the kernel text mapping with CR3 unchanged (under PTI: entered under the user copy, run in the kernel copy), and write copies the buffer from its user address",
				Expect: "CR3 as the entry stub read it, MSR_LSTAR and the stub's frame from the linker, the buffer's frame through page_offset_base"},
			{Name: "smep", Claim: "with CR4.SMEP (set where CPUID has it, as setup_smep does), the kernel calling code on a process's user page faults",
				Expect: "the SDM's error code for a supervisor fetch from a user page (P I)", When: smepOn},
			{Name: "smap", Claim: "with CR4.SMAP (set where CPUID has it, as setup_smap does), the kernel reading a process's page faults, and copy_from_user (STAC, CLAC) reads it",
				Expect: "the SDM's error code for a supervisor read of a user page (P); the frame behind it read through page_offset_base", When: smapOn},
			{Name: "ret2dir", Claim: "ret2dir (Kemerlis et al., USENIX Security 2014): code a process writes into its own page, out of the kernel's reach at its user address under SMAP, is readable at page_offset_base+pa; calling it there faults, the direct map being NX",
				Expect: "probe.c's payload bytes, the frame in the process's tables, the SDM's error codes", When: ret2dirOn},
			{Name: "xpfo", Claim: "with physmap.xpfo=on (eXclusive Page Frame Ownership, ret2dir's defence), every frame a process owns is out of the direct map (its large pages split, the TLB flushed), so ret2dir's read faults; a freed process's frames are back",
				Expect: "the live tables, the CPU's not-present fault, the frames the processes were given", When: xpfoOn},
			{Name: "user.timer", Claim: "a process spinning in ring 3 (IF set, as start_thread_common leaves it) is ended by the LAPIC timer, one-shot at LOCAL_TIMER_VECTOR as __setup_APIC_LVTT sets it, after 20 ms in ring 3 without entering the kernel; the other processes run on to their exits",
				Expect: "the CPU's interrupt frame (vector, CS, RFLAGS, RIP), the program's text pages from its ELF headers, the LAPIC's current count, the runtime's clock, the order the processes ended in"},
			{Name: "pti", Claim: "with pti=on, each process's root is PTI's 8 KiB pair: system calls enter under the user copy (CR3 bit 12) and the kernel runs under the kernel copy; the user copy's kernel half maps only the cpu_entry_area, espfix and the entry text (no direct map, kernel image, kernel data or module), its user half the process's pages; the kernel copy's user entries are NX at the top (arch/x86/mm/pti.c); no kernel mapping is global but the cpu_entry_area's and the entry text's (probe_page_size_mask, cea_set_pte, pti_clone_pgtable), so the CR3 switch to the user copy leaves none of the rest in the TLB",
				Expect: "CR3 as the entry stubs found it and as the kernel ran; mm.rst's cpu_entry_area and espfix ranges; the linker's entry-text symbols; page_offset_base, _text and a module from the live tables; every leaf of the kernel copy, walked", When: ptiOn},
		},
		Injections: []Injection{
			{Name: "user-greeting-patched", What: "process 1's greeting overwritten in its data frame through the direct map", Fails: []string{"user.ring3"}},
			{Name: "user-kernel-half-differs", What: "process 2's top-level entry for vmemmap_base cleared", Fails: []string{"user.kernel-half"}},
			{Name: "user-shared-frame", What: "process 2's secret_page mapped to process 1's frame", Fails: []string{"user.isolation"}},
			{Name: "user-directmap-user", What: "U/S set on every entry of the walk to process 1's stack page through the direct map", Fails: []string{"user.supervisor"}},
			{Name: "no-smep", What: "CR4.SMEP cleared while the kernel calls the process's code", Fails: []string{"smep"}, When: smepOn},
			{Name: "no-smap", What: "CR4.SMAP cleared while the kernel reads the process's pages", Fails: []string{"smap", "ret2dir"}, When: ret2dirOn},
			{Name: "ret2dir-directmap-exec", What: "the direct-map entry of the payload's frame without NX", Fails: []string{"ret2dir"}, When: ret2dirOn},
			{Name: "xpfo-frame-mapped", What: "the payload's frame mapped back into the direct map while process 1 owns it", Fails: []string{"xpfo"}, When: xpfoOn},
			{Name: "user-lstar-cr3", What: "MSR_LSTAR pointed at an entry stub that loads the kernel's CR3 first, as PTI's does, with no user copy to come from: copy_from_user then faults",
				Fails: []string{"user.syscall", "user.ring3"}, When: ptiOff},
			{Name: "pti-directmap-shared", What: "the direct map's 512 GiB entry shared into every process's user copy", Fails: []string{"pti", "user.supervisor"}, When: ptiOn},
			{Name: "timer-masked", What: "the LAPIC's LVT timer entry masked", Fails: []string{"user.timer"}},
			{Name: "pti-global-leaf", What: "G set on the direct map's leaf over the image's data", Fails: []string{"pti"}, When: ptiOn},
		},
	},
}

// Manifest returns the names of the checks a boot with configuration c must
// show, in registry order.
func Manifest(c Config) []string {
	var out []string
	for _, r := range Registry {
		for _, ch := range r.Checks {
			if ch.When == nil || ch.When(c) {
				out = append(out, ch.Name)
			}
		}
	}
	return out
}

// LookupInjection returns the injection called name and its region.
func LookupInjection(name string) (Injection, Region, bool) {
	for _, r := range Registry {
		for _, in := range r.Injections {
			if in.Name == name {
				return in, r, true
			}
		}
	}
	return Injection{}, Region{}, false
}

// InjectionNames lists every injection in registry order.
func InjectionNames() []string {
	var out []string
	for _, r := range Registry {
		for _, in := range r.Injections {
			out = append(out, in.Name)
		}
	}
	return out
}

// LookupCheck returns the check called name and its region.
func LookupCheck(name string) (Check, Region, bool) {
	for _, r := range Registry {
		for _, ch := range r.Checks {
			if ch.Name == name {
				return ch, r, true
			}
		}
	}
	return Check{}, Region{}, false
}

// Missing returns the checks of manifest that results lack, in manifest
// order.
func Missing(manifest []string, results []Result) []string {
	seen := map[string]bool{}
	for _, r := range results {
		seen[r.Check] = true
	}
	var out []string
	for _, n := range manifest {
		if !seen[n] {
			out = append(out, n)
		}
	}
	return out
}

// Unlisted returns the checks of results that passed although they are not
// in manifest: a check that appears must be listed, so that its absence
// can be noticed. Failures outside the manifest (an option error, a table
// that could not be built) are errors, not checks, and are not returned.
func Unlisted(manifest []string, results []Result) []string {
	var out []string
	for _, r := range results {
		if r.Verdict == Pass && !slices.Contains(manifest, r.Check) && !slices.Contains(out, r.Check) {
			out = append(out, r.Check)
		}
	}
	return out
}
