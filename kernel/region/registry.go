package region

import (
	"fmt"
	"slices"

	"github.com/physmap/physmap/kernel/selftest"
	"github.com/physmap/physmap/mm"
)

// impls are the types of the registry's entries, by name. The boot entry
// has none here: its checks run in the kernel's main package, before there
// is a space.
var impls = map[string]func() Region{
	"direct":         func() Region { return new(DirectMap) },
	"image":          func() Region { return new(KernelImage) },
	"lowwindow":      func() Region { return new(LowWindow) },
	"guard":          func() Region { return new(GuardHole) },
	"ldt":            func() Region { return new(LDTRemap) },
	"vmalloc":        func() Region { return new(Vmalloc) },
	"vmemmap":        func() Region { return new(Vmemmap) },
	"cpu_entry_area": func() Region { return new(CPUEntryArea) },
	"espfix":         func() Region { return new(ESPFix) },
	"efi":            func() Region { return new(EFIRegion) },
	"modules":        func() Region { return new(Modules) },
	"fixmap":         func() Region { return new(Fixmap) },
	"text_poke":      func() Region { return new(TextPoke) },
	"vsyscall":       func() Region { return new(Vsyscall) },
	"kaslr":          func() Region { return new(KASLR) },
	"audit":          func() Region { return new(Audit) },
	"user":           func() Region { return new(User) },
}

// bootEntry is the registry entry the kernel's main package proves.
const bootEntry = "boot"

// New returns the registry's entries in order, each with a fresh value of
// its type (the boot entry without one).
// Precondition: every entry but boot has a type in impls, and impls has no
// other (a host test holds the two lists together).
func New() []Entry {
	var out []Entry
	for _, spec := range selftest.Registry {
		e := Entry{Spec: spec}
		if spec.Name != bootEntry {
			mk, ok := impls[spec.Name]
			if !ok {
				panic("region: registry entry " + spec.Name + " has no type")
			}
			e.Impl = mk()
		}
		out = append(out, e)
	}
	return out
}

// Attach gives s the registry's entries, for Populate, Inject and the
// regions' lookups of each other.
func (s *Space) Attach(entries []Entry) { s.regions = entries }

// Entries returns the entries attached to s.
func (s *Space) Entries() []Entry { return s.regions }

// Populate builds the early regions (before the tables go live) or the
// others, in registry order.
func (s *Space) Populate(early bool) error {
	if early && s.Config.PTI {
		// Under PTI the kernel's mappings are not global: arch/x86/mm/init.c,
		// probe_page_size_mask, takes _PAGE_GLOBAL out of
		// __default_kernel_pte_mask (and so of PAGE_KERNEL and its kin)
		// before the direct map is built. The cpu_entry_area and the
		// entry text set it back themselves.
		s.AS.Withhold(mm.AttrGlobal)
	}
	for _, e := range s.regions {
		if e.Impl == nil || e.Spec.Early != early {
			continue
		}
		if err := e.Impl.Populate(s); err != nil {
			return fmt.Errorf("%s: %w", e.Spec.Name, err)
		}
	}
	return nil
}

// Inject applies the named injection through the region that owns it.
func (s *Space) Inject(name string) error {
	for _, e := range s.regions {
		for _, in := range e.Spec.Injections {
			if in.Name != name {
				continue
			}
			if e.Impl == nil {
				return fmt.Errorf("injection %s belongs to %s, which the kernel applies itself", name, e.Spec.Name)
			}
			return e.Impl.Inject(s, name)
		}
	}
	return fmt.Errorf("no region owns injection %q", name)
}

// lookup returns the attached region of type T.
func lookup[T Region](s *Space) T {
	for _, e := range s.regions {
		if r, ok := e.Impl.(T); ok {
			return r
		}
	}
	var zero T
	panic(fmt.Sprintf("region: no %T attached", zero))
}

// Find returns the attached region of type T, for the kernel's report and
// shell.
func Find[T Region](s *Space) T { return lookup[T](s) }

// Prove runs every region's proof in registry order. Each region may
// report only the checks its entry declares, each once: anything else is
// reported as a failure of the check manifest.
func (s *Space) Prove(p *Proof) {
	for _, e := range s.regions {
		if e.Impl == nil {
			continue
		}
		g := &guardedReporter{r: p.R, entry: e.Spec}
		q := *p
		q.R = g
		e.Impl.Prove(&q)
	}
}

// guardedReporter passes on an entry's results, refusing checks the entry
// does not declare and repeats.
type guardedReporter struct {
	r     Reporter
	entry selftest.Region
	seen  []string
}

func (g *guardedReporter) Check(name string, ok bool, format string, args ...any) {
	declared := slices.ContainsFunc(g.entry.Checks, func(c selftest.Check) bool { return c.Name == name })
	switch {
	case !declared:
		fail(g.r, "manifest", "region %s reported %s, which its registry entry does not declare", g.entry.Name, name)
	case slices.Contains(g.seen, name):
		fail(g.r, "manifest", "region %s reported %s twice", g.entry.Name, name)
	default:
		g.seen = append(g.seen, name)
		g.r.Check(name, ok, format, args...)
	}
}
