// Command physmap-map draws physmap's live address space as an SVG: the two
// canonical halves and the non-canonical hole between them, every region of
// Linux's layout on a logarithmic scale with its name and size, the runs
// the page tables map coloured by permission, the low identity window, and
// arrows from the kernel image and module pages to their direct-map (and
// identity) aliases, labelled with the physical address.
//
// It reads the JSON dump of the kernel's live tables: by booting the kernel
// under QEMU through the harness (package qemu), with -kernel, -m, -cpu and
// -append passed through, from the bulk channel the kernel writes it to; or
// with -console from a saved file holding it (a bulk channel's file, such as
// physmap-run -bulk keeps, or the console log of a kernel that printed it
// there).
//
//	physmap-map [-console FILE | -kernel build/physmap.elf -m 6G -cpu max -append physmap.levels=4]
//	            [-o build/physmap-map.svg]
//
// Exit status: 0 success, 1 no picture (boot failed, no dump), 2 usage or
// environment error.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/physmap/physmap/kernel/dump"
	"github.com/physmap/physmap/qemu"
)

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("physmap-map", flag.ContinueOnError)
	fs.SetOutput(stderr)
	console := fs.String("console", "", "read the dump from this saved file (physmap-run -bulk's, or a console log; - for stdin) instead of booting")
	out := fs.String("o", "build/physmap-map.svg", "write the SVG here")
	kernel := fs.String("kernel", "build/physmap.elf", "kernel ELF image to boot")
	// 6G rather than the harness's 2G: RAM above 4 GiB, and the hole below
	// it, then show in the direct map.
	mem := fs.String("m", "6G", "guest memory as QEMU -m takes it")
	cpu := fs.String("cpu", qemu.DefaultCPU, "CPU model")
	appendLine := fs.String("append", "", "kernel command line, e.g. physmap.levels=4")
	timeout := fs.Duration("timeout", 120*time.Second, "bound on the boot")
	if err := fs.Parse(args); err != nil {
		return qemu.ExitUsage
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "physmap-map: unexpected arguments %q\n", fs.Args())
		return qemu.ExitUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *console != "" && (set["kernel"] || set["m"] || set["cpu"] || set["append"] || set["timeout"]) {
		fmt.Fprintln(stderr, "physmap-map: -console reads a saved log; -kernel, -m, -cpu, -append and -timeout are for booting")
		return qemu.ExitUsage
	}

	var log []byte
	var err error
	switch *console {
	case "":
		cfg := qemu.Config{Binary: os.Getenv("QEMU"), Kernel: *kernel, Memory: *mem, Accel: qemu.TCG, Append: *appendLine, Timeout: *timeout}
		if set["cpu"] {
			if err := qemu.CheckCPU(*cpu); err != nil {
				fmt.Fprintf(stderr, "physmap-map: %v\n", err)
				return qemu.ExitUsage
			}
			cfg.CPU = *cpu
		}
		if err := qemu.CheckTimeout(*timeout); err != nil {
			fmt.Fprintf(stderr, "physmap-map: %v\n", err)
			return qemu.ExitUsage
		}
		log, err = boot(cfg, stderr)
		if err != nil {
			return qemu.ExitCode(err) // boot said why
		}
	case "-":
		log, err = io.ReadAll(os.Stdin)
	default:
		log, err = os.ReadFile(*console)
	}
	if err != nil {
		fmt.Fprintf(stderr, "physmap-map: %v\n", err)
		return qemu.ExitUsage
	}

	d, err := dump.Extract(bytes.NewReader(log))
	if err != nil {
		fmt.Fprintf(stderr, "physmap-map: %v\n", err)
		return qemu.ExitFailed
	}
	v, err := newView(d)
	if err != nil {
		fmt.Fprintf(stderr, "physmap-map: %v\n", err)
		return qemu.ExitFailed
	}
	var svg bytes.Buffer
	if err := v.render(&svg); err != nil {
		fmt.Fprintf(stderr, "physmap-map: %v\n", err)
		return qemu.ExitFailed
	}
	if dir := filepath.Dir(*out); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fmt.Fprintf(stderr, "physmap-map: %v\n", err)
			return qemu.ExitUsage
		}
	}
	if err := os.WriteFile(*out, svg.Bytes(), 0o644); err != nil {
		fmt.Fprintf(stderr, "physmap-map: %v\n", err)
		return qemu.ExitUsage
	}
	fmt.Fprintf(stderr, "physmap-map: wrote %s: %d regions, %d runs, %d alias arrows\n", *out, len(v.regions), len(v.runs), len(v.arrows))
	return qemu.ExitOK
}

// boot runs the kernel under the harness and returns its bulk channel, or
// for a kernel that printed its dump on the console, the console. A boot
// whose self-test fails draws nothing: its tables are not the ones the
// layout promises. It prints its own error.
func boot(cfg qemu.Config, stderr io.Writer) ([]byte, error) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var console bytes.Buffer
	r := &qemu.Runner{Stdout: &console, Stderr: stderr, Name: "physmap-map", Interrupt: sigs}
	res, err := r.Run(context.Background(), cfg)
	if err != nil {
		fmt.Fprintf(stderr, "physmap-map: %v\n", err)
		for _, l := range qemu.Details(err, res) {
			fmt.Fprintf(stderr, "  %s\n", l)
		}
		return nil, err
	}
	fmt.Fprintf(stderr, "physmap-map: booted with -m %s: %s\n", res.Config.Memory, res.Console.Summary)
	if bytes.Contains(res.Bulk, []byte(dump.BeginLine)) {
		return res.Bulk, nil
	}
	return console.Bytes(), nil
}
