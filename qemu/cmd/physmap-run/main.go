// Command physmap-run boots physmap's kernel under QEMU, streams its serial
// console and exits with the self-test's verdict: 0 success, 1 self-test
// failed or unexpected result, 2 usage or environment error (a bad option,
// a missing or unbootable kernel file, a machine QEMU refuses, or one the
// kernel's early boot finds unfit).
//
//	physmap-run [-kernel build/physmap.elf] [-m 2G] [-cpu max] [-accel tcg]
//	            [-append 'physmap.hold=1'] [-qmp PATH] [-bulk FILE] [-timeout 120s]
//	            [-gdb] [-interactive] [-expect-fail CHECK] [-crosscheck [-quit]] [-print]
//
// With -crosscheck the kernel holds after its report (physmap.hold=1) and
// the harness compares QEMU's own walk of the live page tables (info tlb,
// gva2gpa) with the kernel's JSON dump, prints the comparison and keeps the
// machine held until interrupted (^C), or with -quit quits it; the exit
// status is 0 only if the self-test passed and QEMU agrees.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/physmap/physmap/qemu"
)

// printBulk is where -print sends the bulk channel unless -bulk says.
const printBulk = "build/physmap-bulk.txt"

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

// run is the command with its streams: the console goes to stdout, notes
// and errors to stderr, and in interactive mode stdin to QEMU.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("physmap-run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kernel := fs.String("kernel", "build/physmap.elf", "kernel ELF image")
	mem := fs.String("m", "2G", "guest memory as QEMU -m takes it (512M minimum)")
	cpu := fs.String("cpu", qemu.DefaultCPU, "CPU model (left at default: host under KVM)")
	accel := fs.String("accel", string(qemu.TCG), "accelerator: tcg or kvm (kvm falls back to tcg when it cannot run the guest)")
	appendLine := fs.String("append", "", "kernel command line, e.g. physmap.hold=1")
	qmpPath := fs.String("qmp", "", "serve a QMP monitor for you on this unix socket path, apart from the harness's own")
	bulk := fs.String("bulk", "", "keep the bulk channel (the kernel's JSON dump of its live tables) in this file (-print: "+printBulk+")")
	timeout := fs.Duration("timeout", 120*time.Second, "bound on the boot up to its verdict, at most "+qemu.MaxTimeout.String()+"; a held machine stays until interrupted (none with -gdb or -interactive unless given)")
	gdb := fs.Bool("gdb", false, "wait for gdb on "+qemu.GDBAddress+" (localhost only); interactive")
	interactive := fs.Bool("interactive", false, "give the serial console to a person (stdin goes to QEMU), who lands at the kernel's shell ("+qemu.ShellOption+" unless -append sets physmap.shell)")
	expectFail := fs.String("expect-fail", "", "succeed only if the self-test fails with a FAIL line naming this check")
	noReserve := fs.Bool("noreserve", false, "back the guest's RAM without reserving it on the host (memory-backend-ram reserve=off), for -m beyond the host's RAM")
	printOnly := fs.Bool("print", false, "print the QEMU command line, shell-quoted, and exit")
	crossCheck := fs.Bool("crosscheck", false, "hold the machine ("+qemu.HoldOption+"), compare QEMU's page walk (info tlb, gva2gpa) with the kernel's dump, and stay held until interrupted")
	quit := fs.Bool("quit", false, "with -crosscheck: quit QEMU after the comparison instead of holding")
	if err := fs.Parse(args); err != nil {
		return qemu.ExitUsage
	}
	usage := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "physmap-run: "+format+"\n", args...)
		return qemu.ExitUsage
	}
	if fs.NArg() != 0 {
		return usage("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	a, err := qemu.ParseAccel(*accel)
	if err != nil {
		return usage("%v", err)
	}
	cfg := qemu.Config{
		Binary:      os.Getenv("QEMU"),
		Kernel:      *kernel,
		Memory:      *mem,
		Accel:       a,
		Append:      *appendLine,
		UserQMP:     *qmpPath,
		Bulk:        *bulk,
		GDB:         *gdb,
		NoReserve:   *noReserve,
		Interactive: *interactive || *gdb,
		Timeout:     *timeout,
	}
	if set["cpu"] {
		if err := qemu.CheckCPU(*cpu); err != nil {
			return usage("%v", err)
		}
		cfg.CPU = *cpu
	}
	if err := qemu.CheckTimeout(*timeout); err != nil {
		return usage("%v", err)
	}
	if cfg.Interactive && !set["timeout"] {
		cfg.Timeout = 0
	}
	if *interactive {
		cfg.Append = qemu.WithShell(cfg.Append)
	}
	if *expectFail != "" && *gdb {
		return usage("-expect-fail and -gdb do not go together")
	}
	if *quit && !*crossCheck {
		return usage("-quit goes with -crosscheck")
	}
	if *crossCheck {
		if *expectFail != "" || cfg.Interactive {
			return usage("-crosscheck goes with neither -expect-fail, -gdb nor -interactive")
		}
		if cfg.Append, err = qemu.WithHold(cfg.Append); err != nil {
			return usage("%v", err)
		}
	}

	if *printOnly {
		if cfg.Bulk == "" {
			cfg.Bulk = printBulk
		}
		argv, err := cfg.Command()
		if err != nil {
			return usage("%v", err)
		}
		fmt.Fprintln(stdout, qemu.ShellQuote(argv))
		return qemu.ExitOK
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	r := &qemu.Runner{
		Stdout:    stdout,
		Stderr:    stderr,
		Stdin:     stdin,
		Name:      "physmap-run",
		Interrupt: sigs,
	}
	if *expectFail != "" {
		r.Expect = qemu.ExpectFailing(*expectFail)
	}
	var cc *qemu.CrossCheck
	reported := false
	report := func() {
		rep, _ := cc.Report()
		if rep == nil {
			return
		}
		reported = true
		r.Notef("cross-check: %s", rep.Summary())
		for _, p := range rep.Problems() {
			r.Notef("  x %s", p)
		}
	}
	if *crossCheck {
		cc = new(qemu.CrossCheck)
		cc.Attach(r)
		compare := r.OnHold
		r.OnHold = func(ctx context.Context, m *qemu.Monitor) error {
			err := compare(ctx, m)
			report() // before the machine holds on
			return err
		}
		r.StayHeld = !*quit
	}
	res, err := r.Run(context.Background(), cfg)
	if cc != nil && (err == nil || errors.Is(err, qemu.ErrCrossCheck)) {
		_, ccErr := cc.Report()
		if !reported {
			report()
		}
		if err == nil {
			err = ccErr
		}
	}
	if err == nil {
		if *expectFail != "" {
			fmt.Fprintf(stderr, "physmap-run: ok: FAIL %s as expected\n", *expectFail)
		} else {
			fmt.Fprintf(stderr, "physmap-run: ok: %s\n", res.Console.Summary)
		}
		return qemu.ExitOK
	}
	fmt.Fprintf(stderr, "physmap-run: %v\n", err)
	for _, l := range qemu.Details(err, res) {
		fmt.Fprintf(stderr, "  %s\n", l)
	}
	return qemu.ExitCode(err)
}
