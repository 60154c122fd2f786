package dump

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/physmap/physmap/mm"
)

func TestAddrJSON(t *testing.T) {
	a := Addr(0xffff_8880_0000_0000)
	b, err := json.Marshal(a)
	if err != nil || string(b) != `"0xffff888000000000"` {
		t.Fatalf("json.Marshal = %s, %v", b, err)
	}
	if b, err := json.Marshal(Addr(0)); err != nil || string(b) != `"0x0"` {
		t.Fatalf("json.Marshal(0) = %s, %v", b, err)
	}
	var back Addr
	if err := back.UnmarshalJSON(b); err != nil || back != a {
		t.Fatalf("UnmarshalJSON(%s) = %#x, %v", b, uint64(back), err)
	}
	for _, bad := range []string{`123`, `"123"`, `"0xzz"`} {
		if err := back.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("UnmarshalJSON(%s) accepted", bad)
		}
	}
}

// space maps two physically contiguous 4 KiB pages, one 2 MiB page and an
// alias of the first page, on a simulated memory.
func space(t *testing.T) *mm.AddressSpace {
	t.Helper()
	pool := mm.PhysRange{Start: 0x7_4000_0000, End: 0x7_4010_0000}
	mem := mm.NewSparseMem(pool)
	as, err := mm.New(mm.Mode4Level, mem, mm.NewMemblock([]mm.PhysRange{pool}, nil), mm.NopTLB)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(as.Map(0xffffffff80200000, 0x200000, 0x2000, mm.PageKernelExec, mm.Only(mm.Size4K)))
	must(as.Map(0xffff888000200000, 0x200000, 0x200000, mm.PageKernel, mm.AllowAll))
	must(as.Map(0xffffffff80202000, 0x400000, 0x1000, mm.PageKernel, mm.Only(mm.Size4K)))
	return as
}

func TestRunsMergeAndRoundTrip(t *testing.T) {
	as := space(t)
	l := mm.DefaultLayout(mm.Mode4Level)
	runs := Runs(as, l)
	want := []Run{
		{VA: 0xffff888000200000, PA: 0x200000, Size: 0x200000, Count: 1, Level: "pmd", Flags: Flags{Write: true, NX: true, Global: true}, Region: l.Find(0xffff888000200000).Name},
		{VA: 0xffffffff80200000, PA: 0x200000, Size: 0x1000, Count: 2, Level: "pte", Flags: Flags{Global: true}, Region: l.Find(0xffffffff80200000).Name},
		{VA: 0xffffffff80202000, PA: 0x400000, Size: 0x1000, Count: 1, Level: "pte", Flags: Flags{Write: true, NX: true, Global: true}, Region: l.Find(0xffffffff80200000).Name},
	}
	if !reflect.DeepEqual(runs, want) {
		t.Fatalf("Runs =\n%+v\nwant\n%+v", runs, want)
	}
	if got := runs[1].Leaf(1); got.VA != 0xffffffff80201000 || got.PA != 0x201000 || got.Count != 1 {
		t.Errorf("Leaf(1) = %+v", got)
	}

	d := &Dump{Mode: 4, CR3: Addr(as.Root()), Regions: RegionsOf(l), Runs: runs,
		Aliases: []Alias{{What: "kernel text", PA: 0x200000, Len: 0x2000, VAs: []Addr{0xffffffff80200000, 0xffff888000200000}}}}
	var console bytes.Buffer
	console.WriteString("PASS x: y\r\nnoise\n")
	if err := Write(&console, d); err != nil {
		t.Fatal(err)
	}
	console.WriteString("selftest: 1 passed, 0 failed\n")
	got, err := Extract(strings.NewReader(strings.ReplaceAll(console.String(), "\n", "\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, d) {
		t.Errorf("Extract = %+v\nwant %+v", got, d)
	}
}

func TestExtractIncomplete(t *testing.T) {
	for _, console := range []string{"", BeginLine + "\n{\"mode\":4}\n", "nothing\n"} {
		if _, err := Extract(strings.NewReader(console)); !errors.Is(err, ErrNoDump) {
			t.Errorf("Extract(%q) err = %v, want ErrNoDump", console, err)
		}
	}
	if _, err := Extract(strings.NewReader(BeginLine + "\n{bad\n" + EndLine + "\n")); err == nil || errors.Is(err, ErrNoDump) {
		t.Errorf("Extract of bad JSON: err = %v, want a JSON error", err)
	}
}
