package option

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		cmdline string
		want    Options
		others  []string
	}{
		{"", Defaults(), nil},
		{"physmap.hold=1", Options{Hold: true, Ptdump: "1"}, nil},
		{"physmap.sleep=2 physmap.hold=1 physmap.ptdump=phys", Options{Hold: true, Sleep: 2 * time.Second, Ptdump: "phys"}, nil},
		{"physmap.kaslr=42", Options{KASLR: KASLR{On: true, Seed: 42, Seeded: true}, Ptdump: "1"}, nil},
		{"physmap.kaslr=0x2a physmap.ptdump=0", Options{KASLR: KASLR{On: true, Seed: 42, Seeded: true}, Ptdump: "0"}, nil},
		{"  console=ttyS0 physmap.hold=0  quiet ", Defaults(), []string{"console=ttyS0", "quiet"}},
		{"physmap.shell=1", Options{Shell: true, Ptdump: "1"}, nil},
	} {
		got, others, errs := Parse(tc.cmdline)
		if len(errs) != 0 {
			t.Errorf("Parse(%q): unexpected errors %v", tc.cmdline, errs)
		}
		if got != tc.want || !reflect.DeepEqual(others, tc.others) {
			t.Errorf("Parse(%q) = %+v, %q; want %+v, %q", tc.cmdline, got, others, tc.want, tc.others)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		cmdline string
		word    string
		err     error
		detail  string
	}{
		{"physmap.bogus=1", "physmap.bogus=1", ErrUnknown, "known: hold, inject, kaslr, levels, ptdump, shell, sleep"},
		{"physmap.sleep=61", "physmap.sleep=61", ErrValue, "0 to 60"},
		{"physmap.ptdump=2", "physmap.ptdump=2", ErrValue, "0, 1 or phys"},
		{"physmap.levels=3", "physmap.levels=3", ErrValue, "4, 5 or auto"},
		{"physmap.kaslr=yes", "physmap.kaslr=yes", ErrValue, "on, off or a seed"},
		{"physmap.sleep=1.5", "physmap.sleep=1.5", ErrValue, "whole seconds"},
		{"physmap.sleep=-1", "physmap.sleep=-1", ErrValue, "0 to 60"},
		{"physmap.hold=x", "physmap.hold=x", ErrValue, `"x"`},
		{"physmap.shell=yes", "physmap.shell=yes", ErrValue, "want 0 or 1"},
		{"physmap.hold=", "physmap.hold=", ErrValue, "want 0 or 1"},
		{"physmap.hold", "physmap.hold", ErrMalformed, "NAME=VALUE"},
		{"physmap.=1", "physmap.=1", ErrMalformed, "NAME=VALUE"},
		{"physmap.hold=1 physmap.hold=1", "physmap.hold=1", ErrRepeated, "twice"},
	} {
		_, _, errs := Parse(tc.cmdline)
		if len(errs) != 1 {
			t.Fatalf("Parse(%q): %d errors %v, want 1", tc.cmdline, len(errs), errs)
		}
		var e *Error
		if !errors.As(errs[0], &e) || e.Word != tc.word || !errors.Is(errs[0], tc.err) {
			t.Errorf("Parse(%q) error = %v, want word %q and %v", tc.cmdline, errs[0], tc.word, tc.err)
		}
		if !strings.Contains(errs[0].Error(), tc.detail) {
			t.Errorf("Parse(%q) error %q does not say %q", tc.cmdline, errs[0], tc.detail)
		}
	}
}

func TestParseKeepsGoodOptionsBesideBadOnes(t *testing.T) {
	o, _, errs := Parse("physmap.nope=1 physmap.hold=1")
	if len(errs) != 1 || !o.Hold {
		t.Errorf("got %+v with %v; want Hold and one error", o, errs)
	}
}

func TestUsageCoversEveryOption(t *testing.T) {
	u := Usage()
	for i, n := range Names() {
		found := false
		for _, line := range u {
			found = found || strings.HasPrefix(line, Prefix+n+"=")
		}
		if !found {
			t.Errorf("option %d (%s) has no usage line", i, n)
		}
	}
}

func TestStringParsesBack(t *testing.T) {
	for _, o := range []Options{Defaults(), {Hold: true, Ptdump: "0"}, {Sleep: 7 * time.Second, Ptdump: "phys"}, {Inject: "no-invlpg", Ptdump: "1"}, {Levels: 4, Ptdump: "1"}, {Levels: 5, Ptdump: "0"}, {Shell: true, Hold: true, Ptdump: "1"}, {KASLR: KASLR{On: true}, Ptdump: "1"}, {KASLR: KASLR{On: true, Seed: 0xdead, Seeded: true}, Ptdump: "1"}} {
		got, _, errs := Parse(o.String())
		if len(errs) != 0 || got != o {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", o.String(), got, errs, o)
		}
	}
}
