package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/physmap/physmap/qemu"
)

// Real consoles, shared with package picture's tests.
const (
	console4    = "../../internal/picture/testdata/console-4level-6g.txt"
	console5    = "../../internal/picture/testdata/console-5level-2g.txt"
	consoleFail = "../../internal/picture/testdata/console-4level-fail.txt"
)

func TestFindBlocks(t *testing.T) {
	good := "intro\n<!-- docs:a: made by make docs -->\nold a\n<!-- /docs:a -->\nmiddle\n<!-- docs:b -->\n<!-- /docs:b -->\nend\n"
	if bs, err := findBlocks("prose naming `<!-- docs:NAME -->` markers\n"); err != nil || len(bs) != 0 {
		t.Errorf("a marker named in prose: %v, %v", bs, err)
	}
	bs, err := findBlocks(good)
	if err != nil || len(bs) != 2 || bs[0].name != "a" || good[bs[0].begin:bs[0].end] != "old a\n" || bs[1].begin != bs[1].end {
		t.Fatalf("findBlocks = %+v, %v", bs, err)
	}
	out, err := rewrite(good, map[string]string{"a": "new a", "b": "new b\n"})
	if want := "intro\n<!-- docs:a: made by make docs -->\nnew a\n<!-- /docs:a -->\nmiddle\n<!-- docs:b -->\nnew b\n<!-- /docs:b -->\nend\n"; err != nil || out != want {
		t.Errorf("rewrite = %q, %v; want %q", out, err, want)
	}
	for name, doc := range map[string]string{
		"no end":    "<!-- docs:a -->\nx\n",
		"stray end": "x\n<!-- /docs:a -->\n",
		"nested":    "<!-- docs:a -->\n<!-- docs:b -->\n<!-- /docs:b -->\n<!-- /docs:a -->\n",
		"crossed":   "<!-- docs:a -->\n<!-- /docs:b -->\n",
		"twice":     "<!-- docs:a -->\n<!-- /docs:a -->\n<!-- docs:a -->\n<!-- /docs:a -->\n",
		"malformed": "<!-- docs:A -->\n<!-- /docs:A -->\n",
		"indented":  "  <!-- docs:a -->\n<!-- /docs:a -->\n",
		"trailing":  "<!-- docs:a --> text\n<!-- /docs:a -->\n",
	} {
		if _, err := findBlocks(doc); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !regexp.MustCompile(`^line \d+: `).MatchString(err.Error()) {
			t.Errorf("%s: error %q does not give the line", name, err)
		}
	}
	if _, err := rewrite(good, map[string]string{"a": ""}); err == nil || !strings.Contains(err.Error(), "docs:b is not one physmap-docs writes") {
		t.Errorf("a block without a generator: %v", err)
	}
	if _, err := rewrite(good, map[string]string{"a": "", "b": "", "c": ""}); err == nil || !strings.Contains(err.Error(), "no block docs:c") {
		t.Errorf("a generator without a block: %v", err)
	}
}

func TestWrap(t *testing.T) {
	s := strings.Repeat("word ", 60)
	for _, l := range strings.Split(wrap(s), "\n") {
		if len(l) > proseWidth || strings.HasSuffix(l, " ") || l == "" {
			t.Errorf("line %q", l)
		}
	}
	if got := list([]string{"a", "b", "c"}); got != "a, b and c" {
		t.Errorf("list = %q", got)
	}
}

// readme is a document with every block, out of date.
func readme() string {
	var b strings.Builder
	b.WriteString("# physmap\n\ntext\n\n")
	for _, g := range generators {
		fmt.Fprintf(&b, "<!-- docs:%s: written by make docs -->\nstale\n<!-- /docs:%s -->\n\nmore text\n\n", g.name, g.name)
	}
	return b.String()
}

// fakeBoot returns recorded consoles by configuration, and counts boots.
type fakeBoot struct {
	consoles map[string]string // Append -> file
	boots    int
	edit     func(console []byte) []byte
}

func (f *fakeBoot) boot(_ context.Context, cfg qemu.Config) ([]byte, error) {
	f.boots++
	b, err := os.ReadFile(f.consoles[cfg.Append])
	if err != nil {
		return nil, err
	}
	if f.edit != nil {
		b = f.edit(b)
	}
	return b, nil
}

func setup(t *testing.T) (dir, md, svg, kernel string) {
	t.Helper()
	dir = t.TempDir()
	md, svg, kernel = filepath.Join(dir, "README.md"), filepath.Join(dir, "docs", "map.svg"), filepath.Join(dir, "physmap.elf")
	if err := os.WriteFile(md, []byte(readme()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kernel, []byte("\x7fELF"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, md, svg, kernel
}

func TestRun(t *testing.T) {
	_, md, svg, kernel := setup(t)
	f := &fakeBoot{consoles: map[string]string{"physmap.levels=4": console4, "": console5}}
	args := []string{"-kernel", kernel, "-readme", md, "-picture", svg}
	var stderr bytes.Buffer
	check := func(want int, extra ...string) string {
		t.Helper()
		stderr.Reset()
		if code := run(append(args, extra...), &stderr, f.boot); code != want {
			t.Fatalf("run(%q) = %d, want %d: %s", extra, code, want, stderr.String())
		}
		return stderr.String()
	}

	// Stale: -check fails, naming a block.
	if out := check(qemu.ExitFailed, "-check"); !strings.Contains(out, "stale: docs:layouts") || !strings.Contains(out, "run  make docs") {
		t.Errorf("-check on a stale README: %s", out)
	}
	if f.boots != len(boots) {
		t.Errorf("%d boots for %d configurations", f.boots, len(boots))
	}
	// Written, then up to date, then unchanged on a second write.
	if out := check(qemu.ExitOK); !strings.Contains(out, fmt.Sprintf("wrote %d blocks", len(generators))) {
		t.Errorf("write: %s", out)
	}
	doc, _ := os.ReadFile(md)
	pic, _ := os.ReadFile(svg)
	check(qemu.ExitOK, "-check")
	if out := check(qemu.ExitOK); !strings.Contains(out, "unchanged") {
		t.Errorf("second write: %s", out)
	}
	for name, want := range map[string]string{
		"layouts":      "| direct mapping of all physical memory (page_offset_base) | `ffff888000000000` | 6 GiB (5×1G, 509×2M, 1536×4K) | `ff11000000000000` | 2 GiB (1×1G, 509×2M, 1536×4K) |",
		"layout-table": "  modules, MODULES_VADDR             ffffffffa0000000  24 kB in 6 x 4K",
		"first-insn":   "  page_offset_base+pa    0xffff888010010000 -> frame 0x10010000, 4K page, ro GLB NX",
		"selftest":     "PASS clock: TSC at ####.### MHz by pit ((calibration detail)); the runtime's clock measured against\n    the PIT runs at ###.#% of its rate",
	} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("block %s lacks %q", name, want)
		}
	}
	if !bytes.Contains(pic, []byte("self-test passed")) || !bytes.Contains(pic, []byte("live 4-level")) {
		t.Error("the picture is not the passing 4-level boot's")
	}
	for _, gone := range []string{"stale\n", "physmap: json begin", "---[ User Space ]---", "  kernel text      [0x", "phase: regions 1"} {
		if strings.Contains(string(doc), gone) {
			t.Errorf("README holds %q", gone)
		}
	}
	// Text outside the blocks is kept.
	if strings.Count(string(doc), "more text") != len(generators) {
		t.Error("text between the blocks lost")
	}

	// A boot whose varying numbers differ writes the same README.
	f.edit = func(b []byte) []byte {
		b = regexp.MustCompile(`TSC at [0-9.]+ MHz`).ReplaceAll(b, []byte("TSC at 999.5 MHz"))
		b = regexp.MustCompile(`after [0-9]+ ms in ring 3`).ReplaceAll(b, []byte("after 97 ms in ring 3"))
		b = regexp.MustCompile(`RFLAGS 0x[0-9a-f]+ \(IF\)`).ReplaceAll(b, []byte("RFLAGS 0x2d7 (IF)"))
		b = regexp.MustCompile(`[0-9]+(\s+)ticks a ms`).ReplaceAll(b, []byte("99999${1}ticks a ms"))
		return regexp.MustCompile(`(?m)^(phase: \S+) [0-9]+$`).ReplaceAll(b, []byte("$1 12345678901"))
	}
	check(qemu.ExitOK, "-check")

	// An edited block, a touched picture: -check fails.
	f.edit = nil
	os.WriteFile(md, bytes.Replace(doc, []byte("PASS cpu.nx:"), []byte("PASS cpu.NX:"), 1), 0o644)
	if out := check(qemu.ExitFailed, "-check"); !strings.Contains(out, `docs:selftest (README line`) || !strings.Contains(out, `"PASS cpu.NX:`) {
		t.Errorf("-check on an edited block: %s", out)
	}
	os.WriteFile(md, doc, 0o644)
	os.WriteFile(svg, append(pic, ' '), 0o644)
	if out := check(qemu.ExitFailed, "-check"); !strings.Contains(out, "is not the picture of the 4-level boot") {
		t.Errorf("-check on a touched picture: %s", out)
	}
	check(qemu.ExitOK)
	check(qemu.ExitOK, "-check")
}

func TestRunRefuses(t *testing.T) {
	dir, md, svg, kernel := setup(t)
	f := &fakeBoot{consoles: map[string]string{"physmap.levels=4": consoleFail, "": console5}}
	var stderr bytes.Buffer
	// A failing boot: nothing written.
	if code := run([]string{"-kernel", kernel, "-readme", md, "-picture", svg}, &stderr, f.boot); code != qemu.ExitFailed ||
		!strings.Contains(stderr.String(), "the 4-level boot") || !strings.Contains(stderr.String(), "self-test failed") {
		t.Errorf("failing boot: exit %d: %s", code, stderr.String())
	}
	if b, _ := os.ReadFile(md); string(b) != readme() {
		t.Error("README written after a failing boot")
	}
	// A console the blocks cannot find their sections in.
	f = &fakeBoot{consoles: map[string]string{"physmap.levels=4": console4, "": console5}, edit: func(b []byte) []byte {
		return bytes.ReplaceAll(b, []byte("physmap: the kernel's first instruction"), []byte("physmap: first instruction"))
	}}
	stderr.Reset()
	if code := run([]string{"-kernel", kernel, "-readme", md, "-picture", svg}, &stderr, f.boot); code != qemu.ExitFailed ||
		!strings.Contains(stderr.String(), `block docs:first-insn: the 4-level boot's console has no line starting "physmap: the kernel's first instruction"`) {
		t.Errorf("a section gone: exit %d: %s", code, stderr.String())
	}

	bad := filepath.Join(dir, "bad.md")
	os.WriteFile(bad, []byte("<!-- docs:layouts -->\n"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-kernel", filepath.Join(dir, "none.elf"), "-readme", md}, "build it with: make kernel"},
		{[]string{"-kernel", kernel, "-readme", filepath.Join(dir, "none.md")}, "no such file"},
		{[]string{"-kernel", kernel, "-readme", bad}, "line 1: docs:layouts has no end marker"},
		{[]string{"stray"}, "unexpected arguments"},
	} {
		stderr.Reset()
		if code := run(c.args, &stderr, f.boot); code != qemu.ExitUsage || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("run(%q) = %d, %q; want %d and %q", c.args, code, stderr.String(), qemu.ExitUsage, c.want)
		}
	}
}

func TestSections(t *testing.T) {
	b, err := os.ReadFile(console4)
	if err != nil {
		t.Fatal(err)
	}
	bt, err := readBoot(boots[0], b)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		s           section
		first, last string
		n           int
	}{
		{secLayout, "physmap: the 4-level address space the CPU walks", "  vsyscall page", 16},
		{secFirstInsn, "physmap: the kernel's first instruction", "  page_offset_base+pa", 4},
		{secPtdump, "physmap: ptdump", "0xffffffffff800000-", 0},
		{secAliases, "physmap: every virtual address", "  deps rodata", 20},
		{secJSON, "physmap: json begin", "physmap: json end", 3},
	} {
		lines, _, ok := c.s.find(bt.console)
		if !ok {
			t.Errorf("%s: not found", c.s.what)
			continue
		}
		if !strings.HasPrefix(lines[0], c.first) || !strings.HasPrefix(lines[len(lines)-1], c.last) || (c.n > 0 && len(lines) != c.n) {
			t.Errorf("%s: %d lines from %q to %q", c.s.what, len(lines), lines[0], lines[len(lines)-1])
		}
	}
}
