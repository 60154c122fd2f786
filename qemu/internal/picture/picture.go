// Package picture draws physmap's live address space as an SVG, from the
// kernel's JSON dump of its page tables (package kernel/dump) and the
// verdict of the boot that made it: the two canonical halves and the cut
// non-canonical hole between them, every region of Linux's layout on a
// logarithmic scale with its name, size and what is mapped there, the runs
// of leaves coloured by permission, and tags beside the bar that mark
// where one physical range is mapped several times (a letter per range,
// repeated at each of its VAs and explained in the labels), clone sets
// (one frame at many VAs, drawn once) and user-accessible leaves. A
// failing boot's picture says so in its title.
//
// The commands physmap-map (make map) and physmap-docs (make docs) use it.
// PNG renders the SVG with librsvg's rsvg-convert.
package picture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"strings"

	"github.com/physmap/physmap/kernel/dump"
)

// directMapSymbol names the region whose VAs are page_offset_base + pa.
const directMapSymbol = "page_offset_base"

// Picture is one laid-out drawing.
type Picture struct{ p *picture }

// New lays out the picture of d, from a boot with verdict v.
func New(d *dump.Dump, v Verdict) (*Picture, error) {
	// The model finds clone sets itself, from one run per place.
	cp := *d
	cp.Runs = dump.Expand(d.Runs)
	m, err := newModel(&cp, v)
	if err != nil {
		return nil, err
	}
	return &Picture{layout(m)}, nil
}

// SVG returns the picture as a standalone SVG document.
func (p *Picture) SVG() []byte { return p.p.render() }

// Height returns the picture's height in pixels.
func (p *Picture) Height() int { return int(math.Ceil(p.p.height)) }

// Width returns the picture's width in pixels.
func (p *Picture) Width() int { return int(width) }

// Summary says what the picture shows, in one line.
func (p *Picture) Summary() string {
	m := p.p.m
	return fmt.Sprintf("%dx%d px: %d regions, %d runs drawn (%d clone sets), %d aliases", p.Width(), p.Height(),
		len(m.regions), len(m.runs), len(m.clones), len(m.aliases))
}

// RSVG is the renderer PNG runs.
const RSVG = "rsvg-convert"

// ErrNoRSVG reports that rsvg-convert is not installed.
var ErrNoRSVG = errors.New("rsvg-convert is missing; install it with: apt-get install -y librsvg2-bin")

// PNG renders an SVG document to PNG bytes with rsvg-convert at 1 px per
// SVG pixel.
func PNG(ctx context.Context, svg []byte) ([]byte, error) {
	bin, err := exec.LookPath(RSVG)
	if err != nil {
		return nil, ErrNoRSVG
	}
	cmd := exec.CommandContext(ctx, bin, "--format", "png")
	cmd.Stdin = bytes.NewReader(svg)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %v: %s", RSVG, err, strings.TrimSpace(stderr.String()))
	}
	return out.Bytes(), nil
}

// HumanSize writes n bytes as the picture does: in the biggest binary unit
// it is a whole multiple of, below 10000 of them ("1520 MiB"), else to one
// decimal, exact ("32.5 MiB") or marked approximate ("~34.9 MiB").
func HumanSize(n uint64) string { return humanSize(n) }
