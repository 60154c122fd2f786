package picture

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/physmap/physmap/kernel/dump"
	"github.com/physmap/physmap/kernel/selftest"
	"github.com/physmap/physmap/mm"
	"github.com/physmap/physmap/qemu"
)

// Real console logs of physmap (make kernel, then physmap-run with the
// options given; the failing one with its "mm: check:" lines, one per W+X
// entry, left out).
const (
	// -m 6G -append 'physmap.levels=4 physmap.ptdump=1 vsyscall=emulate'
	console4 = "testdata/console-4level-6g.txt"
	console5 = "testdata/console-5level-2g.txt" // -m 2G -append physmap.ptdump=1 (5-level on -cpu max)
	// -m 2G -append 'physmap.levels=4 physmap.inject=directmap-exec'
	consoleFail = "testdata/console-4level-fail.txt"
	// -m 2G -append 'physmap.kaslr=0x5eed physmap.ptdump=1' (5-level on -cpu max)
	consoleKASLR = "testdata/console-5level-kaslr.txt"
)

var consoles = []string{console4, console5, consoleFail, consoleKASLR}

// read returns a console's dump and verdict, as physmap-map reads them.
func read(t *testing.T, file string) (*dump.Dump, Verdict) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	d, err := dump.Extract(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var c qemu.Console
	for _, l := range strings.Split(string(b), "\n") {
		c.Feed(l)
	}
	return d, VerdictOf(&c)
}

func pictureOf(t *testing.T, file string) *picture {
	t.Helper()
	d, v := read(t, file)
	p, err := New(d, v)
	if err != nil {
		t.Fatal(err)
	}
	return p.p
}

// element is a parsed SVG element with its text and children.
type element struct {
	name     string
	attr     map[string]string
	text     string // all character data inside, children's included
	children []*element
	parent   *element
}

// parseSVG parses doc with encoding/xml and fails on any error.
func parseSVG(t *testing.T, doc []byte) *element {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var stack []*element
	var root *element
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			e := &element{name: tok.Name.Local, attr: map[string]string{}}
			for _, a := range tok.Attr {
				e.attr[a.Name.Local] = a.Value
			}
			if len(stack) > 0 {
				e.parent = stack[len(stack)-1]
				e.parent.children = append(e.parent.children, e)
			} else if root != nil {
				t.Fatal("SVG has two root elements")
			} else {
				root = e
			}
			stack = append(stack, e)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			for _, e := range stack {
				e.text += string(tok)
			}
		}
	}
	if root == nil || root.name != "svg" || root.attr["viewBox"] == "" {
		t.Fatalf("root element %+v, want an svg with a viewBox", root)
	}
	return root
}

// all returns the elements under e (e included) that match.
func (e *element) all(match func(*element) bool) []*element {
	var out []*element
	if match(e) {
		out = append(out, e)
	}
	for _, c := range e.children {
		out = append(out, c.all(match)...)
	}
	return out
}

func (e *element) num(t *testing.T, name string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(e.attr[name], 64)
	if err != nil {
		t.Fatalf("<%s %s=%q>: %v", e.name, name, e.attr[name], err)
	}
	return v
}

var translateRE = regexp.MustCompile(`^translate\(([-0-9.]+) ([-0-9.]+)\)$`)
var rotateRE = regexp.MustCompile(`^rotate\(-90 ([-0-9.]+) ([-0-9.]+)\)$`)

// offset returns the translation e's ancestors apply.
func (e *element) offset(t *testing.T) (dx, dy float64) {
	t.Helper()
	for a := e.parent; a != nil; a = a.parent {
		tr := a.attr["transform"]
		if tr == "" {
			continue
		}
		m := translateRE.FindStringSubmatch(tr)
		if m == nil {
			t.Fatalf("<%s transform=%q>: the test reads only translate(x y)", a.name, tr)
		}
		x, _ := strconv.ParseFloat(m[1], 64)
		y, _ := strconv.ParseFloat(m[2], 64)
		dx, dy = dx+x, dy+y
	}
	return dx, dy
}

// box is a label's extent on the canvas.
type box struct {
	x0, y0, x1, y1 float64
	what           string
	tag            *element // the tag a text or rect belongs to
	rect           bool     // a tag's rectangle, not a text
}

func (b box) overlaps(o box) bool { return b.x0 < o.x1 && o.x0 < b.x1 && b.y0 < o.y1 && o.y0 < b.y1 }

func (b box) String() string {
	return fmt.Sprintf("%q [%.1f,%.1f]-[%.1f,%.1f]", b.what, b.x0, b.y0, b.x1, b.y1)
}

// labelBoxes computes, from the SVG alone, the box of every text (its
// characters times the font's advance, from ascent above the baseline to
// descent below; text-anchor and a rotation by -90 degrees honoured) and
// of every tag's rectangle.
func labelBoxes(t *testing.T, root *element) []box {
	t.Helper()
	tagOf := func(e *element) *element {
		if e.parent != nil && e.parent.attr["class"] == "tag" {
			return e.parent
		}
		return nil
	}
	var out []box
	for _, e := range root.all(func(e *element) bool { return e.name == "text" }) {
		dx, dy := e.offset(t)
		x, y, size := e.num(t, "x")+dx, e.num(t, "y")+dy, e.num(t, "font-size")
		w := float64(len(e.text)) * advance * size
		x0 := x
		switch e.attr["text-anchor"] {
		case "", "start":
		case "middle":
			x0 = x - w/2
		case "end":
			x0 = x - w
		default:
			t.Fatalf("text %q: text-anchor %q", e.text, e.attr["text-anchor"])
		}
		b := box{x0: x0, y0: y - ascent*size, x1: x0 + w, y1: y + descent*size, what: e.text, tag: tagOf(e)}
		if tr := e.attr["transform"]; tr != "" {
			m := rotateRE.FindStringSubmatch(tr)
			if m == nil {
				t.Fatalf("text %q: transform %q", e.text, tr)
			}
			cx, _ := strconv.ParseFloat(m[1], 64)
			cy, _ := strconv.ParseFloat(m[2], 64)
			cx, cy = cx+dx, cy+dy
			// (x, y) -> (cx + (y-cy), cy - (x-cx))
			b = box{x0: cx + (b.y0 - cy), x1: cx + (b.y1 - cy), y0: cy - (b.x1 - cx), y1: cy - (b.x0 - cx), what: b.what}
		}
		out = append(out, b)
	}
	for _, e := range root.all(func(e *element) bool { return e.name == "rect" && tagOf(e) != nil }) {
		dx, dy := e.offset(t)
		x, y := e.num(t, "x")+dx, e.num(t, "y")+dy
		out = append(out, box{x0: x, y0: y, x1: x + e.num(t, "width"), y1: y + e.num(t, "height"), what: strings.TrimSpace(tagOf(e).text), tag: tagOf(e), rect: true})
	}
	return out
}

// TestLabelsDisjoint checks, from the SVG, that no two labels overlap, all
// lie on the canvas, and all text is plain ASCII without runs of spaces.
func TestLabelsDisjoint(t *testing.T) {
	for _, file := range consoles {
		t.Run(file, func(t *testing.T) {
			p := pictureOf(t, file)
			root := parseSVG(t, p.render())
			w, h := root.num(t, "width"), root.num(t, "height")
			boxes := labelBoxes(t, root)
			if len(boxes) < 100 {
				t.Fatalf("only %d labels", len(boxes))
			}
			for i, b := range boxes {
				if b.x0 < 0 || b.y0 < 0 || b.x1 > w || b.y1 > h {
					t.Errorf("%v leaves the %vx%v canvas", b, w, h)
				}
				if b.rect {
					// Its text is checked on its own.
				} else if s := b.what; strings.Contains(s, "  ") || strings.TrimSpace(s) != s {
					t.Errorf("text %q has a run of spaces or spaces at an end", s)
				}
				for _, r := range b.what {
					if !b.rect && (r < ' ' || r > '~') {
						t.Errorf("text %q: %q is not printable ASCII", b.what, r)
						break
					}
				}
				for _, o := range boxes[i+1:] {
					if b.overlaps(o) && (b.tag == nil || b.tag != o.tag) {
						t.Errorf("labels overlap: %v and %v", b, o)
					}
				}
			}
		})
	}
}

// TestHeight holds the picture to its budget: the whole space within about
// 1600 px (1650) for a passing boot, and a few FAIL lines more for a
// failing one.
func TestHeight(t *testing.T) {
	for file, max := range map[string]float64{console4: 1650, console5: 1650, consoleFail: 1650 + 5*14} {
		p := pictureOf(t, file)
		t.Logf("%s: %.0f px", file, p.height)
		if p.height > max {
			t.Errorf("%s: %.0f px high, more than %.0f", file, p.height, max)
		}
	}
}

func TestSVG(t *testing.T) {
	for _, file := range consoles {
		t.Run(file, func(t *testing.T) {
			p := pictureOf(t, file)
			m := p.m
			root := parseSVG(t, p.render())
			texts := root.all(func(e *element) bool { return e.name == "text" })
			shown := func(s string) bool {
				for _, e := range texts {
					if strings.Contains(e.text, s) {
						return true
					}
				}
				return false
			}

			// Every region: a box in the bar, its name and its start.
			boxes := map[string]bool{}
			for _, g := range root.all(func(e *element) bool { return e.attr["class"] == "region" }) {
				boxes[g.attr["data-name"]] = true
			}
			for _, r := range m.d.Regions {
				if !boxes[r.Name] {
					t.Errorf("region %q has no box", r.Name)
				}
				if name := strings.TrimSpace(strings.TrimPrefix(r.Name, "...")); !shown(name) {
					t.Errorf("region name %q not shown", name)
				}
				if !shown(fmt.Sprintf("%016x", uint64(r.Start))) {
					t.Errorf("region %q: start %016x not shown", r.Name, uint64(r.Start))
				}
			}
			if !shown("user half") || !shown("kernel half") || !shown("non-canonical") {
				t.Error("the canonical halves or the hole are not labelled")
			}

			// Every run drawn, a clone set once: 32 espfix runs, one box.
			drawn := map[string]bool{}
			for _, g := range root.all(func(e *element) bool { return e.attr["class"] == "run" }) {
				drawn[g.attr["data-va"]] = true
			}
			clones := 0
			for _, r := range m.d.Runs {
				if r.Region == "%esp fixup stacks" && r.VA != m.d.Runs[firstRunIn(m.d, r.Region)].VA {
					clones++
					if drawn[fmt.Sprintf("%#x", uint64(r.VA))] {
						t.Errorf("espfix clone at %#x drawn again", uint64(r.VA))
					}
					continue
				}
				if !drawn[fmt.Sprintf("%#x", uint64(r.VA))] {
					t.Errorf("run at %#x not drawn", uint64(r.VA))
				}
			}
			if clones != 31 || len(m.clones) != 1 {
				t.Errorf("%d espfix clones besides the first, %d clone sets; want 31 and 1", clones, len(m.clones))
			}
			if !shown("32 VAs -> 1 frame") || !shown("x32") {
				t.Error(`the espfix clones are not labelled "32 VAs -> 1 frame" with an x32 tag`)
			}

			// Every alias: a piece at each VA the dump lists, a tag with its
			// letter level with each region holding it, and its PA in those
			// regions' labels.
			for _, a := range drawnAliases(m.d.Aliases) {
				g := root.all(func(e *element) bool { return e.attr["class"] == "alias" && e.attr["data-what"] == a.What })
				if len(g) != 1 {
					t.Errorf("alias %q: %d groups", a.What, len(g))
					continue
				}
				pieces := map[string]bool{}
				for _, pc := range g[0].all(func(e *element) bool { return e.attr["class"] == "piece" }) {
					pieces[pc.attr["data-va"]] = true
				}
				for _, va := range a.VAs {
					if !pieces[fmt.Sprintf("%#x", uint64(va))] {
						t.Errorf("alias %q: no piece at %#x", a.What, uint64(va))
					}
				}
				letter := g[0].attr["data-letter"]
				tags := root.all(func(e *element) bool { return e.attr["class"] == "tag" && e.text == letter })
				// One in the tag column and one in the label for each region,
				// and the legend's A.
				regions := map[string]bool{}
				for _, va := range a.VAs {
					regions[m.regions[m.regionOf(mm.VirtAddr(va))].Name] = true
				}
				want := 2 * len(regions)
				if letter == "A" {
					want++
				}
				if len(tags) != want {
					t.Errorf("alias %q: %d tags %q, want %d: 2 for each of %d regions, and A in the legend", a.What, len(tags), letter, want, len(regions))
				}
				if !shown(fmt.Sprintf("PA %#x", uint64(a.PA))) {
					t.Errorf("alias %q: PA %#x not shown", a.What, uint64(a.PA))
				}
			}

			// The vsyscall page, mapped with vsyscall=emulate (console4),
			// is user-readable, and shows it; with vsyscall=none only the
			// legend has the tag.
			d, _ := read(t, file)
			user := false
			for _, r := range d.Runs {
				user = user || r.Flags.User
			}
			usr := root.all(func(e *element) bool { return e.attr["class"] == "tag" && e.text == "USR" })
			if want := map[bool]int{true: 3, false: 1}[user]; len(usr) != want { // the legend's, the tag column's, the label's
				t.Errorf("%d USR tags, want %d", len(usr), want)
			}
			if shown("USR RO NX 4 KiB 1x4K") != user {
				t.Errorf("the vsyscall run labelled USR: %v, want %v", !user, user)
			}
			if file == console4 && !user {
				t.Error("console4, booted with vsyscall=emulate, has no user page")
			}

			// The verdict, in the title.
			title := texts[0].text + " " + texts[1].text
			if m.verdict.OK() != !strings.Contains(title, "FAILED") {
				t.Errorf("title %q for verdict %+v", title, m.verdict.Summary)
			}
			for _, f := range m.verdict.Fails {
				if !shown("FAIL " + f.Check + ":") {
					t.Errorf("FAIL %s not shown", f.Check)
				}
			}
		})
	}
}

func firstRunIn(d *dump.Dump, region string) int {
	for i, r := range d.Runs {
		if r.Region == region {
			return i
		}
	}
	return -1
}

// TestVerdictTitle checks the title for each kind of verdict.
func TestVerdictTitle(t *testing.T) {
	d, _ := read(t, console4)
	fails := []selftest.Result{{Verdict: selftest.Fail, Check: "walk.perms", Detail: "text writable"}}
	for _, c := range []struct {
		v    Verdict
		want string
	}{
		{Verdict{Known: true, Closed: true, Summary: selftest.Summary{Passed: 37}}, "self-test passed: 37 checks, 0 failed"},
		{Verdict{Known: true, Closed: true, Summary: selftest.Summary{Passed: 36, Failed: 1}, Fails: fails}, "SELF-TEST FAILED: 1 of 37 checks failed"},
		{Verdict{Known: true, Closed: false, Fails: fails}, "INCOMPLETE BOOT: no self-test closing line"},
		{Verdict{Known: true, Closed: true}, "SELF-TEST FAILED: selftest: 0 passed, 0 failed"},
		{Verdict{}, "self-test verdict unknown"},
	} {
		p, err := New(d, c.v)
		if err != nil {
			t.Fatal(err)
		}
		root := parseSVG(t, p.SVG())
		texts := root.all(func(e *element) bool { return e.name == "text" })
		if !strings.Contains(texts[1].text, c.want) {
			t.Errorf("verdict %+v: title line %q, want %q", c.v, texts[1].text, c.want)
		}
		if len(c.v.Fails) > 0 && !strings.Contains(texts[2].text, "FAIL walk.perms: text writable") {
			t.Errorf("verdict %+v: line after the title %q, want the FAIL line", c.v, texts[2].text)
		}
	}
}

// TestManyClones draws espfix as Linux 6.1 fills it (arch/x86/kernel/
// espfix_64.c, init_espfix_ap): the ministack page behind 32 pte clones
// (ESPFIX_PTE_CLONES) in each of 512 pmd clones (ESPFIX_PMD_CLONES) in
// each of 4 pud clones (ESPFIX_PUD_CLONES), 65536 VAs 64 KiB apart. They
// cost the picture no height.
func TestManyClones(t *testing.T) {
	d, v := read(t, console4)
	base, err := New(d, v)
	if err != nil {
		t.Fatal(err)
	}
	var runs []dump.Run
	var proto dump.Run
	done := false
	for _, r := range d.Runs {
		if r.Region != "%esp fixup stacks" {
			runs = append(runs, r)
			continue
		}
		if done {
			continue
		}
		proto, done = r, true
		for i := range 65536 {
			c := proto
			c.VA = proto.VA + dump.Addr(i)*0x10000
			runs = append(runs, c)
		}
	}
	d.Runs = runs
	many, err := New(d, v)
	if err != nil {
		t.Fatal(err)
	}
	if dh := many.Height() - base.Height(); dh < -5 || dh > 30 {
		t.Errorf("65536 clones: %d px high, 32 clones: %d px", many.Height(), base.Height())
	}
	svg := string(many.SVG())
	if !strings.Contains(svg, "65536 VAs -&gt; 1 frame") || !strings.Contains(svg, ">x65536<") {
		t.Error(`65536 clones not labelled "65536 VAs -> 1 frame" and x65536`)
	}
	if n := strings.Count(svg, `<g class="run"`); n != len(many.p.m.runs) || n > 64 {
		t.Errorf("%d runs drawn for %d", n, len(many.p.m.runs))
	}
}

func TestNewRejects(t *testing.T) {
	good, v := read(t, console4)
	for name, change := range map[string]func(d *dump.Dump){
		"mode 3":     func(d *dump.Dump) { d.Mode = 3 },
		"no regions": func(d *dump.Dump) { d.Regions = nil },
		"a gap between regions": func(d *dump.Dump) {
			d.Regions = append([]dump.Region(nil), d.Regions...)
			d.Regions[3].Start += 0x1000
		},
		"an alias VA no run maps": func(d *dump.Dump) {
			d.Aliases = []dump.Alias{{What: "stray", PA: 0x1000, Len: 0x1000, VAs: []dump.Addr{0xffffffff80001000}}}
		},
		"runs out of order": func(d *dump.Dump) {
			d.Runs = append([]dump.Run(nil), d.Runs...)
			d.Runs[0], d.Runs[1] = d.Runs[1], d.Runs[0]
		},
	} {
		d := *good
		change(&d)
		if _, err := New(&d, v); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[uint64]string{
		4096:                  "4 KiB",
		1520 << 20:            "1520 MiB",
		444 << 30:             "444 GiB",
		64 << 40:              "64 TiB",
		0x2074000:             "~32.5 MiB",
		0x2080000:             "32.5 MiB",
		1<<64 - 1<<48:         "~16.0 EiB",
		100:                   "100 B",
		8188 << 10:            "8188 KiB",
		(1 << 40) + (1 << 30): "1025 GiB",
		(1 << 50) - (1 << 20): "~1024.0 TiB",
		10<<20 - 4<<10:        "~10.0 MiB",
		35648 << 10:           "~34.8 MiB",
	} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestProcessTitle: a process's dump (physmap.mm) is titled as one, with
// PTI's user copy named.
func TestProcessTitle(t *testing.T) {
	for _, c := range []struct {
		p    *dump.Process
		want string
	}{
		{nil, "physmap: the live 4-level x86-64 address space"},
		{&dump.Process{PID: 1}, "physmap: process 1's live 4-level x86-64 address space"},
		{&dump.Process{PID: 2, UserCopy: true}, "physmap: process 2's live 4-level x86-64 address space, PTI's user copy"},
	} {
		d, _ := read(t, console4)
		d.Process = c.p
		p, err := New(d, Verdict{})
		if err != nil {
			t.Fatal(err)
		}
		texts := parseSVG(t, p.SVG()).all(func(e *element) bool { return e.name == "text" })
		if texts[0].text != c.want {
			t.Errorf("process %+v: title %q, want %q", c.p, texts[0].text, c.want)
		}
	}
}
