package modload_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/physmap/physmap/kernel/modload"
	"github.com/physmap/physmap/kernel/modules/modtest"
	"github.com/physmap/physmap/mm"
)

// FuzzLoad feeds arbitrary bytes to Parse and, when they parse, to Link
// at a module-area, a vmalloc and a direct-map base, with reloc loaded so
// objects that need its exports link too. Nothing may panic; every refusal
// is one of the loader's error types on one line; whatever is accepted
// keeps the layout's invariants. Seeds: the real modules, the test
// modules and every corruption of TestBadInput.
func FuzzLoad(f *testing.F) {
	objs := modtest.Modules(f)
	for _, o := range objs {
		f.Add(o)
	}
	for _, o := range testModules(f) {
		f.Add(o)
	}
	for _, c := range badCases(f) {
		f.Add(c.data)
	}
	r, bases := fuzzRegistry(f, objs)
	f.Fuzz(func(t *testing.T, data []byte) { tryLoad(t, r, bases, data) })
}

// fuzzWindow is the area each try gets: it bounds what Link allocates.
const fuzzWindow = 64 << 20

// fuzzRegistry has reloc loaded, so objects that need its exports link; the
// bases are in the module area, vmalloc and the direct map.
func fuzzRegistry(t testing.TB, objs map[string][]byte) (*modload.Registry, []mm.VirtAddr) {
	r := modload.NewRegistry(physmapKernel)
	reloc, err := modload.Parse(objs["reloc"])
	if err != nil {
		t.Fatal(err)
	}
	img, err := r.Link(reloc, moduleArea.Start, moduleArea)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Add(img); err != nil {
		t.Fatal(err)
	}
	return r, []mm.VirtAddr{moduleArea.Start.Add(16 << 20), vmallocArea.Start, layout4.PageOffset().Add(0x1234_5000)}
}

// tryLoad parses data and links it at each base, checking that refusals
// are the loader's and that what is accepted keeps the layout's
// invariants.
func tryLoad(t *testing.T, r *modload.Registry, bases []mm.VirtAddr, data []byte) {
	t.Helper()
	o, err := modload.Parse(data)
	if err != nil {
		checkRefusal(t, err)
		return
	}
	var end uint64
	for _, ext := range o.Extents() {
		if ext.Offset != end || ext.Size%modload.PageSize != 0 {
			t.Fatalf("extent %+v after %#x", ext, end)
		}
		end += ext.Size
	}
	if end != o.Size() {
		t.Fatalf("extents end at %#x, size %#x", end, o.Size())
	}
	for _, s := range o.Sections() {
		ext := o.Extents()[s.Group]
		if s.Offset < ext.Offset || s.Offset+s.Size > ext.Offset+ext.Size || s.Offset%s.Align != 0 {
			t.Fatalf("section %+v outside %+v or misaligned", s, ext)
		}
	}
	for _, base := range bases {
		img, err := r.Link(o, base, mm.VirtRange{Start: base, End: base.Add(fuzzWindow)})
		if err != nil {
			checkRefusal(t, err)
			continue
		}
		if rg := img.Range(); rg.Start != base || rg.Len() != o.Size() {
			t.Fatalf("range %v for %#x at %v", rg, o.Size(), base)
		}
		for _, g := range img.Groups {
			if uint64(len(g.Data)) > g.Size || g.VA != base.Add(o.Extents()[g.Group].Offset) {
				t.Fatalf("group %v: %d bytes in %#x at %v", g.Group, len(g.Data), g.Size, g.VA)
			}
		}
		for _, s := range img.Symbols() {
			if s.Addr < img.Range().Start || s.Addr > img.Range().End {
				t.Fatalf("symbol %s at %v outside %v", s.Name, s.Addr, img.Range())
			}
		}
	}
}

// A deterministic sweep of corruptions, next to FuzzLoad: random bytes,
// random header and section-header fields set to random or extreme values,
// and truncations of the real modules, each through tryLoad.
func TestCorruptions(t *testing.T) {
	objs := modtest.Modules(t)
	r, bases := fuzzRegistry(t, objs)
	rng := rand.New(rand.NewPCG(1, 2))
	extremes := []uint64{0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 1 << 32, 1<<63 - 1, 1 << 63, ^uint64(0)}
	for _, name := range []string{"reloc", "deps"} {
		good := objs[name]
		shoff := binary.LittleEndian.Uint64(good[40:])
		for range 3000 {
			d := bytes.Clone(good)
			switch rng.IntN(4) {
			case 0: // a few random bytes anywhere
				for range 1 + rng.IntN(4) {
					d[rng.IntN(len(d))] = byte(rng.UintN(256))
				}
			case 1: // one 8-byte field of a section header
				at := shoff + uint64(rng.IntN(int(len(d)-int(shoff))/8))*8
				binary.LittleEndian.PutUint64(d[at:], extremes[rng.IntN(len(extremes))])
			case 2: // one field of the ELF header
				at := 16 + rng.IntN(48-2)
				binary.LittleEndian.PutUint16(d[at:], uint16(extremes[rng.IntN(len(extremes))]))
			case 3: // truncated
				d = d[:rng.IntN(len(d))]
			}
			tryLoad(t, r, bases, d)
		}
	}
}

// checkRefusal fails t unless err is one of the loader's errors, on one
// line, wrapping an errno.
func checkRefusal(t *testing.T, err error) {
	t.Helper()
	var e *modload.Error
	var us *modload.UnknownSymbolError
	var pe *modload.PlacementError
	var errno modload.Errno
	switch {
	case !errors.As(err, &e) && !errors.As(err, &us) && !errors.As(err, &pe):
		t.Fatalf("%T %v: not a loader error", err, err)
	case !errors.As(err, &errno):
		t.Fatalf("%v wraps no errno", err)
	case err.Error() == "" || strings.Contains(err.Error(), "\n"):
		t.Fatalf("%q is not one line", err.Error())
	}
}
