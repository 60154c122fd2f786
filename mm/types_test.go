package mm

import (
	"errors"
	"strings"
	"testing"
)

func TestAddrs(t *testing.T) {
	p := PhysAddr(0x7_4000_1234)
	if p.AlignDown(0x1000) != 0x7_4000_1000 || p.AlignUp(0x1000) != 0x7_4000_2000 || p.IsAligned(0x1000) ||
		p.Add(0x10) != 0x7_4000_1244 || p.String() != "0x740001234" {
		t.Fatal("PhysAddr methods")
	}
	v := VirtAddr(0xffff_8880_0000_1234)
	if v.AlignDown(0x1000) != 0xffff_8880_0000_1000 || v.AlignUp(0x1000) != 0xffff_8880_0000_2000 ||
		v.IsAligned(8) || v.Add(0x10).Sub(0x10) != v || v.String() != "0xffff888000001234" {
		t.Fatal("VirtAddr methods")
	}
	pr := PhysRange{0x1000, 0x3000}
	if pr.Len() != 0x2000 || pr.Empty() || !pr.Contains(0x2fff) || pr.Contains(0x3000) ||
		!pr.Overlaps(PhysRange{0x2000, 0x5000}) || pr.Overlaps(PhysRange{0x3000, 0x5000}) ||
		pr.String() != "[0x1000, 0x3000)" || (PhysRange{5, 1}).Len() != 0 {
		t.Fatal("PhysRange methods")
	}
	vr := VirtRange{0x1000, 0x3000}
	if vr.Len() != 0x2000 || vr.Empty() || !vr.Contains(0x1000) || vr.Contains(0x3000) ||
		!vr.Overlaps(VirtRange{0, 0x1001}) || vr.Overlaps(VirtRange{}) ||
		vr.String() != "[0x1000, 0x3000)" || (VirtRange{5, 1}).Len() != 0 {
		t.Fatal("VirtRange methods")
	}
	for _, s := range []PageSize{Size4K, Size2M, Size1G} {
		if !Only(s).Has(s) || pageSizeAt(s.Level()) != s {
			t.Fatalf("page size %v", s)
		}
	}
	if Size2M.String() != "2M" || Size1G.String() != "1G" || Size4K.String() != "4K" || PageSize(8).String() != "8B" {
		t.Fatal("PageSize.String")
	}
	if AllowAll.Has(PageSize(8)) || (Allow4K | Allow1G).Has(Size2M) {
		t.Fatal("PageSizes.Has")
	}
}

func TestMode(t *testing.T) {
	tests := []struct {
		mode      Mode
		bits      uint
		canonical []VirtAddr
		not       []VirtAddr
		levels    []Level
	}{
		{Mode4Level, 48,
			[]VirtAddr{0, 0x7fff_ffff_ffff, 0xffff_8000_0000_0000, ^VirtAddr(0)},
			[]VirtAddr{0x8000_0000_0000, 0xff11_0000_0000_0000, 0x00ff_ffff_ffff_ffff},
			[]Level{PGD, PUD, PMD, PTE}},
		{Mode5Level, 57,
			[]VirtAddr{0, 0x8000_0000_0000, 0x00ff_ffff_ffff_ffff, 0xff11_0000_0000_0000, ^VirtAddr(0)},
			[]VirtAddr{0x0100_0000_0000_0000, 0xfeff_ffff_ffff_ffff},
			[]Level{PGD, P4D, PUD, PMD, PTE}},
	}
	for _, tt := range tests {
		m := tt.mode
		if !m.Valid() || m.VABits() != tt.bits || m.Levels() != len(tt.levels) || m.Top() != PGD {
			t.Fatalf("%v: bits %d levels %d", m, m.VABits(), m.Levels())
		}
		for _, va := range tt.canonical {
			if !m.Canonical(va) || m.signExtend(va) != va {
				t.Errorf("%v: %v should be canonical", m, va)
			}
		}
		for _, va := range tt.not {
			if m.Canonical(va) {
				t.Errorf("%v: %v should not be canonical", m, va)
			}
		}
		if m.UserEnd() != 1<<(tt.bits-1) || !m.Canonical(m.KernelStart()) || m.Canonical(m.KernelStart()-1) {
			t.Errorf("%v: halves", m)
		}
		l := m.Top()
		for i, want := range tt.levels {
			if l != want || !m.Has(l) {
				t.Fatalf("%v: level %d is %v, want %v", m, i, l, want)
			}
			if m.EntrySpan(l) != 1<<(12+9*uint(len(tt.levels)-1-i)) {
				t.Fatalf("%v: span of %v is %#x", m, l, m.EntrySpan(l))
			}
			l = m.Below(l)
		}
		if l != NoLevel {
			t.Fatalf("below pte: %v", l)
		}
		va := VirtAddr(0xffff_ffff_ffff_f000)
		if m.Index(va, PGD) != 511 || m.Index(va, PTE) != 511 || m.Index(0x20_1000, PMD) != 1 || m.Index(0x20_1000, PTE) != 1 {
			t.Fatalf("%v: Index", m)
		}
	}
	if Mode4Level.Has(P4D) || Mode(3).Valid() || Mode(3).String() != "Mode(3)" || Mode5Level.String() != "5-level" {
		t.Fatal("mode misc")
	}
	if NoLevel.String() != "-" || P4D.String() != "p4d" || PGD.String() != "pgd" {
		t.Fatal("level names")
	}
}

func TestEntryEncoding(t *testing.T) {
	tests := []struct {
		name  string
		level Level
		pa    PhysAddr
		attrs Attr
		want  Entry
	}{
		{"pte-kernel", PTE, 0x7_4000_1000, PageKernel, Present | Accessed | RW | NX | Global | 0x7_4000_1000},
		{"pte-pat", PTE, 0xf_ffff_ffff_f000, AttrPAT | AttrPCD | AttrPWT | AttrUser, Present | Accessed | PAT | PCD | PWT | User | 0xf_ffff_ffff_f000},
		{"pmd-pat", PMD, 0x2_0020_0000, AttrPAT | AttrWrite, Present | Accessed | PS | PATHuge | RW | 0x2_0020_0000},
		{"pud-exec", PUD, 0x2_4000_0000, PageKernelExec, Present | Accessed | PS | Global | 0x2_4000_0000},
	}
	for _, tt := range tests {
		e := MakeLeaf(tt.level, tt.pa, tt.attrs)
		if e != tt.want {
			t.Errorf("%s: %#x, want %#x", tt.name, uint64(e), uint64(tt.want))
		}
		if !e.IsPresent() || !e.IsLeaf(tt.level) || e.Addr(tt.level) != tt.pa || e.Attrs(tt.level) != tt.attrs {
			t.Errorf("%s: decoded %v %v", tt.name, e.Addr(tt.level), e.Attrs(tt.level))
		}
		if r := e.Reserved(tt.level, MaxPhysBits); r != 0 {
			t.Errorf("%s: reserved %#x", tt.name, uint64(r))
		}
	}
	tbl := makeTable(0x7_4000_3000, true)
	if tbl.IsLeaf(PMD) || tbl.Addr(PMD) != 0x7_4000_3000 || tbl.Attrs(PMD) != AttrWrite|AttrUser {
		t.Fatal("table entry")
	}
}

func TestEntryReserved(t *testing.T) {
	tests := []struct {
		name     string
		e        Entry
		level    Level
		physBits uint
		want     Entry
	}{
		{"clean-pte", MakeLeaf(PTE, 0x1000, PageKernel), PTE, 36, 0},
		{"pte-above-maxphyaddr", Present | 1<<40, PTE, 36, 1 << 40},
		{"pmd-misaligned", Present | PS | 0x20_2000, PMD, 0, 0x2000},
		{"pmd-pat-not-reserved", Present | PS | PATHuge | 0x20_0000, PMD, 0, 0},
		{"pud-misaligned", Present | PS | 0x4020_0000, PUD, 0, 0x20_0000},
		{"ps-at-pgd", Present | PS | 0x1000, PGD, 0, PS},
		{"ps-at-p4d", Present | PS, P4D, 0, PS},
		{"table-at-pmd", Present | 0x20_1000, PMD, 0, 0},
		{"ignored-high-bits", Present | 0x7ff<<52, PTE, 0, 0},
	}
	for _, tt := range tests {
		if got := tt.e.Reserved(tt.level, tt.physBits); got != tt.want {
			t.Errorf("%s: reserved %#x, want %#x", tt.name, uint64(got), uint64(tt.want))
		}
	}
	d := (Present | PS | 0x20_2000).Decode(PMD, 0)
	if !strings.Contains(d, "reserved=0x2000") || !strings.Contains(d, " PS") {
		t.Errorf("Decode: %s", d)
	}
	if d := Entry(0x1000).Decode(PTE, 0); !strings.HasSuffix(d, "not-present") {
		t.Errorf("Decode: %s", d)
	}
	if d := MakeLeaf(PTE, 0x1000, AttrPAT|AttrUser|PageKernel|AttrPCD|AttrPWT).Decode(PTE, 0); d != "0x80000000000011bf P RW US PWT PCD A G NX PAT addr=0x1000" {
		t.Errorf("Decode: %s", d)
	}
	if d := MakeLeaf(PUD, 0x4000_0000, AttrPAT).Decode(PUD, 0); d != "0x00000000400010a1 P A PS PAT addr=0x40000000" {
		t.Errorf("Decode: %s", d)
	}
}

func TestAttrString(t *testing.T) {
	if s := (PageKernel | AttrUser | AttrPWT | AttrPCD | AttrPAT).String(); s != "USR RW PWT PCD PAT GLB NX" {
		t.Fatal(s)
	}
	if s := Attr(0).String(); s != "ro x" {
		t.Fatal(s)
	}
	if combine(topAttrs, AttrWrite|AttrGlobal) != AttrWrite|AttrGlobal ||
		combine(AttrNX, AttrWrite|AttrUser) != AttrNX {
		t.Fatal("combine")
	}
}

func TestError(t *testing.T) {
	err := opErr("map", 0xffff888000000000, PMD, ErrAlreadyMapped)
	if err.Error() != "mm: map 0xffff888000000000 (pmd): already mapped" || !errors.Is(err, ErrAlreadyMapped) {
		t.Fatal(err)
	}
	if s := opErr("unmap", 0x1000, NoLevel, ErrBadLength).Error(); s != "mm: unmap 0x1000: bad length" {
		t.Fatal(s)
	}
}

// TestEntryAttrs: Attrs, which moves bits by shifts, agrees with a test
// of each bit, for every single bit and for random entries at every level.
func TestEntryAttrs(t *testing.T) {
	ref := func(e Entry, l Level) Attr {
		var a Attr
		for _, b := range []struct {
			bit  Entry
			attr Attr
		}{{RW, AttrWrite}, {User, AttrUser}, {NX, AttrNX}, {PWT, AttrPWT}, {PCD, AttrPCD}} {
			if e&b.bit != 0 {
				a |= b.attr
			}
		}
		if e.IsLeaf(l) {
			if e&Global != 0 {
				a |= AttrGlobal
			}
			if l == PTE && e&PAT != 0 || l != PTE && e&PATHuge != 0 {
				a |= AttrPAT
			}
		}
		return a
	}
	var es []Entry
	for b := range 64 {
		es = append(es, Entry(1)<<b, Entry(1)<<b|PS, ^Entry(0)&^(Entry(1)<<b))
	}
	x := uint64(0x9e3779b97f4a7c15)
	for range 4096 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		es = append(es, Entry(x))
	}
	for _, l := range []Level{PTE, PMD, PUD, P4D, PGD} {
		for _, e := range es {
			if got, want := e.Attrs(l), ref(e, l); got != want {
				t.Fatalf("Entry(%#x).Attrs(%v) = %v, want %v", uint64(e), l, got, want)
			}
		}
	}
}
