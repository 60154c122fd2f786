package modload_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/physmap/physmap/kernel/modload"
	"github.com/physmap/physmap/kernel/modules/modtest"
	"github.com/physmap/physmap/mm"
)

// machine is the kernel's side of loading, over simulated memory: the
// pattern the package documentation gives, written out so the tests can
// hold it to "nothing mapped, no frame leaked" on every failure.
type machine struct {
	mem    *mm.SparseMem
	frames *mm.Memblock
	as     *mm.AddressSpace
	reg    *modload.Registry
	owned  map[string][]mm.PhysAddr // each module's frames
}

func newMachine(t *testing.T) *machine {
	t.Helper()
	ram := mm.PhysRange{Start: 0x100000, End: 0x2000000}
	mem := mm.NewSparseMem(ram)
	frames := mm.NewMemblock([]mm.PhysRange{ram}, nil)
	as, err := mm.New(mm.Mode4Level, mem, frames, mm.NopTLB)
	if err != nil {
		t.Fatal(err)
	}
	return &machine{mem: mem, frames: frames, as: as, reg: modload.NewRegistry(physmapKernel), owned: map[string][]mm.PhysAddr{}}
}

// load parses, links at base, and only then takes frames and maps; any
// failure after that undoes what was done.
func (k *machine) load(data []byte, base mm.VirtAddr) (*modload.Module, error) {
	o, err := modload.Parse(data)
	if err != nil {
		return nil, err
	}
	img, err := k.reg.Link(o, base, moduleArea)
	if err != nil {
		return nil, err
	}
	var taken []mm.PhysAddr
	undo := func() {
		_ = k.as.Unmap(img.Base, img.Range().Len()) // holes are no error
		for _, pa := range taken {
			_ = k.frames.FreeFrame(pa)
		}
	}
	for _, g := range img.Groups {
		for i := range g.Pages() {
			pa, err := k.frames.AllocFrame()
			if err != nil {
				undo()
				return nil, err
			}
			taken = append(taken, pa)
			k.mem.ZeroFrame(pa)
			page := make([]byte, modload.PageSize)
			copy(page, g.Page(i))
			for off := 0; off < len(page); off += 8 {
				k.mem.Write64(pa.Add(uint64(off)), binary.LittleEndian.Uint64(page[off:]))
			}
			if err := k.as.Map(g.VA.Add(uint64(i)*modload.PageSize), pa, modload.PageSize, g.Group.Attrs(false), mm.Only(mm.Size4K)); err != nil {
				undo()
				return nil, err
			}
		}
	}
	m, err := k.reg.Add(img)
	if err != nil {
		undo()
		return nil, err
	}
	k.owned[m.Name()] = taken
	return m, nil
}

// unload removes a module from the registry, then unmaps and frees it.
func (k *machine) unload(name string) error {
	m, err := k.reg.Remove(name)
	if err != nil {
		return err
	}
	if err := k.as.Unmap(m.Image().Base, m.Image().Range().Len()); err != nil {
		return err
	}
	for _, pa := range k.owned[name] {
		if err := k.frames.FreeFrame(pa); err != nil {
			return err
		}
	}
	delete(k.owned, name)
	return nil
}

// mapped counts the leaves in the module area.
func (k *machine) mapped() int {
	n := 0
	for range k.as.Leaves(moduleArea) {
		n++
	}
	return n
}

// Every bad input and every refused placement leaves the frame count and
// the module area as they were; a good load maps each page with its
// group's permissions and bytes; unloading gives everything back.
func TestNothingLeaked(t *testing.T) {
	k := newMachine(t)
	frames0 := k.frames.InUse()
	for _, c := range badCases(t) {
		if _, err := k.load(c.data, moduleArea.Start); err == nil {
			t.Fatalf("%s: loaded", c.name)
		}
		if n, m := k.frames.InUse(), k.mapped(); n != frames0 || m != 0 {
			t.Errorf("%s: %d frames in use (%d before), %d leaves mapped", c.name, n, frames0, m)
		}
	}
	objs := modtest.Modules(t)
	// A refused placement: the direct map.
	if _, err := k.load(objs["reloc"], layout4.PageOffset().Add(0x1234_5000)); err == nil {
		t.Fatal("reloc loaded in the direct map")
	}

	rm, err := k.load(objs["reloc"], moduleArea.Start)
	if err != nil {
		t.Fatal(err)
	}
	img := rm.Image()
	for _, g := range img.Groups {
		for i := range g.Pages() {
			va := g.VA.Add(uint64(i) * modload.PageSize)
			tr, err := k.as.Translate(va)
			if err != nil {
				t.Fatalf("%v page %d at %v: %v", g.Group, i, va, err)
			}
			if want := g.Group.Attrs(false); tr.Attrs != want {
				t.Errorf("%v page at %v: %v, want %v", g.Group, va, tr.Attrs, want)
			}
			want := make([]byte, modload.PageSize)
			copy(want, g.Page(i))
			for off := 0; off < modload.PageSize; off += 8 {
				if got := k.mem.Read64(tr.PA.Add(uint64(off))); got != binary.LittleEndian.Uint64(want[off:]) {
					t.Fatalf("%v page at %v+%#x reads %#x", g.Group, va, off, got)
				}
			}
		}
	}
	if err := mm.Check(k.as, mm.CheckOptions{Owns: k.frames.Owns}); err != nil {
		t.Error(err)
	}

	// A mapping failure halfway: a page already mapped where deps's data
	// would go. load must undo the pages it mapped before.
	before, leaves := k.frames.InUse(), k.mapped()
	dbase := moduleArea.Start.Add(img.Range().Len())
	deps := mustParse(t, objs["deps"])
	blocker, _ := k.frames.AllocFrame()
	blockVA := dbase.Add(deps.Extents()[modload.GroupRodata].Offset)
	if err := k.as.Map(blockVA, blocker, modload.PageSize, mm.PageKernel, mm.Only(mm.Size4K)); err != nil {
		t.Fatal(err)
	}
	if _, err := k.load(objs["deps"], dbase); !errors.Is(err, mm.ErrAlreadyMapped) {
		t.Fatalf("deps over a mapped page: %v", err)
	}
	if err := k.as.Unmap(blockVA, modload.PageSize); err != nil {
		t.Fatal(err)
	}
	_ = k.frames.FreeFrame(blocker)
	if n, m := k.frames.InUse(), k.mapped(); n != before || m != leaves {
		t.Errorf("after the failed map: %d frames (%d before), %d leaves (%d before)", n, before, m, leaves)
	}

	if _, err := k.load(objs["deps"], dbase); err != nil {
		t.Fatal(err)
	}
	if err := k.unload("reloc"); !errors.Is(err, modload.EAGAIN) {
		t.Errorf("unload reloc first: %v", err)
	}
	for _, m := range k.reg.Modules() {
		if err := k.unload(m.Name()); err != nil {
			t.Fatal(err)
		}
	}
	if n, m := k.frames.InUse(), k.mapped(); n != frames0 || m != 0 {
		t.Errorf("after unloading: %d frames in use (%d before), %d leaves mapped", n, frames0, m)
	}
}
