// Command physmap-run boots physmap's kernel under QEMU, streams its serial
// console and exits with the self-test's verdict: 0 success, 1 self-test
// failed or unexpected result, 2 usage or environment error.
//
//	physmap-run [-kernel build/physmap.elf] [-m 2G] [-cpu max] [-accel tcg]
//	            [-append 'physmap.hold=1'] [-qmp PATH] [-timeout 120s]
//	            [-gdb] [-interactive] [-expect-fail CHECK] [-crosscheck] [-print]
//
// With -crosscheck the kernel holds after its report (physmap.hold=1) and
// the harness compares QEMU's own walk of the live page tables (info tlb,
// gva2gpa) with the kernel's JSON dump; the exit status is 0 only if the
// self-test passed and QEMU agrees.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/physmap/physmap/qemu"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	fs := flag.NewFlagSet("physmap-run", flag.ContinueOnError)
	kernel := fs.String("kernel", "build/physmap.elf", "kernel ELF image")
	mem := fs.String("m", "2G", "guest memory as QEMU -m takes it (512M minimum)")
	cpu := fs.String("cpu", qemu.DefaultCPU, "CPU model (left at default: host under KVM)")
	accel := fs.String("accel", string(qemu.TCG), "accelerator: tcg or kvm (kvm falls back to tcg when it cannot run the guest)")
	appendLine := fs.String("append", "", "kernel command line, e.g. physmap.hold=1")
	qmpPath := fs.String("qmp", "", "also serve QMP on this unix socket path")
	timeout := fs.Duration("timeout", 120*time.Second, "bound on the run (not applied with -gdb or -interactive unless given)")
	gdb := fs.Bool("gdb", false, "wait for gdb on :1234 (-s -S); interactive")
	interactive := fs.Bool("interactive", false, "give the serial console to a person (stdin goes to QEMU), who lands at the kernel's shell ("+qemu.ShellOption+" unless -append sets physmap.shell)")
	expectFail := fs.String("expect-fail", "", "succeed only if the self-test fails with a FAIL line naming this check")
	noReserve := fs.Bool("noreserve", false, "back the guest's RAM without reserving it on the host (memory-backend-ram reserve=off), for -m beyond the host's RAM")
	printOnly := fs.Bool("print", false, "print the QEMU command line, shell-quoted, and exit")
	crossCheck := fs.Bool("crosscheck", false, "hold the machine ("+qemu.HoldOption+") and compare QEMU's page walk (info tlb, gva2gpa) with the kernel's dump")
	if err := fs.Parse(args); err != nil {
		return qemu.ExitUsage
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "physmap-run: unexpected arguments %q\n", fs.Args())
		return qemu.ExitUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	a, err := qemu.ParseAccel(*accel)
	if err != nil {
		fmt.Fprintf(os.Stderr, "physmap-run: %v\n", err)
		return qemu.ExitUsage
	}
	cfg := qemu.Config{
		Binary:      os.Getenv("QEMU"),
		Kernel:      *kernel,
		Memory:      *mem,
		Accel:       a,
		Append:      *appendLine,
		QMP:         *qmpPath,
		GDB:         *gdb,
		NoReserve:   *noReserve,
		Interactive: *interactive || *gdb,
		Timeout:     *timeout,
	}
	if set["cpu"] {
		cfg.CPU = *cpu
	}
	if cfg.Interactive && !set["timeout"] {
		cfg.Timeout = 0
	}
	if *interactive {
		cfg.Append = qemu.WithShell(cfg.Append)
	}
	if *expectFail != "" && *gdb {
		fmt.Fprintln(os.Stderr, "physmap-run: -expect-fail and -gdb do not go together")
		return qemu.ExitUsage
	}
	if *crossCheck {
		if *expectFail != "" || cfg.Interactive {
			fmt.Fprintln(os.Stderr, "physmap-run: -crosscheck goes with neither -expect-fail, -gdb nor -interactive")
			return qemu.ExitUsage
		}
		if cfg.Append, err = qemu.WithHold(cfg.Append); err != nil {
			fmt.Fprintf(os.Stderr, "physmap-run: %v\n", err)
			return qemu.ExitUsage
		}
	}

	if *printOnly {
		argv, err := cfg.Command()
		if err != nil {
			fmt.Fprintf(os.Stderr, "physmap-run: %v\n", err)
			return qemu.ExitUsage
		}
		fmt.Println(qemu.ShellQuote(argv))
		return qemu.ExitOK
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	r := &qemu.Runner{
		Stdout:    os.Stdout,
		Stderr:    os.Stderr,
		Name:      "physmap-run",
		Interrupt: sigs,
	}
	if *expectFail != "" {
		r.Expect = qemu.ExpectFailing(*expectFail)
	}
	var cc *qemu.CrossCheck
	if *crossCheck {
		cc = new(qemu.CrossCheck)
		cc.Attach(r)
	}
	res, err := r.Run(context.Background(), cfg)
	if cc != nil && (err == nil || errors.Is(err, qemu.ErrCrossCheck)) {
		rep, ccErr := cc.Report()
		if rep != nil {
			fmt.Fprintf(os.Stderr, "physmap-run: cross-check: %s\n", rep.Summary())
			for _, p := range rep.Problems() {
				fmt.Fprintf(os.Stderr, "  x %s\n", p)
			}
		}
		if err == nil {
			err = ccErr
		}
	}
	if err == nil {
		if *expectFail != "" {
			fmt.Fprintf(os.Stderr, "physmap-run: ok: FAIL %s as expected\n", *expectFail)
		} else {
			fmt.Fprintf(os.Stderr, "physmap-run: ok: %s\n", res.Console.Summary)
		}
		return qemu.ExitOK
	}
	fmt.Fprintf(os.Stderr, "physmap-run: %v\n", err)
	var he *qemu.Error
	if errors.As(err, &he) && len(he.Tail) > 0 && qemu.ExitCode(err) == qemu.ExitFailed {
		fmt.Fprintf(os.Stderr, "physmap-run: last %d console lines:\n", len(he.Tail))
		for _, l := range he.Tail {
			fmt.Fprintf(os.Stderr, "  | %s\n", l)
		}
	}
	if res != nil && len(res.Stderr) > 0 && qemu.ExitCode(err) == qemu.ExitFailed && res.Console.Closed == false {
		fmt.Fprintf(os.Stderr, "physmap-run: QEMU said:\n")
		for _, l := range res.Stderr {
			fmt.Fprintf(os.Stderr, "  ! %s\n", l)
		}
	}
	return qemu.ExitCode(err)
}
