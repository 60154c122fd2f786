package modload_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/physmap/physmap/kernel/modload"
	"github.com/physmap/physmap/kernel/modules/modtest"
	"github.com/physmap/physmap/mm"
)

// wantGroup is layout_sections' rule restated from readelf's flag letters
// (A alloc, X exec, W write): the group a section belongs in.
func wantGroup(s elfSection) (modload.Group, bool) {
	has := func(c string) bool { return strings.Contains(s.flags, c) }
	switch {
	case !has("A") || s.name == ".modinfo":
		return 0, false
	case has("X"):
		return modload.GroupText, true
	case !has("W"):
		return modload.GroupRodata, true
	case s.name == ".data..ro_after_init" || s.name == "__jump_table":
		return modload.GroupROAfterInit, true
	}
	return modload.GroupData, true
}

// Every SHF_ALLOC section is placed once, in its group, at its alignment,
// in section order within the group, inside its group's page-aligned
// extent; the extents follow each other in group order.
func TestLayout(t *testing.T) {
	objs := modtest.Modules(t)
	objs["types"] = testModules(t)["types"]
	for _, name := range []string{"reloc", "deps", "types"} {
		t.Run(name, func(t *testing.T) {
			o := mustParse(t, objs[name])
			secs := o.Sections()
			var placed []int
			for _, es := range readelfSections(t, objs[name]) {
				g, alloc := wantGroup(es)
				i := slices.IndexFunc(secs, func(s modload.Section) bool { return s.Index == es.index })
				if !alloc {
					if i >= 0 {
						t.Errorf("%s placed, but it is not SHF_ALLOC", es.name)
					}
					continue
				}
				if i < 0 {
					t.Errorf("%s (%s) not placed", es.name, es.flags)
					continue
				}
				s := secs[i]
				placed = append(placed, i)
				ext := o.Extents()[g]
				switch {
				case s.Name != es.name || s.Group != g || s.Size != es.size:
					t.Errorf("%s: placed as %+v, want group %v size %#x", es.name, s, g, es.size)
				case es.align > 1 && s.Offset%es.align != 0:
					t.Errorf("%s at %#x, not aligned to %d", es.name, s.Offset, es.align)
				case s.Offset < ext.Offset || s.Offset+s.Size > ext.Offset+ext.Size:
					t.Errorf("%s at [%#x, %#x) outside its extent %+v", es.name, s.Offset, s.Offset+s.Size, ext)
				}
			}
			if len(placed) != len(secs) {
				t.Errorf("%d sections placed, readelf has %d SHF_ALLOC ones", len(secs), len(placed))
			}
			for i := 1; i < len(secs); i++ {
				a, b := secs[i-1], secs[i]
				if a.Offset+a.Size > b.Offset {
					t.Errorf("%s and %s overlap", a.Name, b.Name)
				}
				if a.Group == b.Group && a.Index > b.Index {
					t.Errorf("%s before %s in %v, against section order", a.Name, b.Name, a.Group)
				}
			}
			var end uint64
			for g, ext := range o.Extents() {
				if ext.Group != modload.Group(g) || ext.Offset != end || ext.Size%modload.PageSize != 0 {
					t.Errorf("extent %d %+v, want group %v at %#x page-aligned", g, ext, modload.Group(g), end)
				}
				end = ext.Offset + ext.Size
			}
			if end != o.Size() {
				t.Errorf("extents end at %#x, Size %#x", end, o.Size())
			}
		})
	}
}

// The loader applies exactly the relocations readelf lists, by type; the
// log gives the figures for the module's closing note.
func TestRelocCounts(t *testing.T) {
	objs := modtest.Modules(t)
	for _, name := range []string{"reloc", "deps"} {
		want := map[string]int{}
		for _, r := range readelfRelocs(t, objs[name]) {
			want[r.typ]++
		}
		got := map[string]int{}
		var line []string
		for _, c := range mustParse(t, objs[name]).RelocCounts() {
			got[c.Type.String()] = c.Count
			line = append(line, fmt.Sprintf("%v %d", c.Type, c.Count))
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: loader counts %v, readelf %v", name, got, want)
		}
		t.Logf("%s: %s", name, strings.Join(line, ", "))
	}
}

// placement is a kernel and a base for the modules.
type placement struct {
	name   string
	kernel modload.Symbols
	base   func(size uint64) mm.VirtAddr
}

var placements = []placement{
	{"MODULES_VADDR", physmapKernel, func(uint64) mm.VirtAddr { return moduleArea.Start }},
	// KASLR moves the image within a 1 GiB kernel text mapping and the
	// modules by a random offset (arch/x86/kernel/module.c:
	// module_load_offset): the extremes still reach each other.
	{"kernel low, modules at the top", kernelAt(kernelText.Start.Add(0x1000000)),
		func(size uint64) mm.VirtAddr { return moduleArea.End.Sub(size) }},
	{"kernel high, modules low", kernelAt(mm.VirtAddr(0xffffffffbfe00000)),
		func(uint64) mm.VirtAddr { return moduleArea.Start.Add(0x3ff000) }},
}

// loadAll links and registers objects one after the other from base.
func loadAll(t *testing.T, r *modload.Registry, base mm.VirtAddr, objs ...*modload.Object) []*modload.Image {
	t.Helper()
	var imgs []*modload.Image
	for _, o := range objs {
		img, err := r.Link(o, base, moduleArea)
		if err != nil {
			t.Fatalf("Link %s at %v: %v", o.Name(), base, err)
		}
		if _, err := r.Add(img); err != nil {
			t.Fatalf("Add %s: %v", o.Name(), err)
		}
		imgs = append(imgs, img)
		base = base.Add(o.Size())
	}
	return imgs
}

// Each relocated field holds what the psABI's formula gives for the
// addresses readelf and the layout give: S from readelf's symbol value
// (plus its section's place) or the kernel table, P from r_offset.
func TestRelocatedFields(t *testing.T) {
	objs := modtest.Modules(t)
	types := testModules(t)["types"]
	for _, pl := range placements {
		t.Run(pl.name, func(t *testing.T) {
			reloc, deps, ty := mustParse(t, objs["reloc"]), mustParse(t, objs["deps"]), mustParse(t, types)
			r := modload.NewRegistry(pl.kernel)
			imgs := loadAll(t, r, pl.base(reloc.Size()+deps.Size()+ty.Size()), reloc, deps, ty)
			raw := [][]byte{objs["reloc"], objs["deps"], types}
			for i, img := range imgs {
				secs, syms := readelfSections(t, raw[i]), readelfSymbols(t, raw[i])
				var placeOf = map[string]uint64{}
				for _, s := range img.Object().Sections() {
					placeOf[s.Name] = s.Offset
				}
				n := 0
				for _, er := range readelfRelocs(t, raw[i]) {
					s, ok := symbolVA(t, img, pl.kernel, secs, syms, er.sym, imgs...)
					if !ok {
						t.Fatalf("%s: no address for %s", img.Name(), er.sym)
					}
					p := img.Base.Add(placeOf[er.section] + er.off)
					sa := uint64(s) + uint64(er.addend)
					var want []byte
					switch er.typ {
					case "R_X86_64_NONE":
						want = []byte{0xc3} // writes nothing: types.S puts it at a ret
					case "R_X86_64_64":
						want = binary.LittleEndian.AppendUint64(nil, sa)
					case "R_X86_64_PC64":
						want = binary.LittleEndian.AppendUint64(nil, sa-uint64(p))
					case "R_X86_64_32", "R_X86_64_32S":
						want = binary.LittleEndian.AppendUint32(nil, uint32(sa))
					case "R_X86_64_PC32", "R_X86_64_PLT32":
						want = binary.LittleEndian.AppendUint32(nil, uint32(sa-uint64(p)))
					default:
						t.Fatalf("unexpected %s", er.typ)
					}
					if got := read(t, img, p, len(want)); !bytes.Equal(got, want) {
						t.Errorf("%s: %s at %s+%#x (%v) against %s%+d: % x, want % x", img.Name(), er.typ, er.section, er.off, p, er.sym, er.addend, got, want)
					}
					n++
				}
				if applied := img.Applied(); applied != n-countNone(t, raw[i]) {
					t.Errorf("%s: %d relocations applied, readelf lists %d besides R_X86_64_NONE", img.Name(), applied, n-countNone(t, raw[i]))
				}
			}
		})
	}
}

func countNone(t *testing.T, obj []byte) int {
	n := 0
	for _, r := range readelfRelocs(t, obj) {
		if r.typ == "R_X86_64_NONE" {
			n++
		}
	}
	return n
}

// The module's own symbols, exports, init and exit are where readelf's
// values and the layout put them.
func TestSymbolsAndExports(t *testing.T) {
	objs := modtest.Modules(t)
	reloc, deps := mustParse(t, objs["reloc"]), mustParse(t, objs["deps"])
	r := modload.NewRegistry(physmapKernel)
	imgs := loadAll(t, r, moduleArea.Start, reloc, deps)
	for i, name := range []string{"reloc", "deps"} {
		img := imgs[i]
		secs, syms := readelfSections(t, objs[name]), readelfSymbols(t, objs[name])
		for _, s := range img.Symbols() {
			want, ok := symbolVA(t, img, physmapKernel, secs, syms, s.Name)
			if !ok || want != s.Addr {
				t.Errorf("%s: symbol %s at %v, readelf and the layout say %v", name, s.Name, s.Addr, want)
			}
		}
		for _, fn := range []struct {
			name string
			get  func() (mm.VirtAddr, bool)
		}{{"init_module", img.Init}, {"cleanup_module", img.Exit}} {
			got, ok := fn.get()
			want, _ := symbolVA(t, img, physmapKernel, secs, syms, fn.name)
			if !ok || got != want {
				t.Errorf("%s: %s at %v (%v), want %v", name, fn.name, got, ok, want)
			}
		}
	}
	var got []string
	for _, e := range imgs[0].Exports() {
		want, _ := symbolVA(t, imgs[0], physmapKernel, readelfSections(t, objs["reloc"]), readelfSymbols(t, objs["reloc"]), e.Name)
		if e.Addr != want {
			t.Errorf("export %s at %v, want %v", e.Name, e.Addr, want)
		}
		got = append(got, e.Name)
	}
	if want := []string{"reloc_add", "reloc_calls"}; !slices.Equal(got, want) {
		t.Errorf("reloc exports %v, want %v", got, want)
	}
	if got, want := imgs[1].Uses(), []string{"reloc"}; !slices.Equal(got, want) {
		t.Errorf("deps uses %v, want %v", got, want)
	}
	if got := reloc.Modinfo("license"); !slices.Equal(got, []string{"GPL"}) {
		t.Errorf("reloc license %v", got)
	}
	if got := deps.Undefined(); !slices.Equal(got, []string{"physmap_console_write", "reloc_add", "reloc_calls"}) {
		t.Errorf("deps needs %v", got)
	}
}

// The group permissions module_enable_ro/nx/x give.
func TestGroupAttrs(t *testing.T) {
	for _, c := range []struct {
		g           modload.Group
		before, aft mm.Attr
	}{
		{modload.GroupText, mm.PageKernelExec, mm.PageKernelExec},
		{modload.GroupRodata, mm.PageKernelRO, mm.PageKernelRO},
		{modload.GroupROAfterInit, mm.PageKernel, mm.PageKernelRO},
		{modload.GroupData, mm.PageKernel, mm.PageKernel},
	} {
		if got := c.g.Attrs(false); got != c.before {
			t.Errorf("%v before init: %v, want %v", c.g, got, c.before)
		}
		if got := c.g.Attrs(true); got != c.aft {
			t.Errorf("%v after init: %v, want %v", c.g, got, c.aft)
		}
		if c.g.Attrs(false)&mm.AttrWrite != 0 && c.g.Attrs(false)&mm.AttrNX == 0 {
			t.Errorf("%v is W+X", c.g)
		}
	}
}

// A group's pages: Data, then zeros the caller provides.
func TestPages(t *testing.T) {
	o := mustParse(t, modtest.Modules(t)["reloc"])
	img, err := modload.NewRegistry(physmapKernel).Link(o, moduleArea.Start, moduleArea)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range img.Groups {
		if uint64(len(g.Data)) > g.Size || g.Size%modload.PageSize != 0 {
			t.Errorf("%v: %d bytes of data in %#x", g.Group, len(g.Data), g.Size)
		}
		var all []byte
		for i := range g.Pages() {
			p := g.Page(i)
			if len(p) > modload.PageSize {
				t.Errorf("%v page %d: %d bytes", g.Group, i, len(p))
			}
			all = append(all, p...)
		}
		if !bytes.Equal(all, g.Data) {
			t.Errorf("%v: pages do not add up to Data", g.Group)
		}
	}
	if d := img.Groups[modload.GroupData]; d.Data == nil || uint64(len(d.Data)) >= d.Size {
		t.Errorf("data group: %d bytes given of %#x: .bss should be left to the caller's zeroed frame", len(d.Data), d.Size)
	}
}

// Parse and Link of reloc, the work a load does before it takes a frame.
func BenchmarkParseLink(b *testing.B) {
	data := modtest.Modules(b)["reloc"]
	r := modload.NewRegistry(physmapKernel)
	for b.Loop() {
		o, err := modload.Parse(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Link(o, moduleArea.Start, moduleArea); err != nil {
			b.Fatal(err)
		}
	}
}
