// Command physmap-bench measures how fast physmap shows the kernel's address
// space: it boots physmap and a minimal TamaGo kernel on the same board (the
// baseline, kernel/baseline) several times each under the same QEMU
// settings, two at a time, and reports the host wall time from QEMU's start
// to the verdict line and to QEMU's exit (minimum, median, maximum, and the
// ratio physmap/baseline), the guest's phase times from its TSC, the page
// tables each region uses against the minimum, and how the proofs scale
// with RAM and leaf count across memory sizes, page sizes and paging modes.
//
//	physmap-bench [-kernel build/physmap.elf] [-baseline build/baseline.elf]
//	              [-n 5] [-sweep-n 2] [-j 2] [-m 2G] [-sizes 512M,2G,8G,32G]
//	              [-largest auto|SIZE|none] [-o build/bench.json]
//
// The table goes to stdout, progress to stderr, everything measured to the
// JSON file. Exit status 0 when every boot passed, 1 otherwise, 2 for usage
// or environment errors.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/physmap/physmap/kernel/option"
	"github.com/physmap/physmap/qemu"
)

// Paging is one paging configuration of the sweep, chosen by CPU model
// under TCG (QEMU 7.2: max has LA57 and Page1GB).
type Paging struct {
	Name    string `json:"name"`
	CPU     string `json:"cpu"`
	Levels  int    `json:"levels"`
	Page1GB bool   `json:"page1gb"`
}

var pagings = []Paging{
	{"5-level 1G", "max", 5, true},
	{"5-level 2M", "max,-pdpe1gb", 5, false},
	{"4-level 1G", "max,-la57", 4, true},
	{"4-level 2M", "max,-la57,-pdpe1gb", 4, false},
}

// Boot is one measured boot.
type Boot struct {
	Kind      string  `json:"kind"` // physmap or baseline
	Set       string  `json:"set"`  // headline, probe or sweep
	Paging    string  `json:"paging,omitempty"`
	Memory    string  `json:"memory"`
	CPU       string  `json:"cpu"`
	Append    string  `json:"append,omitempty"`
	OK        bool    `json:"ok"`
	Err       string  `json:"error,omitempty"`
	VerdictS  float64 `json:"verdict_s"` // host: QEMU start to the verdict line
	ExitS     float64 `json:"exit_s"`    // host: QEMU start to its exit
	MaxRSSMiB float64 `json:"qemu_maxrss_mib,omitempty"`
	Guest     Guest   `json:"guest"`
}

// job is one boot to run.
type job struct {
	kind, set string
	paging    Paging
	cfg       qemu.Config
	wrap      bool
}

type bench struct {
	qemuBin  string // the real QEMU
	self     string // this executable, the wrapper
	timeout  time.Duration
	progress io.Writer
	mu       sync.Mutex
	done     int
	total    int
}

func main() {
	if real := os.Getenv(wrapEnv); real != "" {
		os.Exit(wrapQEMU(real, os.Args[1:]))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("physmap-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kernel := fs.String("kernel", "build/physmap.elf", "physmap's kernel")
	baseline := fs.String("baseline", "build/baseline.elf", "the baseline kernel (kernel/baseline)")
	n := fs.Int("n", 5, "headline boots of each kernel")
	sweepN := fs.Int("sweep-n", 2, "boots per configuration of the scaling sweep")
	par := fs.Int("j", 2, "boots run at a time")
	mem := fs.String("m", "2G", "headline guest memory")
	cpu := fs.String("cpu", "", "headline CPU model (empty: the harness's default, "+qemu.DefaultCPU+")")
	appendLine := fs.String("append", "", "headline kernel command line (physmap only)")
	sizes := fs.String("sizes", "512M,2G,8G,32G", "sweep memory sizes, comma-separated")
	largest := fs.String("largest", "auto", "largest sweep size: auto (probe -candidates), a size, or none")
	candidates := fs.String("candidates", "64G,128G,256G,512G,1T", "sizes -largest auto tries, ascending, until one fails")
	minAvail := fs.Int("min-avail-mib", 4096, "-largest auto skips a size whose guest page descriptors (RAM/64) would leave less host memory available than this")
	timeout := fs.Duration("timeout", 10*time.Minute, "bound on each boot")
	out := fs.String("o", "build/bench.json", "machine-readable results")
	if err := fs.Parse(args); err != nil {
		return qemu.ExitUsage
	}
	if fs.NArg() != 0 || *n < 1 || *sweepN < 0 || *par < 1 {
		fmt.Fprintln(stderr, "physmap-bench: bad arguments (see -h)")
		return qemu.ExitUsage
	}
	for _, f := range []string{*kernel, *baseline} {
		if _, err := os.Stat(f); err != nil {
			fmt.Fprintf(stderr, "physmap-bench: %v; build it with: make bench\n", err)
			return qemu.ExitUsage
		}
	}
	b := &bench{timeout: *timeout, progress: stderr}
	var err error
	if b.qemuBin, err = exec.LookPath(firstNonEmpty(os.Getenv("QEMU"), qemu.DefaultBinary)); err != nil {
		fmt.Fprintf(stderr, "physmap-bench: %v; install QEMU: apt-get install -y qemu-system-x86\n", err)
		return qemu.ExitUsage
	}
	if b.self, err = os.Executable(); err != nil {
		fmt.Fprintf(stderr, "physmap-bench: %v\n", err)
		return qemu.ExitUsage
	}
	os.Setenv(wrapEnv, b.qemuBin) // for the wrapped boots, which run this program

	sweepSizes := splitList(*sizes)
	for _, s := range append(append([]string{*mem}, sweepSizes...), splitList(*candidates)...) {
		if _, err := qemu.ParseMemory(s); err != nil {
			fmt.Fprintf(stderr, "physmap-bench: %v\n", err)
			return qemu.ExitUsage
		}
	}

	rep := Report{Machine: describeMachine(b.qemuBin), Settings: Settings{
		Headline: fmt.Sprintf("-m %s -cpu %s%s", *mem, firstNonEmpty(*cpu, qemu.DefaultCPU), optional(" -append ", *appendLine)),
		N:        *n, SweepN: *sweepN, Parallel: *par,
		Console: "kernel defaults (physmap.ptdump=" + option.DefaultPtdump + "), JSON dump on the bulk channel",
		Sweep:   "same QEMU command line through physmap-bench's wrapper (memory-backend-ram reserve=off, peak RSS recorded), -append " + sweepAppend + " for the table and RAM lines",
	}}
	start := time.Now()

	// Headline: the two kernels interleaved, so both see the same load.
	var jobs []job
	for i := 0; i < *n; i++ {
		for _, k := range []struct{ kind, elf, app string }{{"physmap", *kernel, *appendLine}, {"baseline", *baseline, ""}} {
			jobs = append(jobs, job{kind: k.kind, set: "headline", cfg: qemu.Config{
				Kernel: k.elf, Memory: *mem, CPU: *cpu, Append: k.app, Timeout: b.timeout}})
		}
	}
	b.total = len(jobs)
	rep.Boots = append(rep.Boots, b.runAll(jobs, *par)...)

	// The largest size: probe ascending, one at a time (each can take much
	// of the host's memory), until one does not boot and pass.
	if *sweepN > 0 {
		switch *largest {
		case "none":
		case "auto":
			probes, best := b.probeLargest(*kernel, splitList(*candidates), *minAvail, *par)
			rep.Probes = probes
			rep.Largest = best
			if best != "" {
				sweepSizes = append(sweepSizes, best)
			}
		default:
			if _, err := qemu.ParseMemory(*largest); err != nil {
				fmt.Fprintf(stderr, "physmap-bench: -largest: %v\n", err)
				return qemu.ExitUsage
			}
			rep.Largest = *largest
			sweepSizes = append(sweepSizes, *largest)
		}
		jobs = nil
		for _, size := range sweepSizes {
			for _, p := range pagings {
				for i := 0; i < *sweepN; i++ {
					jobs = append(jobs, job{kind: "physmap", set: "sweep", paging: p, wrap: true,
						cfg: qemu.Config{Kernel: *kernel, Memory: size, CPU: p.CPU, Append: sweepAppend, Timeout: b.timeout, NoReserve: true}})
				}
			}
		}
		b.done, b.total = 0, len(jobs)
		rep.Boots = append(rep.Boots, b.runAll(jobs, *par)...)
	}
	rep.WallS = time.Since(start).Seconds()
	rep.analyse()

	rep.Print(stdout)
	if err := writeJSON(*out, &rep); err != nil {
		fmt.Fprintf(stderr, "physmap-bench: %v\n", err)
		return qemu.ExitFailed
	}
	fmt.Fprintf(stderr, "physmap-bench: wrote %s (%.0fs)\n", *out, rep.WallS)
	for _, bt := range rep.Boots {
		if !bt.OK && bt.Set != "probe" {
			return qemu.ExitFailed
		}
	}
	return qemu.ExitOK
}

// runAll runs jobs, par at a time, and returns their boots in job order.
func (b *bench) runAll(jobs []job, par int) []Boot {
	out := make([]Boot, len(jobs))
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i] = b.boot(jobs[i])
			}
		}()
	}
	for i := range jobs {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// boot runs one job and measures it.
func (b *bench) boot(j job) Boot {
	cfg := j.cfg
	if j.wrap {
		cfg.Binary = b.self
	} else {
		cfg.Binary = b.qemuBin
	}
	var console bytes.Buffer
	// The baseline is no physmap: it has no manifest.
	r := &qemu.Runner{Stdout: &console, Name: "physmap-bench", Expect: qemu.Expect{NoManifest: j.kind == "baseline"}}
	res, err := r.Run(context.Background(), cfg)
	bt := Boot{Kind: j.kind, Set: j.set, Paging: j.paging.Name, Memory: cfg.Memory, CPU: firstNonEmpty(cfg.CPU, qemu.DefaultCPU),
		Append: cfg.Append, OK: err == nil}
	if err != nil {
		bt.Err = err.Error()
		if res != nil && len(res.Stderr) > 0 {
			bt.Err += "; QEMU's stderr: " + strings.Join(res.Stderr, " | ")
		}
		if lines := splitLines(console.String()); len(lines) > 0 && !res.Console.Closed {
			// What the kernel said last: a panic's first lines, for one.
			bt.Err += "; console: " + strings.Join(lastInteresting(lines, 3), " | ")
		}
	}
	if res != nil {
		bt.VerdictS, bt.ExitS = res.Closing.Seconds(), res.Elapsed.Seconds()
		if kib, ok := ParseMaxRSS(res.Stderr); ok {
			bt.MaxRSSMiB = float64(kib) / 1024
		}
	}
	var bulk []byte
	if res != nil {
		bulk = res.Bulk
	}
	bt.Guest = ParseConsole(splitLines(console.String()), bulk)
	if bt.OK && j.paging.Name != "" && (bt.Guest.Levels != j.paging.Levels || bt.Guest.Page1GB != j.paging.Page1GB) {
		bt.OK = false
		bt.Err = fmt.Sprintf("-cpu %s gave %d-level paging with Page1GB=%v, not %s", cfg.CPU, bt.Guest.Levels, bt.Guest.Page1GB, j.paging.Name)
	}
	b.mu.Lock()
	b.done++
	status := "ok"
	if !bt.OK {
		status = "FAILED: " + bt.Err
	}
	fmt.Fprintf(b.progress, "physmap-bench: [%d/%d] %s %s -m %s -cpu %s: verdict %.2fs, exit %.2fs: %s\n",
		b.done, b.total, j.set, j.kind, bt.Memory, bt.CPU, bt.VerdictS, bt.ExitS, status)
	b.mu.Unlock()
	return bt
}

// lastInteresting returns up to n console lines from the first fatal or
// panic line, or else the last n lines.
func lastInteresting(lines []string, n int) []string {
	for i, l := range lines {
		if strings.HasPrefix(l, "fatal error") || strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "runtime: ") {
			start := max(i-1, 0)
			return lines[start:min(start+n, len(lines))]
		}
	}
	return lines[max(len(lines)-n, 0):]
}

// sweepAppend is the sweep's and the probes' command line: the verbose
// boot log has the lines the scaling table reads (BIOS-e820, the tables'
// total, the per-region "tables:" lines), which a default boot neither
// prints nor computes.
const sweepAppend = "physmap.verbose=1"

// probeLargest boots physmap at each candidate size in turn, stopping at
// the first that fails, and returns every probe and the largest that passed.
// A size whose page descriptors alone (RAM/64, which the guest writes) would
// leave less than minAvailMiB of the host's available memory is not tried.
func (b *bench) probeLargest(kernel string, candidates []string, minAvailMiB, par int) ([]Boot, string) {
	var probes []Boot
	best := ""
	b.done, b.total = 0, len(candidates)
	for _, size := range candidates {
		mib, _ := qemu.ParseMemory(size)
		// The sweep boots the largest size par at a time.
		if avail := memAvailableMiB(); avail > 0 && int64(avail)-int64(par)*int64(mib/64) < int64(minAvailMiB) {
			probes = append(probes, Boot{Kind: "physmap", Set: "probe", Memory: size, CPU: pagings[0].CPU,
				Err: fmt.Sprintf("not tried: %d guests writing %d MiB of page descriptors each, and the host has %d MiB available (keeping %d MiB free)", par, mib/64, avail, minAvailMiB)})
			fmt.Fprintf(b.progress, "physmap-bench: probe -m %s not tried: %s\n", size, probes[len(probes)-1].Err)
			break
		}
		bt := b.boot(job{kind: "physmap", set: "probe", paging: pagings[0], wrap: true,
			cfg: qemu.Config{Kernel: kernel, Memory: size, CPU: pagings[0].CPU, Append: sweepAppend, Timeout: b.timeout, NoReserve: true}})
		probes = append(probes, bt)
		if !bt.OK {
			break
		}
		best = size
	}
	return probes, best
}

// memAvailableMiB reads MemAvailable from /proc/meminfo; 0 if unknown.
func memAvailableMiB() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb uint64
		if _, err := fmt.Sscanf(sc.Text(), "MemAvailable: %d kB", &kb); err == nil {
			return kb / 1024
		}
	}
	return 0
}

// describeMachine names the host the numbers come from.
func describeMachine(qemuBin string) Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb uint64
		for _, l := range strings.Split(string(b), "\n") {
			if _, err := fmt.Sscanf(l, "MemTotal: %d kB", &kb); err == nil {
				m.MemMiB = kb / 1024
			}
		}
	}
	if b, err := exec.Command(qemuBin, "--version").Output(); err == nil {
		m.QEMU = strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
	}
	if b, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return m
}

func writeJSON(path string, rep *Report) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func splitLines(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func optional(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}
