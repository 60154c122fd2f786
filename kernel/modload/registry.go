package modload

import (
	"fmt"
	"slices"
	"strings"

	"github.com/physmap/physmap/mm"
)

// State is a loaded module's state, as /proc/modules names it.
type State int

// The states of a registered module (enum module_state in
// include/linux/module.h: MODULE_STATE_COMING, MODULE_STATE_LIVE).
const (
	StateComing State = iota // registered, init not yet returned: "Loading"
	StateLive                // init returned 0: "Live"
)

func (s State) String() string {
	if s == StateLive {
		return "Live"
	}
	return "Loading"
}

// Module is a module in the registry.
type Module struct {
	img   *Image
	state State
	users []*Module // modules that use this one (Linux's source_list)
}

// Name returns the module's name.
func (m *Module) Name() string { return m.img.Name() }

// Image returns the module as linked.
func (m *Module) Image() *Image { return m.img }

// State returns the module's state.
func (m *Module) State() State { return m.state }

// MarkLive records that the module's init returned 0.
func (m *Module) MarkLive() { m.state = StateLive }

// Users returns the names of the modules that use this one, in load order.
func (m *Module) Users() []string { return names(m.users) }

// Refcount returns the references other modules hold: one per user, as
// ref_module takes one on each module a new module uses.
func (m *Module) Refcount() int { return len(m.users) }

// Permanent reports whether the module has init but no exit, which makes
// delete_module refuse it.
func (m *Module) Permanent() bool {
	_, init := m.img.Init()
	_, exit := m.img.Exit()
	return init && !exit
}

func names(ms []*Module) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name()
	}
	return out
}

// Registry is the list of loaded modules (Linux's modules list) and the
// kernel symbols they link against. It holds no memory of the modules':
// the caller maps and frees their pages.
type Registry struct {
	kernel SymbolTable
	mods   []*Module // in load order
}

// NewRegistry returns an empty registry over the kernel's exported symbols.
func NewRegistry(kernel SymbolTable) *Registry { return &Registry{kernel: kernel} }

// Kernel returns the kernel's symbol table.
func (r *Registry) Kernel() SymbolTable { return r.kernel }

// Find returns the loaded module named name, or nil.
func (r *Registry) Find(name string) *Module {
	for _, m := range r.mods {
		if m.Name() == name {
			return m
		}
	}
	return nil
}

// Modules returns the loaded modules newest first, the order of
// /proc/modules (add_unformed_module puts a new module at the head of the
// list). Every module comes before the modules it uses, so it is also an
// order to unload them in.
func (r *Registry) Modules() []*Module {
	out := slices.Clone(r.mods)
	slices.Reverse(out)
	return out
}

// resolve finds an exported symbol: the kernel's first, then the modules',
// as find_symbol searches (kernel/module/main.c).
func (r *Registry) resolve(name string) (mm.VirtAddr, *Module, bool) {
	if r.kernel != nil {
		if a, ok := r.kernel.Lookup(name); ok {
			return a, nil, true
		}
	}
	for _, m := range r.Modules() {
		for _, e := range m.img.exports {
			if e.Name == name {
				return e.Addr, m, true
			}
		}
	}
	return 0, nil, false
}

// checkExports refuses an object that exports a name the kernel or a
// loaded module already exports (verify_exported_symbols).
func (r *Registry) checkExports(o *Object) error {
	for _, e := range o.exports {
		if _, owner, ok := r.resolve(e.name); ok {
			who := "kernel"
			if owner != nil {
				who = owner.Name()
			}
			return linuxErr(o.name, ENOEXEC, "%s: exports duplicate symbol %s (owned by %s)", o.name, e.name, who)
		}
	}
	return nil
}

// Add registers a module the caller has mapped, in state Loading: its
// exports become visible and each module it uses gains a reference. It
// fails only if the registry changed since Link in a way that conflicts
// (a module of the same name or export added, one it uses removed); the
// caller then unmaps and frees what it mapped.
func (r *Registry) Add(img *Image) (*Module, error) {
	mod := img.Name()
	if img.reg != r {
		return nil, ownErr(mod, EINVAL, "%s: linked against another registry", mod)
	}
	if r.Find(mod) != nil {
		return nil, ownErr(mod, EEXIST, "%s: a module of this name is loaded (err %d)", mod, -int(EEXIST))
	}
	for _, u := range img.uses {
		if !slices.Contains(r.mods, u) {
			return nil, ownErr(mod, ENOENT, "%s: module %s, whose exports it uses, was unloaded since it was linked", mod, u.Name())
		}
	}
	if err := r.checkExports(img.obj); err != nil {
		return nil, err
	}
	m := &Module{img: img, state: StateComing}
	for _, u := range img.uses {
		u.users = append(u.users, m)
	}
	r.mods = append(r.mods, m)
	return m, nil
}

// Remove takes a module out of the registry, refusing, as delete_module
// does, one that other modules use (-EWOULDBLOCK) or that is permanent
// (-EBUSY). The caller calls its exit (before Remove, as delete_module
// does once these checks pass: use [Registry.CanRemove]), then unmaps and
// frees its pages.
func (r *Registry) Remove(name string) (*Module, error) {
	m, err := r.CanRemove(name)
	if err != nil {
		return nil, err
	}
	for _, u := range m.img.uses {
		u.users = slices.DeleteFunc(u.users, func(x *Module) bool { return x == m })
	}
	r.mods = slices.DeleteFunc(r.mods, func(x *Module) bool { return x == m })
	return m, nil
}

// CanRemove returns the module named name if [Registry.Remove] would take
// it out, or the error Remove would give.
func (r *Registry) CanRemove(name string) (*Module, error) {
	m := r.Find(name)
	if m == nil {
		return nil, ownErr(name, ENOENT, "%s: no such module is loaded", name)
	}
	if len(m.users) > 0 {
		return nil, ownErr(name, EAGAIN, "Module %s is in use by: %s", name, strings.Join(m.Users(), " ")).
			withDetail("delete_module refuses with -EWOULDBLOCK while another module uses it (kernel/module/main.c); the words are rmmod's")
	}
	if m.Permanent() {
		return nil, ownErr(name, EBUSY, "%s: has init but no exit, so it cannot be unloaded (err %d)", name, -int(EBUSY))
	}
	return m, nil
}

// ProcModules returns the registry in the format of /proc/modules
// (kernel/module/procfs.c: m_show), newest first: name, size, refcount,
// the modules using it each followed by a comma ("[permanent]," for one
// without exit, "-" for none), state, and base address.
func (r *Registry) ProcModules() string {
	var b strings.Builder
	for _, m := range r.Modules() {
		deps := ""
		for _, u := range m.users {
			deps += u.Name() + ","
		}
		if m.Permanent() {
			deps += "[permanent],"
		}
		if deps == "" {
			deps = "-"
		}
		fmt.Fprintf(&b, "%s %d %d %s %v 0x%016x\n", m.Name(), m.img.obj.size, m.Refcount(), deps, m.state, uint64(m.img.Base))
	}
	return b.String()
}

// Location is where an address falls in a loaded module.
type Location struct {
	Module *Module
	Symbol string      // the nearest symbol at or below the address, "" if none
	Addr   mm.VirtAddr // the symbol's address
	Offset uint64      // from the symbol (from the base if Symbol is "")
	Size   uint64      // to the next symbol or the end of its group
}

// String formats the location as %pS does for a module address:
// "reloc_pc32+0x3/0x10 [reloc]".
func (l Location) String() string {
	if l.Symbol == "" {
		return fmt.Sprintf("%v [%s]", l.Addr.Add(l.Offset), l.Module.Name())
	}
	return fmt.Sprintf("%s+%#x/%#x [%s]", l.Symbol, l.Offset, l.Size, l.Module.Name())
}

// Addr finds the module and symbol an address belongs to, as
// module_address_lookup does: the nearest named symbol at or below it, the
// first of several at the same address.
func (r *Registry) Addr(va mm.VirtAddr) (Location, bool) {
	for _, m := range r.mods {
		img := m.img
		rg := img.Range()
		if !rg.Contains(va) {
			continue
		}
		loc := Location{Module: m, Addr: img.Base, Offset: uint64(va - img.Base)}
		best := -1
		for i, s := range img.symbols {
			if s.Addr <= va && (best < 0 || s.Addr > img.symbols[best].Addr) {
				best = i
			}
		}
		if best < 0 {
			return loc, true
		}
		s := img.symbols[best]
		end := rg.End
		for _, g := range img.Groups {
			if gr := (mm.VirtRange{Start: g.VA, End: g.VA.Add(g.Size)}); gr.Contains(s.Addr) {
				end = gr.End
			}
		}
		for _, t := range img.symbols[best:] {
			if t.Addr > s.Addr {
				end = min(end, t.Addr)
				break
			}
		}
		return Location{Module: m, Symbol: s.Name, Addr: s.Addr, Offset: uint64(va - s.Addr), Size: uint64(end - s.Addr)}, true
	}
	return Location{}, false
}

// Symbol finds a symbol of a loaded module by name, "sym" or "mod:sym"
// as kallsyms_lookup_name takes them (kernel/module/kallsyms.c:
// module_kallsyms_lookup_name), oldest module first.
func (r *Registry) Symbol(name string) (mm.VirtAddr, *Module, bool) {
	mod, sym, scoped := strings.Cut(name, ":")
	if !scoped {
		sym = mod
	}
	for _, m := range r.mods {
		if scoped && m.Name() != mod {
			continue
		}
		if a, ok := m.img.Symbol(sym); ok {
			return a, m, true
		}
	}
	return 0, nil, false
}

// LoadOrder orders objects so each comes after the ones whose exports it
// uses, as modprobe loads a module's dependencies first (the order depmod
// writes to modules.dep): B, which needs A's export, loads after A. Among
// objects with no order between them the given order is kept. It refuses
// a symbol neither the kernel nor any object provides, one exported by two
// objects, and a cycle.
func LoadOrder(objs []*Object, kernel SymbolTable) ([]*Object, error) {
	owner := map[string]*Object{}
	for _, o := range objs {
		for _, e := range o.exports {
			if p, dup := owner[e.name]; dup {
				return nil, linuxErr(o.name, ENOEXEC, "%s: exports duplicate symbol %s (owned by %s)", o.name, e.name, p.name)
			}
			owner[e.name] = o
		}
	}
	deps := map[*Object][]*Object{}
	for _, o := range objs {
		var unknown []string
		for _, n := range o.undef {
			if kernel != nil {
				if _, ok := kernel.Lookup(n); ok {
					continue
				}
			}
			p, ok := owner[n]
			switch {
			case !ok:
				unknown = append(unknown, n)
			case p != o && !slices.Contains(deps[o], p):
				deps[o] = append(deps[o], p)
			}
		}
		if len(unknown) > 0 {
			return nil, &UnknownSymbolError{Module: o.name, Names: unknown}
		}
	}
	const (
		unvisited = iota
		visiting
		done
	)
	mark := map[*Object]int{}
	var order []*Object
	var visit func(o *Object, path []string) error
	visit = func(o *Object, path []string) error {
		switch mark[o] {
		case done:
			return nil
		case visiting:
			return ownErr(o.name, ENOEXEC, "%s: dependency cycle %s -> %s", o.name, strings.Join(path, " -> "), o.name)
		}
		mark[o] = visiting
		for _, d := range deps[o] {
			if err := visit(d, append(path, o.name)); err != nil {
				return err
			}
		}
		mark[o] = done
		order = append(order, o)
		return nil
	}
	for _, o := range objs {
		if err := visit(o, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}
