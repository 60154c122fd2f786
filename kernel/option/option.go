// Package option parses physmap's kernel command line: the words of QEMU's
// -append of the form physmap.NAME=VALUE, and the few words of Linux's own
// command line physmap understands (nokaslr, no5lvl, vsyscall=, pti=,
// nopti), spelt as Linux spells them. Names are matched case-sensitively,
// as Linux matches them. Other words belong to someone else and are kept
// aside, untouched; one that is a near miss of a known name (a different
// case, a small typo) gets a "did you mean" warning. An unknown physmap.
// name, a malformed word, an empty or bad value, a repeated word or two
// words that contradict each other is an error naming the word, never
// ignored; where Linux silently ignores a bad value (pti=yes), physmap
// refuses it.
package option

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hbollon/go-edlib"
)

// Prefix starts every physmap option.
const Prefix = "physmap."

// DefaultPtdump is physmap.ptdump's default: the full ptdump only when
// asked for, so that a default boot ends with its answer rather than a
// dump. "1" prints it in every boot again.
const DefaultPtdump = "0"

// Options are the parsed settings; Defaults gives the default boot.
type Options struct {
	// Hold keeps the machine halted with its page tables live after the
	// report, so the host can inspect it over QMP.
	Hold bool
	// Sleep, when non-zero, makes the kernel sleep that long between two
	// console lines, so the host can compare the guest's clock with its own.
	Sleep time.Duration
	// Inject names a fault to inject into the live page tables before the
	// proofs run; the kernel knows the names.
	Inject string
	// Ptdump is "1" to print the live tables in Linux's ptdump format,
	// "phys" to add a physical-address column, "0" for none (the default
	// is DefaultPtdump).
	Ptdump string
	// Levels is the paging mode asked for: 4, 5, or 0 for the default (5
	// where the CPU has LA57, as Linux does). boot's early code reads
	// physmap.levels=4 itself, before paging; the kernel checks the result.
	Levels int
	// Shell leaves the user at the serial console's shell after the report
	// (before holding, if Hold is set too); its exit ends the machine.
	Shell bool
	// KASLR randomizes page_offset_base, vmalloc_base, vmemmap_base, the
	// kernel image's slot and the module area's start.
	KASLR KASLR
	// Verbose brings back the full boot log (physmap.verbose=1).
	Verbose bool
	// Config is the kernel configuration whose layout is built
	// (physmap.config).
	Config Config
	// XPFO unmaps a frame from the direct map while a process owns it
	// (physmap.xpfo=on: eXclusive Page Frame Ownership).
	XPFO bool
	// Vsyscall is Linux's vsyscall= mode.
	Vsyscall Vsyscall
	// PTI is the page table isolation mode in force after Linux's pti=
	// and nopti (see PTI).
	PTI PTI
	// MM is whose address space the JSON dump describes and, with Hold,
	// whose tables CR3 holds: "0" the kernel's (Linux's init_mm), "1" or
	// "2" that process's (under PTI its user copy, the tables it runs on).
	MM string
	// NoKASLR, No5Lvl and NoPTI record that Linux's words nokaslr, no5lvl
	// and nopti were given; their effect is already in KASLR, Levels and
	// PTI.
	NoKASLR, No5Lvl, NoPTI bool
}

// KASLR is physmap.kaslr: off, on (seeded from RDRAND), or a fixed seed
// that makes a boot's layout reproducible.
type KASLR struct {
	On     bool
	Seed   uint64
	Seeded bool // Seed was given
}

func (k KASLR) String() string {
	switch {
	case k.Seeded:
		return fmt.Sprintf("%#x", k.Seed)
	case k.On:
		return "on"
	}
	return "off"
}

// Config is physmap.config: which kernel configuration's layout to build.
type Config string

// The configurations.
const (
	// ConfigDistro is Debian's Linux 6.1 (linux-image-amd64): with
	// CONFIG_RANDOMIZE_BASE=y, KERNEL_IMAGE_SIZE is 1 GiB whether KASLR
	// is on or not, and the modules start at 0xffffffffc0000000.
	ConfigDistro Config = "distro"
	// ConfigMMRST is the layout mm.rst documents: a 512 MiB kernel text
	// mapping (KERNEL_IMAGE_SIZE without CONFIG_RANDOMIZE_BASE) and the
	// modules from 0xffffffffa0000000.
	ConfigMMRST Config = "mmrst"
)

// KERNEL_IMAGE_SIZE of each configuration
// (arch/x86/include/asm/page_64_types.h).
const (
	kernelImageSizeRandomizeBase = 1 << 30
	kernelImageSizeFixed         = 512 << 20
)

// KernelImageSize returns KERNEL_IMAGE_SIZE in c: the size of the kernel
// text mapping at __START_KERNEL_map, which MODULES_VADDR follows.
func (c Config) KernelImageSize() uint64 {
	if c == ConfigMMRST {
		return kernelImageSizeFixed
	}
	return kernelImageSizeRandomizeBase
}

// Vsyscall is Linux's vsyscall= (arch/x86/entry/vsyscall/vsyscall_64.c,
// vsyscall_setup).
type Vsyscall string

// The vsyscall modes. Debian's 6.1 is built with CONFIG_LEGACY_VSYSCALL_NONE,
// so none is its default.
const (
	// VsyscallNone: no vsyscall page; a call faults (SIGSEGV).
	VsyscallNone Vsyscall = "none"
	// VsyscallXonly: no page table entry behind VSYSCALL_ADDR; a call
	// faults and the fault handler emulates it (emulate_vsyscall), a read
	// faults.
	VsyscallXonly Vsyscall = "xonly"
	// VsyscallEmulate: the page is mapped readable by user mode
	// (map_vsyscall: PAGE_KERNEL_VVAR, _PAGE_USER on every level above
	// it), and a call is emulated by the fault handler.
	VsyscallEmulate Vsyscall = "emulate"
)

// PTI is Linux's page table isolation mode (arch/x86/mm/pti.c).
type PTI string

// The PTI modes. In Linux 6.1 pti_check_boottime_disable reads pti= first:
// on and off decide, auto decides too (nopti is then ignored), and only
// without a valid pti= does nopti turn PTI off.
const (
	PTIAuto PTI = "auto" // on where the CPU is affected by Meltdown
	PTIOn   PTI = "on"
	PTIOff  PTI = "off"
)

// MaxSleep bounds physmap.sleep.
const MaxSleep = 60 * time.Second

// maxInjectName bounds physmap.inject's value.
const maxInjectName = 64

// MaxShown is how much of a word an error or warning quotes; a longer word
// is cut there.
const MaxShown = 80

// Sentinel errors, wrapped by *Error.
var (
	ErrUnknown   = errors.New("unknown option")
	ErrMalformed = errors.New("malformed option")
	ErrValue     = errors.New("bad value")
	ErrRepeated  = errors.New("option given twice")
	ErrConflict  = errors.New("contradicts")
)

// Error describes one bad word of the command line.
type Error struct {
	Word string // the word as given
	Err  error  // one of the sentinels, possibly wrapped with detail
}

// Error quotes the word once, cut to MaxShown characters, and says what is
// wrong with it.
func (e *Error) Error() string { return Quote(e.Word) + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Quote quotes a word as errors and warnings show it: at most MaxShown
// characters of it, then how long it was.
func Quote(word string) string {
	if utf8.RuneCountInString(word) <= MaxShown {
		return strconv.Quote(word)
	}
	cut, n := 0, 0
	for i := range word {
		if n == MaxShown {
			cut = i
			break
		}
		n++
	}
	return fmt.Sprintf("%s... (%d characters)", strconv.Quote(word[:cut]), utf8.RuneCountInString(word))
}

// Defaults returns the options of a command line without physmap words.
func Defaults() Options {
	return Options{Ptdump: DefaultPtdump, Config: ConfigDistro, Vsyscall: VsyscallNone, PTI: PTIAuto, MM: "0"}
}

// String renders every option as it would be written on the command line,
// in the order of Usage: each physmap option with its value (physmap.inject
// only with one), then Linux's vsyscall= and pti= with theirs and those of
// nokaslr, no5lvl and nopti that were given. It parses back to o.
func (o Options) String() string { return strings.Join(o.words(nil), " ") }

// Changed returns the words of String whose options differ from the
// defaults, for a short option line.
func (o Options) Changed() []string {
	d := Defaults()
	return o.words(&d)
}

// words renders the options, leaving out those equal to not's.
func (o Options) words(not *Options) []string {
	var words []string
	for _, s := range specs {
		v, shown := s.get(&o)
		if !shown {
			continue
		}
		if not != nil {
			if dv, dshown := s.get(not); dshown == shown && dv == v {
				continue
			}
		}
		if s.flag {
			words = append(words, s.name)
		} else {
			words = append(words, s.name+"="+v)
		}
	}
	return words
}

// spec is one known word.
type spec struct {
	name  string // as written: "physmap.hold", "vsyscall", "nokaslr"
	flag  bool   // a word without a value, like Linux's boolean options
	vals  string // the values, as usage shows them: "0|1"
	want  string // what a bad value is told is wanted
	usage string
	set   func(o *Options, v string) bool // v is not empty; false: bad value
	get   func(o *Options) (v string, shown bool)
}

// physmap reports whether s is a physmap. option, not one of Linux's words.
func (s *spec) physmap() bool { return strings.HasPrefix(s.name, Prefix) }

// boolSpec is a physmap option of 0 or 1.
func boolSpec(name, usage string, field func(o *Options) *bool) spec {
	return spec{name: Prefix + name, vals: "0|1", want: "want 0 or 1", usage: usage,
		set: func(o *Options, v string) bool {
			switch v {
			case "0", "1":
				*field(o) = v == "1"
				return true
			}
			return false
		},
		get: func(o *Options) (string, bool) {
			if *field(o) {
				return "1", true
			}
			return "0", true
		}}
}

// onOffSpec is an option of on or off.
func onOffSpec(name, usage string, field func(o *Options) *bool) spec {
	return spec{name: name, vals: "on|off", want: "want on or off", usage: usage,
		set: func(o *Options, v string) bool {
			switch v {
			case "on", "off":
				*field(o) = v == "on"
				return true
			}
			return false
		},
		get: func(o *Options) (string, bool) {
			if *field(o) {
				return "on", true
			}
			return "off", true
		}}
}

// flagSpec is one of Linux's boolean words.
func flagSpec(name, usage string, field func(o *Options) *bool) spec {
	return spec{name: name, flag: true, usage: usage,
		set: func(o *Options, _ string) bool { *field(o) = true; return true },
		get: func(o *Options) (string, bool) { return "", *field(o) }}
}

// oneOfSpec is an option whose value is one of vals.
func oneOfSpec[T ~string](name, usage string, field func(o *Options) *T, vals ...T) spec {
	words := make([]string, len(vals))
	for i, v := range vals {
		words[i] = string(v)
	}
	return spec{name: name, vals: strings.Join(words, "|"), want: "want " + orList(words), usage: usage,
		set: func(o *Options, v string) bool {
			for _, w := range vals {
				if string(w) == v {
					*field(o) = w
					return true
				}
			}
			return false
		},
		get: func(o *Options) (string, bool) { return string(*field(o)), true }}
}

// orList writes "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// validInjectName reports whether v can name an injection: lowercase
// letters, digits and dashes, as every name the kernel knows is written.
func validInjectName(v string) bool {
	if len(v) > maxInjectName {
		return false
	}
	for _, c := range v {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// specs lists every word physmap knows, in the order String and Usage give
// them: physmap's options, then Linux's.
var specs = []spec{
	boolSpec("hold", "after the report, print \"physmap: holding\" and stay halted with the page tables live", func(o *Options) *bool { return &o.Hold }),
	{name: Prefix + "sleep", vals: "SECONDS", want: fmt.Sprintf("want whole seconds from 0 to %d", int(MaxSleep/time.Second)),
		usage: "sleep that long (0 to 60) between the lines \"clock: sleeping\" and \"clock: slept\", for the host to time",
		set: func(o *Options, v string) bool {
			n, err := strconv.Atoi(v)
			// Compared in seconds: n*time.Second can overflow.
			if err != nil || n < 0 || n > int(MaxSleep/time.Second) {
				return false
			}
			o.Sleep = time.Duration(n) * time.Second
			return true
		},
		get: func(o *Options) (string, bool) { return strconv.Itoa(int(o.Sleep / time.Second)), true }},
	{name: Prefix + "inject", vals: "NAME", want: fmt.Sprintf("want an injection's name (lowercase letters, digits and -, at most %d)", maxInjectName),
		usage: "corrupt the live page tables before the proofs, to show a check catches it (an unknown NAME lists the known ones)",
		set: func(o *Options, v string) bool {
			if !validInjectName(v) {
				return false
			}
			o.Inject = v
			return true
		},
		// Not shown without an injection: "physmap.inject=" is refused.
		get: func(o *Options) (string, bool) { return o.Inject, o.Inject != "" }},
	oneOfSpec(Prefix+"ptdump", "print the live page tables in Linux's ptdump format (default "+DefaultPtdump+"); phys adds each run's physical address",
		func(o *Options) *string { return &o.Ptdump }, "0", "1", "phys"),
	{name: Prefix + "kaslr", vals: "on|off|SEED", want: "want on, off or a seed (decimal or 0x-hex)",
		usage: "memory and image KASLR, off by default; on draws a seed from RDRAND and prints it, SEED (decimal or 0x-hex) repeats a layout",
		set: func(o *Options, v string) bool {
			switch v {
			case "on":
				o.KASLR = KASLR{On: true}
				return true
			case "off":
				o.KASLR = KASLR{}
				return true
			}
			n, err := strconv.ParseUint(v, 0, 64)
			if err != nil {
				return false
			}
			o.KASLR = KASLR{On: true, Seed: n, Seeded: true}
			return true
		},
		get: func(o *Options) (string, bool) { return o.KASLR.String(), true }},
	{name: Prefix + "levels", vals: "4|5|auto", want: "want 4, 5 or auto",
		usage: "paging levels (default: 5 where the CPU has LA57, else 4); 4 is read by the early boot too, like Linux's no5lvl",
		set: func(o *Options, v string) bool {
			switch v {
			case "auto":
				o.Levels = 0
				return true
			case "4", "5":
				o.Levels = int(v[0] - '0')
				return true
			}
			return false
		},
		get: func(o *Options) (string, bool) {
			if o.Levels == 0 {
				return "auto", true
			}
			return strconv.Itoa(o.Levels), true
		}},
	boolSpec("shell", "after the report, run the serial console's shell (help lists its commands); its exit ends QEMU with the self-test's status", func(o *Options) *bool { return &o.Shell }),
	boolSpec("verbose", "1 prints the full boot log (e820, init_memory_mapping, DirectMap counters, phases, tables)", func(o *Options) *bool { return &o.Verbose }),
	oneOfSpec(Prefix+"config", "the kernel configuration laid out: distro (default) is Debian's 6.1, KERNEL_IMAGE_SIZE 1 GiB, modules at 0xffffffffc0000000; mmrst is mm.rst's 512 MiB image layout",
		func(o *Options) *Config { return &o.Config }, ConfigDistro, ConfigMMRST),
	onOffSpec(Prefix+"xpfo", "eXclusive Page Frame Ownership: a process's frames leave the direct map while it owns them (off by default)", func(o *Options) *bool { return &o.XPFO }),
	oneOfSpec(Prefix+"mm", "whose address space the JSON dump describes and physmap.hold holds in: 0 (default) the kernel's, 1 or 2 that process's (under PTI its user copy)",
		func(o *Options) *string { return &o.MM }, "0", "1", "2"),
	flagSpec("nokaslr", "Linux's: KASLR off, as physmap.kaslr=off; given with physmap.kaslr=on or a seed, both are refused as contradictory", func(o *Options) *bool { return &o.NoKASLR }),
	flagSpec("no5lvl", "Linux's: 4-level paging, as physmap.levels=4; given with physmap.levels=5, both are refused as contradictory", func(o *Options) *bool { return &o.No5Lvl }),
	oneOfSpec("vsyscall", "Linux's: none (default, Debian's CONFIG_LEGACY_VSYSCALL_NONE) no page; xonly no page, calls emulated; emulate a user-readable page",
		func(o *Options) *Vsyscall { return &o.Vsyscall }, VsyscallXonly, VsyscallEmulate, VsyscallNone),
	oneOfSpec("pti", "Linux's page table isolation: auto (default: on where the CPU has Meltdown), on, off; pti= outranks nopti, as in Linux",
		func(o *Options) *PTI { return &o.PTI }, PTIOn, PTIOff, PTIAuto),
	flagSpec("nopti", "Linux's: PTI off, unless pti= is given (Linux 6.1 reads pti= first)", func(o *Options) *bool { return &o.NoPTI }),
}

func lookup(name string) *spec {
	for i := range specs {
		if specs[i].name == name {
			return &specs[i]
		}
	}
	return nil
}

// Names returns the known physmap option names without the prefix, sorted.
func Names() []string {
	var out []string
	for _, s := range specs {
		if s.physmap() {
			out = append(out, strings.TrimPrefix(s.name, Prefix))
		}
	}
	sort.Strings(out)
	return out
}

// Usage returns one line per word: "physmap.NAME=VALUES: meaning", then
// Linux's words ("vsyscall=VALUES: ...", "nokaslr: ...").
func Usage() []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		if s.flag {
			out[i] = s.name + ": " + s.usage
		} else {
			out[i] = s.name + "=" + s.vals + ": " + s.usage
		}
	}
	return out
}

// Line is a parsed command line.
type Line struct {
	// Options are the settings; a bad word leaves its option at the
	// default.
	Options Options
	// Others are the words that are not physmap's, left alone.
	Others []string
	// Errs has one *Error per bad word.
	Errs []error
	// Warnings has one line per word of Others that is a near miss of a
	// known word, and per word Linux's precedence makes ineffective; the
	// kernel prints each on a line of its own.
	Warnings []string
}

// Parse reads a command line. It returns the options, the words that are not
// physmap's, and one error per bad word; on error the options hold the
// defaults for the bad words and the values of the good ones. ParseLine
// gives the warnings too.
func Parse(cmdline string) (o Options, others []string, errs []error) {
	l := ParseLine(cmdline)
	return l.Options, l.Others, l.Errs
}

// ParseLine reads a command line.
func ParseLine(cmdline string) Line {
	l := Line{Options: Defaults()}
	seen := map[*spec]string{} // the word that gave each option
	for _, word := range strings.Fields(cmdline) {
		name, value, hasValue := strings.Cut(word, "=")
		s := lookup(name)
		switch {
		case strings.HasPrefix(word, Prefix):
			if !hasValue || name == Prefix {
				l.Errs = append(l.Errs, &Error{word, fmt.Errorf("%w: want %sNAME=VALUE", ErrMalformed, Prefix)})
				continue
			}
			if s == nil {
				l.Errs = append(l.Errs, &Error{word, unknown(strings.TrimPrefix(name, Prefix))})
				continue
			}
		case s == nil:
			l.Others = append(l.Others, word)
			if w := nearMiss(word, name); w != "" {
				l.Warnings = append(l.Warnings, w)
			}
			continue
		}
		if _, dup := seen[s]; dup {
			l.Errs = append(l.Errs, &Error{word, ErrRepeated})
			continue
		}
		var err error
		switch {
		case s.flag && hasValue:
			err = fmt.Errorf("%w: %s takes no value", ErrMalformed, s.name)
		case s.flag:
		case !hasValue:
			err = fmt.Errorf("%w: want %s=%s", ErrMalformed, s.name, s.vals)
		case value == "":
			err = fmt.Errorf("%w: empty, %s", ErrValue, s.want)
		}
		if err == nil && !s.set(&l.Options, value) {
			err = fmt.Errorf("%w: %s", ErrValue, s.want)
		}
		if err != nil {
			l.Errs = append(l.Errs, &Error{word, err})
			continue
		}
		seen[s] = word
	}
	l.resolve(seen)
	return l
}

// resolve applies Linux's words to the physmap options they stand for, and
// refuses the pairs that contradict each other.
func (l *Line) resolve(seen map[*spec]string) {
	o := &l.Options
	given := func(name string) (string, bool) {
		w, ok := seen[lookup(name)]
		return w, ok
	}
	// nokaslr: arch/x86/boot/compressed/kaslr.c (choose_random_location)
	// keeps the image in place and leaves KASLR_FLAG clear, which turns
	// memory KASLR off too (arch/x86/mm/kaslr.c, kaslr_memory_enabled).
	if o.NoKASLR {
		if w, ok := given(Prefix + "kaslr"); ok && o.KASLR.On {
			l.Errs = append(l.Errs, &Error{"nokaslr", fmt.Errorf("%w %s: nokaslr turns KASLR off", ErrConflict, Quote(w))})
		}
		o.KASLR = KASLR{}
	}
	// physmap.config=mmrst is a kernel built without
	// CONFIG_RANDOMIZE_BASE, which has no KASLR to turn on.
	if o.Config == ConfigMMRST && o.KASLR.On {
		w, _ := given(Prefix + "kaslr")
		l.Errs = append(l.Errs, &Error{Prefix + "config", fmt.Errorf("%w %s: mm.rst's 512 MiB layout is a kernel without CONFIG_RANDOMIZE_BASE, which has no KASLR", ErrConflict, Quote(w))})
	}
	// XPFO's check frees the last process to see its frames come back.
	if o.XPFO && o.MM == "2" {
		l.Errs = append(l.Errs, &Error{Prefix + "mm", fmt.Errorf("%w %s: physmap.xpfo=on's check frees process 2; physmap.mm=1 names the one it keeps", ErrConflict, Quote(Prefix+"xpfo=on"))})
	}
	// no5lvl: arch/x86/boot/compressed/pgtable_64.c (paging_prepare)
	// leaves LA57 off.
	if o.No5Lvl {
		if w, ok := given(Prefix + "levels"); ok && o.Levels == 5 {
			l.Errs = append(l.Errs, &Error{"no5lvl", fmt.Errorf("%w %s: no5lvl asks for 4-level paging", ErrConflict, Quote(w))})
		}
		o.Levels = 4
	}
	// nopti: arch/x86/mm/pti.c (pti_check_boottime_disable) reads pti=
	// first; only without it does nopti count.
	if o.NoPTI {
		w, ok := given("pti")
		switch {
		case !ok:
			o.PTI = PTIOff
		case o.PTI != PTIOff:
			l.Warnings = append(l.Warnings, fmt.Sprintf("%s has no effect beside %s: Linux reads pti= first; PTI stays %s",
				Quote("nopti"), Quote(w), o.PTI))
		}
	}
}

// unknown is the error for physmap.NAME with an unknown NAME.
func unknown(name string) error {
	known := strings.Join(Names(), ", ")
	best, dist := "", -1
	for _, n := range Names() {
		limit := 2
		if len(n) < 4 {
			limit = 1
		}
		if d, ok := distance(name, n, limit); ok && (dist < 0 || d < dist) {
			best, dist = n, d
		}
	}
	if best != "" {
		return fmt.Errorf("%w: did you mean %s%s?", ErrUnknown, Prefix, best)
	}
	return fmt.Errorf("%w (known: %s)", ErrUnknown, known)
}

// nearMiss returns a warning for a word that is not physmap's but looks
// like it was meant to be one of the known words: the same name in another
// case, or a few typos from one. Short names must match but for case, so
// that Linux's own pci= is not taken for a misspelt pti=.
func nearMiss(word, name string) string {
	best, dist := "", -1
	for _, s := range specs {
		limit := 0
		switch {
		case len(s.name) >= 8:
			limit = 2
		case len(s.name) >= 5:
			limit = 1
		}
		if d, ok := distance(name, s.name, limit); ok && (dist < 0 || d < dist) {
			best, dist = s.name, d
		}
	}
	switch {
	case best != "" && strings.EqualFold(name, best):
		return fmt.Sprintf("%s is not physmap's: did you mean %s? (names are case-sensitive)", Quote(word), best)
	case best != "":
		return fmt.Sprintf("%s is not physmap's: did you mean %s?", Quote(word), best)
	case len(name) >= len(Prefix) && strings.EqualFold(name[:len(Prefix)], Prefix):
		return fmt.Sprintf("%s is not physmap's: its options start with %s in lower case", Quote(word), Prefix)
	}
	return ""
}

// distance returns the edit distance between a and b ignoring case
// (optimal string alignment: insertions, deletions, substitutions and
// swaps of two neighbours), and whether it is at most limit.
func distance(a, b string, limit int) (int, bool) {
	if d := utf8.RuneCountInString(a) - utf8.RuneCountInString(b); d > limit || -d > limit {
		return 0, false // too far apart in length to be within limit
	}
	d := edlib.OSADamerauLevenshteinDistance(strings.ToLower(a), strings.ToLower(b))
	return d, d <= limit
}
