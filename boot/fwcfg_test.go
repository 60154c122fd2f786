package boot

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// fakeFwCfg serves items from a map, as QEMU's device does: Select rewinds
// to the start of an item and Read continues from there, returning zeros
// past the end.
type fakeFwCfg struct {
	items map[uint16][]byte
	cur   []byte
}

func (f *fakeFwCfg) Select(key uint16) { f.cur = f.items[key] }

func (f *fakeFwCfg) Read(p []byte) {
	n := copy(p, f.cur)
	clear(p[n:])
	f.cur = f.cur[n:]
}

func newFake(cmdline string, files map[string][]byte) *fakeFwCfg {
	f := &fakeFwCfg{items: map[uint16][]byte{FW_CFG_SIGNATURE: []byte("QEMU")}}
	if cmdline != "" {
		f.items[FW_CFG_CMDLINE_SIZE] = binary.LittleEndian.AppendUint32(nil, uint32(len(cmdline)+1))
		f.items[FW_CFG_CMDLINE_DATA] = append([]byte(cmdline), 0)
	}
	dir := binary.BigEndian.AppendUint32(nil, uint32(len(files)+1))
	// A file before the wanted ones, so the lookup must skip records.
	add := func(name string, key uint16, data []byte) {
		var rec [fwCfgFileSize]byte
		binary.BigEndian.PutUint32(rec[0:], uint32(len(data)))
		binary.BigEndian.PutUint16(rec[4:], key)
		copy(rec[8:], name)
		dir = append(dir, rec[:]...)
		f.items[key] = data
	}
	add("etc/boot-fail-wait", 0x20, []byte{1, 2, 3, 4})
	key := uint16(0x21)
	for name, data := range files {
		add(name, key, data)
		key++
	}
	f.items[FW_CFG_FILE_DIR] = dir
	return f
}

func TestFwCfgFile(t *testing.T) {
	want := []byte("twenty bytes of e820")
	fw, err := newFwCfg(newFake("", map[string][]byte{"etc/e820": want}))
	if err != nil {
		t.Fatal(err)
	}
	got, err := fw.File("etc/e820")
	if err != nil || string(got) != string(want) {
		t.Fatalf("File(etc/e820) = %q, %v; want %q", got, err, want)
	}
	if _, err := fw.File("etc/e82"); err == nil || !strings.Contains(err.Error(), `"etc/e82"`) {
		t.Errorf("File of a missing name: err = %v, want one naming it", err)
	}
}

func TestFwCfgCommandLine(t *testing.T) {
	for _, cl := range []string{"", "physmap.hold=1 console=ttyS0"} {
		fw, err := newFwCfg(newFake(cl, nil))
		if err != nil {
			t.Fatal(err)
		}
		if got := fw.CommandLine(); got != cl {
			t.Errorf("CommandLine() = %q, want %q", got, cl)
		}
	}
}

func TestFwCfgAbsent(t *testing.T) {
	f := &fakeFwCfg{items: map[uint16][]byte{FW_CFG_SIGNATURE: {0xff, 0xff, 0xff, 0xff}}}
	if _, err := newFwCfg(f); !errors.Is(err, ErrNoFwCfg) {
		t.Fatalf("newFwCfg without device: err = %v, want ErrNoFwCfg", err)
	}
}
