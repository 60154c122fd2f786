package selftest

import (
	"errors"
	"slices"
	"testing"
)

// configs are the configurations the manifest distinguishes.
var configs = []Config{
	{Levels: 4}, {Levels: 4, Page1GB: true}, {Levels: 5, Page1GB: true},
	{Levels: 4, KASLR: true, Page1GB: true}, {Levels: 5, KASLR: true, Page1GB: true},
	{Levels: 5, Page1GB: true, Layout: "distro", Vsyscall: "none", PTI: true, XPFO: true, SMEP: true, SMAP: true, PCID: true},
	{Levels: 4, Layout: "mmrst", Vsyscall: "emulate"},
}

func TestRegistryNames(t *testing.T) {
	regions, checks, cases := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, r := range Registry {
		if regions[r.Name] || r.Name == "" || r.Source == "" {
			t.Errorf("region %q: duplicate, unnamed or without its Linux source", r.Name)
		}
		regions[r.Name] = true
		for _, c := range r.Checks {
			if checks[c.Name] || !ValidCheckName(c.Name) || c.Claim == "" || c.Expect == "" {
				t.Errorf("check %q: duplicate, malformed, or without its claim and expectation", c.Name)
			}
			checks[c.Name] = true
		}
		for _, in := range r.Injections {
			if cases[in.Name] || in.What == "" || len(in.Fails) == 0 {
				t.Errorf("injection %q: duplicate, undescribed or failing nothing", in.Name)
			}
			cases[in.Name] = true
		}
		for _, e := range r.Environments {
			if cases[e.Name] || e.What == "" || len(e.Fails) == 0 {
				t.Errorf("environment %q: duplicate, undescribed or failing nothing", e.Name)
			}
			cases[e.Name] = true
		}
	}
	// Every check a failing case names exists, and applies where the case
	// does.
	for _, r := range Registry {
		for _, in := range r.Injections {
			for _, c := range configs {
				if in.When != nil && !in.When(c) {
					continue
				}
				if len(in.FailsIn(c)) == 0 {
					t.Errorf("injection %s fails none of the checks of %v", in.Name, c)
				}
				for _, f := range in.Fails {
					if !checks[f] {
						t.Errorf("injection %s fails %s, which no region declares", in.Name, f)
					}
				}
			}
		}
		for _, e := range r.Environments {
			for _, f := range e.Fails {
				if !checks[f] {
					t.Errorf("environment %s fails %s, which is no check", e.Name, f)
				}
			}
		}
	}
}

// TestEveryCheckHasAFailingCase: a check that nothing can fail proves
// nothing.
func TestEveryCheckHasAFailingCase(t *testing.T) {
	for _, c := range configs {
		failable := map[string]bool{}
		for _, r := range Registry {
			for _, in := range r.Injections {
				// An injection that needs KASLR fails its checks in the
				// KASLR configurations of the same mode.
				for _, f := range in.Fails {
					failable[f] = true
				}
			}
			for _, e := range r.Environments {
				for _, f := range e.Fails {
					failable[f] = true
				}
			}
		}
		for _, name := range Manifest(c) {
			if !failable[name] {
				t.Errorf("%v: no injection or environment fails %s", c, name)
			}
		}
	}
}

func TestManifestDependsOnConfig(t *testing.T) {
	plain, kaslr := Manifest(Config{Levels: 5}), Manifest(Config{Levels: 5, KASLR: true})
	if len(kaslr) != len(plain)+2 || slices.Contains(plain, "kaslr.memory") || !slices.Contains(kaslr, "kaslr.image") {
		t.Errorf("manifests without and with KASLR: %v, %v", plain, kaslr)
	}
}

func TestConfigRoundTrip(t *testing.T) {
	for _, c := range configs {
		got, err := ParseConfig(c.String() + "\r\n")
		if err != nil || got != c {
			t.Errorf("ParseConfig(%q) = %+v, %v", c.String(), got, err)
		}
	}
	for _, bad := range []string{"config: levels=5", "config: levels=6 kaslr=off page1g=no", "config: levels=5 kaslr=maybe page1g=no",
		"config: levels=5 kaslr=off page1g=no levels=4", "config: levels=5 kaslr=off page1g=no x=1", "PASS a: b",
		"config: levels=5 kaslr=off page1g=no vsyscall=native", "config: levels=5 kaslr=off page1g=no smep=on"} {
		if _, err := ParseConfig(bad); !errors.Is(err, ErrNotProtocol) {
			t.Errorf("ParseConfig(%q) err = %v, want ErrNotProtocol", bad, err)
		}
	}
}

func TestMissingAndUnlisted(t *testing.T) {
	m := []string{"a", "b", "c"}
	rs := []Result{{Pass, "a", ""}, {Fail, "c", ""}, {Pass, "x", ""}, {Fail, "inject", ""}}
	if got := Missing(m, rs); !slices.Equal(got, []string{"b"}) {
		t.Errorf("Missing = %v", got)
	}
	if got := Unlisted(m, rs); !slices.Equal(got, []string{"x"}) {
		t.Errorf("Unlisted = %v", got)
	}
}

// TestVariants: each When of the registry is met by some variant, and the
// README's words for it name the boots it belongs to.
func TestVariants(t *testing.T) {
	base := Config{Levels: 5, Page1GB: true, SMEP: true, SMAP: true}
	for _, r := range Registry {
		for _, in := range r.Injections {
			if _, c, ok := VariantFor(in.When, base); !ok || (in.When != nil && !in.When(c)) {
				t.Errorf("injection %s: no variant applies", in.Name)
			}
		}
	}
	for _, tc := range []struct {
		when func(Config) bool
		want string
	}{{nil, ""}, {kaslrOnly, "KASLR boots only"}, {vsyscallEmulate, "vsyscall=emulate boots only"},
		{vsyscallUnmapped, "boots without vsyscall=emulate"}} {
		if got := DescribeWhen(tc.when); got != tc.want {
			t.Errorf("DescribeWhen = %q, want %q", got, tc.want)
		}
	}
	if v, c, _ := VariantFor(vsyscallEmulate, base); v.Append != "vsyscall=emulate" || c.Vsyscall != "emulate" {
		t.Errorf("VariantFor(emulate) = %+v, %+v", v, c)
	}
}
