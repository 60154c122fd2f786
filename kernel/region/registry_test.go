package region

import (
	"testing"

	"github.com/physmap/physmap/kernel/selftest"
)

// TestRegistryTypes holds the registry and its types together: every entry
// but boot has a type, and no type lacks an entry.
func TestRegistryTypes(t *testing.T) {
	named := map[string]bool{}
	for _, r := range selftest.Registry {
		named[r.Name] = true
		if _, ok := impls[r.Name]; ok == (r.Name == bootEntry) {
			t.Errorf("registry entry %q: has a type %v, want %v", r.Name, ok, r.Name != bootEntry)
		}
	}
	for name := range impls {
		if !named[name] {
			t.Errorf("type for %q, which the registry does not list", name)
		}
	}
	for _, e := range New() {
		if (e.Impl == nil) != (e.Spec.Name == bootEntry) {
			t.Errorf("New: entry %q has Impl %T", e.Spec.Name, e.Impl)
		}
	}
}
