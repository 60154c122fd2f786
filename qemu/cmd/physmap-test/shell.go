package main

import "github.com/physmap/physmap/qemu"

// The kernel's first instruction: TamaGo links it at TEXT_START
// (Makefile: -T 0x10010000), and __START_KERNEL_map maps physical 0.
const (
	textPA   = "0x10010000"
	textVA   = "0xffffffff90010000"
	direct4  = "0xffff888010010000" // page_offset_base+pa, 4-level
	direct5  = "0xff11000010010000" // page_offset_base+pa, 5-level
	guardVA4 = "0xffff800000000000" // the guard hole, never mapped
)

// ex is one line typed and the regexp its answer must match.
func ex(send, expect string) qemu.Exchange { return qemu.Exchange{Send: send, Expect: expect} }

// shellCases boot with physmap.shell=1 and drive the serial shell: every
// command, every kind of bad input, then exit, which must end QEMU with the
// self-test's status (pass).
var shellCases = []Case{
	{Name: "shell/4-level", Memory: "2G", CPU: "max,-la57", Append: "physmap.shell=1 physmap.ptdump=0", Shell: []qemu.Exchange{
		ex("help", `(?m)^  walk VA +walk the live tables.*\n(.*\n)*  exit +end`),
		ex("regions", `(?m)^ ffffffff80000000 \| ffffffff9fffffff \| +512 MB \| kernel text mapping`),
		ex("walk "+textVA, `^`+textVA+` in kernel text mapping, mapped to physical address 0 \(__START_KERNEL_map\) \(4-level, top table 0x[0-9a-f]+\)\n`+
			`  level table +index  entry\n  pgd +0x[0-9a-f]{16} +511  .*\n  pud +0x[0-9a-f]{16} +510  .*\n  pmd +0x[0-9a-f]{16} +128  .*\n`+
			`  pte +0x[0-9a-f]{16} +16  0x[0-9a-f]+ P .*addr=`+textPA+`\nPA `+textPA+` \(4K page at `+textPA+`, effective ro GLB x\)\n$`),
		ex("aliases "+textPA, `^`+textPA+` \(frame `+textPA+`\) is mapped at 3 virtual addresses:\n`+
			`  0x0000000010010000  4K pte  ro x .*\n  `+direct4+`  4K pte  ro GLB NX .*\n  `+textVA+`  4K pte  ro GLB x .*\n$`),
		ex("x "+textVA+" 16", `^`+textVA+`  ([0-9a-f]{2} ){8} ([0-9a-f]{2} ){8} \|.{16}\|\n$`),
		ex("x "+guardVA4, `^error: reading `+guardVA4+`: #PF cr2=`+guardVA4+` code=0x0 \(not-present read\) rip=0x[0-9a-f]+\n$`),
		ex("dis "+textVA+" 1", `^`+textVA+`  [0-9a-f]{2}( [0-9a-f]{2})* +[a-z][a-z0-9]* [^()]+\n$`),
		ex("ptdump __START_KERNEL_map", `^ptdump of kernel text mapping.*\n---\[ High Kernel Mapping \]---\n(?s:.*)`+
			`\n`+textVA+`-0xffffffff9[0-9a-f]{7} +\d+K +ro +GLB x  pte\n`),
		ex("wx", `^kernel half .*: x86/mm: Checked W\+X mappings: passed, no W\+X pages found\.\nlower half .*: x86/mm: Checked W\+X mappings: passed, no W\+X pages found\.\n$`),
		ex("selftest", `(?m)^PASS walk\.image: .*\n(.*\n)*selftest: \d+ passed, 0 failed\n$`),
		ex("walk zz", `^error: "zz" is not a hex address\n$`),
		ex("walk 0x0000800000000000", `^error: 0x0000800000000000 is not canonical in 4-level mode\n$`),
		ex("walk "+guardVA4, `^error: `+guardVA4+` is not mapped \(pgd entry 256 of the table at 0x[0-9a-f]+ is not present\)\n$`),
		ex("aliases 0xffffffffffffffff", `^error: 0xffffffffffffffff is beyond the \d+-bit physical address space\n$`),
		ex("x "+textVA+" 0", `^error: "0" is not a count from 1 to 4096\n$`),
		ex("ptdump nowhere", `^error: no region "nowhere" `),
		ex("walk", `^error: usage: walk VA\n$`),
		ex("foo", `^error: unknown command "foo" \(try help\)\n$`),
		ex("exit", `^physmap: exit with the self-test's status: pass\n`),
	}},
	{Name: "shell/5-level", Memory: "2G", CPU: "max", Append: "physmap.shell=1 physmap.ptdump=0", Shell: []qemu.Exchange{
		ex("walk "+textVA, `\(5-level, top table 0x[0-9a-f]+\)\n  level .*\n  pgd .*\n  p4d .*\n  pud .*\n  pmd .*\n  pte .*\nPA `+textPA+` \(4K page`),
		ex("aliases "+textPA, `is mapped at 3 virtual addresses:\n  0x0000000010010000 .*\n  `+direct5+` .*\n  `+textVA+` .*\n$`),
		ex("walk 0x0100000000000000", `^error: 0x0100000000000000 is not canonical in 5-level mode\n$`),
		ex("exit", `status: pass`),
	}},
}
