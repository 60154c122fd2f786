package mm

import (
	"bytes"
	"strings"
	"testing"
)

func TestLayoutValid(t *testing.T) {
	for _, mode := range modes {
		l := DefaultLayout(mode)
		if err := l.Validate(); err != nil {
			t.Errorf("%v: %v", mode, err)
		}
		// Markers are ordered, each inside the space.
		ms := l.Markers()
		for i := 1; i < len(ms); i++ {
			if ms[i].Start < ms[i-1].Start {
				t.Errorf("%v: marker %q before %q", mode, ms[i].Name, ms[i-1].Name)
			}
		}
	}
}

// The documented bases and sizes (Documentation/arch/x86/x86_64/mm.rst).
func TestLayoutDocumented(t *testing.T) {
	type row struct {
		kind  RegionKind
		start VirtAddr
		last  VirtAddr
		size  uint64
	}
	common := []row{
		{KindCPUEntryArea, 0xfffffe0000000000, 0xfffffe7fffffffff, TB / 2},
		{KindESPFix, 0xffffff0000000000, 0xffffff7fffffffff, TB / 2},
		{KindEFI, 0xffffffef00000000, 0xfffffffeffffffff, 64 * GB},
		{KindKernelText, 0xffffffff80000000, 0xffffffff9fffffff, 512 * MB},
		{KindModules, 0xffffffffa0000000, 0xfffffffffeffffff, 1520 * MB},
		{KindVsyscall, 0xffffffffff600000, 0xffffffffff600fff, 4 * kB},
	}
	docs := map[Mode][]row{
		Mode4Level: append([]row{
			{KindUser, 0, 0x00007fffffffffff, 128 * TB},
			{KindGuardHole, 0xffff800000000000, 0xffff87ffffffffff, 8 * TB},
			{KindLDTRemap, 0xffff880000000000, 0xffff887fffffffff, TB / 2},
			{KindDirectMap, 0xffff888000000000, 0xffffc87fffffffff, 64 * TB},
			{KindVmalloc, 0xffffc90000000000, 0xffffe8ffffffffff, 32 * TB},
			{KindVmemmap, 0xffffea0000000000, 0xffffeaffffffffff, 1 * TB},
			{KindKASAN, 0xffffec0000000000, 0xfffffbffffffffff, 16 * TB},
		}, common...),
		Mode5Level: append([]row{
			{KindUser, 0, 0x00ffffffffffffff, 64 * PB},
			{KindGuardHole, 0xff00000000000000, 0xff0fffffffffffff, 4 * PB},
			{KindLDTRemap, 0xff10000000000000, 0xff10ffffffffffff, PB / 4},
			{KindDirectMap, 0xff11000000000000, 0xff90ffffffffffff, 32 * PB},
			{KindVmalloc, 0xffa0000000000000, 0xffd1ffffffffffff, 12*PB + PB/2},
			{KindVmemmap, 0xffd4000000000000, 0xffd5ffffffffffff, PB / 2},
			{KindKASAN, 0xffdf000000000000, 0xfffffbffffffffff, 0xfffffc0000000000 - 0xffdf000000000000},
		}, common...),
	}
	for mode, rows := range docs {
		l := DefaultLayout(mode)
		for _, want := range rows {
			r, ok := l.Region(want.kind)
			if !ok || r.Start != want.start || r.Last() != want.last || r.Size != want.size {
				t.Errorf("%v: region %d = %q %v..%v size %#x, want %v..%v size %#x",
					mode, want.kind, r.Name, r.Start, r.Last(), r.Size, want.start, want.last, want.size)
			}
		}
	}
}

func TestLayoutLookup(t *testing.T) {
	l := DefaultLayout(Mode4Level)
	for _, name := range []string{"page_offset_base", "Low Kernel Mapping", "direct mapping of all physical memory (page_offset_base)"} {
		if r, ok := l.Lookup(name); !ok || r.Kind != KindDirectMap {
			t.Errorf("Lookup(%q) = %v %v", name, r, ok)
		}
	}
	if _, ok := l.Lookup("nonesuch"); ok {
		t.Error("Lookup found nonesuch")
	}
	if l.PageOffset() != 0xffff888000000000 || DefaultLayout(Mode5Level).PageOffset() != 0xff11000000000000 {
		t.Error("PageOffset")
	}
	if r := l.Find(0xffffffffa0001000); r.Kind != KindModules || !r.Contains(0xfffffffffeffffff) || r.Contains(0xffffffffff000000) {
		t.Errorf("Find: %v", r)
	}
	if r := l.Find(^VirtAddr(0)); r.Kind != KindHole {
		t.Errorf("Find top: %v", r)
	}
	if _, ok := (&Layout{Mode: Mode4Level}).Region(KindUser); ok {
		t.Error("empty layout has a region")
	}
	defer func() {
		if recover() == nil {
			t.Error("Find outside an empty layout did not panic")
		}
	}()
	(&Layout{Mode: Mode4Level}).Find(0)
}

func TestNewLayout(t *testing.T) {
	// Memory KASLR: three randomized, 1 GiB aligned bases, no KASAN.
	opt := LayoutOptions{
		PageOffset:    0xffff_9a00_0000_0000,
		DirectMapSize: 2 * TB,
		VmallocBase:   0xffff_b100_4000_0000,
		VmemmapBase:   0xffff_e000_8000_0000,
		VmemmapSize:   TB,
		NoKASAN:       true,
	}
	l := NewLayout(Mode4Level, opt)
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	if l.PageOffset() != opt.PageOffset {
		t.Fatal("page offset not moved")
	}
	if _, ok := l.Region(KindKASAN); ok {
		t.Fatal("KASAN kept")
	}
	// Kernel image KASLR: a 1 GiB text mapping moves the module area.
	l = NewLayout(Mode5Level, LayoutOptions{KernelImageSize: GB, FixmapStart: 0xffffffffff500000})
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	if m, _ := l.Region(KindModules); m.Start != 0xffffffffc0000000 || m.Last() != 0xfffffffffeffffff {
		t.Fatalf("modules %v..%v", m.Start, m.Last())
	}
	if f, _ := l.Region(KindFixmap); f.Start != 0xffffffffff500000 || f.Last() != 0xffffffffff5fffff {
		t.Fatalf("fixmap %v..%v", f.Start, f.Last())
	}
	// Fault injection: the direct map at the pre-4.20 base overlaps the
	// LDT remap; the layout is representable and Validate says why.
	l = NewLayout(Mode4Level, LayoutOptions{PageOffset: 0xffff880000000000})
	if l.PageOffset() != 0xffff880000000000 {
		t.Fatal("injection base lost")
	}
	if err := l.Validate(); err == nil || !strings.Contains(err.Error(), "overlaps") {
		t.Fatalf("Validate: %v", err)
	}
}

func TestLayoutValidateErrors(t *testing.T) {
	l := DefaultLayout(Mode4Level)
	tests := []struct {
		name string
		edit func(rs []Region) []Region
		want string
	}{
		{"gap", func(rs []Region) []Region { return append(rs[:4], rs[5:]...) }, "gap"},
		{"empty", func(rs []Region) []Region { rs[5].Size = 0; return rs }, "empty"},
		{"misaligned", func(rs []Region) []Region { rs[4].Size -= 0x800; rs[5].Start -= 0x800; rs[5].Size += 0x800; return rs }, "4 KiB"},
		{"not-1G", func(rs []Region) []Region {
			rs[4].Size -= 0x1000
			rs[5].Start -= 0x1000
			rs[5].Size += 0x1000
			rs[5].Kind = KindVmalloc
			return rs
		}, "1 GiB"},
		{"short", func(rs []Region) []Region { return rs[:len(rs)-1] }, "not at the top"},
		{"noncanonical-moved", func(rs []Region) []Region { rs[1].Kind = KindHole; return rs }, "not canonical"},
		{"noncanonical-wrong", func(rs []Region) []Region { rs[0].Kind = KindNonCanonical; return rs }, "not the non-canonical hole"},
		{"top-early", func(rs []Region) []Region { return append(rs, Region{Kind: KindHole, Start: 0, Size: 0x1000}) }, "top of the space before"},
	}
	for _, tt := range tests {
		c := &Layout{Mode: l.Mode, Regions: tt.edit(append([]Region(nil), l.Regions...))}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestLayoutTableGolden(t *testing.T) {
	for _, mode := range modes {
		var b bytes.Buffer
		if err := DefaultLayout(mode).WriteTable(&b); err != nil {
			t.Fatal(err)
		}
		golden(t, "layout-"+strings.ReplaceAll(mode.String(), "-", "")+".golden", b.Bytes())
	}
}

func TestSizeAndOffsetStrings(t *testing.T) {
	for _, tt := range []struct {
		n    uint64
		want string
	}{{128 * TB, "128 TB"}, {TB / 2, "0.5 TB"}, {444 * GB, "444 GB"}, {1520 * MB, "1520 MB"},
		{4 * kB, "4 kB"}, {12*PB + PB/2, "12.5 PB"}, {0xfffffc0000000000 - 0xffdf000000000000, "~8 PB"}, {100, "100 B"}, {1<<64 - 1<<48, "~16 EB"}} {
		if got := sizeString(tt.n); got != tt.want {
			t.Errorf("sizeString(%#x) = %q, want %q", tt.n, got, tt.want)
		}
	}
	for _, tt := range []struct {
		a    VirtAddr
		want string
	}{{0, "0"}, {0x0000800000000000, "+128 TB"}, {0xffff888000000000, "-119.5 TB"},
		{0xffffffffff600000, "-10 MB"}, {0xffdf000000000000, "-8.25 PB"}, {0xfffffffffffff800, "-2 kB"},
		{0xffffffffffffff00, "-256 B"}, {0xffffffffff601000, "~-10 MB"}, {0x0000_8000_0000_1000, "~+128 TB"}} {
		if got := offsetString(tt.a); got != tt.want {
			t.Errorf("offsetString(%v) = %q, want %q", tt.a, got, tt.want)
		}
	}
}
