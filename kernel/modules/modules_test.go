package modules_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/physmap/physmap/kernel/modules/modtest"
)

// The modules are what a .ko is: ELF64 relocatable objects for x86-64, as
// binutils' readelf reads them, not the loader under test.
func TestObjects(t *testing.T) {
	for name, obj := range modtest.Modules(t) {
		h := modtest.Readelf(t, obj, "-h")
		for _, want := range []string{"ELF64", "2's complement, little endian", "REL (Relocatable file)", "Advanced Micro Devices X86-64"} {
			if !strings.Contains(h, want) {
				t.Errorf("%s: readelf -h lacks %q:\n%s", name, want, h)
			}
		}
		s := modtest.Readelf(t, obj, "-S", "-W")
		// -fno-asynchronous-unwind-tables and -fcf-protection=none: no
		// unwind tables, no CET property note.
		for _, absent := range []string{".eh_frame", ".note.gnu.property", ".init.text"} {
			if strings.Contains(s, absent) {
				t.Errorf("%s has %s", name, absent)
			}
		}
		if p := modtest.Readelf(t, obj, "-p", ".modinfo"); !strings.Contains(p, "name="+name) {
			t.Errorf("%s: .modinfo lacks name=%s:\n%s", name, name, p)
		}
	}
}

// Each relocation kind the kernel code model uses is really emitted,
// against the symbol the C means it for, as readelf -r lists them.
func TestRelocationKinds(t *testing.T) {
	objs := modtest.Modules(t)
	for _, c := range []struct {
		module, section, typ, symbol string
		why                          string
	}{
		{"reloc", ".rela.text", "R_X86_64_PC32", "page_offset_base", "reloc_pc32 reads the kernel variable RIP-relative"},
		{"reloc", ".rela.text", "R_X86_64_PLT32", "physmap_console_write", "reloc_plt32 calls the kernel function"},
		{"reloc", ".rela.text", "R_X86_64_32S", "reloc_words", "reloc_abs32s takes an address as a sign-extended immediate"},
		{"reloc", ".rela.data", "R_X86_64_64", "page_offset_base", "reloc_table holds absolute pointers"},
		{"reloc", ".rela__ksymtab", "R_X86_64_64", "reloc_add", "EXPORT_SYMBOL's entry points at the function"},
		{"reloc", ".rela__ksymtab", "R_X86_64_64", "__ksymtab_strings", "and at its name"},
		{"deps", ".rela.text", "R_X86_64_PLT32", "reloc_add", "deps_call calls reloc's export"},
		{"deps", ".rela.text", "R_X86_64_PC32", "reloc_calls", "and counts in reloc's exported variable"},
	} {
		out := modtest.Readelf(t, objs[c.module], "-r", "-W")
		sec := sectionOf(out, c.section)
		re := regexp.MustCompile(`(?m)^[0-9a-f]+\s+[0-9a-f]+\s+` + c.typ + `\s+[0-9a-f]+\s+` + regexp.QuoteMeta(c.symbol) + `\b`)
		if !re.MatchString(sec) {
			t.Errorf("%s: no %s against %s in %s (%s):\n%s", c.module, c.typ, c.symbol, c.section, c.why, out)
		}
	}
	// Nothing a position-independent build would need.
	for name, obj := range objs {
		if out := modtest.Readelf(t, obj, "-r", "-W"); strings.Contains(out, "GOT") {
			t.Errorf("%s has GOT relocations:\n%s", name, out)
		}
	}
}

// sectionOf returns the lines readelf -r prints for one relocation section.
func sectionOf(out, section string) string {
	start := strings.Index(out, "Relocation section '"+section+"'")
	if start < 0 {
		return ""
	}
	rest := out[start+1:]
	if end := strings.Index(rest, "Relocation section '"); end >= 0 {
		rest = rest[:end]
	}
	return rest
}
