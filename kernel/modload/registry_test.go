package modload_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/physmap/physmap/kernel/modload"
	"github.com/physmap/physmap/kernel/modules/modtest"
	"github.com/physmap/physmap/mm"
)

func objNames(objs []*modload.Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.Name())
	}
	return out
}

// modprobe's order: deps needs reloc's exports, so reloc loads first
// whatever order the objects come in; deps alone names what it lacks.
func TestLoadOrder(t *testing.T) {
	objs := modtest.Modules(t)
	reloc, deps := mustParse(t, objs["reloc"]), mustParse(t, objs["deps"])
	for _, in := range [][]*modload.Object{{deps, reloc}, {reloc, deps}} {
		got, err := modload.LoadOrder(in, physmapKernel)
		if err != nil || !slices.Equal(objNames(got), []string{"reloc", "deps"}) {
			t.Errorf("LoadOrder(%v) = %v, %v; want [reloc deps]", objNames(in), objNames(got), err)
		}
	}
	_, err := modload.LoadOrder([]*modload.Object{deps}, physmapKernel)
	if want := "deps: Unknown symbol reloc_add (err -2); also unknown: reloc_calls"; err == nil || err.Error() != want || !errors.Is(err, modload.ENOENT) {
		t.Errorf("deps alone: %v, want %q", err, want)
	}
	_, err = modload.LoadOrder([]*modload.Object{reloc, reloc}, physmapKernel)
	if want := "reloc: exports duplicate symbol reloc_add (owned by reloc)"; err == nil || err.Error() != want {
		t.Errorf("reloc twice: %v, want %q", err, want)
	}
}

// Loading in dependency order, /proc/modules at each step, and unloading
// in reverse order: deps cannot load before reloc, reloc cannot unload
// before deps.
func TestDependencies(t *testing.T) {
	objs := modtest.Modules(t)
	reloc, deps := mustParse(t, objs["reloc"]), mustParse(t, objs["deps"])
	r := modload.NewRegistry(physmapKernel)

	_, err := r.Link(deps, moduleArea.Start, moduleArea)
	var us *modload.UnknownSymbolError
	if !errors.As(err, &us) || !errors.Is(err, modload.ENOENT) {
		t.Fatalf("deps before reloc: %v, want unknown symbols", err)
	}
	if want := []string{"deps: Unknown symbol reloc_calls (err -2)", "deps: Unknown symbol reloc_add (err -2)"}; !slices.Equal(us.Lines(), want) {
		t.Errorf("lines %q, want %q", us.Lines(), want)
	}

	base := moduleArea.Start
	ri, err := r.Link(reloc, base, moduleArea)
	if err != nil {
		t.Fatal(err)
	}
	rm, err := r.Add(ri)
	if err != nil {
		t.Fatal(err)
	}
	rm.MarkLive()
	di, err := r.Link(deps, base.Add(reloc.Size()), moduleArea)
	if err != nil {
		t.Fatal(err)
	}
	dm, err := r.Add(di)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("deps %d 0 - Loading 0x%016x\nreloc %d 1 deps, Live 0x%016x\n",
		deps.Size(), uint64(base.Add(reloc.Size())), reloc.Size(), uint64(base))
	if got := r.ProcModules(); got != want {
		t.Errorf("/proc/modules:\n%s\nwant:\n%s", got, want)
	}
	dm.MarkLive()
	if got := objNamesM(r.Modules()); !slices.Equal(got, []string{"deps", "reloc"}) {
		t.Errorf("unload order %v", got)
	}

	_, err = r.Remove("reloc")
	if want := "Module reloc is in use by: deps"; err == nil || err.Error() != want || !errors.Is(err, modload.EAGAIN) {
		t.Errorf("remove reloc: %v, want %q", err, want)
	}
	if _, err := r.Link(reloc, base.Add(0x100000), moduleArea); !errors.Is(err, modload.EEXIST) {
		t.Errorf("reloc again: %v, want EEXIST", err)
	}
	if m, err := r.Remove("deps"); err != nil || m != dm {
		t.Fatalf("remove deps: %v", err)
	}
	if rm.Refcount() != 0 || len(rm.Users()) != 0 {
		t.Errorf("reloc still used by %v", rm.Users())
	}
	if _, err := r.Remove("reloc"); err != nil {
		t.Fatal(err)
	}
	if got := r.ProcModules(); got != "" {
		t.Errorf("after unloading: %q", got)
	}
	if _, err := r.Remove("reloc"); !errors.Is(err, modload.ENOENT) {
		t.Errorf("remove twice: %v", err)
	}
}

func objNamesM(ms []*modload.Module) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name())
	}
	return out
}

// An image linked against a module that was unloaded before the image
// was added is refused by Add.
func TestAddStale(t *testing.T) {
	objs := modtest.Modules(t)
	reloc, deps := mustParse(t, objs["reloc"]), mustParse(t, objs["deps"])
	r := modload.NewRegistry(physmapKernel)
	loadAll(t, r, moduleArea.Start, reloc)
	di, err := r.Link(deps, moduleArea.Start.Add(reloc.Size()), moduleArea)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Remove("reloc"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Add(di); !errors.Is(err, modload.ENOENT) {
		t.Errorf("Add after its provider left: %v, want ENOENT", err)
	}
	if _, err := modload.NewRegistry(physmapKernel).Add(di); !errors.Is(err, modload.EINVAL) {
		t.Errorf("Add to another registry: %v, want EINVAL", err)
	}
}

// A module that exports what the kernel exports is refused, as
// verify_exported_symbols does.
func TestDuplicateExport(t *testing.T) {
	o := mustParse(t, modtest.Modules(t)["reloc"])
	k := append(slices.Clone(physmapKernel), modload.Symbol{Name: "reloc_calls", Addr: 0xffffffff91000000})
	_, err := modload.NewRegistry(k).Link(o, moduleArea.Start, moduleArea)
	if want := "reloc: exports duplicate symbol reloc_calls (owned by kernel)"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}

// A module with init and no exit is "[permanent]" and stays.
func TestPermanent(t *testing.T) {
	o := mustParse(t, testModules(t)["permanent"])
	r := modload.NewRegistry(physmapKernel)
	imgs := loadAll(t, r, moduleArea.Start, o)
	if _, ok := imgs[0].Exit(); ok {
		t.Fatal("permanent has an exit")
	}
	r.Find("permanent").MarkLive()
	want := fmt.Sprintf("permanent %d 0 [permanent], Live 0x%016x\n", o.Size(), uint64(moduleArea.Start))
	if got := r.ProcModules(); got != want {
		t.Errorf("/proc/modules %q, want %q", got, want)
	}
	if _, err := r.Remove("permanent"); !errors.Is(err, modload.EBUSY) {
		t.Errorf("remove: %v, want EBUSY", err)
	}
}

// Addresses resolve to module symbols as %pS prints them, and names
// (plain or module:symbol) to addresses.
func TestAddrAndSymbol(t *testing.T) {
	objs := modtest.Modules(t)
	reloc, deps := mustParse(t, objs["reloc"]), mustParse(t, objs["deps"])
	r := modload.NewRegistry(physmapKernel)
	imgs := loadAll(t, r, moduleArea.Start, reloc, deps)
	secs, syms := readelfSections(t, objs["reloc"]), readelfSymbols(t, objs["reloc"])
	at := func(name string) mm.VirtAddr {
		a, ok := symbolVA(t, imgs[0], physmapKernel, secs, syms, name)
		if !ok {
			t.Fatalf("no %s", name)
		}
		return a
	}
	// The next function after reloc_pc32 in address order, from readelf.
	pc32 := at("reloc_pc32")
	next := mm.VirtAddr(0)
	for _, s := range syms {
		if s.typ != "FUNC" {
			continue
		}
		if a := at(s.name); a > pc32 && (next == 0 || a < next) {
			next = a
		}
	}
	loc, ok := r.Addr(pc32.Add(3))
	if want := fmt.Sprintf("reloc_pc32+0x3/%#x [reloc]", uint64(next-pc32)); !ok || loc.String() != want {
		t.Errorf("Addr(reloc_pc32+3) = %v, want %s", loc, want)
	}
	// init_module and reloc_init share an address; the first in the
	// symbol table, the local reloc_init, names it.
	if loc, ok := r.Addr(at("init_module")); !ok || loc.Symbol != "reloc_init" {
		t.Errorf("Addr(init_module) = %v", loc)
	}
	if _, ok := r.Addr(moduleArea.Start.Sub(1)); ok {
		t.Error("an address below the modules resolved")
	}
	for name, want := range map[string]mm.VirtAddr{
		"reloc_pc32": pc32, "reloc:reloc_pc32": pc32, "deps:reloc_pc32": 0,
	} {
		a, m, ok := r.Symbol(name)
		if ok != (want != 0) || a != want || (ok && m.Name() != "reloc") {
			t.Errorf("Symbol(%q) = %v, %v, %v; want %v", name, a, m, ok, want)
		}
	}
}
