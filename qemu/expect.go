package qemu

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/physmap/physmap/kernel/option"
	"github.com/physmap/physmap/kernel/selftest"
)

// Expect says what a boot's self-test must show. The zero value asks for a
// passing boot: every check of its manifest passed, nothing else.
type Expect struct {
	// Fails are checks that must fail.
	Fails []string
	// Exact, with Fails: no other check may fail, and every check of the
	// manifest must appear (an injection's boot). Without it the boot
	// must fail at least Fails, and checks that cannot run on such a
	// machine may be missing (a CPU without NX, a bad option).
	Exact bool
	// NoManifest is for a kernel that is not physmap and has no manifest
	// (physmap-bench's baseline): its checks are judged without one.
	NoManifest bool
}

// ExpectFailing is the expectation of physmap-run -expect-fail CHECK.
func ExpectFailing(check string) Expect { return Expect{Fails: []string{check}} }

// passing reports whether e asks for a passing boot.
func (e Expect) passing() bool { return len(e.Fails) == 0 }

// String describes e for people.
func (e Expect) String() string {
	switch {
	case e.passing():
		return "pass"
	case e.Exact:
		return "FAIL exactly " + strings.Join(e.Fails, ", ")
	}
	return "FAIL " + strings.Join(e.Fails, ", ")
}

// Errors of the manifest's verdict.
var (
	ErrManifest = errors.New("self-test does not match its manifest")
	ErrConfig   = errors.New("the kernel's config line disagrees with the command line")
)

// judgeManifest holds the console's checks to the boot's manifest and e.
func (c *Console) judgeManifest(e Expect) error {
	verdict := func(err error, format string, args ...any) error {
		return &Error{Op: "verdict", Err: err, Detail: fmt.Sprintf(format, args...), Tail: c.failLines(), Failed: c.FailLines()}
	}
	failed := c.failedNames()
	switch {
	case e.NoManifest:
	case c.HaveConfig:
		manifest := selftest.Manifest(c.Config)
		if extra := selftest.Unlisted(manifest, c.Tally.Results); len(extra) > 0 {
			return verdict(ErrManifest, "checks passed that the manifest does not list: %s", strings.Join(extra, ", "))
		}
		missing := selftest.Missing(manifest, c.Tally.Results)
		if (e.passing() || e.Exact) && len(missing) > 0 {
			return verdict(ErrManifest, "missing: %s (the manifest of %s lists %d checks)", strings.Join(missing, ", "),
				strings.TrimPrefix(c.Config.String(), selftest.ConfigPrefix), len(manifest))
		}
	case e.passing() || e.Exact:
		return verdict(ErrManifest, "no %q line: the boot's manifest is unknown", selftest.ConfigPrefix+"...")
	}
	// Otherwise a boot refused before it stated its configuration: only
	// its failures can be judged.
	if e.passing() {
		return nil
	}
	for _, want := range e.Fails {
		if !slices.Contains(failed, want) {
			return verdict(ErrWrongFailure, "expected FAIL %s, got FAIL %s", strings.Join(e.Fails, ", "), strings.Join(failed, ", "))
		}
	}
	if e.Exact {
		var other []string
		for _, f := range failed {
			if !slices.Contains(e.Fails, f) && !slices.Contains(other, f) {
				other = append(other, f)
			}
		}
		if len(other) > 0 {
			return verdict(ErrWrongFailure, "expected FAIL exactly %s, also FAIL %s", strings.Join(e.Fails, ", "), strings.Join(other, ", "))
		}
	}
	return nil
}

// failLines returns the console's FAIL lines, or its tail when there are
// none: what explains a verdict.
func (c *Console) failLines() []string {
	var out []string
	for _, r := range c.Tally.Failed() {
		out = append(out, r.String())
	}
	if len(out) == 0 {
		return c.Tail()
	}
	return out
}

// ConfigAgrees checks the kernel's config line against what the command
// line it was given asks for: the harness knows whether it asked for KASLR
// or 4-level paging, whatever the kernel says.
func ConfigAgrees(appendLine string, c selftest.Config) error {
	opts, _, errs := option.Parse(appendLine)
	if len(errs) > 0 {
		return nil // the kernel reports bad options itself
	}
	if opts.KASLR.On != c.KASLR {
		return &Error{Op: "verdict", Err: ErrConfig, Detail: fmt.Sprintf("the command line asks for physmap.kaslr=%v, the kernel says %s", opts.KASLR, c)}
	}
	if opts.Levels == 4 && c.Levels != 4 {
		return &Error{Op: "verdict", Err: ErrConfig, Detail: fmt.Sprintf("the command line asks for physmap.levels=4, the kernel says %s", c)}
	}
	// The layout, where the line states it: Debian's configuration unless
	// physmap.config says.
	if c.Layout != "" && string(opts.Config) != c.Layout {
		return &Error{Op: "verdict", Err: ErrConfig, Detail: fmt.Sprintf("the command line asks for physmap.config=%s, the kernel says %s", opts.Config, c)}
	}
	if opts.XPFO != c.XPFO {
		return &Error{Op: "verdict", Err: ErrConfig, Detail: fmt.Sprintf("the command line asks for physmap.xpfo=%v, the kernel says %s", opts.XPFO, c)}
	}
	// PTI: on exactly with pti=on (physmap's pti=auto is off).
	if (opts.PTI == option.PTIOn) != c.PTI {
		return &Error{Op: "verdict", Err: ErrConfig, Detail: fmt.Sprintf("the command line asks for pti=%s, the kernel says %s", opts.PTI, c)}
	}
	// map_vsyscall's mode: what vsyscall= asks, or Debian's default, none.
	if string(opts.Vsyscall) != c.Vsyscall {
		return &Error{Op: "verdict", Err: ErrConfig, Detail: fmt.Sprintf("the command line asks for vsyscall=%s, the kernel says %s", opts.Vsyscall, c)}
	}
	return nil
}
