package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/physmap/physmap/kernel/dump"
	"github.com/physmap/physmap/kernel/selftest"
	"github.com/physmap/physmap/qemu"
	"github.com/physmap/physmap/qemu/internal/picture"
)

// This file is what the README shows and where it comes from. When the
// kernel's output changes, make docs regenerates every block; when its
// shape changes (a section's first line is reworded, a varying number
// appears), the tables below are the one place to follow it.

// bootSpec is one configuration the README shows, booted once per run.
type bootSpec struct {
	name string
	cfg  qemu.Config // Kernel, Binary and Timeout are filled in by main
	// args is how the README writes it, as physmap-run's options.
	args string
}

// boots are the configurations: the 4-level and 5-level layouts on the
// same 6 GiB machine (RAM above 4 GiB, and the PCI hole below it, show in
// the direct map). -cpu max has LA57 under TCG.
var boots = []bootSpec{
	{name: "4-level", cfg: qemu.Config{Memory: "6G", CPU: "max", Accel: qemu.TCG, Append: "physmap.levels=4"}, args: "-m 6G -cpu max -append physmap.levels=4"},
	{name: "5-level", cfg: qemu.Config{Memory: "6G", CPU: "max", Accel: qemu.TCG}, args: "-m 6G -cpu max"},
}

// boot is what one configuration gave.
type boot struct {
	spec    bootSpec
	console []string // its lines, carriage returns dropped
	dump    *dump.Dump
	verdict picture.Verdict
}

// section is a stretch of a console: a first line and the lines that
// continue it.
type section struct {
	what  string // for people
	first string // prefix of its first line
	cont  func(line string) bool
}

func indented(l string) bool { return strings.HasPrefix(l, " ") }

// The console's sections that the README shows apart or leaves out.
var (
	secLayout    = section{"region table", "physmap: the 4-level address space the CPU walks, region by region", indented}
	secFirstInsn = section{"first instruction", "physmap: the kernel's first instruction", indented}
	secPtdump    = section{"ptdump", "physmap: ptdump of the live tables", func(l string) bool {
		return strings.HasPrefix(l, "---[") || strings.HasPrefix(l, "0x")
	}}
	secAliases = section{"aliases", "physmap: every virtual address of the image's and the modules' frames", indented}
	secJSON    = section{"JSON", dump.BeginLine, func(l string) bool { return l != dump.EndLine }}
)

// find returns the section's lines in console, its first line at index i;
// ok is false when no line starts it.
func (s section) find(console []string) (lines []string, i int, ok bool) {
	for i, l := range console {
		if !strings.HasPrefix(l, s.first) {
			continue
		}
		j := i + 1
		for j < len(console) && s.cont(console[j]) {
			j++
		}
		if s.first == dump.BeginLine && j < len(console) {
			j++ // the end line
		}
		return console[i:j], i, true
	}
	return nil, 0, false
}

// mask is a rule that replaces a number that varies from boot to boot with
// a fixed run of '#', so that a block is the same on every boot of the same
// kernel.
type mask struct {
	what string
	re   *regexp.Regexp // the varying number is its first group
	with string         // what replaces it, whatever its width
}

// masks are every number that varies between two boots of one kernel on
// one QEMU: two boots' consoles differ only there (KASLR is off; the
// README shows no RDRAND seed).
var masks = []mask{
	{"the TSC frequency", regexp.MustCompile(`^PASS clock: TSC at ([0-9]+\.[0-9]+) MHz`), "####.###"},
	{"the calibration's agreement", regexp.MustCompile(`^PASS clock: TSC at \S+ MHz by .*? \(([^)]*)\)`), "(calibration detail)"},
	{"the clock's rate", regexp.MustCompile(`^PASS clock: .* runs at ([0-9]+\.[0-9])% of its rate`), "###.#"},
	{"the clock's retries", regexp.MustCompile(`^PASS clock: .*, ([0-9]+) measured again\)`), "#"},
	{"the phase times", regexp.MustCompile(`^phase: [a-z0-9.-]+ ended at ([0-9]+\.[0-9]+) ms$`), "###.######"},
	{"the spinner's stay", regexp.MustCompile(`^user\[[0-9]+\]: killed: the LAPIC timer .* after ([0-9]+) ms in ring 3`), "##"},
	{"the spinner's flags", regexp.MustCompile(`^PASS user\.timer: .*RFLAGS (0x[0-9a-f]+) \(IF\)`), "0x###"},
	{"the spinner's time", regexp.MustCompile(`^PASS user\.timer: .* after ([0-9]+) ms in ring 3 by`), "##"},
	{"the LAPIC's rate", regexp.MustCompile(`^PASS user\.timer: .*, ([0-9]+) ticks a ms`), "#####"},
	{"the other processes' longest stay", regexp.MustCompile(`^PASS user\.timer: .* ring 3 was ([0-9]+) us`), "####"},
}

// normalise applies the masks to a line, and counts the hits; a check
// line is then wrapped as the kernel wraps it.
func normalise(l string, hits map[string]int) string {
	for _, m := range masks {
		if g := m.re.FindStringSubmatchIndex(l); g != nil {
			hits[m.what]++
			l = l[:g[2]] + m.with + l[g[3]:]
		}
	}
	if isCheck(l) {
		return strings.Join(selftest.Wrap(l, selftest.Width), "\n")
	}
	return l
}

// generator writes one block from the boots.
type generator struct {
	name string
	gen  func(bs []*boot, hits map[string]int) (string, error)
}

// generators are the README's blocks, in README order.
var generators = []generator{
	{"layouts", genLayouts},
	{"layout-table", func(bs []*boot, hits map[string]int) (string, error) { return fenced(bs[0], secLayout, hits) }},
	{"first-insn", func(bs []*boot, hits map[string]int) (string, error) { return fenced(bs[0], secFirstInsn, hits) }},
	{"selftest", genSelftest},
	{"checks", genChecks},
	{"injections", genInjections},
}

// fenced returns section s of boot b's console as a code block.
func fenced(b *boot, s section, hits map[string]int) (string, error) {
	lines, _, ok := s.find(b.console)
	if !ok {
		return "", fmt.Errorf("the %s boot's console has no line starting %q (%s); follow the kernel in qemu/cmd/physmap-docs/blocks.go", b.spec.name, s.first, s.what)
	}
	var out strings.Builder
	out.WriteString("```\n")
	for _, l := range lines {
		out.WriteString(normalise(l, hits) + "\n")
	}
	out.WriteString("```\n")
	return out.String(), nil
}

// genSelftest returns the 4-level boot's console up to its closing line,
// without the sections shown elsewhere or too long to show.
func genSelftest(bs []*boot, hits map[string]int) (string, error) {
	b := bs[0]
	end := slices.IndexFunc(b.console, func(l string) bool { return strings.HasPrefix(l, "selftest: ") })
	if end < 0 {
		return "", fmt.Errorf("the %s boot's console has no closing line", b.spec.name)
	}
	skip := make([]bool, end+1)
	var left []string
	for _, s := range []section{secLayout, secFirstInsn, secPtdump, secAliases, secJSON} {
		lines, i, ok := s.find(b.console[:end+1])
		if !ok {
			continue
		}
		left = append(left, s.what)
		for j := range lines {
			skip[i+j] = true
		}
	}
	intro := fmt.Sprintf("A boot with `%s`, as `make docs` saw it", b.spec.args)
	if len(left) > 0 {
		intro += fmt.Sprintf(" (its %s are left out here)", list(left))
	}
	intro += fmt.Sprintf(". Numbers that vary from boot to boot, %s, are shown as `#`:", list(maskNames()))
	var out strings.Builder
	out.WriteString(wrap(intro) + "\n\n```\n")
	for i, l := range b.console[:end+1] {
		if !skip[i] {
			out.WriteString(normalise(l, hits) + "\n")
		}
	}
	out.WriteString("```\n")
	return out.String(), nil
}

func maskNames() []string {
	var out []string
	for _, m := range masks {
		out = append(out, m.what)
	}
	return out
}

// proseWidth is where the README's prose is wrapped.
const proseWidth = 105

// wrap breaks prose into lines of at most proseWidth columns.
func wrap(s string) string {
	var b strings.Builder
	n := 0
	for _, w := range strings.Fields(s) {
		switch {
		case n == 0:
		case n+1+len(w) > proseWidth:
			b.WriteString("\n")
			n = 0
		default:
			b.WriteString(" ")
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}

// list joins "a", "b" and "c" as "a, b and c".
func list(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// genLayouts returns the table of both layouts side by side, from the
// boots' dumps: each region that is not a hole, its start and what the
// live tables map there.
func genLayouts(bs []*boot, _ map[string]int) (string, error) {
	four, five := bs[0], bs[1]
	key := func(r dump.Region) string {
		if r.Symbol != "" {
			return r.Symbol
		}
		return r.Name
	}
	other := map[string]dump.Region{}
	for _, r := range five.dump.Regions {
		other[key(r)] = r
	}
	var out strings.Builder
	out.WriteString(wrap(fmt.Sprintf("From two real boots, `%s` and `%s` (%s), each region's start and what the live tables map there:",
		four.spec.args, five.spec.args, five.spec.name)) + "\n\n")
	fmt.Fprintf(&out, "| region | %s start | %s mapped | %s start | %s mapped |\n|---|---|---|---|---|\n", four.spec.name, four.spec.name, five.spec.name, five.spec.name)
	for _, r := range four.dump.Regions {
		if strings.HasPrefix(r.Name, "...") {
			continue
		}
		o, ok := other[key(r)]
		if !ok {
			return "", fmt.Errorf("region %q of the %s boot is not in the %s boot's layout", r.Name, four.spec.name, five.spec.name)
		}
		name := r.Name
		if r.Symbol != "" && !strings.Contains(r.Name, r.Symbol) {
			name += " (`" + r.Symbol + "`)"
		}
		fmt.Fprintf(&out, "| %s | `%016x` | %s | `%016x` | %s |\n", name, uint64(r.Start), mapped(four.dump, r), uint64(o.Start), mapped(five.dump, o))
	}
	return out.String(), nil
}

// mapped says what d's runs map in region r: "128 MiB (62×2M, 1024×4K)".
func mapped(d *dump.Dump, r dump.Region) string {
	var bytes uint64
	pages := map[uint64]uint64{}
	for _, run := range d.Runs {
		if run.Region == r.Name {
			bytes += uint64(run.Size) * run.Count
			pages[uint64(run.Size)] += run.Count
		}
	}
	if bytes == 0 {
		return "-"
	}
	sizes := make([]uint64, 0, len(pages))
	for s := range pages {
		sizes = append(sizes, s)
	}
	slices.Sort(sizes)
	slices.Reverse(sizes)
	var parts []string
	for _, s := range sizes {
		parts = append(parts, fmt.Sprintf("%d×%s", pages[s], strings.TrimSuffix(strings.ReplaceAll(picture.HumanSize(s), " ", ""), "iB")))
	}
	return fmt.Sprintf("%s (%s)", picture.HumanSize(bytes), strings.Join(parts, ", "))
}

// genChecks returns the manifest as a table, from the registry: each
// region in build order with the Linux source that fills it, its checks,
// what each claims and where its expectation comes from.
func genChecks([]*boot, map[string]int) (string, error) {
	var out strings.Builder
	out.WriteString("| region | filled as Linux fills it in | check | claim | expectation from |\n|---|---|---|---|---|\n")
	for _, r := range selftest.Registry {
		if len(r.Checks) == 0 {
			fmt.Fprintf(&out, "| `%s` | %s | - | - | - |\n", r.Name, r.Source)
			continue
		}
		for i, c := range r.Checks {
			name, src := "", ""
			if i == 0 {
				name, src = "`"+r.Name+"`", r.Source
			}
			claim := c.Claim
			if w := selftest.DescribeWhen(c.When); w != "" {
				claim += " (" + w + ")"
			}
			fmt.Fprintf(&out, "| %s | %s | `%s` | %s | %s |\n", name, src, c.Name, claim, c.Expect)
		}
	}
	return out.String(), nil
}

// genInjections returns the registry's failing cases as two tables: the
// injections (physmap.inject=NAME), each failing exactly the checks it
// names, and the environments, each failing at least them.
func genInjections([]*boot, map[string]int) (string, error) {
	var out strings.Builder
	out.WriteString("| `physmap.inject=` | what it breaks | fails exactly |\n|---|---|---|\n")
	for _, r := range selftest.Registry {
		for _, in := range r.Injections {
			what := in.What
			if v, _, ok := selftest.VariantFor(in.When, selftest.Config{Levels: 5, Page1GB: true}); ok && v.Append != "" {
				what += "; booted with `" + v.Append + "`"
			}
			fmt.Fprintf(&out, "| `%s` | %s | %s |\n", in.Name, what, codeList(in.Fails))
		}
	}
	out.WriteString("\nand the machines and command lines that must fail a check:\n\n")
	out.WriteString("| case | `-cpu` | `-append` | what | fails |\n|---|---|---|---|---|\n")
	for _, r := range selftest.Registry {
		for _, e := range r.Environments {
			cpu, app := "max", "-"
			if e.CPU != "" {
				cpu = e.CPU
			}
			if e.Append != "" {
				app = "`" + e.Append + "`"
			}
			fmt.Fprintf(&out, "| `%s` | `%s` | %s | %s | %s |\n", e.Name, cpu, app, e.What, codeList(e.Fails))
		}
	}
	return out.String(), nil
}

// codeList writes names as `a`, `b`.
func codeList(names []string) string {
	var q []string
	for _, n := range names {
		q = append(q, "`"+n+"`")
	}
	return strings.Join(q, ", ")
}
