package modload_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/physmap/physmap/kernel/modload"
	"github.com/physmap/physmap/kernel/modules/modtest"
	"github.com/physmap/physmap/mm"
)

// expectOverflows recomputes, from readelf's relocations and symbols,
// which relocations of an object cannot reach from base: an absolute
// 32S value outside [-2^31, 2^31), an R_X86_64_32 one at or above 2^32, a
// PC32 or PLT32 displacement outside [-2^31, 2^31).
func expectOverflows(t *testing.T, raw []byte, o *modload.Object, base mm.VirtAddr, kernel modload.Symbols, exports []modload.Symbol) []elfReloc {
	t.Helper()
	secs, syms := readelfSections(t, raw), readelfSymbols(t, raw)
	var out []elfReloc
	for _, er := range readelfRelocs(t, raw) {
		s, ok := symbolAt(t, o, base, kernel, secs, syms, er.sym, exports)
		if !ok {
			t.Fatalf("no address for %s", er.sym)
		}
		var off uint64
		for _, sec := range o.Sections() {
			if sec.Name == er.section {
				off = sec.Offset
			}
		}
		p := base.Add(off + er.off)
		sa := int64(uint64(s) + uint64(er.addend))
		var bad bool
		switch er.typ {
		case "R_X86_64_32S":
			bad = sa < -1<<31 || sa >= 1<<31
		case "R_X86_64_32":
			bad = uint64(sa) >= 1<<32
		case "R_X86_64_PC32", "R_X86_64_PLT32":
			d := sa - int64(p)
			bad = d < -1<<31 || d >= 1<<31
		}
		if bad {
			out = append(out, er)
		}
	}
	return out
}

// The same two modules refused at a vmalloc address and at the direct-map
// address of their frames, both more than 2 GiB from the kernel text, and
// accepted in the module area; and, as an edge, refused one page below
// __START_KERNEL_map, where only their 32S relocations fall out of reach.
func TestRefusedPlacements(t *testing.T) {
	objs := modtest.Modules(t)
	reloc, deps := mustParse(t, objs["reloc"]), mustParse(t, objs["deps"])
	frames := mm.PhysAddr(0x1234_5000) // where a loader's frames could be
	for _, c := range []struct {
		name string
		base mm.VirtAddr
	}{
		{"vmalloc", vmallocArea.Start.Add(0x2000)},
		{"direct map of the frames", layout4.PageOffset().Add(uint64(frames))},
		{"just below __START_KERNEL_map", kernelText.Start.Sub(reloc.Size() + deps.Size())},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := modload.NewRegistry(physmapKernel)
			for i, o := range []*modload.Object{reloc, deps} {
				raw := objs[o.Name()]
				var exports []modload.Symbol
				if m := r.Find("reloc"); m != nil {
					exports = m.Image().Exports()
				}
				base := c.base.Add(uint64(i) * reloc.Size())
				area := mm.VirtRange{Start: base, End: base.Add(o.Size())}
				_, err := r.Link(o, base, area)
				var pe *modload.PlacementError
				if !errors.As(err, &pe) {
					t.Fatalf("%s at %v: %v, want a PlacementError", o.Name(), base, err)
				}
				if !errors.Is(err, modload.ENOEXEC) {
					t.Errorf("%s: %v is not ENOEXEC", o.Name(), err)
				}
				want := expectOverflows(t, raw, o, base, physmapKernel, exports)
				if len(pe.Overflows) != len(want) {
					t.Fatalf("%s: %d overflows, readelf's relocations give %d: %v", o.Name(), len(pe.Overflows), len(want), pe.Summary())
				}
				for j, e := range pe.Overflows {
					w, got := want[j], e.Reloc
					if got.Type.String() != w.typ || got.Section != w.section || got.Offset != w.off {
						t.Errorf("%s: overflow %d is %v, want %s at %s+%#x", o.Name(), j, got, w.typ, w.section, w.off)
					}
					wantMsg := fmt.Sprintf("overflow in relocation type %d val %x", uint32(got.Type), got.Val)
					if e.Msg != wantMsg || !strings.Contains(e.Detail, w.sym) {
						t.Errorf("%s: %q / %q, want %q naming %s", o.Name(), e.Msg, e.Detail, wantMsg, w.sym)
					}
					if e.Linux != (w.typ == "R_X86_64_32S" || w.typ == "R_X86_64_32") {
						t.Errorf("%s: %s marked Linux=%v", o.Name(), w.typ, e.Linux)
					}
				}
				first := pe.First()
				if !first.Linux || first.Reloc.Type.String() != "R_X86_64_32S" || err.Error() != first.Msg {
					t.Errorf("%s: Linux's first refusal %q (%v), want an R_X86_64_32S", o.Name(), err, first.Reloc)
				}
				t.Logf("%s: %s", o.Name(), err)
				t.Logf("%s: physmap: %s", o.Name(), first.Detail)
				t.Logf("%s: physmap: %s", o.Name(), pe.Summary())
				// The module area takes what was refused.
				img, err := r.Link(o, moduleArea.Start.Add(uint64(i)*reloc.Size()), moduleArea)
				if err != nil {
					t.Fatalf("%s in the module area: %v", o.Name(), err)
				}
				if _, err := r.Add(img); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// The PC32 refusal is physmap's (Linux 6.1 would store a truncated
// displacement), and says so with the distance.
func TestPC32Detail(t *testing.T) {
	o := mustParse(t, modtest.Modules(t)["reloc"])
	base := vmallocArea.Start
	_, err := modload.NewRegistry(physmapKernel).Link(o, base, vmallocArea)
	var pe *modload.PlacementError
	if !errors.As(err, &pe) {
		t.Fatal(err)
	}
	pob, _ := physmapKernel.Lookup("page_offset_base")
	for _, e := range pe.Overflows {
		r := e.Reloc
		if r.Symbol != "page_offset_base" || r.Type.String() != "R_X86_64_PC32" {
			continue
		}
		dist := uint64(pob) - 4 - uint64(r.P) // the symbol is above the place
		for _, want := range []string{fmt.Sprintf("%#x", dist), "55.0 TiB", "above the place", "#if 0", "(kernel, " + pob.String() + ")"} {
			if !strings.Contains(e.Detail, want) {
				t.Errorf("detail %q lacks %q", e.Detail, want)
			}
		}
		if e.Linux {
			t.Errorf("PC32 overflow marked as Linux's")
		}
		return
	}
	t.Fatalf("no PC32 overflow against page_offset_base in %v", pe.Summary())
}

// Code built for the default code model refuses at any base: an
// R_X86_64_32 can hold no kernel-half address.
func TestSmallModel(t *testing.T) {
	o := mustParse(t, testModules(t)["smallmodel"])
	_, err := modload.NewRegistry(physmapKernel).Link(o, moduleArea.Start, moduleArea)
	pob, _ := physmapKernel.Lookup("page_offset_base")
	want := fmt.Sprintf("overflow in relocation type 10 val %x", uint64(pob))
	var pe *modload.PlacementError
	if !errors.As(err, &pe) || err.Error() != want || !pe.First().Linux {
		t.Fatalf("got %v, want %q", err, want)
	}
	if d := pe.First().Detail; !strings.Contains(d, "above 0xffffffff") {
		t.Errorf("detail %q", d)
	}
}
