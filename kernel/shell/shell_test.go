package shell

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/physmap/physmap/mm"
)

// exec runs one line on a fresh shell over f and returns the output.
func exec(t *testing.T, f *fakeMachine, line string) (string, bool, error) {
	t.Helper()
	var out strings.Builder
	s := New(f, &out, true)
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
		{"help", "help", []string{`(?m)^  help `, `(?m)^  regions `, `(?m)^  walk VA `, `(?m)^  aliases PA `, `(?m)^  x VA \[N\] `,
			`(?m)^  dis VA \[N\] `, `(?m)^  ptdump \[-phys\] \[REGION\] `, `(?m)^  wx `, `(?m)^  selftest `, `(?m)^  exit `}, nil, nil},
		{"help/extra", "help me", []string{`^error: usage: help\n$`}, nil, ErrUsage},
		{"regions", "regions", []string{`^fake regions table\n$`}, nil, nil},
		{"unknown", "foo bar", []string{`^error: unknown command "foo" \(try help\)\n$`}, nil, ErrUnknownCommand},

		{"walk/kernel-text", "walk 0xffffffff81000000", []string{
			`(?m)^0xffffffff81000000 in kernel text mapping, mapped to physical address 0 \(__START_KERNEL_map\) \(4-level, top table 0x740000000\)$`,
			`(?m)^  level table              index  entry$`,
			`(?m)^  pgd   0x0000000740000000   511  0x[0-9a-f]+ P RW A? ?D? ?addr=0x`,
			`(?m)^  pud   0x[0-9a-f]{16}   510  `,
			`(?m)^  pmd   0x[0-9a-f]{16}     8  `,
			`(?m)^  pte   0x[0-9a-f]{16}     0  0x0+1000\d{3} P .*G addr=0x1000000$`,
			`(?m)^PA 0x1000000 \(4K page at 0x1000000, effective ro GLB x\)$`,
		}, nil, nil},
		{"walk/direct-2M", "walk 0xffff888000234567", []string{
			`(?m)^  pmd   .* PS addr=0x200000$`,
			`(?m)^PA 0x234567 \(2M page at 0x200000, effective RW GLB NX\)$`,
		}, []string{`pte`}, nil},
		{"walk/symbol", "walk page_offset_base+0x1000", []string{`(?m)^PA 0x1000 \(2M page at 0x0, effective RW GLB NX\)$`}, nil, nil},
		{"walk/symbol-alone", "walk __START_KERNEL_map", nil, nil, ErrNotMapped},
		{"walk/underscores", "walk ffff_8880_0100_0000", []string{`(?m)^PA 0x1000000 \(4K page at 0x1000000, effective ro GLB NX\)$`}, nil, nil},
		{"walk/not-hex", "walk zz", []string{`^error: "zz" is not a hex address\n$`}, nil, ErrNotHex},
		{"walk/0x", "walk 0x", []string{`^error: "0x" is not a hex address\n$`}, nil, ErrNotHex},
		{"walk/too-wide", "walk 0x1ffffffffffffffff", []string{`^error: "0x1ffffffffffffffff" is not a hex address\n$`}, nil, ErrNotHex},
		{"walk/bad-offset", "walk page_offset_base+zz", []string{`^error: "page_offset_base\+zz" is not a hex address\n$`}, nil, ErrNotHex},
		{"walk/non-canonical", "walk 0x0000800000000000", []string{`^error: 0x0000800000000000 is not canonical in 4-level mode\n$`}, nil, ErrNonCanonical},
		{"walk/unmapped", "walk 0xffff800000000000", []string{`^error: 0xffff800000000000 is not mapped \(pgd entry 256 of the table at 0x740000000 is not present\)\n$`}, nil, ErrNotMapped},
		{"walk/unmapped-pte", "walk 0xffffffffa0001000", []string{`^error: 0xffffffffa0001000 is not mapped \(pte entry 1 of the table at 0x[0-9a-f]+ is not present\)\n$`}, nil, ErrNotMapped},
		{"walk/no-arg", "walk", []string{`^error: usage: walk VA\n$`}, nil, ErrUsage},
		{"walk/two-args", "walk 1 2", []string{`^error: usage: walk VA\n$`}, nil, ErrUsage},

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
		{"aliases/not-hex", "aliases frame", []string{`^error: "frame" is not a hex address\n$`}, nil, ErrNotHex},

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
		{"dis/not-hex", "dis main.main", []string{`^error: "main.main" is not a hex address\n$`}, nil, ErrNotHex},

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
		{"ptdump/unknown", "ptdump Kernel Txt", []string{`^error: no region "Kernel Txt" \(give a symbol, ptdump marker or description from regions, or an address\)\n$`}, nil, ErrNoRegion},

		{"wx/clean", "wx", []string{
			`(?m)^kernel half \[0xffff800000000000, top\]: x86/mm: Checked W\+X mappings: passed, no W\+X pages found\.$`,
			`(?m)^lower half \[0, 0x0000800000000000\): x86/mm: Checked W\+X mappings: passed, no W\+X pages found\.$`,
		}, []string{`W\+X 0x`}, nil},

		{"selftest", "selftest", []string{`^selftest: 1 passed, 0 failed\n$`}, nil, nil},
		{"exit", "exit", []string{`^physmap: exit with the self-test's status: pass\n$`}, nil, nil},
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
			if want := tc.name == "exit"; done != want {
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
		{"walk 0x0000800000000000", `^error: 0x0000800000000000 is not mapped \(p4d entry 256 `, ErrNotMapped},
		{"walk 0xffffffff81000000", `(?m)^  p4d   .*\n  pud   .*\n  pmd   .*\n  pte   .*\nPA 0x1000000 `, nil},
		{"walk page_offset_base+0x1000000", `(?m)^0xff11000001000000 in direct mapping`, nil},
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
			[]string{`^physmap: shell ready; type help for the commands\nphysmap> commands`, `(?m)^physmap> error: "zz" is not a hex address\nphysmap> physmap: exit with the self-test's status: pass\n$`},
			[]string{`0x0 is not`}},
		{"boot-failed", "exit\n", false, true, false, []string{`status: fail\n$`}, nil},
		{"rerun-failed", "selftest\nexit\n", true, false, false, []string{`selftest: 0 passed, 1 failed\nphysmap> physmap: exit with the self-test's status: fail\n$`}, nil},
		{"eof", "regions\nwalk 0xffffffff81000000", true, true, true, []string{`(?m)^PA 0x1000000 .*\n\nphysmap: end of input\n$`}, nil},
		{"long-line", strings.Repeat("x", MaxLine+1) + "\nexit\n", true, true, true, []string{`(?m)^physmap> error: line longer than 256 characters\nphysmap> `}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, mm.Mode4Level, false)
			f.selftest = tc.rerun
			var out strings.Builder
			s := New(f, &out, tc.boot)
			got := s.Run(NewLines(strings.NewReader(tc.script), nil))
			if got != tc.want || s.Passed() != tc.want {
				t.Errorf("Run = %v, Passed = %v, want %v", got, s.Passed(), tc.want)
			}
			check(t, out.String(), tc.outWant, tc.not)
		})
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
