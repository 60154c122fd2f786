package option

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// with returns the defaults changed by f.
func with(f func(o *Options)) Options {
	o := Defaults()
	f(&o)
	return o
}

func TestDefaults(t *testing.T) {
	o := Defaults()
	want := Options{Ptdump: DefaultPtdump, Config: ConfigDistro, Vsyscall: VsyscallNone, PTI: PTIAuto, MM: "0"}
	if o != want {
		t.Errorf("Defaults() = %+v, want %+v", o, want)
	}
	if got := o.String(); got != "physmap.hold=0 physmap.sleep=0 physmap.ptdump=0 physmap.kaslr=off physmap.levels=auto physmap.shell=0 physmap.verbose=0 physmap.config=distro physmap.xpfo=off physmap.mm=0 vsyscall=none pti=auto" {
		t.Errorf("Defaults().String() = %q", got)
	}
	if c := o.Changed(); len(c) != 0 {
		t.Errorf("Defaults().Changed() = %q, want none", c)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		cmdline string
		want    Options
		others  []string
	}{
		{"", Defaults(), nil},
		{"physmap.hold=1", with(func(o *Options) { o.Hold = true }), nil},
		{"physmap.sleep=2 physmap.hold=1 physmap.ptdump=phys", with(func(o *Options) { o.Hold, o.Sleep, o.Ptdump = true, 2*time.Second, "phys" }), nil},
		{"physmap.ptdump=1", with(func(o *Options) { o.Ptdump = "1" }), nil},
		{"physmap.kaslr=42", with(func(o *Options) { o.KASLR = KASLR{On: true, Seed: 42, Seeded: true} }), nil},
		{"physmap.kaslr=0x2a physmap.ptdump=0", with(func(o *Options) { o.KASLR = KASLR{On: true, Seed: 42, Seeded: true} }), nil},
		{"physmap.kaslr=on", with(func(o *Options) { o.KASLR = KASLR{On: true} }), nil},
		{"  console=ttyS0 physmap.hold=0  quiet ", Defaults(), []string{"console=ttyS0", "quiet"}},
		{"physmap.shell=1", with(func(o *Options) { o.Shell = true }), nil},
		{"physmap.inject=no-invlpg", with(func(o *Options) { o.Inject = "no-invlpg" }), nil},
		{"physmap.levels=4", with(func(o *Options) { o.Levels = 4 }), nil},
		{"physmap.levels=5", with(func(o *Options) { o.Levels = 5 }), nil},
		{"physmap.levels=auto", Defaults(), nil},
		{"physmap.verbose=1", with(func(o *Options) { o.Verbose = true }), nil},
		{"physmap.config=mmrst", with(func(o *Options) { o.Config = ConfigMMRST }), nil},
		{"physmap.config=distro", Defaults(), nil},
		{"physmap.xpfo=on", with(func(o *Options) { o.XPFO = true }), nil},
		{"physmap.xpfo=off", Defaults(), nil},
		{"physmap.mm=2", with(func(o *Options) { o.MM = "2" }), nil},
		{"physmap.mm=1 physmap.xpfo=on", with(func(o *Options) { o.MM, o.XPFO = "1", true }), nil},
		{"vsyscall=xonly", with(func(o *Options) { o.Vsyscall = VsyscallXonly }), nil},
		{"vsyscall=emulate", with(func(o *Options) { o.Vsyscall = VsyscallEmulate }), nil},
		{"vsyscall=none", Defaults(), nil},
		{"pti=on", with(func(o *Options) { o.PTI = PTIOn }), nil},
		{"pti=off", with(func(o *Options) { o.PTI = PTIOff }), nil},
		{"pti=auto", Defaults(), nil},
		// Linux's words, and how they combine with physmap's.
		{"nokaslr", with(func(o *Options) { o.NoKASLR = true }), nil},
		{"nokaslr physmap.kaslr=off", with(func(o *Options) { o.NoKASLR = true }), nil},
		{"no5lvl", with(func(o *Options) { o.No5Lvl, o.Levels = true, 4 }), nil},
		{"no5lvl physmap.levels=4", with(func(o *Options) { o.No5Lvl, o.Levels = true, 4 }), nil},
		{"physmap.levels=auto no5lvl", with(func(o *Options) { o.No5Lvl, o.Levels = true, 4 }), nil},
		{"nopti", with(func(o *Options) { o.NoPTI, o.PTI = true, PTIOff }), nil},
		{"pti=off nopti", with(func(o *Options) { o.NoPTI, o.PTI = true, PTIOff }), nil},
		// pti= outranks nopti, as in Linux 6.1 (with a warning).
		{"nopti pti=on", with(func(o *Options) { o.NoPTI, o.PTI = true, PTIOn }), nil},
		{"nopti pti=auto", with(func(o *Options) { o.NoPTI = true }), nil},
		// Not physmap's: case matters, as in Linux.
		{"PHYSMAP.levels=4 Vsyscall=emulate NOPTI", Defaults(), []string{"PHYSMAP.levels=4", "Vsyscall=emulate", "NOPTI"}},
		{"pci=noacpi nosmt", Defaults(), []string{"pci=noacpi", "nosmt"}},
	} {
		l := ParseLine(tc.cmdline)
		if len(l.Errs) != 0 {
			t.Errorf("Parse(%q): unexpected errors %v", tc.cmdline, l.Errs)
		}
		if l.Options != tc.want || !reflect.DeepEqual(l.Others, tc.others) {
			t.Errorf("Parse(%q) = %+v, %q; want %+v, %q", tc.cmdline, l.Options, l.Others, tc.want, tc.others)
		}
		o, others, errs := Parse(tc.cmdline)
		if o != l.Options || !reflect.DeepEqual(others, l.Others) || len(errs) != len(l.Errs) {
			t.Errorf("Parse(%q) disagrees with ParseLine", tc.cmdline)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		cmdline string
		word    string
		err     error
		msg     string // the whole message
	}{
		{"physmap.bogus=1", "physmap.bogus=1", ErrUnknown, `"physmap.bogus=1": unknown option (known: config, hold, inject, kaslr, levels, mm, ptdump, shell, sleep, verbose, xpfo)`},
		{"physmap.level=4", "physmap.level=4", ErrUnknown, `"physmap.level=4": unknown option: did you mean physmap.levels?`},
		{"physmap.kasrl=on", "physmap.kasrl=on", ErrUnknown, `"physmap.kasrl=on": unknown option: did you mean physmap.kaslr?`},
		{"physmap.Levels=4", "physmap.Levels=4", ErrUnknown, `"physmap.Levels=4": unknown option: did you mean physmap.levels?`},
		{"physmap.hodl=1", "physmap.hodl=1", ErrUnknown, `"physmap.hodl=1": unknown option: did you mean physmap.hold?`},
		{"physmap.sleep=61", "physmap.sleep=61", ErrValue, `"physmap.sleep=61": bad value: want whole seconds from 0 to 60`},
		{"physmap.sleep=1.5", "physmap.sleep=1.5", ErrValue, `"physmap.sleep=1.5": bad value: want whole seconds from 0 to 60`},
		{"physmap.sleep=-1", "physmap.sleep=-1", ErrValue, `"physmap.sleep=-1": bad value: want whole seconds from 0 to 60`},
		{"physmap.sleep=9227000000", "physmap.sleep=9227000000", ErrValue, `"physmap.sleep=9227000000": bad value: want whole seconds from 0 to 60`},
		{"physmap.ptdump=2", "physmap.ptdump=2", ErrValue, `"physmap.ptdump=2": bad value: want 0, 1 or phys`},
		{"physmap.levels=3", "physmap.levels=3", ErrValue, `"physmap.levels=3": bad value: want 4, 5 or auto`},
		{"physmap.kaslr=yes", "physmap.kaslr=yes", ErrValue, `"physmap.kaslr=yes": bad value: want on, off or a seed (decimal or 0x-hex)`},
		{"physmap.hold=x", "physmap.hold=x", ErrValue, `"physmap.hold=x": bad value: want 0 or 1`},
		{"physmap.shell=yes", "physmap.shell=yes", ErrValue, `"physmap.shell=yes": bad value: want 0 or 1`},
		{"physmap.verbose=2", "physmap.verbose=2", ErrValue, `"physmap.verbose=2": bad value: want 0 or 1`},
		{"physmap.config=debian", "physmap.config=debian", ErrValue, `"physmap.config=debian": bad value: want distro or mmrst`},
		{"physmap.xpfo=1", "physmap.xpfo=1", ErrValue, `"physmap.xpfo=1": bad value: want on or off`},
		{"physmap.inject=No-Invlpg", "physmap.inject=No-Invlpg", ErrValue, `"physmap.inject=No-Invlpg": bad value: want an injection's name (lowercase letters, digits and -, at most 64)`},
		{"vsyscall=native", "vsyscall=native", ErrValue, `"vsyscall=native": bad value: want xonly, emulate or none`},
		{"pti=yes", "pti=yes", ErrValue, `"pti=yes": bad value: want on, off or auto`},
		// Empty values, every one refused alike.
		{"physmap.hold=", "physmap.hold=", ErrValue, `"physmap.hold=": bad value: empty, want 0 or 1`},
		{"physmap.inject=", "physmap.inject=", ErrValue, `"physmap.inject=": bad value: empty, want an injection's name (lowercase letters, digits and -, at most 64)`},
		{"physmap.sleep=", "physmap.sleep=", ErrValue, `"physmap.sleep=": bad value: empty, want whole seconds from 0 to 60`},
		{"physmap.kaslr=", "physmap.kaslr=", ErrValue, `"physmap.kaslr=": bad value: empty, want on, off or a seed (decimal or 0x-hex)`},
		{"vsyscall=", "vsyscall=", ErrValue, `"vsyscall=": bad value: empty, want xonly, emulate or none`},
		{"pti=", "pti=", ErrValue, `"pti=": bad value: empty, want on, off or auto`},
		// Malformed words.
		{"physmap.hold", "physmap.hold", ErrMalformed, `"physmap.hold": malformed option: want physmap.NAME=VALUE`},
		{"physmap.=1", "physmap.=1", ErrMalformed, `"physmap.=1": malformed option: want physmap.NAME=VALUE`},
		{"vsyscall", "vsyscall", ErrMalformed, `"vsyscall": malformed option: want vsyscall=xonly|emulate|none`},
		{"pti", "pti", ErrMalformed, `"pti": malformed option: want pti=on|off|auto`},
		{"nokaslr=1", "nokaslr=1", ErrMalformed, `"nokaslr=1": malformed option: nokaslr takes no value`},
		{"no5lvl=", "no5lvl=", ErrMalformed, `"no5lvl=": malformed option: no5lvl takes no value`},
		// Repeats and contradictions.
		{"physmap.hold=1 physmap.hold=1", "physmap.hold=1", ErrRepeated, `"physmap.hold=1": option given twice`},
		{"nokaslr nokaslr", "nokaslr", ErrRepeated, `"nokaslr": option given twice`},
		{"pti=on pti=off", "pti=off", ErrRepeated, `"pti=off": option given twice`},
		{"physmap.kaslr=on nokaslr", "nokaslr", ErrConflict, `"nokaslr": contradicts "physmap.kaslr=on": nokaslr turns KASLR off`},
		{"nokaslr physmap.kaslr=0x2a", "nokaslr", ErrConflict, `"nokaslr": contradicts "physmap.kaslr=0x2a": nokaslr turns KASLR off`},
		{"physmap.xpfo=on physmap.mm=2", "physmap.mm", ErrConflict, `"physmap.mm": contradicts "physmap.xpfo=on": physmap.xpfo=on's check frees process 2; physmap.mm=1 names the one it keeps`},
		{"physmap.mm=3", "physmap.mm=3", ErrValue, `"physmap.mm=3": bad value: want 0, 1 or 2`},
		{"physmap.levels=5 no5lvl", "no5lvl", ErrConflict, `"no5lvl": contradicts "physmap.levels=5": no5lvl asks for 4-level paging`},
	} {
		l := ParseLine(tc.cmdline)
		if len(l.Errs) != 1 {
			t.Errorf("Parse(%q): %d errors %v, want 1", tc.cmdline, len(l.Errs), l.Errs)
			continue
		}
		var e *Error
		if !errors.As(l.Errs[0], &e) || e.Word != tc.word || !errors.Is(l.Errs[0], tc.err) {
			t.Errorf("Parse(%q) error = %v, want word %q and %v", tc.cmdline, l.Errs[0], tc.word, tc.err)
		}
		if got := l.Errs[0].Error(); got != tc.msg {
			t.Errorf("Parse(%q) error\n  %s\nwant\n  %s", tc.cmdline, got, tc.msg)
		}
	}
}

// TestContradictionKeepsLinuxWord checks what a contradicted option is left
// at: Linux's word decides, so a failed boot is at least Linux's.
func TestContradictionKeepsLinuxWord(t *testing.T) {
	o, _, _ := Parse("physmap.kaslr=7 nokaslr physmap.levels=5 no5lvl")
	if o.KASLR.On || o.Levels != 4 {
		t.Errorf("got %+v; want KASLR off and 4 levels", o)
	}
}

func TestLongValueShownOnceAndCut(t *testing.T) {
	long := strings.Repeat("9", 8192)
	for _, word := range []string{"physmap.sleep=" + long, "physmap.inject=" + long, "physmap." + long + "=1", "pti=" + long} {
		l := ParseLine(word)
		if len(l.Errs) != 1 {
			t.Fatalf("%d errors", len(l.Errs))
		}
		msg := l.Errs[0].Error()
		if n := strings.Count(msg, "999999"); n > MaxShown/6 {
			t.Errorf("the value shows %d times six nines: not cut", n)
		}
		if len(msg) > MaxShown+200 {
			t.Errorf("message is %d bytes: %.120s...", len(msg), msg)
		}
		if !strings.Contains(msg, `"... (`) || !strings.Contains(msg, " characters)") {
			t.Errorf("message does not say it was cut: %.200s", msg)
		}
	}
}

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a=b", `"a=b"`},
		{strings.Repeat("x", MaxShown), `"` + strings.Repeat("x", MaxShown) + `"`},
		{strings.Repeat("x", MaxShown+1), `"` + strings.Repeat("x", MaxShown) + `"... (81 characters)`},
		{strings.Repeat("é", MaxShown+5), `"` + strings.Repeat("é", MaxShown) + `"... (85 characters)`},
		{"a\x01b", `"a\x01b"`},
	} {
		if got := Quote(tc.in); got != tc.want {
			t.Errorf("Quote(%.20q...) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestWarnings(t *testing.T) {
	const meant = " is not physmap's: did you mean "
	for _, tc := range []struct {
		cmdline string
		want    []string
	}{
		{"PHYSMAP.levels=4", []string{`"PHYSMAP.levels=4"` + meant + `physmap.levels? (names are case-sensitive)`}},
		{"physmap_levels=4", []string{`"physmap_levels=4"` + meant + `physmap.levels?`}},
		{"phsymap.kaslr=on", []string{`"phsymap.kaslr=on"` + meant + `physmap.kaslr?`}},
		{"NOKASLR", []string{`"NOKASLR"` + meant + `nokaslr? (names are case-sensitive)`}},
		{"nokasrl", []string{`"nokasrl"` + meant + `nokaslr?`}},
		{"No5lvl", []string{`"No5lvl"` + meant + `no5lvl? (names are case-sensitive)`}},
		{"PTI=on", []string{`"PTI=on"` + meant + `pti? (names are case-sensitive)`}},
		{"vsycall=emulate", []string{`"vsycall=emulate"` + meant + `vsyscall?`}},
		{"Physmap.foo=1", []string{`"Physmap.foo=1" is not physmap's: its options start with physmap. in lower case`}},
		{"nopti pti=on", []string{`"nopti" has no effect beside "pti=on": Linux reads pti= first; PTI stays on`}},
		{"pti=auto nopti", []string{`"nopti" has no effect beside "pti=auto": Linux reads pti= first; PTI stays auto`}},
		// Linux's own words that are near, but not near enough.
		{"pci=noacpi nopat nosmt console=ttyS0 quiet kaslr pti=off nopti", nil},
		{"physmap.levels=4 nokaslr", nil},
	} {
		l := ParseLine(tc.cmdline)
		if len(l.Errs) != 0 {
			t.Errorf("Parse(%q): unexpected errors %v", tc.cmdline, l.Errs)
		}
		if !reflect.DeepEqual(l.Warnings, tc.want) {
			t.Errorf("Parse(%q) warnings\n  %q\nwant\n  %q", tc.cmdline, l.Warnings, tc.want)
		}
	}
}

func TestParseKeepsGoodOptionsBesideBadOnes(t *testing.T) {
	o, _, errs := Parse("physmap.nope=1 physmap.hold=1 physmap.inject= vsyscall=emulate")
	if len(errs) != 2 || !o.Hold || o.Inject != "" || o.Vsyscall != VsyscallEmulate {
		t.Errorf("got %+v with %v; want Hold, vsyscall=emulate and two errors", o, errs)
	}
}

func TestUsageCoversEveryOption(t *testing.T) {
	u := Usage()
	if len(u) != len(specs) {
		t.Fatalf("%d usage lines for %d words", len(u), len(specs))
	}
	for _, s := range specs {
		found := false
		for _, line := range u {
			found = found || strings.HasPrefix(line, s.name+"=") || strings.HasPrefix(line, s.name+":")
		}
		if !found {
			t.Errorf("%s has no usage line", s.name)
		}
	}
	for _, n := range Names() {
		if lookup(Prefix+n) == nil {
			t.Errorf("Names() has %s, which is not an option", n)
		}
	}
}

func TestKernelImageSize(t *testing.T) {
	if got := ConfigDistro.KernelImageSize(); got != 1<<30 {
		t.Errorf("distro: %#x", got)
	}
	if got := ConfigMMRST.KernelImageSize(); got != 512<<20 {
		t.Errorf("mmrst: %#x", got)
	}
}

func TestChanged(t *testing.T) {
	o, _, _ := Parse("physmap.levels=4 physmap.ptdump=1 nokaslr vsyscall=emulate physmap.inject=no-invlpg")
	want := []string{"physmap.inject=no-invlpg", "physmap.ptdump=1", "physmap.levels=4", "nokaslr", "vsyscall=emulate"}
	if got := o.Changed(); !reflect.DeepEqual(got, want) {
		t.Errorf("Changed() = %q, want %q", got, want)
	}
}

func TestStringParsesBack(t *testing.T) {
	for _, o := range []Options{
		Defaults(),
		with(func(o *Options) { o.Hold, o.Ptdump = true, "0" }),
		with(func(o *Options) { o.Sleep, o.Ptdump = 7*time.Second, "phys" }),
		with(func(o *Options) { o.Inject = "no-invlpg" }),
		with(func(o *Options) { o.Levels = 4 }),
		with(func(o *Options) { o.Levels = 5 }),
		with(func(o *Options) { o.Shell, o.Hold = true, true }),
		with(func(o *Options) { o.KASLR = KASLR{On: true} }),
		with(func(o *Options) { o.KASLR = KASLR{On: true, Seed: 0xdead, Seeded: true} }),
		with(func(o *Options) { o.Verbose, o.Config, o.XPFO = true, ConfigMMRST, true }),
		with(func(o *Options) { o.Vsyscall, o.PTI = VsyscallXonly, PTIOn }),
		with(func(o *Options) { o.NoKASLR, o.No5Lvl, o.Levels, o.NoPTI, o.PTI = true, true, 4, true, PTIOff }),
		with(func(o *Options) { o.NoPTI, o.PTI = true, PTIAuto }),
	} {
		got, _, errs := Parse(o.String())
		if len(errs) != 0 || got != o {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", o.String(), got, errs, o)
		}
	}
}

// FuzzParse checks that no command line makes Parse panic, that every error
// is one short line naming its word, and that what it parsed prints back
// to a line that parses to the same options without error.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"", "physmap.hold=1", "physmap.kaslr=0x2a nokaslr", "PHYSMAP.levels=4 physmap.level=4", "physmap.inject=",
		"pti=on nopti vsyscall=emulate", "no5lvl physmap.levels=5", "physmap.=1 physmap.", "=", "physmap.sleep=" + strings.Repeat("9", 300),
		"\x00physmap.hold=1\xff", "physmap.config=mmrst physmap.xpfo=on physmap.verbose=1", "nopti=1 vsyscall pti=",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, cmdline string) {
		l := ParseLine(cmdline)
		for _, err := range l.Errs {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			msg := err.Error()
			if strings.ContainsAny(msg, "\n\r") || len(msg) > 6*MaxShown+300 {
				t.Fatalf("error is not one short line: %q", msg)
			}
		}
		for _, w := range l.Warnings {
			if strings.ContainsAny(w, "\n\r") || len(w) > 6*MaxShown+300 {
				t.Fatalf("warning is not one short line: %q", w)
			}
		}
		s := l.Options.String()
		back := ParseLine(s)
		if len(back.Errs) != 0 || back.Options != l.Options {
			t.Fatalf("%q parsed to %+v, printed as %q, which parses to %+v, %v", cmdline, l.Options, s, back.Options, back.Errs)
		}
	})
}
