package picture

import (
	"encoding/xml"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/physmap/physmap/mm"
)

// The picture's columns, in SVG pixels. From the left: the brackets of the
// canonical halves, the start address of every region, the address bar
// (regions, and the runs the live tables map, coloured by permission), the
// tags that mark aliases, clone sets and USR leaves, and the region labels.
const (
	width     = 1200.0
	margin    = 16.0
	halfX     = 24.0  // the halves' brackets; their labels run up their left side
	addrRight = 160.0 // right edge of the address column
	barX      = 170.0 // the address bar
	barW      = 250.0
	barR      = barX + barW
	tagX      = barR + 18 // left edge of the tags
	labelX    = tagX + 64 // left edge of the region labels
	labelR    = width - margin
	lineH     = 15.0 // one label line
	tagH      = 13.0 // a tag's box
	tagGap    = 2.0  // between two tags
	bracketW  = 5.0  // an alias's strip at the bar's right edge
)

// Text. Every text is DejaVu Sans Mono, or the generic monospace family
// where it is missing: in a monospaced font every glyph has the same
// advance, so the layout can place text without the renderer's help, the
// same in librsvg and Chromium. Text is ASCII, holds no run of spaces
// (renderers collapse them differently) and sets no textLength; each field
// of a line is its own text element at its own x.
const fontFamily = "DejaVu Sans Mono, monospace"

// advance is DejaVu Sans Mono's advance width, the same for every glyph in
// its regular, bold and oblique faces: 1233 of its 2048 units per em.
// TestFontAdvance measures it in a render.
const advance = 1233.0 / 2048

// A text's box reaches ascent above its baseline and descent below, in em:
// DejaVu Sans Mono's ASCII ink lies within it (its ascender is 0.76 em for
// "bdfhklt", its descender 0.24 em for "gjpqy").
const (
	ascent  = 0.78
	descent = 0.24
)

// style is a kind of text: a CSS class (colour, weight, slant) and a size.
type style struct {
	class string
	size  float64
}

// width returns how wide s is set in st.
func (st style) width(s string) float64 { return float64(len(s)) * advance * st.size }

// char is the width of one character.
func (st style) char() float64 { return advance * st.size }

var (
	stTitle    = style{"title", 19}
	stOK       = style{"ok", 13}
	stFail     = style{"fail", 13}
	stFailLine = style{"failline", 11}
	stSub      = style{"sub", 11.5}
	stLegend   = style{"legend", 11}
	stNote     = style{"note", 10.5}
	stName     = style{"name", 12}
	stSize     = style{"size", 12}
	stMeta     = style{"meta", 11}
	stMapped   = style{"mapped", 11}
	stHole     = style{"hole", 11}
	stAlias    = style{"alias", 11}
	stClone    = style{"clone", 11}
	stUSR      = style{"usr", 11}
	stIdent    = style{"ident", 11}
	stAddr     = style{"addr", 11}
	stRun      = style{"run", 10}
	stRunDark  = style{"rundark", 10}
	stTag      = style{"tag", 10}
	stHalf     = style{"half", 11}
	stCut      = style{"name", 11.5}
	stFoot     = style{"foot", 10.5}
)

const css = `text { font-family: "DejaVu Sans Mono", monospace; fill: #1d2733; }
.title, .name, .half { font-weight: bold; }
.ok { fill: #1b6e20; font-weight: bold; }
.fail { fill: #b3261e; font-weight: bold; }
.failline { fill: #b3261e; }
.sub, .legend, .note { fill: #3b4756; }
.meta, .size { fill: #4f5d6e; }
.mapped { fill: #1b5e20; font-weight: bold; }
.hole { fill: #6b7785; font-style: italic; }
.alias, .clone { font-weight: bold; }
.usr, .ident { fill: #0d47a1; font-weight: bold; }
.addr { fill: #2c3a4a; }
.run, .tag { fill: #ffffff; font-weight: bold; }
.rundark { fill: #1d2733; font-weight: bold; }
.foot { fill: #6b7785; }
`

var permColors = [...]string{permRX: "#d64a3f", permRO: "#eaa43a", permRW: "#58a863", permWX: "#c2185b"}

// Other colours.
const (
	regionFill   = "#eef2f7"
	regionStroke = "#8a99ab"
	holeStroke   = "#c3ccd6"
	cloneColor   = "#455a64"
	usrColor     = "#0d47a1"
	identColor   = "#0d47a1"
	failColor    = "#b3261e"
)

// The scale, in SVG pixels.
var scaleParams = ScaleParams{MinPiece: 5, PerDoubling: 0.9, Cut: 60}

// canvas collects SVG elements.
type canvas struct{ b strings.Builder }

func (c *canvas) f(format string, args ...any) { fmt.Fprintf(&c.b, format, args...) }

// esc escapes text for XML character data and attribute values, and
// replaces anything outside printable ASCII, which a fallback font might
// set wider.
func esc(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r > '~' {
			return '?'
		}
		return r
	}, s)
	var b strings.Builder
	xml.EscapeText(&b, []byte(s)) //nolint:errcheck // a strings.Builder does not fail
	return b.String()
}

// tidy makes s one line of single spaces.
func tidy(s string) string { return strings.Join(strings.Fields(s), " ") }

// text writes s with its baseline at y, starting at x (anchor "" or
// "start"), ending there ("end") or centred on it ("middle").
func (c *canvas) text(x, y float64, st style, s, anchor string) {
	s = tidy(s)
	if s == "" {
		return
	}
	a := ""
	if anchor != "" && anchor != "start" {
		a = fmt.Sprintf(` text-anchor="%s"`, anchor)
	}
	c.f(`<text x="%.1f" y="%.1f" font-size="%g" class="%s"%s>%s</text>`+"\n", x, y, st.size, st.class, a, esc(s))
}

// coloured writes s like text, in colour.
func (c *canvas) coloured(x, y float64, st style, s, color string) {
	s = tidy(s)
	if s == "" {
		return
	}
	c.f(`<text x="%.1f" y="%.1f" font-size="%g" class="%s" style="fill:%s">%s</text>`+"\n", x, y, st.size, st.class, color, esc(s))
}

// tagWidth returns the width of a tag holding s.
func tagWidth(s string) float64 { return stTag.width(s) + 7 }

// tag draws a tag, a filled box holding a short white label, with its top
// at y.
func (c *canvas) tag(x, y float64, s, color string) {
	c.f(`<g class="tag"><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="2" fill="%s"/>`, x, y, tagWidth(s), tagH, color)
	c.text(x+3.5, y+tagH-3.3, stTag, s, "")
	c.f("</g>\n")
}

// cut shortens s to fit w when set in st, marking the cut with "...".
func cut(s string, st style, w float64) string {
	n := int(w / st.char())
	if len(s) <= n {
		return s
	}
	if n < 4 {
		return ""
	}
	return strings.TrimRight(s[:n-3], " ") + "..."
}

// span is one field of a label line: a text, or a tag when tag is set.
type span struct {
	st    style
	text  string
	color string // for text: its colour, "" for the class's; for a tag: its fill
	tag   bool
}

// line is one line of a label.
type line []span

// draw writes l with its top at y, from x, each field a character apart
// and the last cut to end before right.
func (l line) draw(c *canvas, x, y, right float64) {
	base := y + 11.5
	for i, s := range l {
		if x >= right {
			return
		}
		if s.tag {
			c.tag(x, y+1, s.text, s.color)
			x += tagWidth(s.text) + 5
			continue
		}
		txt := cut(tidy(s.text), s.st, right-x)
		if s.color != "" {
			c.coloured(x, base, s.st, txt, s.color)
		} else {
			c.text(x, base, s.st, txt, "")
		}
		x += s.st.width(txt)
		if i+1 < len(l) {
			x += s.st.char() * 1.5
		}
	}
}

// picture is a laid-out drawing of one model.
type picture struct {
	m      *model
	sc     *Scale
	lines  [][]line // per region
	top    float64  // where the bar starts
	height float64
	tags   []tagPlace
}

// tagPlace is a tag in the tag column with the bar positions its leaders
// point at.
type tagPlace struct {
	text, color string
	want        float64   // wanted middle
	y           float64   // top, after packing
	targets     []float64 // y of each leader's end at the bar
	targetX     float64
}

// layout lays m out.
func layout(m *model) *picture {
	p := &picture{m: m}
	for ri := range m.regions {
		p.lines = append(p.lines, p.regionLines(ri))
	}
	var floors []Floor
	for ri, r := range m.regions {
		if r.nonCanon {
			continue
		}
		floors = append(floors, Floor{Start: mm.VirtAddr(r.Start), End: mm.VirtAddr(r.End), Min: float64(len(p.lines[ri]))*lineH + 5})
	}
	p.sc = NewScale(m.mode, scaleParams, m.cuts(), floors)
	p.top = p.header(new(canvas)) + 16
	p.height = p.top + p.sc.Height() + 36
	p.placeTags()
	return p
}

// regionLines returns the label of region ri: its name and size; its Linux
// symbol and what the live tables map there; a line for each clone set,
// each alias and the identity window it holds.
func (p *picture) regionLines(ri int) []line {
	m := p.m
	r := &m.regions[ri]
	size := regionSize(r.Region)
	switch {
	case r.nonCanon:
		return nil // the cut band
	case r.hole:
		l := line{{st: stHole, text: strings.TrimSpace(strings.TrimPrefix(r.Name, "..."))}, {st: stHole, text: size}}
		if r.Symbol != "" {
			l = append(l, span{st: stHole, text: r.Symbol})
		}
		return []line{l}
	}
	lines := []line{{{st: stName, text: r.Name}, {st: stSize, text: size}}}
	var second line
	if r.Symbol != "" && !strings.Contains(r.Name, r.Symbol) {
		second = append(second, span{st: stMeta, text: r.Symbol})
	}
	if r.mapped == 0 {
		second = append(second, span{st: stMeta, text: "nothing mapped"})
	} else {
		second = append(second, span{st: stMapped, text: "mapped " + humanSize(r.mapped) + " in " + r.pageCounts()})
	}
	lines = append(lines, second)
	if r.user {
		lines = append(lines, line{{st: stTag, text: "USR", color: usrColor, tag: true},
			{st: stUSR, text: "user-accessible: U/S set at every level of the walk"}})
	}
	for _, s := range m.clones {
		if m.regionOf(mm.VirtAddr(s.first.VA)) != ri {
			continue
		}
		frames := "1 frame"
		if s.frames() > 1 {
			frames = fmt.Sprintf("%d frames", s.frames())
		}
		where := fmt.Sprintf("from %#x every %s", uint64(s.first.VA), humanSize(s.stride))
		if s.stride == 0 {
			where = fmt.Sprintf("between %#x and %#x", uint64(s.first.VA), uint64(s.last))
		}
		lines = append(lines, line{{st: stTag, text: cloneTag(s), color: cloneColor, tag: true},
			{st: stClone, text: fmt.Sprintf("%d VAs -> %s: %s at PA %#x, %s", s.n, frames, humanSize(uint64(s.first.Size)*s.first.Count), uint64(s.first.PA), where)}})
	}
	for _, a := range m.aliases {
		parts := a.partsIn(ri)
		if len(parts) == 0 {
			continue
		}
		var txt string
		if len(parts) == 1 && parts[0].len == a.len {
			txt = fmt.Sprintf("%s: PA %#x, %s, at %#x", a.what, uint64(a.pa), humanSize(a.len), uint64(parts[0].va))
		} else {
			var n uint64
			for _, pt := range parts {
				n += pt.len
			}
			pieces := "1 piece"
			if len(parts) > 1 {
				pieces = fmt.Sprintf("%d pieces", len(parts))
			}
			txt = fmt.Sprintf("%s: %s of it in %s, PA %#x at %#x", a.what, humanSize(n), pieces, uint64(parts[0].pa), uint64(parts[0].va))
		}
		lines = append(lines, line{{st: stTag, text: a.letter, color: a.color, tag: true}, {st: stAlias, text: txt, color: a.color}})
	}
	for _, w := range m.identity {
		if m.regionOf(w.Start) == ri {
			lines = append(lines, line{{st: stIdent, text: fmt.Sprintf("identity window %v: VA = PA, %s, physmap's own runtime", w, humanSize(w.Len()))}})
		}
	}
	return lines
}

// cloneTag is the tag of a clone set: "x32".
func cloneTag(s *cloneSet) string { return fmt.Sprintf("x%d", s.n) }

// placeTags collects the tag column's tags, each wanting to sit level with
// what it marks, and packs them top to bottom so that none overlaps the
// next.
func (p *picture) placeTags() {
	m, sc := p.m, p.sc
	mid := func(va mm.VirtAddr, n uint64) float64 { return (sc.Y(va) + sc.YEnd(va.Add(n))) / 2 }
	for ri := range m.regions {
		for _, a := range m.aliases {
			parts := a.partsIn(ri)
			if len(parts) == 0 {
				continue
			}
			t := tagPlace{text: a.letter, color: a.color, targetX: barR - bracketW}
			for _, pt := range parts {
				t.targets = append(t.targets, mid(pt.va, pt.len))
			}
			t.want = (t.targets[0] + t.targets[len(t.targets)-1]) / 2
			p.tags = append(p.tags, t)
		}
	}
	for _, s := range m.clones {
		y0, y1 := sc.Y(mm.VirtAddr(s.first.VA)), sc.YEnd(s.end())
		p.tags = append(p.tags, tagPlace{text: cloneTag(s), color: cloneColor, want: (y0 + y1) / 2, targets: []float64{(y0 + y1) / 2}, targetX: barR + 5})
	}
	for _, r := range m.runs {
		if r.Flags.User {
			y := mid(mm.VirtAddr(r.VA), uint64(r.Size)*r.Count)
			p.tags = append(p.tags, tagPlace{text: "USR", color: usrColor, want: y, targets: []float64{y}, targetX: barR})
		}
	}
	slices.SortStableFunc(p.tags, func(a, b tagPlace) int {
		switch {
		case a.want < b.want:
			return -1
		case a.want > b.want:
			return 1
		}
		return 0
	})
	next := 0.0
	for i := range p.tags {
		t := &p.tags[i]
		t.y = math.Max(t.want-tagH/2, next)
		next = t.y + tagH + tagGap
	}
	// Pushed past the bar's end: pull back up.
	limit := p.sc.Height() - tagH
	for i := len(p.tags) - 1; i >= 0; i-- {
		t := &p.tags[i]
		if t.y > limit {
			t.y = limit
		}
		limit = t.y - tagH - tagGap
	}
}

// failLines returns the verdict's detail: the FAIL lines, at most five.
func (p *picture) failLines() []string {
	var out []string
	fails := p.m.verdict.Fails
	for i, f := range fails {
		if i == 4 && len(fails) > 5 {
			out = append(out, fmt.Sprintf("... and %d more FAIL lines", len(fails)-4))
			break
		}
		out = append(out, f.String())
	}
	return out
}

// render writes the picture as a standalone SVG document.
func (p *picture) render() []byte {
	var c canvas
	c.f(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	c.f(`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="%s">`+"\n",
		width, math.Ceil(p.height), width, math.Ceil(p.height), fontFamily)
	c.f("<defs>\n<style>\n%s</style>\n", css)
	c.f(`<pattern id="hatch" width="7" height="7" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">` +
		`<rect width="7" height="7" fill="#f7f8fa"/><line x1="0" y1="0" x2="0" y2="7" stroke="#d3d9e0" stroke-width="2.2"/></pattern>` + "\n")
	c.f(`<pattern id="cut" width="9" height="9" patternUnits="userSpaceOnUse" patternTransform="rotate(-45)">` +
		`<rect width="9" height="9" fill="#e3e6ea"/><line x1="0" y1="0" x2="0" y2="9" stroke="#b5bcc5" stroke-width="3"/></pattern>` + "\n")
	c.f("</defs>\n")
	c.f(`<rect width="100%%" height="100%%" fill="#ffffff"/>` + "\n")
	p.header(&c)
	c.f(`<g transform="translate(0 %.1f)">`+"\n", p.top)
	p.halves(&c)
	for ri := range p.m.regions {
		p.region(&c, ri)
	}
	for _, r := range p.m.runs {
		p.run(&c, r)
	}
	p.identityMarks(&c)
	p.aliasMarks(&c)
	p.cloneMarks(&c)
	p.tagColumn(&c)
	c.f("</g>\n")
	c.text(barX, p.height-14, stFoot, "Drawn by physmap-map from the JSON dump of the live page tables (make map).", "")
	c.f("</svg>\n")
	return []byte(c.b.String())
}

// header draws the title with the verdict, the legend and a note on the
// scale, and returns the baseline of its last line.
func (p *picture) header(c *canvas) float64 {
	m := p.m
	var ram uint64
	for _, r := range m.regions {
		if r.Symbol == directMapSymbol {
			ram = r.mapped
		}
	}
	x := margin
	title := fmt.Sprintf("physmap: the live %s x86-64 address space", m.mode)
	if pr := m.d.Process; pr != nil {
		title = fmt.Sprintf("physmap: process %d's live %s x86-64 address space", pr.PID, m.mode)
		if pr.UserCopy {
			title += ", PTI's user copy"
		}
	}
	c.text(x, 30, stTitle, title, "")
	y := 50.0
	if m.verdict.OK() {
		c.text(x, y, stOK, m.verdict.headline(), "")
	} else {
		c.f(`<rect x="0" y="0" width="%.0f" height="6" fill="%s"/>`+"\n", width, failColor)
		c.text(x, y, stFail, m.verdict.headline(), "")
		for _, l := range p.failLines() {
			y += 14
			c.text(x+12, y, stFailLine, cut(l, stFailLine, width-2*margin-12), "")
		}
	}
	y += 19
	c.text(x, y, stSub, cut(fmt.Sprintf("Linux's layout (Documentation/arch/x86/x86_64/mm.rst), %d-bit virtual addresses, read from the live page tables at CR3 %#x; %s of RAM in the direct map.",
		m.mode.VABits(), uint64(m.d.CR3), humanSize(ram)), stSub, width-2*margin), "")

	// The legend: swatches, then tags.
	y += 24
	item := func(w float64, draw func(x float64), label string) {
		if x+w+stLegend.width(label) > width-margin {
			x, y = margin, y+20
		}
		draw(x)
		c.text(x+w+6, y, stLegend, label, "")
		x += w + 6 + stLegend.width(label) + 20
	}
	swatch := func(fill, stroke, label string) {
		item(24, func(x float64) {
			c.f(`<rect x="%.1f" y="%.1f" width="24" height="13" fill="%s" stroke="%s"/>`+"\n", x, y-10.5, fill, stroke)
		}, label)
	}
	tagItem := func(s, color, label string) {
		item(tagWidth(s), func(x float64) { c.tag(x, y-10.5, s, color) }, label)
	}
	x = margin
	swatch(permColors[permRX], permColors[permRX], "RX: code")
	swatch(permColors[permRO], permColors[permRO], "RO NX: read-only data")
	swatch(permColors[permRW], permColors[permRW], "RW NX: data")
	if slices.ContainsFunc(m.runs, func(r run) bool { return r.perm == permWX }) {
		swatch(permColors[permWX], permColors[permWX], "W+X: writable code, forbidden")
	}
	swatch(regionFill, regionStroke, "region, nothing mapped")
	swatch("url(#hatch)", holeStroke, "unused hole")
	x, y = margin, y+20
	if len(m.aliases) > 0 {
		tagItem("A", m.aliases[0].color, "one physical range, marked wherever it is mapped")
	}
	tagItem("xN", cloneColor, "N VAs of one frame, drawn once")
	tagItem("USR", usrColor, "user-accessible")

	y += 20
	c.text(margin, y, stNote, cut(fmt.Sprintf("Addresses grow downwards, as in mm.rst. Heights are logarithmic: each stretch between two marked addresses gets %g px + %g px per doubling above 4 KiB,",
		scaleParams.MinPiece, scaleParams.PerDoubling), stNote, width-2*margin), "")
	y += 13
	c.text(margin, y, stNote, "linear within; regions are stretched to fit their labels, and the non-canonical hole is cut.", "")
	return y
}

// halves draws the brackets of the two canonical halves.
func (p *picture) halves(c *canvas) {
	bracket := func(y0, y1 float64, name string) {
		c.f(`<path d="M%.1f,%.1f h-7 V%.1f h7" stroke="#1d2733" stroke-width="1.5" fill="none"/>`+"\n", halfX+8, y0+1, y1-1)
		label := name + " half, " + humanSize(uint64(p.m.mode.UserEnd()))
		if stHalf.width(label) > y1-y0-4 {
			label = name
		}
		if stHalf.width(label) > y1-y0-4 {
			return
		}
		mid := (y0 + y1) / 2
		c.f(`<text x="%.1f" y="%.1f" font-size="%g" class="half" text-anchor="middle" transform="rotate(-90 %.1f %.1f)">%s</text>`+"\n",
			halfX-3, mid, stHalf.size, halfX-3, mid, esc(label))
	}
	bracket(p.sc.Y(0), p.sc.Y(p.m.mode.UserEnd()), "user")
	bracket(p.sc.Y(p.m.mode.KernelStart()), p.sc.Height(), "kernel")
}

// region draws one region: its box in the bar, its start address and its
// label.
func (p *picture) region(c *canvas, ri int) {
	r := &p.m.regions[ri]
	y, h := p.sc.Span(mm.VirtAddr(r.Start), mm.VirtAddr(r.End))
	if r.nonCanon {
		c.f(`<g class="region" data-name="%s">`+"\n", esc(r.Name))
		p.cutBand(c, r, y, h)
		c.f("</g>\n")
		return
	}
	fill, stroke := regionFill, regionStroke
	if r.hole {
		fill, stroke = "url(#hatch)", holeStroke
	}
	c.f(`<g class="region" data-name="%s"><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" stroke="%s" stroke-width="1"/>`,
		esc(r.Name), barX, y, barW, h, fill, stroke)
	c.f("<title>%s</title></g>\n", esc(fmt.Sprintf("%s: %#016x-%#016x, %s %s", r.Name, uint64(r.Start), uint64(r.End)-1, regionSize(r.Region), r.Marker)))
	// A faint rule across the label column marks the region's top.
	c.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e1e6ec" stroke-width="1"/>`+"\n", labelX-6, y, labelR, y)
	c.text(addrRight, y+10, stAddr, fmt.Sprintf("%016x", uint64(r.Start)), "end")
	for i, l := range p.lines[ri] {
		l.draw(c, labelX, y+2+float64(i)*lineH, labelR)
	}
}

// cutBand draws the non-canonical hole as a cut band across the picture.
func (p *picture) cutBand(c *canvas, r *region, y, h float64) {
	x0, x1 := halfX+12, width-margin
	zig := func(y float64) string {
		var b strings.Builder
		for x, up := x0, true; x < x1; x += 12 {
			dy := 3.0
			if up {
				dy = -3
			}
			fmt.Fprintf(&b, " L%.1f,%.1f", math.Min(x+12, x1), y+dy)
			up = !up
		}
		return b.String()
	}
	c.f(`<path d="M%.1f,%.1f%s L%.1f,%.1f%s z" fill="url(#cut)" stroke="none"/>`+"\n",
		x0, y+3, zig(y+3), x1, y+h-3, reverseZig(zig(y+h-3), x0, y+h-3))
	c.f(`<path d="M%.1f,%.1f%s" stroke="#5b6675" stroke-width="1.3" fill="none"/>`+"\n", x0, y+3, zig(y+3))
	c.f(`<path d="M%.1f,%.1f%s" stroke="#5b6675" stroke-width="1.3" fill="none"/>`+"\n", x0, y+h-3, zig(y+h-3))
	c.f(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#ffffff"/>`+"\n", addrRight-stAddr.width("0000000000000000")-4, y+h/2-10, stAddr.width("0000000000000000")+8, 16.0)
	c.text(addrRight, y+h/2+2, stAddr, fmt.Sprintf("%016x", uint64(r.Start)), "end")
	lx := labelX - 8
	c.f(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="4" fill="#ffffff" fill-opacity="0.95"/>`+"\n", lx-6, y+h/2-23, labelR-lx+4, 46.0)
	bits := p.m.mode.VABits()
	c.text(lx, y+h/2-10, stCut, fmt.Sprintf("non-canonical: %016x - %016x", uint64(r.Start), uint64(p.m.mode.KernelStart())-1), "")
	c.text(lx, y+h/2+4, stHole, cut(strings.TrimSpace(strings.TrimPrefix(r.Name, "...")), stHole, labelR-lx), "")
	c.text(lx, y+h/2+18, stMeta, fmt.Sprintf("2^64 - 2^%d bytes, cut here: bits 63..%d must copy bit %d, else #GP (#SS on the stack)", bits, bits, bits-1), "")
}

// reverseZig walks a zigzag path from right to left, for closing the band.
func reverseZig(path string, x0, y float64) string {
	pts := strings.Fields(path)
	var b strings.Builder
	for i := len(pts) - 2; i >= 0; i-- {
		b.WriteString(" " + pts[i])
	}
	fmt.Fprintf(&b, " L%.1f,%.1f", x0, y)
	return b.String()
}

// run draws a run of leaves inside its region, labelled when there is room.
func (p *picture) run(c *canvas, r run) {
	y, h := p.sc.Span(mm.VirtAddr(r.VA), mm.VirtAddr(r.End()))
	bytes := uint64(r.Size) * r.Count
	c.f(`<g class="run" data-va="%#x"><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" stroke="#ffffff" stroke-width="0.8"/>`,
		uint64(r.VA), barX+1, y, barW-2, h, permColors[r.perm])
	what := fmt.Sprintf("%#x-%#x -> PA %#x: %s in %dx%s (%s), %s", uint64(r.VA), uint64(r.End())-1, uint64(r.PA),
		humanSize(bytes), r.Count, pageName(uint64(r.Size)), r.Level, r.perm)
	if r.clone != nil {
		what += fmt.Sprintf("; %d VAs -> these frames", r.clone.n)
	}
	c.f("<title>%s</title></g>\n", esc(what))
	if r.Flags.User {
		c.f(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="%s" stroke-width="2"/>`+"\n", barX+2, y+1, barW-4, math.Max(h-2, 1), usrColor)
	}
	st := stRun
	if r.perm == permRO {
		st = stRunDark
	}
	label := fmt.Sprintf("%s %s %dx%s", r.perm, humanSize(bytes), r.Count, pageName(uint64(r.Size)))
	if r.clone != nil {
		label = fmt.Sprintf("%s %dx%s, x%d VAs", r.perm, r.Count, pageName(uint64(r.Size)), r.clone.n)
	}
	if r.Flags.User {
		label = "USR " + label
	}
	room := barW - 2*bracketW - 8
	if h >= 12 && st.width(label) <= room {
		c.text(barX+barW/2-bracketW/2, y+h/2+3.6, st, label, "middle")
	}
}

// identityMarks brackets the low identity window at the bar's left edge.
func (p *picture) identityMarks(c *canvas) {
	for _, w := range p.m.identity {
		y0, y1 := p.sc.Y(w.Start), p.sc.YEnd(w.End)
		c.f(`<path d="M%.1f,%.1f h-5 V%.1f h5" stroke="%s" stroke-width="2" fill="none"/>`+"\n", barX-2, y0+1, y1-1, identColor)
	}
}

// aliasMarks draws, for every piece of every alias, a strip in the alias's
// colour along the bar's right edge.
func (p *picture) aliasMarks(c *canvas) {
	for _, a := range p.m.aliases {
		c.f(`<g class="alias" data-what="%s" data-letter="%s" data-pa="%#x">`, esc(a.what), a.letter, uint64(a.pa))
		for _, pt := range a.parts {
			y, h := p.sc.Span(pt.va, pt.va.Add(pt.len))
			c.f(`<rect class="piece" data-va="%#x" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`,
				uint64(pt.va), barR-bracketW-1, y+0.5, bracketW, math.Max(h-1, 2), a.color)
		}
		c.f("<title>%s</title></g>\n", esc(fmt.Sprintf("%s %s: PA %#x, %s", a.letter, a.what, uint64(a.pa), humanSize(a.len))))
	}
}

// cloneMarks brackets each clone set's span, from its first clone to the
// end of its last, right of the bar.
func (p *picture) cloneMarks(c *canvas) {
	for _, s := range p.m.clones {
		y0, y1 := p.sc.Y(mm.VirtAddr(s.first.VA)), p.sc.YEnd(s.end())
		c.f(`<path class="clones" data-n="%d" d="M%.1f,%.1f h5 V%.1f h-5" stroke="%s" stroke-width="1.5" stroke-dasharray="3 2" fill="none"/>`+"\n",
			s.n, barR, y0+1, y1-1, cloneColor)
	}
}

// tagColumn draws the packed tags with their leaders.
func (p *picture) tagColumn(c *canvas) {
	for _, t := range p.tags {
		ym := t.y + tagH/2
		for _, ty := range t.targets {
			c.f(`<path d="M%.1f,%.1f L%.1f,%.1f H%.1f" stroke="%s" stroke-width="1.2" fill="none"/>`+"\n",
				t.targetX, ty, tagX-8, ym, tagX, t.color)
		}
		c.tag(tagX, t.y, t.text, t.color)
	}
}
