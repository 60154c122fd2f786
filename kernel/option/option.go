// Package option parses physmap's kernel command line: the words of QEMU's
// -append of the form physmap.NAME=VALUE. Words without the physmap. prefix
// belong to someone else and are kept aside, untouched. An unknown name, a
// malformed word or a bad value is an error naming the word, never ignored.
package option

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Prefix starts every physmap option.
const Prefix = "physmap."

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
	// Ptdump is "1" (the default) to print the live tables in Linux's
	// ptdump format, "phys" to add a physical-address column, "0" for none.
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

// MaxSleep bounds physmap.sleep.
const MaxSleep = 60 * time.Second

// Sentinel errors, wrapped by *Error.
var (
	ErrUnknown   = errors.New("unknown option")
	ErrMalformed = errors.New("malformed option")
	ErrValue     = errors.New("bad value")
	ErrRepeated  = errors.New("option given twice")
)

// Error describes one bad word of the command line.
type Error struct {
	Word string // the word as given
	Err  error  // one of the sentinels, possibly wrapped with detail
}

func (e *Error) Error() string { return fmt.Sprintf("%q: %v", e.Word, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Defaults returns the options of a command line without physmap words.
func Defaults() Options { return Options{Ptdump: "1"} }

// String renders every option as it would be written on the command line.
func (o Options) String() string {
	words := make([]string, len(specs))
	for i, s := range specs {
		words[i] = Prefix + s.name + "=" + s.get(&o)
	}
	return strings.Join(words, " ")
}

// spec is one known option.
type spec struct {
	name  string
	usage string
	set   func(o *Options, value string) error
	get   func(o *Options) string
}

// specs lists every option physmap knows, in the order help prints them.
var specs = []spec{
	{"hold", "0|1: after the report, print \"physmap: holding\" and stay halted with the page tables live", func(o *Options, v string) (err error) {
		o.Hold, err = parseBool(v)
		return err
	}, func(o *Options) string { return formatBool(o.Hold) }},
	{"sleep", "SECONDS: sleep that long (0 to 60) between the lines \"clock: sleeping\" and \"clock: slept\", for the host to time", func(o *Options, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || time.Duration(n)*time.Second > MaxSleep {
			return fmt.Errorf("%w %q: want whole seconds from 0 to %d", ErrValue, v, int(MaxSleep/time.Second))
		}
		o.Sleep = time.Duration(n) * time.Second
		return nil
	}, func(o *Options) string { return strconv.Itoa(int(o.Sleep / time.Second)) }},
	{"inject", "NAME: corrupt the live page tables before the proofs, to show a check catches it (an unknown NAME lists the known ones)", func(o *Options, v string) error {
		o.Inject = v
		return nil
	}, func(o *Options) string { return o.Inject }},
	{"ptdump", "0|1|phys: print the live page tables in Linux's ptdump format (default 1); phys adds each run's physical address", func(o *Options, v string) error {
		switch v {
		case "0", "1", "phys":
			o.Ptdump = v
			return nil
		}
		return fmt.Errorf("%w %q: want 0, 1 or phys", ErrValue, v)
	}, func(o *Options) string { return o.Ptdump }},
	{"kaslr", "on|off|SEED: memory and image KASLR, off by default; on draws a seed from RDRAND and prints it, SEED (decimal or 0x-hex) repeats a layout", func(o *Options, v string) error {
		switch v {
		case "on":
			o.KASLR = KASLR{On: true}
			return nil
		case "off":
			o.KASLR = KASLR{}
			return nil
		}
		n, err := strconv.ParseUint(v, 0, 64)
		if err != nil {
			return fmt.Errorf("%w %q: want on, off or a seed number", ErrValue, v)
		}
		o.KASLR = KASLR{On: true, Seed: n, Seeded: true}
		return nil
	}, func(o *Options) string { return o.KASLR.String() }},
	{"levels", "4|5|auto: paging levels (default: 5 where the CPU has LA57, else 4), like Linux's no5lvl for 4", func(o *Options, v string) error {
		switch v {
		case "auto":
			o.Levels = 0
			return nil
		case "4", "5":
			o.Levels = int(v[0] - '0')
			return nil
		}
		return fmt.Errorf("%w %q: want 4, 5 or auto", ErrValue, v)
	}, func(o *Options) string {
		if o.Levels == 0 {
			return "auto"
		}
		return strconv.Itoa(o.Levels)
	}},
	{"shell", "0|1: after the report, run the serial console's shell (help lists its commands); its exit ends QEMU with the self-test's status", func(o *Options, v string) (err error) {
		o.Shell, err = parseBool(v)
		return err
	}, func(o *Options) string { return formatBool(o.Shell) }},
}

// Names returns the known option names, sorted.
func Names() []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.name
	}
	sort.Strings(out)
	return out
}

// Usage returns one line per option: "physmap.NAME=VALUES: meaning".
func Usage() []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = Prefix + s.name + "=" + s.usage
	}
	return out
}

func formatBool(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func parseBool(v string) (bool, error) {
	switch v {
	case "1":
		return true, nil
	case "0":
		return false, nil
	}
	return false, fmt.Errorf("%w %q: want 0 or 1", ErrValue, v)
}

// Parse reads a command line. It returns the options, the words that are not
// physmap's, and one error per bad word; on error the options hold the
// defaults for the bad words and the values of the good ones.
func Parse(cmdline string) (o Options, others []string, errs []error) {
	o = Defaults()
	seen := map[string]bool{}
	for _, word := range strings.Fields(cmdline) {
		rest, ok := strings.CutPrefix(word, Prefix)
		if !ok {
			others = append(others, word)
			continue
		}
		name, value, ok := strings.Cut(rest, "=")
		if !ok || name == "" {
			errs = append(errs, &Error{word, fmt.Errorf("%w: want %sNAME=VALUE", ErrMalformed, Prefix)})
			continue
		}
		var s *spec
		for j := range specs {
			if specs[j].name == name {
				s = &specs[j]
			}
		}
		if s == nil {
			errs = append(errs, &Error{word, fmt.Errorf("%w %s%s (known: %s)", ErrUnknown, Prefix, name, strings.Join(Names(), ", "))})
			continue
		}
		if seen[name] {
			errs = append(errs, &Error{word, ErrRepeated})
			continue
		}
		seen[name] = true
		if err := s.set(&o, value); err != nil {
			errs = append(errs, &Error{word, err})
		}
	}
	return o, others, errs
}
