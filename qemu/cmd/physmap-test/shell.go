package main

import "github.com/physmap/physmap/qemu"

// The kernel's first instruction: TamaGo links it at TEXT_START
// (Makefile: -T 0x10200000), and __START_KERNEL_map maps physical 0.
const (
	textPA   = "0x10200000"
	textVA   = "0xffffffff90200000"
	direct4  = "0xffff888010200000" // page_offset_base+pa, 4-level
	direct5  = "0xff11000010200000" // page_offset_base+pa, 5-level
	guardVA4 = "0xffff800000000000" // the guard hole, never mapped
)

// ex is one line typed and the regexp its answer must match.
func ex(send, expect string) qemu.Exchange { return qemu.Exchange{Send: send, Expect: expect} }

// shellCases boot with physmap.shell=1 and drive the serial shell: every
// command, symbols and region names, every kind of bad input, history and
// escape sequences, then exit, quit or ^D, which must end QEMU with the
// status of the boot's self-test (and a failed boot stays failed).
var shellCases = []Case{
	{Name: "shell/4-level", Memory: "2G", CPU: "max,-la57", Append: "physmap.shell=1 physmap.ptdump=0", Shell: []qemu.Exchange{
		ex("help", `(?m)^  walk VA +each level's table.*\n(.*\n)*  sym \[VA\] .*\n(.*\n)*  quit +the same as exit\nAddresses: .*\nKeys: .*\n$`),
		ex("regions", `(?m)^ ffffffff80000000 \| ffffffffbfffffff \| +1 GB \| kernel text mapping`),
		ex("walk "+textVA, `^`+textVA+` \(_text\) in kernel text mapping, mapped to physical address 0 \(__START_KERNEL_map\) \(4-level, top table 0x[0-9a-f]+\)\n`+
			`  level table +index  entry\n  pgd +0x[0-9a-f]{16} +511  .*\n  pud +0x[0-9a-f]{16} +510  .*\n  pmd +0x[0-9a-f]{16} +129  .*\n`+
			`  pte +0x[0-9a-f]{16} +0  0x[0-9a-f]+ P .*addr=`+textPA+`\nPA `+textPA+` \(4K page at `+textPA+`, effective ro GLB x\)\n$`),
		ex("walk _stext", `^`+textVA+` \(_text\) in kernel text mapping(.*\n)+PA `+textPA+` \(4K page at `+textPA+`, effective ro GLB x\)\n$`),
		ex("walk _stext+0x10", `\nPA 0x10200010 \(4K page at `+textPA+`, effective ro GLB x\)\n$`),
		ex("aliases "+textPA, `^`+textPA+` \(frame `+textPA+`\) is mapped at 3 virtual addresses:\n`+
			`  0x0000000010200000  4K pte  ro x .*\n  `+direct4+`  4K pte  ro GLB NX .*\n  `+textVA+`  4K pte  ro GLB x .*\n$`),
		ex("aliases _stext", `^_stext is `+textVA+`, which maps `+textPA+`\n`+textPA+` \(frame `+textPA+`\) is mapped at 3 virtual addresses:\n`),
		ex("sym _stext", `^`+textVA+`  _text, _stext  \(kernel text mapping, mapped to physical address 0 \(__START_KERNEL_map\)\)\n$`),
		ex("\x1b[A", `^`+textVA+`  _text, _stext  \(kernel text mapping`), // the up arrow: sym _stext again
		ex("sym", `(?m)^0xffff888000000000  page_offset_base +direct\n(.*\n)*`+textVA+`  _stext +text\n`),
		ex("x "+textVA+" 16", `^`+textVA+`  ([0-9a-f]{2} ){8} ([0-9a-f]{2} ){8} \|.{16}\|\n$`),
		ex("x _stext 16", `^`+textVA+`  ([0-9a-f]{2} ){8} ([0-9a-f]{2} ){8} \|.{16}\|\n$`),
		ex("x "+guardVA4, `^error: reading `+guardVA4+`: #PF cr2=`+guardVA4+` code=0x0 \(not-present read\) rip=0x[0-9a-f]+\n$`),
		ex("dis "+textVA+" 1", `^`+textVA+`  [0-9a-f]{2}( [0-9a-f]{2})* +[a-z][a-z0-9]* [^()]+\n$`),
		ex("dis _text 1", `^`+textVA+`  [0-9a-f]{2}( [0-9a-f]{2})* +[a-z][a-z0-9]* [^()]+\n$`),
		ex("ptdump __START_KERNEL_map", `^ptdump of kernel text mapping.*\n---\[ High Kernel Mapping \]---\n(?s:.*)`+
			`\n`+textVA+`-0xffffffff9[0-9a-f]{7} +\d+K +ro +GLB x  pte\n`),
		ex("ptdump direct", `^ptdump of direct mapping of all physical memory \(page_offset_base\) \[0xffff888000000000-0xffffc87fffffffff\]\n`+
			`---\[ Low Kernel Mapping \]---\n0xffff888000000000-`),
		ex("ptdump cpu_entry_area", `^ptdump of cpu_entry_area mapping \(CPU_ENTRY_AREA_BASE\) \[0xfffffe0000000000-0xfffffe7fffffffff\]\n`+
			`---\[ CPU entry Area \]---\n(0xfffffe[0-9a-f]{10}-.*\n)+$`),
		// FIX_IO_APIC_BASE_0 and FIX_APIC_BASE, uncached: one run, or two
		// where their Accessed and Dirty bits differ (which break runs,
		// as in Linux's note_page).
		ex("ptdump FIXMAP", `^ptdump of kernel-internal fixmap range, variable size and offset \(FIXADDR_START\) \[(.*\n)*`+
			`(0xffffffffff5fc000-0xffffffffff5fe000 +8K +RW PWT PCD +GLB NX pte\n|`+
			`0xffffffffff5fc000-0xffffffffff5fd000 +4K +RW PWT PCD +GLB NX pte\n0xffffffffff5fd000-0xffffffffff5fe000 +4K +RW PWT PCD +GLB NX pte\n)`),
		// vsyscall=none, the default: no page.
		ex("ptdump vsyscall", `^ptdump of legacy vsyscall ABI \(VSYSCALL_ADDR\) \[0xffffffffff600000-0xffffffffff600fff\]\n(.*\n)*\(nothing mapped\)\n$`),
		// The modules as /proc/modules lists them, newest first, and their
		// symbols wherever an address is taken.
		ex("lsmod", `^deps \d+ 0 - Live 0xffffffffc0005000\nreloc \d+ 1 deps, Live 0xffffffffc0000000\n$`),
		ex("sym reloc_pc32", `^0xffffffffc000[0-9a-f]{4}  reloc_pc32  \(module mapping space`),
		ex("walk deps_call", `^0xffffffffc0005[0-9a-f]{3} \(deps_call\) in module mapping space(.*\n)+PA 0x[0-9a-f]+ \(4K page at 0x[0-9a-f]+, effective ro GLB x\)\n$`),
		ex("wx", `^kernel half .*: x86/mm: Checked W\+X mappings: passed, no W\+X pages found\.\nlower half .*: x86/mm: Checked W\+X mappings: passed, no W\+X pages found\.\n$`),
		ex("selftest", `(?m)^PASS walk\.image: .*\n(.*\n)*selftest: \d+ passed, 0 failed, manifest \d+\n`+
			`physmap: the boot passed \(\d+ of \d+ checks\); selftest now: \d+ passed, 0 failed; exit status: pass\n$`),
		// A lone ESC is dropped and the byte after it kept.
		ex("\x1bhelp walk", `^walk VA: each level's table, index and entry for VA, down to the page or the hole\n$`),
		ex("walk zz", `^error: "zz" is not a hex address or a known symbol \(sym lists them\)\n$`),
		ex("walk _sttext", `^error: "_sttext" is not a hex address or a known symbol: did you mean _stext\? \(sym lists them\)\n$`),
		ex("walk _end+0xffffffffffffffff", `^error: "_end\+0xffffffffffffffff" overflows: 0x[0-9a-f]+ \+ 0xffffffffffffffff is past 2\^64\n$`),
		ex("walk 0x0000800000000000", `^error: 0x0000800000000000 is not canonical in 4-level mode\n$`),
		// An unmapped address shows every level walked, then the hole.
		ex("walk "+guardVA4, `^`+guardVA4+` in ... guard hole, also reserved for hypervisor \(GUARD_HOLE_BASE_ADDR\) \(4-level, top table 0x[0-9a-f]+\)\n`+
			`  level .*\n  pgd +0x[0-9a-f]{16} +256  0x0000000000000000 not-present\n`+
			`error: `+guardVA4+` is not mapped \(pgd entry 256 of the table at 0x[0-9a-f]+ is not present\)\n$`),
		ex("walk MODULES_VADDR+0x200000", `\n  pgd .* P .*\n  pud .* P .*\n  pmd +0x[0-9a-f]{16} +\d+  0x0000000000000000 not-present\n`+
			`error: 0x[0-9a-f]{16} is not mapped \(pmd entry \d+ of the table at 0x[0-9a-f]+ is not present\)\n$`),
		ex("aliases 0xffffffffffffffff", `^error: 0xffffffffffffffff is beyond the \d+-bit physical address space\n$`),
		ex("x "+textVA+" 0", `^error: "0" is not a count from 1 to 4096\n$`),
		ex("ptdump nowhere", `^error: no region "nowhere": give one of user, guard, ldt, direct, vmalloc, vmemmap, kasan, cpu_entry_area, espfix, efi, `+
			`text, modules, fixmap, vsyscall, or a marker, description, symbol or address \(help ptdump\)\n$`),
		ex("walk", `^error: usage: walk VA\n$`),
		ex("foo", `^error: unknown command "foo" \(try help\)\n$`),
		ex("quit", `^physmap: exit with the self-test's status: pass\n`),
	}},
	{Name: "shell/5-level", Memory: "2G", CPU: "max", Append: "physmap.shell=1 physmap.ptdump=0", Shell: []qemu.Exchange{
		ex("walk "+textVA, `\(5-level, top table 0x[0-9a-f]+\)\n  level .*\n  pgd .*\n  p4d .*\n  pud .*\n  pmd .*\n  pte .*\nPA `+textPA+` \(4K page`),
		ex("aliases "+textPA, `is mapped at 3 virtual addresses:\n  0x0000000010200000 .*\n  `+direct5+` .*\n  `+textVA+` .*\n$`),
		ex("ptdump direct", `^ptdump of direct mapping of all physical memory \(page_offset_base\) \[0xff11000000000000-`),
		ex("walk 0x0100000000000000", `^error: 0x0100000000000000 is not canonical in 5-level mode\n$`),
		// Under process 1's tables: its program at 0x400000 (the ELF
		// header opens its first segment), read with CR3 at its root.
		ex("use 1", `^using process 1's tables \(top table 0x[0-9a-f]+\): `),
		ex("walk 0x400000", `^0x0000000000400000 in user-space virtual memory, different per mm \(5-level, process 1's tables, top table 0x[0-9a-f]+\)\n(.*\n)+PA 0x[0-9a-f]+ \(4K page at 0x[0-9a-f]+, effective USR `),
		ex("x 0x400000 4", `^0x0000000000400000  7f 45 4c 46 +\|\.ELF\|\n$`),
		ex("x "+textVA+" 1", `^`+textVA+`  [0-9a-f]{2} `),
		ex("use kernel", `^using the kernel's tables \(CR3\)\n$`),
		ex("x 0x400000 4", `^error: reading 0x0000000000400000: #PF cr2=0x400000 code=0x0 \(not-present read\)`),
		// ^D on an empty line ends the shell like exit.
		ex("\x04", `physmap: end of input\nphysmap: exit with the self-test's status: pass\n`),
	}},
	// PTI's user copy: its kernel half holds kernel text only for the
	// entry text, and the CPU cannot read through it from the kernel.
	{Name: "shell/pti", Memory: "2G", CPU: "max", Append: "physmap.shell=1 pti=on", Shell: []qemu.Exchange{
		ex("use 2 user", `^using process 2's PTI user copy \(top table 0x[0-9a-f]+\): .*; x and dis cannot, since the kernel's own code is not mapped there\n$`),
		ex("ptdump text", `^ptdump of kernel text mapping.*\n---\[ High Kernel Mapping \]---\n(0x[0-9a-f]+-0x[0-9a-f]+ +\d+[KMG] +(pmd|pte)\n)*0xffffffff9[0-9a-f]{7}-0xffffffff9[0-9a-f]{7} +[48]K +ro +GLB x  pte\n(0x[0-9a-f]+-0x[0-9a-f]+ +\d+[KMG] +(pmd|pte)\n)*$`),
		ex("walk "+direct5, `\nerror: `+direct5+` is not mapped \(pgd entry 273 of the table at 0x[0-9a-f]+ is not present\)\n$`),
		ex("x 0x400000", `^error: x reads through the CPU, which cannot run the kernel under process 2's PTI user copy`),
		ex("use 1 user", `^using process 1's PTI user copy`),
		ex("exit", `^physmap: exit with the self-test's status: pass\n`),
	}},
	// A boot that failed a check: the shell's selftest, which runs the
	// whole manifest again, fails it again; the shell says the boot failed
	// and exits with the boot's failure.
	{Name: "shell/failed-boot", Memory: "2G", CPU: "max,-la57", Append: "physmap.shell=1 physmap.bogus=1", Expect: qemu.ExpectFailing("option"), Shell: []qemu.Exchange{
		ex("selftest", `(?m)^selftest: \d+ passed, 1 failed, manifest \d+\nphysmap: the boot failed 1 of \d+ checks; selftest now: \d+ passed, 1 failed; exit status: fail\n$`),
		ex("exit", `^physmap: exit with the self-test's status: fail \(the boot failed 1 of \d+ checks\)\n`),
	}},
}
