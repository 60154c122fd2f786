package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// A generated block of README.md: everything between a line
//
//	<!-- docs:NAME -->
//
// (anything may follow NAME inside the comment) and the line
//
//	<!-- /docs:NAME -->
//
// belongs to physmap-docs, which rewrites it whole.
var (
	beginRE = regexp.MustCompile(`^<!-- docs:([a-z0-9-]+)\b.*-->$`)
	endRE   = regexp.MustCompile(`^<!-- /docs:([a-z0-9-]+) -->$`)
)

// block is one generated block found in a document.
type block struct {
	name       string
	line       int // of the begin marker, from 1
	begin, end int // byte offsets of the content: after the begin marker's line, up to the end marker
}

// findBlocks returns the document's blocks in order. Markers must pair up,
// not nest, and each name appear once.
func findBlocks(doc string) ([]block, error) {
	var out []block
	var open *block
	seen := map[string]bool{}
	off := 0
	for i, l := range strings.SplitAfter(doc, "\n") {
		text := strings.TrimRight(l, "\r\n")
		if m := beginRE.FindStringSubmatch(text); m != nil {
			if open != nil {
				return nil, fmt.Errorf("line %d: docs:%s begins inside docs:%s (line %d), which has no end marker", i+1, m[1], open.name, open.line)
			}
			if seen[m[1]] {
				return nil, fmt.Errorf("line %d: a second block docs:%s", i+1, m[1])
			}
			seen[m[1]] = true
			open = &block{name: m[1], line: i + 1, begin: off + len(l)}
		} else if m := endRE.FindStringSubmatch(text); m != nil {
			if open == nil || open.name != m[1] {
				return nil, fmt.Errorf("line %d: end marker of docs:%s without its begin marker", i+1, m[1])
			}
			open.end = off
			out = append(out, *open)
			open = nil
		} else if t := strings.TrimSpace(text); strings.HasPrefix(t, "<!-- docs:") || strings.HasPrefix(t, "<!-- /docs:") {
			return nil, fmt.Errorf("line %d: malformed docs marker %q (want <!-- docs:NAME --> or <!-- /docs:NAME --> alone on a line)", i+1, text)
		}
		off += len(l)
	}
	if open != nil {
		return nil, fmt.Errorf("line %d: docs:%s has no end marker <!-- /docs:%s -->", open.line, open.name, open.name)
	}
	return out, nil
}

// rewrite replaces the content of every block of doc with contents[name].
// Every block must have content and every content a block.
func rewrite(doc string, contents map[string]string) (string, error) {
	blocks, err := findBlocks(doc)
	if err != nil {
		return "", err
	}
	found := map[string]bool{}
	var b strings.Builder
	prev := 0
	for _, bl := range blocks {
		c, ok := contents[bl.name]
		if !ok {
			return "", fmt.Errorf("line %d: block docs:%s is not one physmap-docs writes (%s)", bl.line, bl.name, strings.Join(sortedKeys(contents), ", "))
		}
		found[bl.name] = true
		b.WriteString(doc[prev:bl.begin])
		b.WriteString(c)
		if c != "" && !strings.HasSuffix(c, "\n") {
			b.WriteString("\n")
		}
		prev = bl.end
	}
	b.WriteString(doc[prev:])
	for _, name := range sortedKeys(contents) {
		if !found[name] {
			return "", fmt.Errorf("no block docs:%s (mark where it goes with <!-- docs:%s --> and <!-- /docs:%s -->)", name, name, name)
		}
	}
	return b.String(), nil
}

// blockDiff describes how the blocks of two versions of a document differ:
// for each block whose content differs, its name and first differing line.
func blockDiff(old, new string) []string {
	ob, err1 := findBlocks(old)
	nb, err2 := findBlocks(new)
	if err1 != nil || err2 != nil || len(ob) != len(nb) {
		return []string{"the blocks themselves differ"}
	}
	var out []string
	for i := range ob {
		o := strings.Split(old[ob[i].begin:ob[i].end], "\n")
		n := strings.Split(new[nb[i].begin:nb[i].end], "\n")
		for j := 0; j < max(len(o), len(n)); j++ {
			var ol, nl string
			if j < len(o) {
				ol = o[j]
			}
			if j < len(n) {
				nl = n[j]
			}
			if ol != nl {
				out = append(out, fmt.Sprintf("docs:%s (README line %d): has %s, a boot gives %s",
					ob[i].name, ob[i].line+1+j, quoteCut(ol), quoteCut(nl)))
				break
			}
		}
	}
	if len(out) == 0 && old != new {
		out = append(out, "text outside the blocks differs")
	}
	return out
}

// quoteCut quotes s, cut to 100 characters.
func quoteCut(s string) string {
	if len(s) > 100 {
		s = s[:97] + "..."
	}
	return fmt.Sprintf("%q", s)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
