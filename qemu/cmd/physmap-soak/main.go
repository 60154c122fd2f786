// Command physmap-soak is a reliability benchmark: it boots physmap's kernel
// many times under QEMU, a few boots at a time, while busy processes of its
// own keep the host's CPUs loaded, and reports which checks and which
// harness errors failed how often, with the TSC rate each boot calibrated.
// It exists because a busy host pauses guests at random, which is when a
// clock calibration or a timeout goes wrong.
//
//	physmap-soak [-kernel build/physmap.elf] [-n 300] [-j 2] [-busy 2]
//	             [-m 2G] [-cpu max] [-append ''] [-timeout 2m]
//
// Progress and failures go to stderr, the report to stdout, ending with one
// line: "soak: N boots under load, F failed, C clock failures, in D". Exit
// status 0 when every boot passed, 1 otherwise, 2 for usage or environment
// errors. It is not a test: nothing fails on time, and make test does not
// run it (make soak does).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/physmap/physmap/qemu"
)

// spinFlag makes the program a busy process instead (see spin).
const spinFlag = "-spin"

func main() {
	if len(os.Args) == 2 && os.Args[1] == spinFlag {
		spin()
		return
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// spin keeps one CPU busy until its parent kills it, or dies: it then
// finds itself adopted by another process and stops.
func spin() {
	parent := os.Getppid()
	for {
		for i := 0; i < 1<<24; i++ {
		}
		if os.Getppid() != parent {
			return
		}
	}
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("physmap-soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kernel := fs.String("kernel", "build/physmap.elf", "kernel ELF image")
	n := fs.Int("n", 300, "boots")
	par := fs.Int("j", 2, "boots run at a time")
	busy := fs.Int("busy", 2, "busy processes kept running on the host meanwhile")
	mem := fs.String("m", "2G", "guest memory")
	cpu := fs.String("cpu", "", "CPU model (empty: the harness's default, "+qemu.DefaultCPU+")")
	appendLine := fs.String("append", "", "kernel command line")
	timeout := fs.Duration("timeout", 2*time.Minute, "bound on each boot")
	if err := fs.Parse(args); err != nil {
		return qemu.ExitUsage
	}
	if fs.NArg() != 0 || *n < 1 || *par < 1 || *busy < 0 || *timeout <= 0 {
		fmt.Fprintln(stderr, "physmap-soak: bad arguments (see -h)")
		return qemu.ExitUsage
	}
	if _, err := qemu.ParseMemory(*mem); err != nil {
		fmt.Fprintf(stderr, "physmap-soak: %v\n", err)
		return qemu.ExitUsage
	}
	if fi, err := os.Stat(*kernel); err != nil || fi.IsDir() {
		fmt.Fprintf(stderr, "physmap-soak: %s: no kernel there; build it with: make kernel\n", *kernel)
		return qemu.ExitUsage
	}
	if _, err := exec.LookPath(qemu.DefaultBinary); err != nil {
		fmt.Fprintf(stderr, "physmap-soak: %v; install QEMU: apt-get install -y qemu-system-x86\n", err)
		return qemu.ExitUsage
	}

	// ^C stops the soak: running boots are quit and the report printed.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	interrupt := make(chan os.Signal)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-sigs:
			close(interrupt) // every runner sees a closed channel
			cancel()
		case <-ctx.Done():
		}
	}()

	stopBusy, err := startBusy(*busy)
	if err != nil {
		fmt.Fprintf(stderr, "physmap-soak: %v\n", err)
		return qemu.ExitUsage
	}
	cfg := qemu.Config{Kernel: *kernel, Memory: *mem, CPU: *cpu, Append: *appendLine, Timeout: *timeout}
	s := settings{Kernel: *kernel, Memory: *mem, CPU: *cpu, Append: *appendLine, Parallel: *par, Busy: *busy, N: *n}
	fmt.Fprintf(stderr, "physmap-soak: %s\n", s)
	start := time.Now()
	outs := soak(ctx, cfg, *n, *par, interrupt, stderr)
	elapsed := time.Since(start)
	stopBusy()

	rep := tally(outs, s, elapsed)
	rep.print(stdout)
	if rep.Failed > 0 || rep.Boots < *n {
		return qemu.ExitFailed
	}
	return qemu.ExitOK
}

// startBusy starts n busy processes, copies of this program, and returns
// the function that kills them.
func startBusy(n int) (stop func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var procs []*exec.Cmd
	stop = func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
	}
	for range n {
		p := exec.Command(self, spinFlag)
		if err := p.Start(); err != nil {
			stop()
			return nil, fmt.Errorf("cannot start a busy process: %w", err)
		}
		procs = append(procs, p)
	}
	return stop, nil
}

// soak boots cfg n times, par at a time, until done or ctx ends, and
// returns the outcome of each boot that ran, in order.
func soak(ctx context.Context, cfg qemu.Config, n, par int, interrupt <-chan os.Signal, progress io.Writer) []outcome {
	outs := make([]outcome, n)
	ran := make([]bool, n)
	next := make(chan int)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
	)
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r := &qemu.Runner{Name: "physmap-soak", Interrupt: interrupt}
				res, err := r.Run(ctx, cfg)
				o := classify(res, err)
				mu.Lock()
				outs[i], ran[i] = o, true
				done++
				if !o.OK {
					fmt.Fprintf(progress, "physmap-soak: boot %d/%d failed: %s\n", i+1, n, o.Why)
				} else if done%25 == 0 {
					fmt.Fprintf(progress, "physmap-soak: %d/%d boots done\n", done, n)
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	var got []outcome
	for i, o := range outs {
		if ran[i] && !o.Interrupted {
			got = append(got, o)
		}
	}
	return got
}
