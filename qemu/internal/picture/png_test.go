package picture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/physmap/physmap/mm"
)

// rsvgRequired, when set in the environment (make test sets it, after
// installing rsvg-convert or saying how), makes a missing rsvg-convert a
// failure instead of a skip.
const rsvgRequired = "PHYSMAP_RSVG"

// chromiumEnv names a Chromium binary for TestRender to render with too
// (PHYSMAP_CHROMIUM=chromium go test -run TestRender ./qemu/internal/picture):
// the same checks, in the browser that shows the README. Each render takes
// seconds, so make test leaves it out.
const chromiumEnv = "PHYSMAP_CHROMIUM"

// renderChromium renders svg with headless Chromium at 1 px per SVG pixel.
func renderChromium(t *testing.T, bin string, svg []byte, w, h int) image.Image {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "p.svg"), filepath.Join(dir, "p.png")
	if err := os.WriteFile(in, svg, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--force-device-scale-factor=1", fmt.Sprintf("--window-size=%d,%d", w, h), "--screenshot="+out, "file://"+in)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// renderPNG renders svg with rsvg-convert and decodes the result.
func renderPNG(t *testing.T, svg []byte) image.Image {
	t.Helper()
	b, err := PNG(context.Background(), svg)
	if errors.Is(err, ErrNoRSVG) {
		if os.Getenv(rsvgRequired) != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s wrote no PNG: %v", RSVG, err)
	}
	return img
}

// differ reports whether two pixels differ visibly.
func differ(a, b color.Color) bool {
	ar, ag, ab, _ := a.RGBA()
	br, bg, bb, _ := b.RGBA()
	d := func(x, y uint32) bool { return x > y+0x2800 || y > x+0x2800 }
	return d(ar, br) || d(ag, bg) || d(ab, bb)
}

// inkColumns returns the leftmost and rightmost columns in row band
// [y0, y1) holding a pixel that is not white.
func inkColumns(img image.Image, y0, y1 int) (lo, hi int) {
	lo, hi = -1, -1
	r := img.Bounds()
	for x := r.Min.X; x < r.Max.X; x++ {
		for y := max(y0, r.Min.Y); y < min(y1, r.Max.Y); y++ {
			if differ(img.At(x, y), color.White) {
				if lo < 0 {
					lo = x
				}
				hi = x
				break
			}
		}
	}
	return lo, hi
}

// TestFontAdvance measures, in a render, the advance the layout assumes:
// a line of n characters in each style the picture uses spans n advances
// (less the side bearings of its two end glyphs). A proportional fallback
// font (DejaVu Sans sets "M" at 0.86 em) fails it by far.
func TestFontAdvance(t *testing.T) {
	const n = 60
	text := strings.Repeat("MW", n/2)
	var svg strings.Builder
	fmt.Fprintf(&svg, `<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="%d" font-family="%s"><style>%s</style><rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n",
		40*len(allStyles), fontFamily, css)
	for i, st := range allStyles {
		fmt.Fprintf(&svg, `<text x="10" y="%d" font-size="%g" class="%s" style="fill:#000000">%s</text>`+"\n", 40*i+30, st.size, st.class, text)
	}
	svg.WriteString("</svg>\n")
	img := renderPNG(t, []byte(svg.String()))
	for i, st := range allStyles {
		lo, hi := inkColumns(img, 40*i+5, 40*i+38)
		want := st.width(text)
		got := float64(hi - lo + 1)
		t.Logf("%-8s %4.1f px: %d characters %.1f px of ink, %.1f px of advances", st.class, st.size, n, got, want)
		// An oblique face leans past its advances by up to a quarter em.
		if lo < 0 || got < want*(n-1.5)/n || got > want+1.5+0.25*st.size {
			t.Errorf("%s at %g px: %d characters set %.1f px wide, the layout assumes %.1f (advance %.4f em): is DejaVu Sans Mono installed (fonts-dejavu-core)?",
				st.class, st.size, n, got, want, advance)
		}
	}
}

var allStyles = []style{stTitle, stOK, stFail, stFailLine, stSub, stLegend, stNote, stName, stSize, stMeta, stMapped, stHole,
	stAlias, stClone, stUSR, stIdent, stAddr, stRun, stRunDark, stTag, stHalf, stCut, stFoot}

var textRE = regexp.MustCompile(`<text[^>]*>[^<]*</text>`)

// TestRender renders each picture with rsvg-convert (and Chromium, with
// PHYSMAP_CHROMIUM), once whole and once without its text, and checks the
// PNG: the size the SVG states, not blank, the bar where the layout put
// it, every text's ink inside the box the layout's metrics give it (so
// boxes that TestLabelsDisjoint finds disjoint are disjoint on the screen
// too) and every text inked.
func TestRender(t *testing.T) {
	type renderer struct {
		name   string
		render func(t *testing.T, svg []byte, w, h int) image.Image
	}
	renderers := []renderer{{RSVG, func(t *testing.T, svg []byte, w, h int) image.Image { return renderPNG(t, svg) }}}
	if bin := os.Getenv(chromiumEnv); bin != "" {
		renderers = append(renderers, renderer{bin, func(t *testing.T, svg []byte, w, h int) image.Image { return renderChromium(t, bin, svg, w, h) }})
	}
	for _, file := range consoles {
		for _, r := range renderers {
			t.Run(r.name+"/"+file, func(t *testing.T) {
				t.Parallel()
				p := pictureOf(t, file)
				svg := p.render()
				root := parseSVG(t, svg)
				w, h := int(root.num(t, "width")), int(root.num(t, "height"))
				checkRender(t, p, root, r.render(t, svg, w, h), r.render(t, textRE.ReplaceAll(svg, nil), w, h))
			})
		}
	}
}

// checkRender checks img, a render of p's SVG root, against bare, a render
// of it without its text.
func checkRender(t *testing.T, p *picture, root *element, img, bare image.Image) {
	w, h := int(root.num(t, "width")), int(root.num(t, "height"))
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("PNG is %dx%d, the SVG says %dx%d", b.Dx(), b.Dy(), w, h)
	}
	if w != int(width) || h != int(math.Ceil(p.height)) {
		t.Errorf("SVG is %dx%d, the layout %vx%v", w, h, width, p.height)
	}
	inked := 0
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if differ(img.At(x, y), color.White) {
				inked++
			}
		}
	}
	if inked < w*h/10 {
		t.Errorf("only %d of %d pixels are not white", inked, w*h)
	}

	// The direct map's first run is where the layout drew it, in its
	// colour.
	for _, r := range p.m.runs {
		if p.m.regions[p.m.regionOf(mm.VirtAddr(r.VA))].Symbol != directMapSymbol {
			continue
		}
		y, rh := p.sc.Span(mm.VirtAddr(r.VA), mm.VirtAddr(r.End()))
		at := img.At(int(barX+10), int(p.top+y+rh/2))
		var want color.RGBA
		fmt.Sscanf(permColors[r.perm], "#%02x%02x%02x", &want.R, &want.G, &want.B)
		want.A = 0xff
		if differ(at, want) {
			t.Errorf("direct map's first run: pixel %v at the bar, want %s", at, permColors[r.perm])
		}
		break
	}

	// Text ink lies within the boxes, and every box has ink.
	boxes := labelBoxes(t, root)
	const slack = 1.5 // antialiasing
	covered := make([]bool, w*h)
	for _, b := range boxes {
		if b.rect {
			continue
		}
		for y := max(0, int(b.y0-slack)); y < min(h, int(b.y1+slack+1)); y++ {
			for x := max(0, int(b.x0-slack)); x < min(w, int(b.x1+slack+1)); x++ {
				covered[y*w+x] = true
			}
		}
	}
	stray := 0
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if !covered[y*w+x] && differ(img.At(x, y), bare.At(x, y)) {
				if stray < 5 {
					t.Errorf("text ink at (%d, %d) outside every text's box", x, y)
				}
				stray++
			}
		}
	}
	if stray > 0 {
		t.Errorf("%d pixels of text ink outside the boxes", stray)
	}
	for _, b := range boxes {
		if b.rect {
			continue
		}
		ink := false
		for y := int(b.y0); y <= int(b.y1) && !ink; y++ {
			for x := int(b.x0); x <= int(b.x1); x++ {
				if differ(img.At(x, y), bare.At(x, y)) {
					ink = true
					break
				}
			}
		}
		if !ink {
			t.Errorf("%v: no ink rendered", b)
		}
	}
}
