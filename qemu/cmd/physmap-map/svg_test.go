package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/physmap/physmap/kernel/dump"
	"github.com/physmap/physmap/qemu"
)

// consoles are real console logs of physmap (make kernel, then physmap-run
// -m 6G -append physmap.levels=4, and -m 2G on a CPU with LA57).
var consoles = []string{"testdata/console-4level-6g.txt", "testdata/console-5level-2g.txt"}

func dumpOf(t *testing.T, file string) *dump.Dump {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := dump.Extract(f)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func viewOf(t *testing.T, file string) *view {
	t.Helper()
	v, err := newView(dumpOf(t, file))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// element is a parsed SVG element with its text and children.
type element struct {
	name     string
	attr     map[string]string
	text     string // all character data inside, children's included
	children []*element
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
				p := stack[len(stack)-1]
				p.children = append(p.children, e)
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

func render(t *testing.T, v *view) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := v.render(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestSVG(t *testing.T) {
	for _, file := range consoles {
		t.Run(file, func(t *testing.T) {
			v := viewOf(t, file)
			root := parseSVG(t, render(t, v))
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
			for _, r := range v.d.Regions {
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

			// Every run drawn.
			runs := root.all(func(e *element) bool { return e.attr["class"] == "run" })
			if len(runs) != len(v.d.Runs) {
				t.Errorf("%d runs drawn, the dump has %d", len(runs), len(v.d.Runs))
			}

			// Every alias: an arrow to the direct map, one on to the identity
			// window where the frames have that alias too, and its PA.
			groups := map[string]*element{}
			for _, g := range root.all(func(e *element) bool { return e.attr["class"] == "alias" }) {
				groups[g.attr["data-what"]] = g
			}
			for _, a := range v.d.Aliases {
				g := groups[a.What]
				if g == nil {
					t.Errorf("alias %q: no arrow", a.What)
					continue
				}
				direct := g.all(func(e *element) bool {
					return e.name == "path" && e.attr["class"] == "to-direct" && strings.HasPrefix(e.attr["marker-end"], "url(#head")
				})
				if len(direct) != 1 {
					t.Errorf("alias %q: %d arrows to the direct map, want 1", a.What, len(direct))
				}
				identity := 0
				for _, va := range a.VAs {
					if va == a.PA {
						identity++
					}
				}
				if n := len(g.all(func(e *element) bool { return e.attr["class"] == "to-identity" })); n != identity {
					t.Errorf("alias %q: %d arrows to the identity window, want %d", a.What, n, identity)
				}
				if pa := fmt.Sprintf("PA %#x", uint64(a.PA)); !strings.Contains(g.text, pa) {
					t.Errorf("alias %q: label %q missing", a.What, pa)
				}
			}
			if len(groups) != len(v.d.Aliases) {
				t.Errorf("%d arrow groups for %d aliases", len(groups), len(v.d.Aliases))
			}
		})
	}
}

func TestNewViewRejects(t *testing.T) {
	good := dumpOf(t, consoles[0])
	bad := *good
	bad.Mode = 3
	if _, err := newView(&bad); err == nil {
		t.Error("mode 3 accepted")
	}
	bad = *good
	bad.Regions = nil
	if _, err := newView(&bad); err == nil {
		t.Error("no regions accepted")
	}
	bad = *good
	bad.Aliases = []dump.Alias{{What: "stray", PA: 0x1000, Len: 0x1000, VAs: []dump.Addr{0xffffffff80001000}}}
	if _, err := newView(&bad); err == nil {
		t.Error("an alias without a direct-map VA accepted")
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[uint64]string{
		4096:                  "4 KiB",
		1520 << 20:            "1520 MiB",
		444 << 30:             "444 GiB",
		64 << 40:              "64 TiB",
		0x2074000:             "≈32.5 MiB",
		0x2080000:             "32.5 MiB",
		1<<64 - 1<<48:         "≈16.0 EiB",
		100:                   "100 B",
		8188 << 10:            "8188 KiB",
		(1 << 40) + (1 << 30): "1025 GiB",
		(1 << 50) - (1 << 20): "≈1024.0 TiB",
		10<<20 - 4<<10:        "≈10.0 MiB",
		35648 << 10:           "≈34.8 MiB",
	} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "sub", "map.svg")
	var stderr bytes.Buffer
	if code := run([]string{"-console", consoles[0], "-o", out}, &stderr); code != qemu.ExitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	parseSVG(t, b)

	empty := filepath.Join(dir, "empty.txt")
	if err := os.WriteFile(empty, []byte("selftest: 1 passed, 0 failed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"-console", consoles[0], "-m", "2G"}, qemu.ExitUsage},
		{[]string{"-console", filepath.Join(dir, "missing")}, qemu.ExitUsage},
		{[]string{"-console", empty, "-o", filepath.Join(dir, "x.svg")}, qemu.ExitFailed},
		{[]string{"stray"}, qemu.ExitUsage},
		{[]string{"-kernel", filepath.Join(dir, "missing.elf"), "-o", filepath.Join(dir, "y.svg")}, qemu.ExitUsage},
	} {
		stderr.Reset()
		if code := run(c.args, &stderr); code != c.code {
			t.Errorf("run(%q) = %d, want %d: %s", c.args, code, c.code, stderr.String())
		}
	}
}
