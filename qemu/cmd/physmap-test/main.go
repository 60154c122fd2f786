// Command physmap-test runs physmap's boot matrix (see matrix.go) under
// QEMU, a few boots at a time, prints one line per boot and a closing line
// "N passed, M failed", and exits non-zero if any boot failed.
//
//	physmap-test [-kernel build/physmap.elf] [-timeout 120s] [-run REGEXP] [-parallel 2] [-failfast] [-v]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/physmap/physmap/qemu"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// outcome is one finished boot.
type outcome struct {
	c     Case
	res   *qemu.Result
	err   error
	d     time.Duration
	cross *qemu.CrossReport // nil unless the case cross-checked
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("physmap-test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kernel := fs.String("kernel", "build/physmap.elf", "kernel ELF image")
	timeout := fs.Duration("timeout", 120*time.Second, "bound on each boot")
	pattern := fs.String("run", "", "run only the cases whose name matches this regexp")
	parallel := fs.Int("parallel", 2, "boots at a time")
	verbose := fs.Bool("v", false, "print every boot's console")
	list := fs.Bool("list", false, "list the cases and exit")
	failfast := fs.Bool("failfast", false, "stop at the first failing boot (make mutate)")
	if err := fs.Parse(args); err != nil {
		return qemu.ExitUsage
	}
	re, err := regexp.Compile(*pattern)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "physmap-test: -run %q: %v\n", *pattern, err)
		return qemu.ExitUsage
	case *parallel < 1:
		fmt.Fprintf(stderr, "physmap-test: -parallel %d: want 1 or more\n", *parallel)
		return qemu.ExitUsage
	case fs.NArg() != 0:
		fmt.Fprintf(stderr, "physmap-test: unexpected arguments %q\n", fs.Args())
		return qemu.ExitUsage
	}
	if err := qemu.CheckTimeout(*timeout); err != nil {
		fmt.Fprintf(stderr, "physmap-test: %v\n", err)
		return qemu.ExitUsage
	}
	if !*list {
		if err := qemu.CheckKernel(*kernel); err != nil {
			fmt.Fprintf(stderr, "physmap-test: %v\n", err)
			return qemu.ExitUsage
		}
	}
	var cases []Case
	for _, c := range matrix() {
		if re.MatchString(c.Name) {
			cases = append(cases, c)
		}
	}
	if *list {
		for _, c := range cases {
			fmt.Fprintln(stdout, c.Name)
		}
		return qemu.ExitOK
	}
	if len(cases) == 0 {
		fmt.Fprintf(stderr, "physmap-test: no case matches -run %q\n", *pattern)
		return qemu.ExitUsage
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	var (
		mu      sync.Mutex
		results []outcome
		wg      sync.WaitGroup
		sem     = make(chan struct{}, *parallel)
		// alone is held for reading by every boot and for writing by an
		// Exclusive one, which then runs with no other boot beside it.
		alone sync.RWMutex
	)
	for _, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if c.Exclusive {
				alone.Lock()
				defer alone.Unlock()
			} else {
				alone.RLock()
				defer alone.RUnlock()
			}
			if ctx.Err() != nil {
				return
			}
			cfg := c.config(*kernel)
			cfg.Timeout = *timeout
			r := &qemu.Runner{Expect: c.Expect, Interrupt: interruptOn(ctx), Shell: c.Shell}
			var cc *qemu.CrossCheck
			if c.CrossCheck {
				cc = new(qemu.CrossCheck)
				cc.Attach(r)
			}
			start := time.Now()
			res, err := r.Run(ctx, cfg)
			o := outcome{c: c, res: res, err: err, d: time.Since(start)}
			if c.EarlyBoot != "" {
				o.err = earlyVerdict(c, err)
			}
			if cc != nil && (err == nil || errors.Is(err, qemu.ErrCrossCheck)) {
				var ccErr error
				o.cross, ccErr = cc.Report()
				if o.err == nil {
					o.err = ccErr
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if ctx.Err() != nil && o.err != nil && errors.Is(o.err, qemu.ErrInterrupted) {
				return // stopped by -failfast: not a result
			}
			results = append(results, o)
			report(stdout, o, *verbose)
			if o.err != nil && *failfast {
				cancel()
			}
		}()
	}
	wg.Wait()

	passed, failed, usage := 0, 0, false
	for _, o := range results {
		if o.err == nil {
			passed++
		} else {
			failed++
			usage = usage || qemu.ExitCode(o.err) == qemu.ExitUsage
		}
	}
	failed += len(cases) - len(results) // not run: interrupted
	fmt.Fprintf(stdout, "%d passed, %d failed\n", passed, failed)
	switch {
	case failed == 0:
		return qemu.ExitOK
	case usage && passed == 0:
		return qemu.ExitUsage
	}
	return qemu.ExitFailed
}

// report prints one boot's line, and on failure its reason and what explains
// it: the FAIL lines of a failed self-test, else the console's last lines
// and QEMU's stderr (qemu.Details).
func report(w io.Writer, o outcome, verbose bool) {
	verdict, what := "ok  ", "pass"
	if len(o.c.Expect.Fails) > 0 {
		what = o.c.Expect.String() + " as expected"
	}
	if o.c.EarlyBoot != "" {
		what = "refused by the early boot as expected"
	}
	if o.cross != nil {
		what += "; cross-check: " + o.cross.Summary()
	}
	if o.err != nil {
		verdict, what = "FAIL", o.err.Error()
	}
	closing := "-"
	if o.res != nil && o.res.Closing > 0 {
		closing = fmt.Sprintf("%.2fs", o.res.Closing.Seconds())
	}
	fmt.Fprintf(w, "%s %-28s closing %-7s total %.2fs  %s\n", verdict, o.c.Name, closing, o.d.Seconds(), what)
	if verbose && o.res != nil {
		for _, l := range o.res.Console.Tail() {
			fmt.Fprintf(w, "    | %s\n", l)
		}
	}
	for _, l := range qemu.Details(o.err, o.res) {
		fmt.Fprintf(w, "    %s\n", l)
	}
	if o.err != nil && o.cross != nil {
		for _, p := range o.cross.Problems() {
			fmt.Fprintf(w, "    x %s\n", p)
		}
	}
}

// interruptOn turns ctx's end into a runner interrupt.
func interruptOn(ctx context.Context) <-chan os.Signal {
	c := make(chan os.Signal, 1)
	go func() { <-ctx.Done(); c <- os.Interrupt }()
	return c
}

// earlyVerdict judges a case whose early boot must refuse the machine: the
// harness must report the early boot's line, naming what is missing.
func earlyVerdict(c Case, err error) error {
	switch {
	case err == nil:
		return fmt.Errorf("the boot passed; want the early boot to refuse it with %q", c.EarlyBoot)
	case !errors.Is(err, qemu.ErrEarlyBoot) || !strings.Contains(err.Error(), c.EarlyBoot):
		return fmt.Errorf("want the early boot's refusal %q, got: %w", c.EarlyBoot, err)
	}
	return nil
}
