package modload_test

import (
	"encoding/binary"
	"strconv"
	"strings"
	"testing"

	"github.com/physmap/physmap/kernel/modload"
	"github.com/physmap/physmap/kernel/modules/modtest"
	"github.com/physmap/physmap/mm"
)

// The regions the tests place modules in, from mm's table of Linux's
// layout (4-level), not written out here.
var (
	layout4     = mm.DefaultLayout(mm.Mode4Level)
	moduleArea  = region(mm.KindModules)
	vmallocArea = region(mm.KindVmalloc)
	kernelText  = region(mm.KindKernelText)
)

func region(k mm.RegionKind) mm.VirtRange {
	r, ok := layout4.Region(k)
	if !ok {
		panic("no region " + strconv.Itoa(int(k)))
	}
	return mm.VirtRange{Start: r.Start, End: r.Start.Add(r.Size)}
}

// kernelAt is a kernel symbol table for a kernel image whose text starts
// at text, with the two symbols physmap exports at made-up offsets.
func kernelAt(text mm.VirtAddr) modload.Symbols {
	return modload.Symbols{
		{Name: "page_offset_base", Addr: text.Add(0x121c0a8)},
		{Name: "physmap_console_write", Addr: text.Add(0xa8000)},
	}
}

// physmapKernel is where physmap's kernel runs without KASLR:
// __START_KERNEL_map + its physical load address 0x10010000.
var physmapKernel = kernelAt(kernelText.Start.Add(0x10010000))

// testModules builds the test-only modules of testdata/.
func testModules(t testing.TB) map[string][]byte {
	t.Helper()
	return modtest.Build(t, "kernel/modload/testdata",
		"types", "gotpcrel", "wx", "undef", "bigbss", "initsec", "smallmodel", "permanent")
}

func mustParse(t testing.TB, data []byte) *modload.Object {
	t.Helper()
	o, err := modload.Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return o
}

// read returns n bytes of the image at va, zero past a group's Data.
func read(t testing.TB, img *modload.Image, va mm.VirtAddr, n int) []byte {
	t.Helper()
	for _, g := range img.Groups {
		if va < g.VA || va.Add(uint64(n)) > g.VA.Add(g.Size) {
			continue
		}
		out := make([]byte, n)
		off := uint64(va - g.VA)
		if off < uint64(len(g.Data)) {
			copy(out, g.Data[off:])
		}
		return out
	}
	t.Fatalf("%v+%d is in no group of %s", va, n, img.Name())
	return nil
}

func read64(t testing.TB, img *modload.Image, va mm.VirtAddr) uint64 {
	return binary.LittleEndian.Uint64(read(t, img, va, 8))
}

// What binutils' readelf says about an object: the independent source the
// tests compare the loader with.

type elfSection struct {
	index       int
	name, typ   string
	flags       string
	size, align uint64
}

type elfSymbol struct {
	name  string
	value uint64
	ndx   string // section index, or UND, ABS, COM
	typ   string
}

type elfReloc struct {
	section string // the section patched
	off     uint64
	typ     string
	sym     string
	addend  int64
}

func hex(t testing.TB, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
	if err != nil {
		t.Fatalf("readelf field %q: %v", s, err)
	}
	return v
}

// readelfSections parses readelf -S -W.
func readelfSections(t testing.TB, obj []byte) []elfSection {
	t.Helper()
	var out []elfSection
	for _, l := range strings.Split(modtest.Readelf(t, obj, "-S", "-W"), "\n") {
		open, close := strings.Index(l, "["), strings.Index(l, "]")
		if open < 0 || close < open || !strings.HasPrefix(strings.TrimSpace(l), "[") {
			continue
		}
		idx, err := strconv.Atoi(strings.TrimSpace(l[open+1 : close]))
		if err != nil || idx == 0 {
			continue
		}
		f := strings.Fields(l[close+1:])
		// Name Type Address Off Size ES [Flg] Lk Inf Al
		flags := ""
		if len(f) == 10 {
			flags = f[6]
		}
		al, _ := strconv.ParseUint(f[len(f)-1], 10, 64)
		out = append(out, elfSection{index: idx, name: f[0], typ: f[1], flags: flags, size: hex(t, f[4]), align: al})
	}
	return out
}

// readelfSymbols parses readelf -s -W.
func readelfSymbols(t testing.TB, obj []byte) []elfSymbol {
	t.Helper()
	var out []elfSymbol
	for _, l := range strings.Split(modtest.Readelf(t, obj, "-s", "-W"), "\n") {
		f := strings.Fields(l)
		// Num: Value Size Type Bind Vis Ndx Name
		if len(f) < 8 || !strings.HasSuffix(f[0], ":") || f[0] == "Num:" {
			continue
		}
		out = append(out, elfSymbol{name: f[7], value: hex(t, f[1]), ndx: f[6], typ: f[3]})
	}
	return out
}

// readelfRelocs parses readelf -r -W.
func readelfRelocs(t testing.TB, obj []byte) []elfReloc {
	t.Helper()
	var out []elfReloc
	sec := ""
	for _, l := range strings.Split(modtest.Readelf(t, obj, "-r", "-W"), "\n") {
		if rest, ok := strings.CutPrefix(l, "Relocation section '"); ok {
			name := rest[:strings.Index(rest, "'")]
			sec = strings.TrimPrefix(name, ".rela")
			continue
		}
		f := strings.Fields(l)
		// Offset Info Type Symbol's-Value Symbol's-Name +/- Addend
		if len(f) != 7 || !strings.HasPrefix(f[2], "R_X86_64_") {
			continue
		}
		a := int64(hex(t, f[6]))
		if f[5] == "-" {
			a = -a
		}
		out = append(out, elfReloc{section: sec, off: hex(t, f[0]), typ: f[2], sym: f[4], addend: a})
	}
	if len(out) == 0 {
		t.Fatal("readelf -r found no relocation")
	}
	return out
}

// symbolVA finds where a symbol of an image lands: readelf's value plus
// the loader's offset of its section, or the kernel's or another module's
// address for an undefined one.
func symbolVA(t testing.TB, img *modload.Image, kernel modload.Symbols, secs []elfSection, syms []elfSymbol, name string, others ...*modload.Image) (mm.VirtAddr, bool) {
	t.Helper()
	var exports []modload.Symbol
	for _, o := range others {
		exports = append(exports, o.Exports()...)
	}
	return symbolAt(t, img.Object(), img.Base, kernel, secs, syms, name, exports)
}

// symbolAt is symbolVA for an object placed at base, linked or not.
func symbolAt(t testing.TB, o *modload.Object, base mm.VirtAddr, kernel modload.Symbols, secs []elfSection, syms []elfSymbol, name string, exports []modload.Symbol) (mm.VirtAddr, bool) {
	t.Helper()
	secVA := func(secName string) mm.VirtAddr {
		for _, s := range o.Sections() {
			if s.Name == secName {
				return base.Add(s.Offset)
			}
		}
		t.Fatalf("%s: section %s not placed", o.Name(), secName)
		return 0
	}
	for _, s := range secs {
		if s.name == name { // a section symbol: readelf prints the section's name
			return secVA(name), true
		}
	}
	for _, s := range syms {
		if s.name != name {
			continue
		}
		switch s.ndx {
		case "UND":
			if a, ok := kernel.Lookup(name); ok {
				return a, true
			}
			return modload.Symbols(exports).Lookup(name)
		case "ABS":
			return mm.VirtAddr(s.value), true
		}
		idx, _ := strconv.Atoi(s.ndx)
		for _, sec := range secs {
			if sec.index == idx {
				return secVA(sec.name).Add(s.value), true
			}
		}
	}
	return 0, false
}
