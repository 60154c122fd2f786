package dump

import (
	"bytes"
	"encoding/json"
	"testing"
)

// full is a dump with every field set, its optional ones both ways across
// its lists, and strings that need escaping.
func full() *Dump {
	return &Dump{
		Mode: 5, CR3: 0x12900000,
		Regions: []Region{
			{Start: 0, End: 0x100000000000000, Name: "user-space virtual memory, different per mm", Marker: "User Space"},
			{Start: 0xff00000000000000, End: 0xff10000000000000, Name: `... guard hole, "also" <reserved> & \ for hypervisor`, Symbol: "GUARD_HOLE_BASE_ADDR"},
			{Start: 0xffffffffff600000, End: 0, Name: "tab\there\nnewline\x01\x1f\b\f\r é \u2028\u2029 \xff end"},
		},
		Runs: []Run{
			{VA: 0xff11000000000000, PA: 0, Size: 0x40000000, Count: 1, Level: "pud", Flags: Flags{Write: true, NX: true, Global: true}, Region: "direct map"},
			{VA: 0xffffff0000000000, PA: 0x1000, Size: 0x1000, Count: 65536, Stride: 0x20000, Level: "pte", Flags: Flags{PWT: true, PCD: true, PAT: true}, Region: "espfix"},
		},
		Aliases: []Alias{{What: "kernel text", PA: 0x10200000, Len: 0x1bc000, VAs: []Addr{0x10200000, 0xff11000010200000}}, {What: "none", VAs: nil}, {What: "empty", VAs: []Addr{}}},
		IDTR:    &DescReg{Base: 0xfffffe0000000000, Limit: 0xfff},
		GDTR:    &DescReg{Base: 0xfffffe0000001000, Limit: 0x7f},
		TR:      &TaskReg{Selector: 0x40, Base: 0xfffffe0000003000, Limit: 0x4087},
		Process: &Process{PID: 2, UserCopy: true, Pages: []Page{{VA: 0x400000, PA: 0x7fffc000, What: "text"}}},
		Checks:  []CheckTime{{Name: "content", Ns: 153000000}, {Name: "neg", Ns: -1}},
	}
}

func TestAppendJSONIsMarshal(t *testing.T) {
	sparse := &Dump{Mode: 4, Process: &Process{PID: 1}, Checks: []CheckTime{}}
	for _, d := range []*Dump{full(), {}, sparse} {
		want, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Errorf("AppendJSON:\n%s\nMarshal:\n%s", got, want)
		}
	}
}

// FuzzAppendJSON: for any names and numbers, the bytes are Marshal's.
func FuzzAppendJSON(f *testing.F) {
	f.Add("kernel text", "pte", uint64(0xffffffff80000000), int64(7), true)
	f.Add("\x00<\u2028>\xff\xfe&\"\\", "", uint64(0), int64(-1), false)
	f.Fuzz(func(t *testing.T, name, level string, va uint64, ns int64, flag bool) {
		d := full()
		d.Regions[0].Name, d.Regions[1].Symbol, d.Regions[2].Marker = name, level, name
		d.Runs[0].VA, d.Runs[0].Level, d.Runs[0].Region, d.Runs[0].Flags.PAT = Addr(va), level, name, flag
		d.Runs[1].Stride, d.Aliases[0].What, d.Aliases[0].VAs[1] = Addr(va), name, Addr(va)
		d.Checks[0].Name, d.Checks[0].Ns, d.Mode = name, ns, int(ns)
		d.Process.UserCopy, d.Process.Pages[0].What = flag, level
		want, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Errorf("AppendJSON:\n%s\nMarshal:\n%s", got, want)
		}
	})
}
