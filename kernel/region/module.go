package region

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/physmap/physmap/kernel/modload"
	"github.com/physmap/physmap/mm"
)

// KernelSymbol is a symbol the kernel exports to modules: its name and the
// frame in the image that holds it, from the Go linker.
type KernelSymbol struct {
	Name string
	PA   mm.PhysAddr
}

// The kernel symbols physmap's modules use (kernel/modules/c/physmap_module.h).
const (
	SymPageOffsetBase = "page_offset_base"      // a variable: the direct map's base (arch/x86/kernel/head64.c)
	SymConsoleWrite   = "physmap_console_write" // a function, physmap's own
)

// ModuleObject is one relocatable object the kernel embeds.
type ModuleObject struct {
	File string
	Data []byte
}

// Modules is the module area at MODULES_VADDR, where module_alloc
// (arch/x86/kernel/module.c) maps a module: virtually contiguous, over
// frames from anywhere in RAM. physmap loads the C modules of
// kernel/modules with kernel/modload as load_module does
// (kernel/module/main.c): each object laid out by section flags, linked
// against the kernel's exports at its place in the module area, copied
// through the direct map into scattered frames, mapped 4K per group with
// module_enable_ro/nx's permissions, the direct-map alias of its read-only
// groups made read-only too (set_memory_ro reaches every alias:
// arch/x86/mm/pat/set_memory.c, cpa_process_alias), its init called, then
// ro_after_init sealed. Each module is followed by an unmapped guard page,
// as every vmalloc area is (mm/vmalloc.c: __get_vm_area_node).
type Modules struct {
	// Kallsyms is the kernel's exported symbols at their kernel text
	// mapping addresses: the memory the loader resolves against.
	Kallsyms modload.Symbols
	reg      *modload.Registry
	// Loaded are the modules in load order.
	Loaded []*LoadedModule
	area   mm.VirtRange
	next   mm.VirtAddr // where the next module goes
}

// LoadedModule is one module in memory: its image and the frames the loader
// copied each group to, the expectation module.load holds the tables to.
type LoadedModule struct {
	Mod    *modload.Module
	Img    *modload.Image
	Frames [modload.NumGroups][]mm.PhysAddr
	alias  map[mm.PhysAddr]mm.Attr // a read-only alias's attributes before the loader changed them
}

// Guard is the unmapped page after the module.
func (lm *LoadedModule) Guard() mm.VirtAddr { return lm.Img.Range().End.AlignUp(page) }

// Pages calls fn for each page of the module: its group, address and frame.
func (lm *LoadedModule) Pages(fn func(g modload.Group, va mm.VirtAddr, pa mm.PhysAddr)) {
	for g := range modload.NumGroups {
		for i, pa := range lm.Frames[g] {
			fn(g, lm.Img.Groups[g].VA.Add(uint64(i)*page), pa)
		}
	}
}

// frameCount is the number of frames the module holds.
func (lm *LoadedModule) frameCount() int {
	n := 0
	for _, f := range lm.Frames {
		n += len(f)
	}
	return n
}

// readOnly says whether a group's pages, and their direct-map alias, are
// read-only once init has run.
func readOnly(g modload.Group) bool { return g != modload.GroupData }

// symbol returns the address of a module's own symbol.
func (lm *LoadedModule) symbol(name string) (mm.VirtAddr, error) {
	va, ok := lm.Img.Symbol(name)
	if !ok {
		return 0, fmt.Errorf("module %s has no symbol %s", lm.Img.Name(), name)
	}
	return va, nil
}

// frameOf returns the frame the loader put va of the module in.
func (lm *LoadedModule) frameOf(va mm.VirtAddr) (mm.PhysAddr, bool) {
	var out mm.PhysAddr
	found := false
	lm.Pages(func(_ modload.Group, pva mm.VirtAddr, pa mm.PhysAddr) {
		if va >= pva && va < pva.Add(page) {
			out, found = pa.Add(uint64(va-pva)), true
		}
	})
	return out, found
}

func (m *Modules) Populate(s *Space) error {
	for _, ks := range s.Exports {
		m.Kallsyms = append(m.Kallsyms, modload.Symbol{Name: ks.Name, Addr: s.KernelVA(ks.PA)})
		if ks.Name == SymPageOffsetBase {
			// The variable the kernel exports holds the direct map's
			// base, as head64.c's page_offset_base does.
			if err := writeBytes(s.CPU, "page_offset_base", s.DirectVA(ks.PA), le64(uint64(s.Layout.PageOffset()))); err != nil {
				return err
			}
		}
	}
	r := s.region(mm.KindModules)
	m.area = mm.VirtRange{Start: r.Start, End: r.Start.Add(r.Size)}
	return m.loadAll(s)
}

// loadAll loads every embedded object in dependency order from the
// module area's randomised start.
func (m *Modules) loadAll(s *Space) error {
	m.reg = modload.NewRegistry(m.Kallsyms)
	m.Loaded = nil
	m.next = m.area.Start.Add(s.Place.ModuleOffset)
	var objs []*modload.Object
	for _, o := range s.Modules {
		obj, err := modload.Parse(o.Data)
		if err != nil {
			return fmt.Errorf("module %s: %w", o.File, err)
		}
		objs = append(objs, obj)
	}
	order, err := modload.LoadOrder(objs, m.Kallsyms)
	if err != nil {
		return err
	}
	for _, obj := range order {
		lm, err := m.load(s, obj, m.next)
		if err != nil {
			return err
		}
		m.Loaded = append(m.Loaded, lm)
		m.next = lm.Guard().Add(page)
	}
	return nil
}

// load links obj at base, copies it into scattered frames, maps it, seals
// its read-only aliases, runs its init and seals ro_after_init, as
// load_module, complete_formation and do_init_module do.
func (m *Modules) load(s *Space, obj *modload.Object, base mm.VirtAddr) (*LoadedModule, error) {
	img, err := m.reg.Link(obj, base, m.area)
	if err != nil {
		return nil, err
	}
	lm := &LoadedModule{Img: img, alias: map[mm.PhysAddr]mm.Attr{}}
	n := 0
	for g := range modload.NumGroups {
		n += img.Groups[g].Pages()
	}
	frames, err := s.Frames.AllocScattered(n)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, page)
	for g := range modload.NumGroups {
		gi := &img.Groups[g]
		lm.Frames[g], frames = frames[:gi.Pages()], frames[gi.Pages():]
		for i, pa := range lm.Frames[g] {
			clear(buf)
			copy(buf, gi.Page(i))
			if err := writeBytes(s.CPU, "a module page", s.DirectVA(pa), buf); err != nil {
				return nil, err
			}
			if err := s.AS.Map(gi.VA.Add(uint64(i)*page), pa, page, gi.Group.Attrs(false), mm.Only(mm.Size4K)); err != nil {
				return nil, err
			}
		}
	}
	// module_enable_ro(mod, false) before init: text and rodata, and
	// their direct-map alias.
	for _, g := range []modload.Group{modload.GroupText, modload.GroupRodata} {
		if err := m.sealAliases(s, lm, g); err != nil {
			return nil, err
		}
	}
	if lm.Mod, err = m.reg.Add(img); err != nil {
		return nil, err
	}
	if init, ok := img.Init(); ok {
		ret, f := s.CPU.Call(init)
		if f.Faulted {
			return nil, fmt.Errorf("module %s: init at %v: %v", img.Name(), init, f)
		}
		if rc := int32(uint32(ret)); rc != 0 {
			return nil, fmt.Errorf("module %s: init at %v returned %d", img.Name(), init, rc)
		}
	}
	// do_init_module: module_enable_ro(mod, true) seals ro_after_init.
	gi := &img.Groups[modload.GroupROAfterInit]
	if gi.Size > 0 {
		if err := s.AS.Protect(gi.VA, gi.Size, gi.Group.Attrs(true)); err != nil {
			return nil, err
		}
		if err := m.sealAliases(s, lm, modload.GroupROAfterInit); err != nil {
			return nil, err
		}
	}
	lm.Mod.MarkLive()
	var secs []string
	for g := range modload.NumGroups {
		if gi := img.Groups[g]; gi.Size > 0 {
			secs = append(secs, fmt.Sprintf("%v %d", g, gi.Pages()))
		}
	}
	s.logf("physmap: module %s loaded at %v (%s pages), %d relocations applied", img.Name(), img.Base, strings.Join(secs, ", "), img.Applied())
	return lm, nil
}

// sealAliases makes the direct-map alias of group g's frames read-only,
// keeping its other attributes (set_memory_ro through cpa_process_alias).
func (m *Modules) sealAliases(s *Space, lm *LoadedModule, g modload.Group) error {
	for _, pa := range lm.Frames[g] {
		va := s.DirectVA(pa)
		t, err := s.AS.Translate(va)
		if err != nil {
			return fmt.Errorf("the direct-map alias of module frame %v: %w", pa, err)
		}
		lm.alias[pa] = t.Attrs
		if err := s.AS.Protect(va, page, t.Attrs&^mm.AttrWrite|mm.AttrNX); err != nil {
			return err
		}
	}
	return nil
}

// unloadAll unloads every module, newest first, as delete_module does:
// exit, the range unmapped, the aliases given back their attributes
// (module_memfree: vfree resets them), the frames freed.
func (m *Modules) unloadAll(s *Space) error {
	for i := len(m.Loaded) - 1; i >= 0; i-- {
		lm := m.Loaded[i]
		name := lm.Img.Name()
		if _, err := m.reg.CanRemove(name); err != nil {
			return err
		}
		if exit, ok := lm.Img.Exit(); ok {
			if _, f := s.CPU.Call(exit); f.Faulted {
				return fmt.Errorf("module %s: exit at %v: %v", name, exit, f)
			}
		}
		if _, err := m.reg.Remove(name); err != nil {
			return err
		}
		r := lm.Img.Range()
		if err := s.AS.Unmap(r.Start, uint64(r.End.AlignUp(page)-r.Start)); err != nil {
			return err
		}
		for pa, attrs := range lm.alias {
			if err := s.AS.Protect(s.DirectVA(pa), page, attrs); err != nil {
				return err
			}
		}
		var ferr error
		lm.Pages(func(_ modload.Group, _ mm.VirtAddr, pa mm.PhysAddr) {
			ferr = errors.Join(ferr, s.Frames.FreeFrame(pa))
		})
		if ferr != nil {
			return ferr
		}
	}
	m.Loaded = nil
	return nil
}

// find returns the loaded module of a name.
func (m *Modules) find(name string) (*LoadedModule, error) {
	for _, lm := range m.Loaded {
		if lm.Img.Name() == name {
			return lm, nil
		}
	}
	return nil, fmt.Errorf("module %s is not loaded", name)
}

// Registry returns the loader's registry of loaded modules (lsmod).
func (m *Modules) Registry() *modload.Registry { return m.reg }

func le64(v uint64) []byte {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, v)
	return b
}
