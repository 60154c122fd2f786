// Command physmap-docs regenerates what README.md shows of physmap from
// real boots, so that the README cannot go stale: it boots each
// configuration the README shows once (in parallel, through the harness,
// package qemu), rewrites every marked block of README.md
//
//	<!-- docs:NAME -->
//	...generated...
//	<!-- /docs:NAME -->
//
// and draws docs/physmap-map.svg from the 4-level boot (package
// qemu/internal/picture). Numbers that vary from boot to boot of the same
// kernel (the TSC frequency, phase times) are masked with '#', so that a
// second run writes the same bytes. With -check it writes nothing and
// fails when the files differ from what it would write (make docs-check,
// part of make test).
//
//	physmap-docs [-kernel build/physmap.elf] [-readme README.md] [-picture docs/physmap-map.svg] [-check]
//
// What each block holds, which configurations are booted and which
// numbers are masked is in blocks.go.
//
// Exit status: 0 written, or up to date; 1 a boot failed, or (-check) the
// files are stale; 2 usage or environment error (no kernel, no QEMU, a
// README whose markers do not pair up).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/physmap/physmap/kernel/selftest"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/physmap/physmap/kernel/dump"
	"github.com/physmap/physmap/qemu"
	"github.com/physmap/physmap/qemu/internal/picture"
)

func main() { os.Exit(run(os.Args[1:], os.Stderr, runnerBoot)) }

// bootFunc boots one configuration and returns its console.
type bootFunc func(ctx context.Context, cfg qemu.Config) ([]byte, error)

func run(args []string, stderr io.Writer, bootOne bootFunc) int {
	fs := flag.NewFlagSet("physmap-docs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kernel := fs.String("kernel", "build/physmap.elf", "kernel ELF image to boot")
	readme := fs.String("readme", "README.md", "the document whose docs blocks are rewritten")
	pic := fs.String("picture", "docs/physmap-map.svg", "where the picture of the 4-level boot goes")
	check := fs.Bool("check", false, "write nothing; exit 1 if the README's blocks or the picture differ from what the boots give")
	timeout := fs.Duration("timeout", 120*time.Second, "bound on each boot")
	if err := fs.Parse(args); err != nil {
		return qemu.ExitUsage
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "physmap-docs: unexpected arguments %q\n", fs.Args())
		return qemu.ExitUsage
	}
	fail := func(code int, format string, args ...any) int {
		fmt.Fprintf(stderr, "physmap-docs: "+format+"\n", args...)
		return code
	}
	old, err := os.ReadFile(*readme)
	if err != nil {
		return fail(qemu.ExitUsage, "%v", err)
	}
	if _, err := findBlocks(string(old)); err != nil {
		return fail(qemu.ExitUsage, "%s: %v", *readme, err)
	}

	if fi, err := os.Stat(*kernel); err != nil || fi.IsDir() {
		return fail(qemu.ExitUsage, "kernel %s: not a file; build it with: make kernel", *kernel)
	}

	start := time.Now()
	bs, errs := bootAll(*kernel, *timeout, bootOne)
	if len(errs) > 0 {
		code := qemu.ExitOK
		for _, err := range errs {
			fmt.Fprintf(stderr, "physmap-docs: %v\n", err)
			code = max(code, qemu.ExitCode(err))
		}
		return code
	}
	booted := time.Since(start)

	hits := map[string]int{}
	contents := map[string]string{}
	for _, g := range generators {
		c, err := g.gen(bs, hits)
		if err != nil {
			return fail(qemu.ExitFailed, "block docs:%s: %v", g.name, err)
		}
		contents[g.name] = c
	}
	newReadme, err := rewrite(string(old), contents)
	if err != nil {
		return fail(qemu.ExitUsage, "%s: %v", *readme, err)
	}
	p, err := picture.New(bs[0].dump, bs[0].verdict)
	if err != nil {
		return fail(qemu.ExitFailed, "the picture of the %s boot: %v", bs[0].spec.name, err)
	}
	svg := p.SVG()
	for _, m := range masks {
		if hits[m.what] == 0 {
			fmt.Fprintf(stderr, "physmap-docs: note: no line to mask for %s (%s): if the kernel no longer prints it, drop the rule from blocks.go\n", m.what, m.re)
		}
	}

	oldSVG, err := os.ReadFile(*pic)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fail(qemu.ExitUsage, "%v", err)
	}
	readmeStale, svgStale := newReadme != string(old), !bytes.Equal(svg, oldSVG)
	what := fmt.Sprintf("%d blocks of %s and %s from %d boots (%s) in %.1fs", len(generators), *readme, *pic, len(bs), bootNames(bs), booted.Seconds())
	if *check {
		if !readmeStale && !svgStale {
			fmt.Fprintf(stderr, "physmap-docs: up to date: %s\n", what)
			return qemu.ExitOK
		}
		if readmeStale {
			for _, d := range blockDiff(string(old), newReadme) {
				fmt.Fprintf(stderr, "physmap-docs: stale: %s\n", d)
			}
		}
		if svgStale {
			fmt.Fprintf(stderr, "physmap-docs: stale: %s is not the picture of the %s boot\n", *pic, bs[0].spec.name)
		}
		fmt.Fprintf(stderr, "physmap-docs: %s shows other output than this kernel gives: run  make docs  and commit the result\n", staleNames(readmeStale, *readme, svgStale, *pic))
		return qemu.ExitFailed
	}
	if readmeStale {
		if err := os.WriteFile(*readme, []byte(newReadme), 0o644); err != nil {
			return fail(qemu.ExitUsage, "%v", err)
		}
	}
	if svgStale {
		if err := os.MkdirAll(filepath.Dir(*pic), 0o755); err != nil {
			return fail(qemu.ExitUsage, "%v", err)
		}
		if err := os.WriteFile(*pic, svg, 0o644); err != nil {
			return fail(qemu.ExitUsage, "%v", err)
		}
	}
	state := "unchanged"
	if readmeStale || svgStale {
		state = "wrote"
	}
	fmt.Fprintf(stderr, "physmap-docs: %s %s\n", state, what)
	return qemu.ExitOK
}

func staleNames(readmeStale bool, readme string, svgStale bool, pic string) string {
	switch {
	case readmeStale && svgStale:
		return readme + " (and " + pic + ")"
	case readmeStale:
		return readme
	}
	return pic
}

func bootNames(bs []*boot) string {
	var n []string
	for _, b := range bs {
		n = append(n, b.spec.name)
	}
	return strings.Join(n, ", ")
}

// bootAll boots every configuration once, all at the same time, and reads
// each console's dump and verdict. Every boot must pass: the README shows
// a kernel that works.
func bootAll(kernel string, timeout time.Duration, bootOne bootFunc) ([]*boot, []error) {
	ctx := context.Background()
	bs := make([]*boot, len(boots))
	errs := make([]error, len(boots))
	var wg sync.WaitGroup
	for i, spec := range boots {
		cfg := spec.cfg
		cfg.Kernel, cfg.Binary, cfg.Timeout = kernel, os.Getenv("QEMU"), timeout
		wg.Add(1)
		go func() {
			defer wg.Done()
			console, err := bootOne(ctx, cfg)
			if err != nil {
				errs[i] = fmt.Errorf("the %s boot (%s): %w", spec.name, spec.args, err)
				return
			}
			bs[i], errs[i] = readBoot(spec, console)
		}()
	}
	wg.Wait()
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	return bs, failed
}

// readBoot reads a passing boot's console.
func readBoot(spec bootSpec, console []byte) (*boot, error) {
	b := &boot{spec: spec}
	var c qemu.Console
	for _, l := range strings.Split(string(console), "\n") {
		l = strings.TrimRight(l, "\r")
		// A check line the kernel wrapped is joined again: its numbers
		// are masked whole, and the block wraps it anew (normalised).
		if n := len(b.console); n > 0 && selftest.IsContinuation(l) && isCheck(b.console[n-1]) {
			b.console[n-1] = selftest.Unwrap(b.console[n-1], l)
		} else {
			b.console = append(b.console, l)
		}
		c.Feed(l)
	}
	if n := len(b.console); n > 0 && b.console[n-1] == "" {
		b.console = b.console[:n-1]
	}
	b.verdict = picture.VerdictOf(&c)
	if err := c.Judge(qemu.Expect{}); err != nil {
		return nil, fmt.Errorf("the %s boot (%s): %w", spec.name, spec.args, err)
	}
	d, err := dumpOf(console)
	if err != nil {
		return nil, fmt.Errorf("the %s boot (%s): %w", spec.name, spec.args, err)
	}
	b.dump = d
	return b, nil
}

// dumpOf returns a boot's JSON dump of its live tables, which the kernel
// prints on its console.
func dumpOf(console []byte) (*dump.Dump, error) { return dump.Extract(bytes.NewReader(console)) }

// runnerBoot boots cfg through the harness and returns its console, with the
// bulk channel (where the kernel sends its JSON dump) appended.
func runnerBoot(ctx context.Context, cfg qemu.Config) ([]byte, error) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var console bytes.Buffer
	r := &qemu.Runner{Stdout: &console, Name: "physmap-docs", Interrupt: sigs}
	res, err := r.Run(ctx, cfg)
	if res != nil && len(res.Bulk) > 0 {
		console.WriteString("\n")
		console.Write(res.Bulk)
	}
	return console.Bytes(), err
}

// isCheck reports whether l is a PASS or FAIL line.
func isCheck(l string) bool {
	_, err := selftest.ParseResult(l)
	return err == nil
}
