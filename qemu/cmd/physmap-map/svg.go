package main

import (
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/physmap/physmap/mm"
)

// The picture's columns and bands, in SVG pixels.
const (
	width     = 1200.0
	halfX     = 22.0  // the canonical halves' brackets
	addrRight = 176.0 // right edge of the address column
	barX      = 186.0 // the address bar
	barW      = 250.0
	barR      = barX + barW
	laneStart = 104.0 // first arrow lane, right of the bar
	laneGap   = 22.0
	headerH   = 178.0
	footerH   = 34.0
)

var permColors = [...]string{permRX: "#d64a3f", permRO: "#eaa43a", permRW: "#58a863", permWX: "#c2185b"}

// canvas collects SVG elements.
type canvas struct{ b strings.Builder }

func (c *canvas) f(format string, args ...any) { fmt.Fprintf(&c.b, format, args...) }

// esc escapes text for XML character data and attribute values.
func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s)) //nolint:errcheck // a strings.Builder does not fail
	return b.String()
}

func (c *canvas) text(x, y float64, class, s string) {
	c.f(`<text x="%.1f" y="%.1f" class="%s">%s</text>`+"\n", x, y, class, esc(s))
}

func (c *canvas) title(s string) { c.f(`<title>%s</title>`, esc(s)) }

// laneX returns the x of arrow lane i.
func laneX(i int) float64 { return barR + laneStart + float64(i)*laneGap }

// labelX returns the left edge of the region labels, right of the lanes.
func (v *view) labelX() float64 { return laneX(len(v.arrows)) + 18 }

// render writes the picture of v as a standalone SVG document.
func (v *view) render(w io.Writer) error {
	var c canvas
	top := headerH
	height := top + v.sc.Height() + footerH
	c.f(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	c.f(`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="DejaVu Sans, Verdana, Arial, sans-serif">`+"\n",
		width, height, width, height)
	v.defs(&c)
	c.f(`<rect width="100%%" height="100%%" fill="#ffffff"/>` + "\n")
	v.header(&c)
	c.f(`<g transform="translate(0 %.1f)">`+"\n", top)
	v.halves(&c)
	for i := range v.regions {
		v.region(&c, &v.regions[i])
	}
	for _, r := range v.runs {
		v.run(&c, r)
	}
	v.identityMarks(&c)
	for i, a := range v.arrows {
		v.arrow(&c, i, a)
	}
	c.f("</g>\n")
	c.text(barX, height-12, "foot", "Made by physmap-map from the JSON dump of the live page tables (make map).")
	c.f("</svg>\n")
	_, err := io.WriteString(w, c.b.String())
	return err
}

func (v *view) defs(c *canvas) {
	c.f(`<defs>
<style>
text { fill: #1d2733; font-size: 12.5px; }
.title { font-size: 21px; font-weight: bold; }
.sub { font-size: 13px; fill: #3b4756; }
.legend { font-size: 12.5px; }
.note { font-size: 12px; fill: #3b4756; }
.name { font-weight: bold; }
.size { fill: #1d2733; }
.meta { font-size: 12px; fill: #4f5d6e; }
.mapped { font-size: 12px; fill: #1b5e20; font-weight: bold; }
.aliasline { font-size: 12px; font-weight: bold; }
.ident { font-size: 12px; fill: #0d47a1; font-weight: bold; }
.hole { font-size: 12px; fill: #6b7785; font-style: italic; }
.holesize { font-size: 12px; fill: #6b7785; }
.addr { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 11.5px; fill: #2c3a4a; text-anchor: end; }
.addr-sub { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 10px; fill: #6b7785; text-anchor: end; }
.runlabel { font-size: 11.5px; fill: #ffffff; font-weight: bold; text-anchor: middle; dominant-baseline: central; }
.runlabel-dark { font-size: 11.5px; fill: #1d2733; font-weight: bold; text-anchor: middle; dominant-baseline: central; }
.pa { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 11px; font-weight: bold; }
.half { font-size: 13px; font-weight: bold; fill: #1d2733; text-anchor: middle; }
.addrinline { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 11.5px; }
.foot { font-size: 11px; fill: #6b7785; }
</style>
<pattern id="hatch" width="7" height="7" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
<rect width="7" height="7" fill="#f7f8fa"/><line x1="0" y1="0" x2="0" y2="7" stroke="#d3d9e0" stroke-width="2.2"/>
</pattern>
<pattern id="cut" width="9" height="9" patternUnits="userSpaceOnUse" patternTransform="rotate(-45)">
<rect width="9" height="9" fill="#e3e6ea"/><line x1="0" y1="0" x2="0" y2="9" stroke="#b5bcc5" stroke-width="3"/>
</pattern>
`)
	for i, a := range v.arrows {
		c.f(`<marker id="head%d" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">`+
			`<path d="M0,0 L10,5 L0,10 z" fill="%s"/></marker>`+"\n", i, a.color)
	}
	c.f("</defs>\n")
}

// header draws the title, the legend and a note on the scale.
func (v *view) header(c *canvas) {
	d := v.d
	var ram uint64
	for _, r := range v.regions {
		if r.Symbol == directMapSymbol {
			ram = r.mappedBytes
		}
	}
	c.text(halfX, 34, "title", "The x86-64 address space as physmap builds it")
	c.text(halfX, 56, "sub", fmt.Sprintf("Linux's %s layout (%d-bit virtual addresses), read from the live page tables at CR3 %#x: %s of RAM in the direct map.",
		v.mode, v.mode.VABits(), uint64(d.CR3), humanSize(ram)))

	// Swatches.
	x, y := halfX, 84.0
	sw := func(fill, stroke, label string) {
		c.f(`<rect x="%.1f" y="%.1f" width="26" height="15" fill="%s" stroke="%s"/>`+"\n", x, y-11.5, fill, stroke)
		c.text(x+32, y, "legend", label)
		x += 32 + float64(len([]rune(label)))*7.0 + 22
	}
	sw(permColors[permRX], permColors[permRX], "RX: code, read-only")
	sw(permColors[permRO], permColors[permRO], "RO NX: read-only data")
	sw(permColors[permRW], permColors[permRW], "RW NX: data")
	for _, r := range v.runs {
		if r.perm == permWX {
			sw(permColors[permWX], permColors[permWX], "W+X (forbidden)")
			break
		}
	}
	sw("#eef2f7", "#8a99ab", "region, not mapped")
	sw("url(#hatch)", "#c3ccd6", "unused hole")

	x, y = halfX, 110.0
	c.f(`<path d="M%.1f,%.1f h44" stroke="#1d2733" stroke-width="2" fill="none" marker-end="url(#legendhead)"/>`+"\n", x, y-4)
	c.f(`<defs><marker id="legendhead" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#1d2733"/></marker></defs>` + "\n")
	c.text(x+54, y, "legend", "the same physical frames (PA) again: kernel image and module pages → their direct-map alias at page_offset_base + PA")
	x, y = halfX, 130.0
	c.f(`<path d="M%.1f,%.1f h44" stroke="#1d2733" stroke-width="1.6" stroke-dasharray="5 3" fill="none" marker-end="url(#legendhead)"/>`+"\n", x, y-4)
	c.text(x+54, y, "legend", "… and through the low identity window (VA = PA), where physmap's own runtime lives")

	c.text(halfX, 156, "note", fmt.Sprintf("Heights are logarithmic: the stretch between two marked addresses gets %.0f px plus %.2f px per doubling above 4 KiB, so a 4 KiB page and 64 TiB both show;",
		scaleParams.MinPiece, scaleParams.PerDoubling))
	c.text(halfX, 171, "note", "within a stretch addresses are linear; short regions are stretched to fit their labels; the non-canonical hole is cut. Addresses grow downwards, as in mm.rst.")
}

// halves draws the brackets of the two canonical halves.
func (v *view) halves(c *canvas) {
	bracket := func(y0, y1 float64, label string) {
		c.f(`<path d="M%.1f,%.1f h-8 V%.1f h8" stroke="#1d2733" stroke-width="1.5" fill="none"/>`+"\n", halfX+12, y0+1, y1-1)
		mid := (y0 + y1) / 2
		c.f(`<text x="%.1f" y="%.1f" class="half" transform="rotate(-90 %.1f %.1f)">%s</text>`+"\n", halfX-2, mid, halfX-2, mid, esc(label))
	}
	half := humanSize(uint64(v.mode.UserEnd()))
	bracket(v.sc.Y(0), v.sc.Y(v.mode.UserEnd()), "user half (canonical) · "+half)
	bracket(v.sc.Y(v.mode.KernelStart()), v.sc.Height(), "kernel half (canonical) · "+half)
}

// region draws one region: its box in the bar, its start address and its
// label.
func (v *view) region(c *canvas, r *regionView) {
	y, h := v.sc.Span(mm.VirtAddr(r.Start), mm.VirtAddr(r.End))
	if r.nonCanon {
		c.f(`<g class="region" data-name="%s">`+"\n", esc(r.Name))
		v.cutBand(c, r, y, h)
		c.f("</g>\n")
		return
	}
	fill, stroke := "#eef2f7", "#8a99ab"
	if r.hole {
		fill, stroke = "url(#hatch)", "#c3ccd6"
	}
	c.f(`<g class="region" data-name="%s"><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" stroke="%s" stroke-width="1"/>`,
		esc(r.Name), barX, y, barW, h, fill, stroke)
	c.title(fmt.Sprintf("%s\n%#016x-%#016x, %s", r.Name, uint64(r.Start), uint64(r.End), regionSize(r.Region)))
	c.f("</g>\n")
	// A faint rule across the label column marks the region's top.
	c.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e1e6ec" stroke-width="1"/>`+"\n", v.labelX()-6, y, width-14, y)
	c.text(addrRight, y+11, "addr", fmt.Sprintf("%016x", uint64(r.Start)))
	ty := y + 13
	for _, l := range r.lines {
		c.f(`<text x="%.1f" y="%.1f">`, v.labelX(), ty)
		for _, s := range l {
			if s.color != "" {
				c.f(`<tspan class="%s" style="fill:%s">%s</tspan>`, s.class, s.color, esc(s.text))
				continue
			}
			c.f(`<tspan class="%s">%s</tspan>`, s.class, esc(s.text))
		}
		c.f("</text>\n")
		ty += lineHeight
	}
}

// cutBand draws the non-canonical hole as a cut band across the picture.
func (v *view) cutBand(c *canvas, r *regionView, y, h float64) {
	x0, x1 := halfX+14, width-14
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
	c.text(addrRight, y+15, "addr", fmt.Sprintf("%016x", uint64(r.Start)))
	lx := v.labelX()
	c.f(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="4" fill="#ffffff" fill-opacity="0.94"/>`+"\n", lx-8, y+h/2-29, width-14-(lx-8)-6, 50.0)
	bits := v.mode.VABits()
	c.f(`<text x="%.1f" y="%.1f"><tspan class="name">non-canonical</tspan><tspan class="addrinline">  %016x – %016x</tspan></text>`+"\n",
		lx, y+h/2-14, uint64(r.Start), uint64(v.mode.KernelStart())-1)
	c.text(lx, y+h/2+1, "hole", strings.TrimSpace(strings.TrimPrefix(r.Name, "...")))
	c.text(lx, y+h/2+15, "meta", fmt.Sprintf("2^64 − 2^%d bytes, cut here; bits 63..%d must copy bit %d, else #GP", bits, bits, bits-1))
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
func (v *view) run(c *canvas, r runView) {
	y, h := v.sc.Span(mm.VirtAddr(r.VA), mm.VirtAddr(r.End()))
	bytes := uint64(r.Size) * r.Count
	c.f(`<g class="run" data-va="%#x"><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" stroke="#ffffff" stroke-width="0.8"/>`,
		uint64(r.VA), barX+1, y, barW-2, h, permColors[r.perm])
	c.title(fmt.Sprintf("%#x-%#x → PA %#x\n%s, %d×%s (%s), %s", uint64(r.VA), uint64(r.End()), uint64(r.PA),
		humanSize(bytes), r.Count, pageName(uint64(r.Size)), r.Level, r.perm))
	c.f("</g>\n")
	if h >= 12 {
		class := "runlabel"
		if r.perm == permRO {
			class = "runlabel-dark"
		}
		c.text(barX+barW/2, y+h/2, class, fmt.Sprintf("%s · %s · %d×%s", r.perm, humanSize(bytes), r.Count, pageName(uint64(r.Size))))
	}
}

// identityMarks brackets the low identity window at the bar's left edge.
func (v *view) identityMarks(c *canvas) {
	for _, w := range v.identity {
		y0, y1 := v.sc.Y(w.Start), v.sc.YEnd(w.End)
		c.f(`<path d="M%.1f,%.1f h-5 V%.1f h5" stroke="#0d47a1" stroke-width="2" fill="none"/>`+"\n", barX-2, y0+1, y1-1)
		c.text(addrRight, y0+10, "addr-sub", fmt.Sprintf("%016x", uint64(w.Start)))
		c.text(addrRight, y1-2, "addr-sub", fmt.Sprintf("%016x", uint64(w.End)))
	}
}

// arrow draws alias i: from the middle of its source range out to its lane,
// along the lane to its direct-map alias, and on, dashed, to its identity
// alias; the physical address labels the start.
func (v *view) arrow(c *canvas, i int, a arrow) {
	mid := func(va mm.VirtAddr) float64 { return (v.sc.Y(va) + v.sc.YEnd(va.Add(a.len))) / 2 }
	box := func(va mm.VirtAddr) {
		y, h := v.sc.Span(va, va.Add(a.len))
		c.f(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="%s" stroke-width="2"/>`+"\n",
			barR-16, y+1, 14.0, math.Max(h-2, 2), a.color)
	}
	ys, yt := mid(a.src), mid(a.dst)
	lx := laneX(i)
	c.f(`<g class="alias" data-what="%s" data-pa="%#x">`+"\n", esc(a.what), uint64(a.pa))
	c.title(fmt.Sprintf("%s: PA %#x, %s, at %#x and at %#x in the direct map", a.what, uint64(a.pa), humanSize(a.len), uint64(a.src), uint64(a.dst)))
	box(a.src)
	box(a.dst)
	c.f(`<path class="to-direct" d="%s" stroke="%s" stroke-width="2" fill="none" marker-end="url(#head%d)"/>`+"\n", lanePath(ys, yt, lx), a.color, i)
	if a.hasIdent {
		box(a.ident)
		yi := mid(a.ident)
		r := math.Min(10, math.Abs(yt-yi)/2)
		c.f(`<path class="to-identity" d="M%.1f,%.1f V%.1f Q%.1f,%.1f %.1f,%.1f H%.1f" stroke="%s" stroke-width="1.6" stroke-dasharray="5 3" fill="none" marker-end="url(#head%d)"/>`+"\n",
			lx, yt, yi+r, lx, yi, lx-r, yi, barR+1, a.color, i)
	}
	c.f(`<text x="%.1f" y="%.1f" class="pa" style="fill:%s">PA %#x</text>`+"\n", barR+5, ys-4, a.color, uint64(a.pa))
	c.f("</g>\n")
}

// lanePath runs from (barR, ys) right to lane x, along it to yt, and back
// left to the bar, with rounded corners.
func lanePath(ys, yt, x float64) string {
	r := math.Min(12, math.Abs(ys-yt)/2)
	dir := -1.0 // upwards
	if yt > ys {
		dir = 1
	}
	return fmt.Sprintf("M%.1f,%.1f H%.1f Q%.1f,%.1f %.1f,%.1f V%.1f Q%.1f,%.1f %.1f,%.1f H%.1f",
		barR+1, ys, x-r, x, ys, x, ys+dir*r, yt-dir*r, x, yt, x-r, yt, barR+1)
}
