// Command physmap-map draws physmap's live address space as an SVG (package
// qemu/internal/picture): the two canonical halves and the non-canonical
// hole between them, every region of Linux's layout on a logarithmic scale
// with its name, size and what is mapped, the runs the page tables map
// coloured by permission, and tags marking each physical range mapped at
// several VAs, clone sets and user-accessible leaves. With -png it renders
// a PNG too, with rsvg-convert.
//
// It reads the JSON dump of the kernel's live tables and the self-test's
// verdict: by booting the kernel under QEMU through the harness (package
// qemu), with -kernel, -m, -cpu and -append passed through, from the bulk
// channel the kernel writes the dump to and its console; or with -console
// from a saved file: a console log, with the bulk channel's file appended
// where the dump went there (physmap-run -bulk keeps it). The verdict
// shows in the title: a failing boot is still drawn, and says so.
//
//	physmap-map [-console FILE | -kernel build/physmap.elf -m 6G -cpu max -append physmap.levels=4]
//	            [-o build/physmap-map.svg] [-png build/physmap-map.png]
//
// Exit status: 0 success, 1 the boot failed (its picture is still written
// when it left a dump) or left no dump, 2 usage or environment error
// (rsvg-convert missing for -png included).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/physmap/physmap/kernel/dump"
	"github.com/physmap/physmap/qemu"
	"github.com/physmap/physmap/qemu/internal/picture"
)

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("physmap-map", flag.ContinueOnError)
	fs.SetOutput(stderr)
	console := fs.String("console", "", "read the dump from this saved file (physmap-run -bulk's, or a console log; - for stdin) instead of booting")
	out := fs.String("o", "build/physmap-map.svg", "write the SVG here")
	pngOut := fs.String("png", "", "also render the SVG to this PNG file with rsvg-convert")
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
	var err, bootErr error
	var verdict picture.Verdict
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
		log, verdict, bootErr = boot(cfg, stderr)
		if log == nil {
			return qemu.ExitCode(bootErr) // boot said why
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
	if *console != "" {
		verdict = verdictOf(log)
	}

	d, err := dump.Extract(bytes.NewReader(log))
	if err != nil {
		fmt.Fprintf(stderr, "physmap-map: %v\n", err)
		return qemu.ExitFailed
	}
	pic, err := picture.New(d, verdict)
	if err != nil {
		fmt.Fprintf(stderr, "physmap-map: %v\n", err)
		return qemu.ExitFailed
	}
	svg := pic.SVG()
	if code := write(*out, svg, stderr); code != qemu.ExitOK {
		return code
	}
	fmt.Fprintf(stderr, "physmap-map: wrote %s, %s\n", *out, pic.Summary())
	if *pngOut != "" {
		png, err := picture.PNG(context.Background(), svg)
		if err != nil {
			fmt.Fprintf(stderr, "physmap-map: no PNG: %v\n", err)
			return qemu.ExitUsage
		}
		if code := write(*pngOut, png, stderr); code != qemu.ExitOK {
			return code
		}
		fmt.Fprintf(stderr, "physmap-map: wrote %s\n", *pngOut)
	}
	if !verdict.OK() {
		fmt.Fprintf(stderr, "physmap-map: the picture is of a boot that did not pass: %v\n", orVerdict(bootErr, verdict))
		return qemu.ExitFailed
	}
	return qemu.ExitOK
}

// write writes b to path, making its directory.
func write(path string, b []byte, stderr io.Writer) int {
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fmt.Fprintf(stderr, "physmap-map: %v\n", err)
			return qemu.ExitUsage
		}
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		fmt.Fprintf(stderr, "physmap-map: %v\n", err)
		return qemu.ExitUsage
	}
	return qemu.ExitOK
}

// verdictOf follows a saved console through the harness's parser.
func verdictOf(log []byte) picture.Verdict {
	var c qemu.Console
	for _, l := range strings.Split(string(log), "\n") {
		c.Feed(l)
	}
	return picture.VerdictOf(&c)
}

// orVerdict describes why a boot did not pass: the harness's error, or the
// verdict read from a saved console.
func orVerdict(err error, v picture.Verdict) any {
	if err != nil {
		return err
	}
	if !v.Closed {
		return "no closing line on the console"
	}
	return v.Summary
}

// boot runs the kernel under the harness and returns its bulk channel (or
// for a kernel that printed its dump on the console, the console) and
// verdict. A boot whose self-test failed still returns its console, with
// the error: its picture shows tables that break the layout's promises,
// and says so.
func boot(cfg qemu.Config, stderr io.Writer) ([]byte, picture.Verdict, error) {
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
		if res.Console.Closed && errors.Is(err, qemu.ErrSelfTestFailed) {
			return dumpOf(res, console.Bytes()), picture.VerdictOf(res.Console), err
		}
		return nil, picture.Verdict{}, err
	}
	fmt.Fprintf(stderr, "physmap-map: booted with -m %s: %s\n", res.Config.Memory, res.Console.Summary)
	return dumpOf(res, console.Bytes()), picture.VerdictOf(res.Console), nil
}

// dumpOf is where a boot's dump is: its bulk channel, or its console.
func dumpOf(res *qemu.Result, console []byte) []byte {
	if bytes.Contains(res.Bulk, []byte(dump.BeginLine)) {
		return res.Bulk
	}
	return console
}
