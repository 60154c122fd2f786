package linux

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/physmap/physmap/kernel/dump"
	"github.com/physmap/physmap/mm"
)

// The recordings in testdata were written by physmap-linux -record from
// Debian's linux-image-amd64 6.1 and physmap on QEMU 7.2 microvm, -m 2G
// -cpu max: 5-level and 4-level with nokaslr, and 5-level with KASLR.
var recordings = []string{"testdata/5level.json.gz", "testdata/4level.json.gz", "testdata/kaslr.json.gz"}

func readRec(t *testing.T, path string) *Recording {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rec, err := ReadRecording(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rec
}

// kallsyms returns a symbol's address as the guest's /init printed it
// from /proc/kallsyms.
func kallsyms(t *testing.T, rec *Recording, name string) mm.VirtAddr {
	t.Helper()
	g, err := ParseGuest(strings.NewReader(strings.Join(rec.Guest, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	va, ok := g.Symbols[name]
	if !ok {
		t.Fatalf("the guest printed no %s", name)
	}
	return va
}

// TestReplay runs each recorded comparison again: every fact holds, every
// difference is documented, and the bases found in the tables are
// kallsyms' (page_offset_base's value, _text).
func TestReplay(t *testing.T) {
	for _, path := range recordings {
		t.Run(path, func(t *testing.T) {
			rec := readRec(t, path)
			rep, err := rec.Replay()
			if err != nil {
				t.Fatal(err)
			}
			if v := rep.Verdict(); v != "" {
				t.Fatalf("verdict: %s", v)
			}
			b := rep.Linux.Bases
			if want := kallsyms(t, rec, "_text"); b.TextTables != want {
				t.Errorf("_text from the tables %v, kallsyms %v", b.TextTables, want)
			}
			if b.PageOffset == 0 || b.PageOffsetTables != b.PageOffset {
				t.Errorf("page_offset_base from the tables %v, the variable %v", b.PageOffsetTables, b.PageOffset)
			}
			if rec.Run.KASLR == (rep.Linux.Bases.PageOffset == 0xff11000000000000 || rep.Linux.Bases.PageOffset == 0xffff888000000000) {
				t.Errorf("KASLR %v, page_offset_base %v", rec.Run.KASLR, rep.Linux.Bases.PageOffset)
			}
			var out bytes.Buffer
			if err := rep.Write(&out); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"physmap beside Linux", "Linux's first instruction, three ways", "x86/mm: Checked W+X mappings: passed", "module crc7"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("report lacks %q", want)
				}
			}
		})
	}
}

// rewrite returns a copy of rec with the 8-byte word at pa changed by fn.
func rewrite(t *testing.T, rec *Recording, pa mm.PhysAddr, fn func(uint64) uint64) *Recording {
	t.Helper()
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	var cp Recording
	if err := json.Unmarshal(b, &cp); err != nil {
		t.Fatal(err)
	}
	for i := range cp.Frames {
		if base := mm.PhysAddr(cp.Frames[i].PA); pa >= base && pa < base.Add(PageSize) {
			off := uint64(pa - base)
			binary.LittleEndian.PutUint64(cp.Frames[i].Data[off:], fn(binary.LittleEndian.Uint64(cp.Frames[i].Data[off:])))
			return &cp
		}
	}
	t.Fatalf("no recorded frame holds %v", pa)
	return nil
}

// TestReplayCatches changes the recorded tables as a bug in Linux or in
// the comparison would, and expects the comparison to fail: a direct-map
// leaf made executable, and physmap's dump claiming another module base.
func TestReplayCatches(t *testing.T) {
	rec := readRec(t, recordings[0])
	rep, err := rec.Replay()
	if err != nil {
		t.Fatal(err)
	}
	// The leaf that maps _text's frame in the direct map.
	tr, err := rep.Linux.AS.Translate(rep.Linux.Bases.PageOffset.Add(0x1000000))
	if err != nil {
		t.Fatal(err)
	}
	steps := tr.Path()
	leaf := steps[len(steps)-1]
	bad := rewrite(t, rec, leaf.Table.Add(uint64(leaf.Index)*8), func(e uint64) uint64 { return e &^ uint64(mm.NX) })
	got, err := bad.Replay()
	if err != nil {
		t.Fatal(err)
	}
	if got.Verdict() == "" {
		t.Error("the direct map's alias of _text made executable: the comparison still holds")
	}

	// physmap's dump with its direct map's runs executable: a permission
	// no departure documents.
	var cp Recording = *rec
	d := *rec.Physmap
	d.Runs = append([]dump.Run(nil), d.Runs...)
	n := 0
	for i := range d.Runs {
		if strings.HasPrefix(d.Runs[i].Region, "direct mapping") {
			d.Runs[i].Flags.NX = false
			n++
		}
	}
	if n == 0 {
		t.Fatal("the recorded physmap dump has no direct-map run")
	}
	cp.Physmap = &d
	got, err = cp.Replay()
	if err != nil {
		t.Fatal(err)
	}
	if got.Verdict() == "" {
		t.Error("physmap's direct map executable: the comparison still holds")
	}
}

// TestReadRecordingRefuses: a file that is not a recording, a truncated
// one, and a frame of the wrong size each give one error, not a panic.
func TestReadRecordingRefuses(t *testing.T) {
	raw, err := os.ReadFile(recordings[0])
	if err != nil {
		t.Fatal(err)
	}
	var short bytes.Buffer
	zw := gzip.NewWriter(&short)
	zw.Write([]byte(`{"version":1,"frames":[{"pa":"0x1000","data":"AAAA"}]}`))
	zw.Close()
	for name, data := range map[string][]byte{
		"not gzip":    []byte("hello"),
		"truncated":   raw[:len(raw)/2],
		"short frame": short.Bytes(),
	} {
		if _, err := ReadRecording(bytes.NewReader(data)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
