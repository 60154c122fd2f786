package shell

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/physmap/physmap/kernel/selftest"
	"github.com/physmap/physmap/mm"
)

// exec runs one line on a fresh shell over f and returns the output.
func exec(t *testing.T, f *fakeMachine, line string) (string, bool, error) {
	t.Helper()
	var out strings.Builder
	s := New(f, &out, selftest.Summary{Passed: 1})
	done, err := s.Exec(line)
	return out.String(), done, err
}

// TestCommands runs every command and every error case on a 4-level fake.
func TestCommands(t *testing.T) {
	tests := []struct {
		name, line string
		want       []string // regexps the output must match, in any order
		not        []string // regexps it must not match
		err        error    // sentinel the error must wrap; nil: none
	}{
		{"empty", "   ", nil, []string{"."}, nil},
		{"help", "help", []string{`(?m)^  help \[COMMAND\] `, `(?m)^  regions `, `(?m)^  walk VA `, `(?m)^  aliases PA `, `(?m)^  x VA \[N\] `,
			`(?m)^  dis VA \[N\] `, `(?m)^  ptdump \[-phys\] \[REGION\] `, `(?m)^  sym \[VA\] `, `(?m)^  wx `, `(?m)^  selftest `, `(?m)^  exit `, `(?m)^  quit `,
			`(?m)^Addresses: hex .*symbol.*\+HEX or -HEX`, `(?m)^Keys: up/down .*\^D`}, nil, nil},
		{"help/command", "help walk", []string{`^walk VA: each level's table, index and entry for VA, down to the page or the hole\n$`}, nil, nil},
		{"help/ptdump", "help ptdump", []string{`^ptdump \[-phys\] \[REGION\]: `,
			`(?m)^    direct          page_offset_base, Low Kernel Mapping$`,
			`(?m)^    cpu_entry_area  CPU_ENTRY_AREA_BASE, CPU entry Area$`,
			`(?m)^    vsyscall        VSYSCALL_ADDR$`, `(?m)^    user            User Space$`}, nil, nil},
		{"help/unknown", "help me", []string{`^error: unknown command "me" \(try help\)\n$`}, nil, ErrUnknownCommand},
		{"help/extra", "help me now", []string{`^error: usage: help \[COMMAND\]\n$`}, nil, ErrUsage},
		{"regions", "regions", []string{`^fake regions table\n$`}, nil, nil},
		{"unknown", "foo bar", []string{`^error: unknown command "foo" \(try help\)\n$`}, nil, ErrUnknownCommand},
		{"unknown/near", "wakl 0x0", []string{`^error: unknown command "wakl": did you mean walk\? \(try help\)\n$`}, nil, ErrUnknownCommand},

		{"walk/kernel-text", "walk 0xffffffff81000000", []string{
			`(?m)^0xffffffff81000000 \(_text\) in kernel text mapping, mapped to physical address 0 \(__START_KERNEL_map\) \(4-level, top table 0x740000000\)$`,
			`(?m)^  level table              index  entry$`,
			`(?m)^  pgd   0x0000000740000000   511  0x[0-9a-f]+ P RW A? ?D? ?addr=0x`,
			`(?m)^  pud   0x[0-9a-f]{16}   510  `,
			`(?m)^  pmd   0x[0-9a-f]{16}     8  `,
			`(?m)^  pte   0x[0-9a-f]{16}     0  0x0+1000\d{3} P .*G addr=0x1000000$`,
			`(?m)^PA 0x1000000 \(4K page at 0x1000000, effective ro GLB x\)$`,
		}, nil, nil},
		{"walk/direct-2M", "walk 0xffff888000234567", []string{
			`(?m)^0xffff888000234567 \(page_offset_base\+0x234567\) in direct mapping`,
			`(?m)^  pmd   .* PS addr=0x200000$`,
			`(?m)^PA 0x234567 \(2M page at 0x200000, effective RW GLB NX\)$`,
		}, []string{`pte`}, nil},
		{"walk/layout-symbol", "walk page_offset_base+0x1000", []string{`(?m)^PA 0x1000 \(2M page at 0x0, effective RW GLB NX\)$`}, nil, nil},
		{"walk/image-symbol", "walk _stext", []string{`(?m)^0xffffffff81000000 \(_text\) in kernel text`, `(?m)^PA 0x1000000 \(4K page at 0x1000000, effective ro GLB x\)$`}, nil, nil},
		{"walk/symbol-plus", "walk _stext+0x10", []string{`(?m)^0xffffffff81000010 \(_text\+0x10\) in kernel text`, `(?m)^PA 0x1000010 `}, nil, nil},
		{"walk/symbol-minus", "walk _etext-0x1000", []string{`(?m)^PA 0x1003000 \(4K page`}, nil, nil},
		{"walk/symbol-chain", "walk _stext+0x2000-0x1000+8", []string{`(?m)^PA 0x1001008 \(4K page`}, nil, nil},
		{"walk/module-symbol", "walk fake_module_init", []string{`(?m)^0xffffffffa0000000 \(fake_module_init\) in module mapping space \(MODULES_VADDR\) `, `(?m)^PA 0x1800000 `}, nil, nil},
		{"walk/macro", "walk PAGE_OFFSET+0x1000", []string{`(?m)^PA 0x1000 `}, nil, nil},
		{"walk/overflow", "walk _end+0xffffffffffffffff", []string{`^error: "_end\+0xffffffffffffffff" overflows: 0xffffffff81004000 \+ 0xffffffffffffffff is past 2\^64\n$`}, nil, ErrOverflow},
		{"walk/overflow-top", "walk 0xffffffffffffffff+1", []string{`^error: "0xffffffffffffffff\+1" overflows: 0xffffffffffffffff \+ 0x1 is past 2\^64\n$`}, nil, ErrOverflow},
		{"walk/underflow", "walk 0x10-0x20", []string{`^error: "0x10-0x20" overflows: 0x10 - 0x20 is below 0\n$`}, nil, ErrOverflow},
		{"walk/symbol-case", "walk _STEXT", []string{`^error: "_STEXT" is not a hex address or a known symbol: did you mean _stext\? \(sym lists them\)\n$`}, nil, ErrNoSymbol},
		{"walk/symbol-typo", "walk _sttext+0x10", []string{`^error: "_sttext" is not a hex address or a known symbol: did you mean _stext\? \(sym lists them\)\n$`}, nil, ErrNoSymbol},
		{"walk/symbol-alone", "walk __START_KERNEL_map", []string{`(?m)^  pmd .* not-present\nerror: 0xffffffff80000000 is not mapped \(pmd entry 0 `}, nil, ErrNotMapped},
		{"walk/underscores", "walk ffff_8880_0100_0000", []string{`(?m)^PA 0x1000000 \(4K page at 0x1000000, effective ro GLB NX\)$`}, nil, nil},
		{"walk/not-hex", "walk zz", []string{`^error: "zz" is not a hex address or a known symbol \(sym lists them\)\n$`}, nil, ErrNoSymbol},
		{"walk/0x", "walk 0x", []string{`^error: "0x" is not a hex address or a symbol\n$`}, nil, ErrNotHex},
		{"walk/too-wide", "walk 0x1ffffffffffffffff", []string{`^error: "0x1ffffffffffffffff" is not a hex address or a symbol\n$`}, nil, ErrNotHex},
		{"walk/bad-offset", "walk page_offset_base+zz", []string{`^error: "page_offset_base\+zz": offset "zz" is not a hex number\n$`}, nil, ErrNotHex},
		{"walk/empty-offset", "walk _stext+", []string{`^error: "_stext\+": offset "" is not a hex number\n$`}, nil, ErrNotHex},
		{"walk/non-canonical", "walk 0x0000800000000000", []string{`^error: 0x0000800000000000 is not canonical in 4-level mode\n$`}, nil, ErrNonCanonical},
		{"walk/non-canonical-symbol", "walk page_offset_base-0x8000000000000000", []string{`^error: 0x7fff888000000000 is not canonical in 4-level mode\n$`}, nil, ErrNonCanonical},
		// An unmapped address: every level reached, then the hole.
		{"walk/unmapped", "walk 0xffff800000000000", []string{
			`^0xffff800000000000 in ... guard hole, also reserved for hypervisor \(GUARD_HOLE_BASE_ADDR\) \(4-level, top table 0x740000000\)\n` +
				`  level table              index  entry\n` +
				`  pgd   0x0000000740000000   256  0x0000000000000000 not-present\n` +
				`error: 0xffff800000000000 is not mapped \(pgd entry 256 of the table at 0x740000000 is not present\)\n$`}, nil, ErrNotMapped},
		{"walk/unmapped-pte", "walk 0xffffffffa0001000", []string{
			`^0xffffffffa0001000 \(fake_module_init\+0x1000\) in module mapping space .*\n  level .*\n` +
				`  pgd   0x0000000740000000   511  0x[0-9a-f]+ P .*\n` +
				`  pud   0x[0-9a-f]{16}   510  0x[0-9a-f]+ P .*\n` +
				`  pmd   0x[0-9a-f]{16}   256  0x[0-9a-f]+ P .*\n` +
				`  pte   0x[0-9a-f]{16}     1  0x0000000000000000 not-present\n` +
				`error: 0xffffffffa0001000 is not mapped \(pte entry 1 of the table at 0x[0-9a-f]+ is not present\)\n$`}, nil, ErrNotMapped},
		{"walk/no-arg", "walk", []string{`^error: usage: walk VA\n$`}, nil, ErrUsage},
		{"walk/two-args", "walk 1 2", []string{`^error: usage: walk VA\n$`}, nil, ErrUsage},

		{"aliases/symbol", "aliases _stext", []string{`^_stext is 0xffffffff81000000, which maps 0x1000000\n0x1000000 \(frame 0x1000000\) is mapped at 3 virtual addresses:\n`}, nil, nil},
		{"aliases/symbol-unmapped", "aliases VMALLOC_START", []string{`^error: VMALLOC_START is the virtual address 0xffffc90000000000, which is not mapped: no physical address\n$`}, nil, ErrNotMapped},
		{"aliases/overflow", "aliases 0x10-0x11", nil, nil, ErrOverflow},
		{"aliases/text", "aliases 0x1000000", []string{
			`(?m)^0x1000000 \(frame 0x1000000\) is mapped at 3 virtual addresses:$`,
			`(?m)^  0x0000000001000000  4K pte  ro x            user-space virtual memory, different per mm$`,
			`(?m)^  0xffff888001000000  4K pte  ro GLB NX       direct mapping of all physical memory \(page_offset_base\)$`,
			`(?m)^  0xffffffff81000000  4K pte  ro GLB x        kernel text mapping, mapped to physical address 0 \(__START_KERNEL_map\)$`,
		}, nil, nil},
		{"aliases/offset", "aliases 1000008", []string{`(?m)^0x1000008 \(frame 0x1000000\) is mapped at 3`, `0x0000000001000008 `, `0xffff888001000008 `, `0xffffffff81000008 `}, nil, nil},
		{"aliases/module", "aliases 0x1800000", []string{`is mapped at 2 virtual addresses`, `0xffff888001800000  2M pmd `, `0xffffffffa0000000  4K pte  ro GLB x .*module mapping space \(MODULES_VADDR\)`}, nil, nil},
		{"aliases/one", "aliases 0x1234", []string{`is mapped at 1 virtual address:`, `0xffff888000001234  2M pmd  RW GLB NX `}, nil, nil},
		{"aliases/unmapped", "aliases 0x7000000", []string{`^error: 0x7000000 is not mapped at any virtual address\n$`}, nil, ErrNotMapped},
		{"aliases/beyond", "aliases 0x10000000000", []string{`^error: 0x10000000000 is beyond the 40-bit physical address space\n$`}, nil, ErrPhysRange},
		{"aliases/not-hex", "aliases frame", []string{`^error: "frame" is not a hex address or a known symbol \(sym lists them\)\n$`}, nil, ErrNoSymbol},

		{"x/text", "x 0xffffffff81000000 20", []string{
			`(?m)^0xffffffff81000000  49 3b 66 10 76 10 55 48  89 e5 0f 0b 00 00 00 00  \|I;f.v.UH........\|$`,
			`(?m)^0xffffffff81000010  00 00 00 00 {39}\|....\|$`,
		}, nil, nil},
		{"x/default", "x 0xffff888001000000", []string{`(?m)^0xffff888001000030  `}, []string{`0xffff888001000040`}, nil},
		{"x/hex-count", "x 0xffffffff81000000 0x10", []string{`(?m)^0xffffffff81000000  `}, []string{`0xffffffff81000010`}, nil},
		{"x/unmapped", "x 0xffffc90000000000", []string{
			`^error: reading 0xffffc90000000000: #PF cr2=0xffffc90000000000 code=0x0 \(not-present read\) rip=0x100b1360\n$`}, nil, ErrFault},
		{"x/into-fault", "x 0xffffffffa0000ff0 32", []string{
			`(?m)^0xffffffffa0000ff0  00 00 00 00 00 00 00 00  00 00 00 00 00 00 48 8b  \|..............H.\|$`,
			`(?m)^error: reading 0xffffffffa0001000: #PF cr2=0xffffffffa0001000 `}, nil, ErrFault},
		{"x/lower-half-end", "x 0x00007ffffffffff0 64", []string{
			`(?m)^0x00007ffffffffff0  41 42 43 44 45 46 47 48  49 4a 4b 4c 4d 4e 4f 50  \|ABCDEFGHIJKLMNOP\|$`,
			`(?m)^error: 0x0000800000000000 is not canonical in 4-level mode$`}, nil, ErrNonCanonical},
		{"x/non-canonical", "x 0x0000900000000000", []string{`^error: 0x0000900000000000 is not canonical in 4-level mode\n$`}, nil, ErrNonCanonical},
		{"x/zero-count", "x 0xffffffff81000000 0", []string{`^error: "0" is not a count from 1 to 4096\n$`}, nil, ErrBadCount},
		{"x/big-count", "x 0xffffffff81000000 4097", []string{`^error: "4097" is not a count from 1 to 4096\n$`}, nil, ErrBadCount},
		{"x/bad-count", "x 0xffffffff81000000 ten", []string{`^error: "ten" is not a count from 1 to 4096\n$`}, nil, ErrBadCount},
		{"x/no-arg", "x", []string{`^error: usage: x VA \[N\]\n$`}, nil, ErrUsage},
		{"x/symbol", "x _stext 4", []string{`^0xffffffff81000000  49 3b 66 10 `}, nil, nil},

		{"dis/first", "dis 0xffffffff81000000 4", []string{
			`(?m)^0xffffffff81000000  49 3b 66 10 +cmp rsp, qword ptr \[r14\+0x10\]$`,
			`(?m)^0xffffffff81000004  76 10 +jbe 0xffffffff81000016$`,
			`(?m)^0xffffffff81000006  55 +push rbp$`,
			`(?m)^0xffffffff81000007  48 89 e5 +mov rbp, rsp$`,
		}, []string{`ud2`}, nil},
		{"dis/default", "dis 0xffffffff81000000", []string{`(?m)ud2$`}, nil, nil},
		{"dis/into-fault", "dis 0xffffffffa0000ffe 2", []string{`^error: reading 0xffffffffa0001000: #PF cr2=0xffffffffa0001000 `}, nil, ErrFault},
		{"dis/before-fault", "dis 0xffffffffa0000ffc 1", []string{`^0xffffffffa0000ffc  00 00 +add byte ptr \[rax\], al\n$`}, nil, nil},
		{"dis/then-fault", "dis 0xffffffffa0000ffc 2", []string{`^0xffffffffa0000ffc  00 00 +add byte ptr \[rax\], al\nerror: reading 0xffffffffa0001000: #PF `}, nil, ErrFault},
		{"dis/unmapped", "dis 0xffff800000000000", []string{`^error: reading 0xffff800000000000: #PF `}, nil, ErrFault},
		{"dis/non-canonical", "dis 0x8000000000000000", []string{`^error: 0x8000000000000000 is not canonical in 4-level mode\n$`}, nil, ErrNonCanonical},
		{"dis/bad-count", "dis 0xffffffff81000000 65", []string{`^error: "65" is not a count from 1 to 64\n$`}, nil, ErrBadCount},
		{"dis/not-a-symbol", "dis main.main", []string{`^error: "main.main" is not a hex address or a known symbol \(sym lists them\)\n$`}, nil, ErrNoSymbol},
		{"dis/symbol", "dis _text 1", []string{`^0xffffffff81000000  49 3b 66 10 +cmp rsp, qword ptr \[r14\+0x10\]\n$`}, nil, nil},

		{"ptdump/all", "ptdump", []string{`(?m)^---\[ User Space \]---$`, `(?m)^---\[ Low Kernel Mapping \]---$`, `(?m)^---\[ High Kernel Mapping \]---$`,
			`(?m)^0xffffffff81000000-0xffffffff81004000 +16K +ro +GLB x  pte$`}, nil, nil},
		{"ptdump/symbol", "ptdump __START_KERNEL_map", []string{
			`^ptdump of kernel text mapping, mapped to physical address 0 \(__START_KERNEL_map\) \[0xffffffff80000000-0xffffffff9fffffff\]\n---\[ High Kernel Mapping \]---\n`,
			`(?m)^0xffffffff81000000-0xffffffff81004000 +16K +ro +GLB x  pte$`}, []string{`Low Kernel`, `Modules`, `(?m)^0xffffffffa`}, nil},
		{"ptdump/marker", "ptdump Modules", []string{`(?m)^---\[ Modules \]---$`, `(?m)^0xffffffffa0000000-0xffffffffa0001000 +4K +ro +GLB x  pte$`}, []string{`High Kernel`, `End Modules`}, nil},
		{"ptdump/description", "ptdump direct mapping of all physical memory (page_offset_base)", []string{`(?m)^---\[ Low Kernel Mapping \]---$`}, []string{`High Kernel`, `vmalloc`}, nil},
		{"ptdump/any-case", "ptdump high kernel mapping", []string{`(?m)^---\[ High Kernel Mapping \]---$`}, nil, nil},
		{"ptdump/address", "ptdump 0xffffffffa0000123", []string{`^ptdump of module mapping space \(MODULES_VADDR\)`}, nil, nil},
		{"ptdump/phys", "ptdump -phys Modules", []string{`(?m)^0xffffffffa0000000-0xffffffffa0001000 +4K 0x0000000001800000 +ro +GLB x  pte$`}, nil, nil},
		{"ptdump/direct", "ptdump direct", []string{`^ptdump of direct mapping of all physical memory \(page_offset_base\) \[0xffff888000000000-0xffffc87fffffffff\]\n---\[ Low Kernel Mapping \]---\n`,
			`(?m)^0xffff888000000000-0xffff888001000000 +16M +RW +PSE +GLB NX pmd$`}, []string{`High Kernel`, `vmalloc`, `nothing mapped`}, nil},
		{"ptdump/short-any-case", "ptdump DIRECT", []string{`^ptdump of direct mapping`}, nil, nil},
		{"ptdump/text", "ptdump text", []string{`^ptdump of kernel text mapping`, `(?m)^0xffffffff81000000-0xffffffff81004000 +16K +ro +GLB x  pte$`}, nil, nil},
		{"ptdump/modules", "ptdump modules", []string{`^ptdump of module mapping space`, `(?m)^0xffffffffa0000000-0xffffffffa0001000 `}, nil, nil},
		{"ptdump/cpu_entry_area", "ptdump cpu_entry_area", []string{`^ptdump of cpu_entry_area mapping \(CPU_ENTRY_AREA_BASE\) \[0xfffffe0000000000-0xfffffe7fffffffff\]\n---\[ CPU entry Area \]---\n`,
			`(?m)^0xfffffe0000000000-0xffffff0000000000 +1T +pgd\n\(nothing mapped\)\n$`}, nil, nil},
		{"ptdump/fixmap", "ptdump fixmap", []string{`^ptdump of kernel-internal fixmap range, variable size and offset \(FIXADDR_START\) `, `(?m)^\(nothing mapped\)$`}, nil, nil},
		{"ptdump/vsyscall", "ptdump vsyscall", []string{`^ptdump of legacy vsyscall ABI \(VSYSCALL_ADDR\) \[0xffffffffff600000-0xffffffffff600fff\]\n`}, nil, nil},
		{"ptdump/espfix", "ptdump espfix", []string{`^ptdump of %esp fixup stacks`, `(?m)^---\[ ESPfix Area \]---$`, `(?m)^\(nothing mapped\)$`}, nil, nil},
		{"ptdump/image-symbol", "ptdump _stext", []string{`^ptdump of kernel text mapping`}, nil, nil},
		{"ptdump/kasan", "ptdump kasan", []string{`^ptdump of KASAN shadow memory`}, nil, nil},
		{"ptdump/user", "ptdump user", []string{`^ptdump of user-space virtual memory`, `(?m)^---\[ User Space \]---$`}, nil, nil},
		{"ptdump/unknown", "ptdump Kernel Txt", []string{`^error: no region "Kernel Txt": give one of user, guard, ldt, direct, vmalloc, vmemmap, kasan, cpu_entry_area, espfix, efi, text, modules, fixmap, vsyscall, or a marker, description, symbol or address \(help ptdump\)\n$`}, nil, ErrNoRegion},
		{"ptdump/near", "ptdump vmallco", []string{`^error: no region "vmallco": did you mean vmalloc\? give one of user, `}, nil, ErrNoRegion},

		{"sym/list", "sym", []string{`(?m)^0xffff888000000000  PAGE_OFFSET +direct$`, `(?m)^0xffff888000000000  page_offset_base +direct$`,
			`(?m)^0xffffffff81000000  _stext +text$`, `(?m)^0xffffffff81000000  _text +text$`, `(?m)^0xffffffffa0000000  fake_module_init +modules$`,
			`(?m)^0xffffffffff000000  MODULES_END +\(hole\)$`, `(?m)^0xffffc8ffffffffff|^0xffffe8ffffffffff  VMALLOC_END +vmalloc$`}, nil, nil},
		{"sym/exact", "sym _stext", []string{`^0xffffffff81000000  _text, _stext  \(kernel text mapping, mapped to physical address 0 \(__START_KERNEL_map\)\)\n$`}, nil, nil},
		{"sym/offset", "sym _stext+0x10", []string{`^0xffffffff81000010  _text\+0x10  \(kernel text`}, nil, nil},
		{"sym/address", "sym 0xffff888000001000", []string{`^0xffff888000001000  page_offset_base\+0x1000  \(direct mapping`}, nil, nil},
		{"sym/layout", "sym page_offset_base", []string{`^0xffff888000000000  page_offset_base, PAGE_OFFSET  \(direct mapping`}, nil, nil},
		{"sym/none", "sym 0x1000", []string{`^0x0000000000001000  no symbol at or below it  \(user-space virtual memory, different per mm\)\n$`}, nil, nil},
		{"sym/unknown", "sym _etex", []string{`did you mean _etext\?`}, nil, ErrNoSymbol},

		// Past the module's range, its symbols no longer name an address.
		{"sym/past-module", "sym 0xffffffffa0002000", []string{`^0xffffffffa0002000  MODULES_VADDR\+0x2000  \(module mapping space`}, nil, nil},
		{"lsmod", "lsmod", []string{`(?m)^fake 4096 0 - Live 0xffffffffa0000000$`}, nil, nil},
		{"ps", "ps", []string{`(?m)^ +PID +top table +syscalls +exceptions +pages +state$`, `(?m)^ +1  0x[0-9a-f]{16} +3 +1 +1  exited 0$`}, nil, nil},
		{"mm", "mm 1", []string{`(?m)^process 1 \(exited 0\): `, `(?m)^  user half \[0x0, `, `(?m)^    4 of its 4 present entries copied`}, nil, nil},
		{"mm/pti", "mm 2", []string{`(?m)^  PTI's user copy, top table 0x[0-9a-f]+ \(CR3 bit 12 set\)`, `(?m)^    kernel half: \d+ leaves in \d+ runs`, `(?m)^    \[0xffffffff81000000, `}, nil, nil},
		{"mm/no-such", "mm 7", []string{`^error: no process 7 \(ps lists them\)\n$`}, nil, ErrNoProcess},
		{"mm/not-a-number", "mm x", []string{`^error: "x" is not a process ID\n$`}, nil, ErrBadNumber},
		{"mm/no-arg", "mm", []string{`^error: usage: mm PID\n$`}, nil, ErrUsage},
		{"wx/clean", "wx", []string{
			`(?m)^kernel half \[0xffff800000000000, top\]: x86/mm: Checked W\+X mappings: passed, no W\+X pages found\.$`,
			`(?m)^lower half \[0, 0x0000800000000000\): x86/mm: Checked W\+X mappings: passed, no W\+X pages found\.$`,
		}, []string{`W\+X 0x`}, nil},

		{"selftest", "selftest", []string{`^PASS fake: the fake's one check\nselftest: 1 passed, 0 failed, manifest 0\nphysmap: the boot passed \(1 of 1 check\); selftest now: 1 passed, 0 failed; exit status: pass\n$`}, nil, nil},
		{"exit", "exit", []string{`^physmap: exit with the self-test's status: pass\n$`}, nil, nil},
		{"quit", "quit", []string{`^physmap: exit with the self-test's status: pass\n$`}, nil, nil},
		{"quit/extra", "quit now", []string{`^error: usage: quit\n$`}, nil, ErrUsage},
		{"exit/extra", "exit now", []string{`^error: usage: exit\n$`}, nil, ErrUsage},
	}
	f := newFake(t, mm.Mode4Level, false)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, done, err := exec(t, f, tc.line)
			check(t, out, tc.want, tc.not)
			if tc.err == nil && err != nil {
				t.Errorf("error %v", err)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("error %v, want one wrapping %v", err, tc.err)
			}
			var se *Error
			if err != nil && (!errors.As(err, &se) || strings.Contains(se.Msg, "\n")) {
				t.Errorf("error %#v is not a one-line *Error", err)
			}
			if want := tc.name == "exit" || tc.name == "quit"; done != want {
				t.Errorf("done = %v, want %v", done, want)
			}
		})
	}
}

// check matches out against the wanted and unwanted regexps.
func check(t *testing.T, out string, want, not []string) {
	t.Helper()
	for _, w := range want {
		if !regexp.MustCompile(w).MatchString(out) {
			t.Errorf("output does not match %s:\n%s", w, out)
		}
	}
	for _, n := range not {
		if regexp.MustCompile(n).MatchString(out) {
			t.Errorf("output matches %s:\n%s", n, out)
		}
	}
}

func TestWXFound(t *testing.T) {
	out, _, err := exec(t, newFake(t, mm.Mode4Level, true), "wx")
	if err != nil {
		t.Fatal(err)
	}
	check(t, out, []string{
		`(?m)^kernel half .*: x86/mm: Checked W\+X mappings: FAILED, 1 W\+X pages found\.$`,
		`(?m)^lower half .*: passed`,
		`(?m)^  W\+X 0xffffc90000000000 4K pte -> 0x1000  RW x$`,
	}, nil)
}

func TestFiveLevel(t *testing.T) {
	f := newFake(t, mm.Mode5Level, false)
	for _, tc := range []struct {
		line string
		want string
		err  error
	}{
		{"walk 0x0100000000000000", `^error: 0x0100000000000000 is not canonical in 5-level mode\n$`, ErrNonCanonical},
		{"walk 0x0000800000000000", `(?m)^  pgd   0x0000000740000000     0  0x[0-9a-f]+ P .*\n  p4d   0x[0-9a-f]{16}   256  0x0000000000000000 not-present\nerror: 0x0000800000000000 is not mapped \(p4d entry 256 `, ErrNotMapped},
		{"walk 0xffffffff81000000", `(?m)^  p4d   .*\n  pud   .*\n  pmd   .*\n  pte   .*\nPA 0x1000000 `, nil},
		{"walk page_offset_base+0x1000000", `(?m)^0xff11000001000000 \(page_offset_base\+0x1000000\) in direct mapping`, nil},
		{"walk _stext", `(?m)^0xffffffff81000000 \(_text\) in kernel text.*\(5-level, `, nil},
		{"walk PAGE_OFFSET-1", `(?m)^  pgd .* not-present\nerror: 0xff10ffffffffffff is not mapped \(pgd entry 272 `, ErrNotMapped},
		{"ptdump direct", `^ptdump of direct mapping of all physical memory \(page_offset_base\) \[0xff11000000000000-`, nil},
		{"x 0x00fffffffffffff8 16", `(?m)^error: 0x0100000000000000 is not canonical in 5-level mode$`, ErrNonCanonical},
	} {
		out, _, err := exec(t, f, tc.line)
		check(t, out, []string{tc.want}, nil)
		if (tc.err == nil) != (err == nil) || (tc.err != nil && !errors.Is(err, tc.err)) {
			t.Errorf("%s: error %v, want %v", tc.line, err, tc.err)
		}
	}
}

func TestNoTables(t *testing.T) {
	f := newFake(t, mm.Mode4Level, false)
	f.noTables = true
	for _, line := range []string{"walk 0xffffffff81000000", "aliases 0x1000", "ptdump", "wx"} {
		out, _, err := exec(t, f, line)
		if !errors.Is(err, ErrNoTables) || out != "error: no live page tables: the layout was not built\n" {
			t.Errorf("%s: %q, %v", line, out, err)
		}
	}
}

// TestRun drives the loop as the serial console does and checks the exit
// status follows the self-test and its re-runs.
func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name         string
		script       string
		boot, rerun  bool
		want         bool
		outWant, not []string
	}{
		{"exit-pass", "help\nwalk zz\nexit\nwalk 0x0\n", true, true, true,
			[]string{`^physmap: shell ready; type help for the commands\nphysmap> commands`,
				`(?m)^physmap> error: "zz" is not a hex address or a known symbol \(sym lists them\)\nphysmap> physmap: exit with the self-test's status: pass\n$`},
			[]string{`0x0 is not`}},
		{"quit", "quit\nexit\n", true, true, true, []string{`^physmap: shell ready; type help for the commands\nphysmap> physmap: exit with the self-test's status: pass\n$`}, nil},
		{"boot-failed", "exit\n", false, true, false, []string{`physmap> physmap: exit with the self-test's status: fail \(the boot failed 2 of 5 checks\)\n$`}, nil},
		// A selftest that passes after a failed boot does not make the
		// shell pass.
		{"boot-failed-rerun-passed", "selftest\nexit\n", false, true, false, []string{
			`(?m)^selftest: 1 passed, 0 failed, manifest 0\nphysmap: the boot failed 2 of 5 checks; selftest now: 1 passed, 0 failed; exit status: fail\n`,
			`status: fail \(the boot failed 2 of 5 checks\)\n$`}, nil},
		{"rerun-failed", "selftest\nexit\n", true, false, false, []string{
			`(?m)^selftest: 0 passed, 1 failed, manifest 0\nphysmap: the boot passed \(3 of 3 checks\); selftest now: 0 passed, 1 failed; exit status: fail\n`,
			`physmap> physmap: exit with the self-test's status: fail \(1 of 1 selftest runs failed\)\n$`}, nil},
		{"rerun-failed-then-passed", "selftest\nselftest\nexit\n", true, false, false, []string{`\(2 of 2 selftest runs failed\)\n$`}, nil},
		{"boot-no-checks", "exit\n", false, true, false, nil, nil},
		{"eof", "regions\nwalk 0xffffffff81000000", true, true, true,
			[]string{`(?m)^PA 0x1000000 .*\n\nphysmap: end of input\nphysmap: exit with the self-test's status: pass\n$`}, nil},
		{"ctrl-d", "regions\n\x04help\n", true, true, true,
			[]string{`^physmap: shell ready; type help for the commands\nphysmap> fake regions table\nphysmap> \nphysmap: end of input\nphysmap: exit with the self-test's status: pass\n$`}, nil},
		{"ctrl-d-boot-failed", "\x04", false, true, false, []string{`status: fail \(the boot failed 2 of 5 checks\)\n$`}, nil},
		{"long-line", strings.Repeat("x", MaxLine+1) + "\nexit\n", true, true, true, []string{`(?m)^physmap> error: line longer than 256 characters\nphysmap> `}, nil},
		{"history", "walk _stext\n\x1b[A\n\x1b[A\x1b[A\x15quit\n", true, true, true, []string{`(?s)^(.*PA 0x1000000 [^\n]*\n){2}physmap> physmap: exit`}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, mm.Mode4Level, false)
			f.selftest = tc.rerun
			var out strings.Builder
			boot := selftest.Summary{Passed: 3}
			switch {
			case tc.name == "boot-no-checks":
				boot = selftest.Summary{}
			case !tc.boot:
				boot.Failed = 2
			}
			s := New(f, &out, boot)
			got := s.Run(NewLines(strings.NewReader(tc.script), nil))
			if got != tc.want || s.Passed() != tc.want {
				t.Errorf("Run = %v, Passed = %v, want %v", got, s.Passed(), tc.want)
			}
			check(t, out.String(), tc.outWant, tc.not)
		})
	}
}

// TestHelpFits checks help gives every command one line within helpWidth
// columns, and so does help ptdump.
func TestHelpFits(t *testing.T) {
	f := newFake(t, mm.Mode4Level, false)
	for _, line := range []string{"help", "help ptdump"} {
		out, _, err := exec(t, f, line)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			if len(l) > helpWidth {
				t.Errorf("%s: %d columns: %s", line, len(l), l)
			}
		}
	}
	out, _, _ := exec(t, f, "help")
	if n := strings.Count(out, "\n  "); n != len(commands) {
		t.Errorf("help has %d command lines for %d commands", n, len(commands))
	}
}

func TestCanonicalLen(t *testing.T) {
	for _, tc := range []struct {
		va   mm.VirtAddr
		n    int
		want int
	}{
		{0, 10, 10},
		{0x7fff_ffff_fff0, 64, 16},
		{0xffff_8000_0000_0000, 64, 64},
		{0xffff_ffff_ffff_fff8, 64, 8},
	} {
		if got := canonicalLen(mm.Mode4Level, tc.va, tc.n); got != tc.want {
			t.Errorf("canonicalLen(%v, %d) = %d, want %d", tc.va, tc.n, got, tc.want)
		}
	}
}

// FuzzShell types arbitrary bytes at the shell: it must never panic, read
// a non-canonical address (the fake reports that) or print an error that
// is not one line.
func FuzzShell(f *testing.F) {
	for _, seed := range []string{
		"walk _stext+0x10\n", "walk 0xffffffffffffffff+1\n", "ptdump cpu_entry_area\n", "x _end-0x10 64\n",
		"dis 0x00007ffffffffff0 64\n", "sym\n\x1b[A\n", "aliases _text\n", "walk +\n", "ptdump -phys text\n",
		"help ptdump\nselftest\n", "\x1b[1;5Awalk\x1bO\n\x04", "x 0x0000800000000000-1 4096\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, script string) {
		fm := newFake(t, mm.Mode4Level, false)
		var out strings.Builder
		s := New(fm, &out, selftest.Summary{Passed: 1})
		in := NewLines(strings.NewReader(script), nil)
		for {
			line, err := in.ReadLine()
			if len(line) > MaxLine {
				t.Fatalf("a line of %d bytes", len(line))
			}
			if err != nil && !errors.Is(err, ErrLineTooLong) {
				return
			}
			done, err := s.Exec(line)
			var se *Error
			if err != nil && (!errors.As(err, &se) || strings.ContainsAny(se.Msg, "\n\r")) {
				t.Fatalf("%q: error %q is not a one-line *Error", line, err)
			}
			if done {
				return
			}
		}
	})
}

// TestUse: use chooses the tables the other commands read. Under process
// 1's, walk and ptdump see its user page and x reads it through ReadIn
// with CR3 at its root; under a user copy x is refused; a process that
// has gone sends the commands back to use kernel.
func TestUse(t *testing.T) {
	f := newFake(t, mm.Mode4Level, false)
	var out strings.Builder
	s := New(f, &out, selftest.Summary{Passed: 1})
	for _, tc := range []struct {
		line string
		want []string
		err  error
	}{
		{"walk 0x400000", []string{`error: 0x0000000000400000 is not mapped`}, ErrNotMapped},
		{"use 1", []string{`^using process 1's tables \(top table 0x[0-9a-f]+\): walk, aliases, ptdump and wx read them, x and dis read through the CPU with CR3 at them\n$`}, nil},
		{"walk 0x400000", []string{`(?m)^0x0000000000400000 in user-space virtual memory, different per mm \(4-level, process 1's tables, top table `, `(?m)^PA 0x1a00000 `}, nil},
		{"x 0x400000 16", []string{`(?m)^0x0000000000400000  70 72 6f 63 65 73 73 20  31 27 73 20 74 65 78 74  \|process 1's text\|$`}, nil},
		{"walk _text", []string{`(?m)^PA 0x1000000 `}, nil},
		{"ptdump user", []string{`(?m)^0x0000000000400000-0x0000000000401000 +4K +USR`}, nil},
		{"use 1 user", []string{`^error: process 1 has no user copy: it ran without PTI \(boot with pti=on\)\n$`}, ErrNoProcess},
		{"use 2 user", []string{`^using process 2's PTI user copy \(top table 0x[0-9a-f]+\): walk, aliases, ptdump and wx read them; x and dis cannot`}, nil},
		{"x 0x400000", []string{`^error: x reads through the CPU, which cannot run the kernel under process 2's PTI user copy`}, ErrUserCopy},
		{"use 2 kernel", []string{`^error: "kernel": after the PID only user`}, ErrUsage},
		{"use 3", []string{`^error: no process 3 \(ps lists them\)\n$`}, ErrNoProcess},
		{"use -1", []string{`^error: "-1" is neither kernel nor a process ID\n$`}, ErrBadNumber},
		{"use kernel", []string{`^using the kernel's tables \(CR3\)\n$`}, nil},
		{"walk 0x400000", []string{`error: 0x0000000000400000 is not mapped`}, ErrNotMapped},
	} {
		out.Reset()
		_, err := s.Exec(tc.line)
		check(t, out.String(), tc.want, nil)
		if (tc.err == nil) != (err == nil) || tc.err != nil && !errors.Is(err, tc.err) {
			t.Errorf("%s: error %v, want %v", tc.line, err, tc.err)
		}
	}
	if len(f.readIn) != 1 || f.readIn[0] != f.proc.Root() {
		t.Errorf("ReadIn ran under %v, want once under process 1's root %v", f.readIn, f.proc.Root())
	}
	// Process 1 gone (a selftest made the processes afresh without it).
	if _, err := s.Exec("use 1"); err != nil {
		t.Fatal(err)
	}
	f.noTables = true
	out.Reset()
	_, err := s.Exec("walk 0x400000")
	check(t, out.String(), []string{`^error: no process 1 \(ps lists them\); use kernel goes back to the kernel's tables\n$`}, nil)
	if !errors.Is(err, ErrNoProcess) {
		t.Errorf("walk under a gone process: %v", err)
	}
}
