package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeDir holds the fake QEMU, built once as qemu-system-x86_64.
var fakeDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "physmap-fakeqemu")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fakeDir = dir
	build := exec.Command("go", "build", "-o", filepath.Join(dir, DefaultBinary), "./internal/fakeqemu")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the fake QEMU:", err)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fake sets up one run against the fake QEMU playing script, found via PATH.
func fake(t *testing.T, script string) Config {
	t.Helper()
	t.Setenv("PATH", fakeDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKEQEMU_SCRIPT", script)
	t.Setenv("FAKEQEMU_KVM", "")
	kernel := writeFile(t, "physmap.elf", pvhKernel.Bytes())
	return Config{Kernel: kernel, Memory: "2G", Timeout: 10 * time.Second}
}

var passScript = "\nprint physmap: booting\nwaitqmp\n" + passPrints + "exit 1"

func TestRunVerdicts(t *testing.T) {
	for _, tc := range []struct {
		name       string
		script     string
		expectFail string
		want       error
		reason     string // expected Result.StopReason
	}{
		{"pass", passScript, "", nil, ""},
		{"fail", failPrints + "exit 3", "", ErrSelfTestFailed, ""},
		{"missing checks", "print PASS a: x\nprint selftest: 1 passed, 0 failed, manifest 1\nexit 1", "", ErrManifest, ""},
		{"zero checks", "print selftest: 0 passed, 0 failed, manifest 0\nexit 3", "", ErrNoChecks, ""},
		{"pass line but fail status", passPrints + "exit 3", "", ErrExitStatus, ""},
		{"triple fault", "waitqmp\nprint PASS a: x\nevent SHUTDOWN {\"guest\":true,\"reason\":\"guest-reset\"}\nexit 0", "", ErrNoClosingLine, "SHUTDOWN guest-reset"},
		{"status 0 without event", "print PASS a: x\nexit 0", "", ErrNoClosingLine, ""},
		{"exit before closing", "print PASS a: x\nstderr qemu: something broke\nexit 1", "", ErrNoClosingLine, ""},
		{"killed", "print PASS a: x\nabort", "", ErrNoClosingLine, ""},
		{"expect fail", "print FAIL option: unknown option \"physmap.bogus=1\"\nprint selftest: 0 passed, 1 failed, manifest 0\nexit 3", "option", nil, ""},
		{"expect fail wrong check", "print FAIL e820: x\nprint selftest: 0 passed, 1 failed, manifest 0\nexit 3", "option", ErrWrongFailure, ""},
		{"expect fail but pass", passScript, "option", ErrUnexpectedPass, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fake(t, tc.script)
			var out, errOut bytes.Buffer
			r := &Runner{Stdout: &out, Stderr: &errOut}
			if tc.expectFail != "" {
				r.Expect = ExpectFailing(tc.expectFail)
			}
			res, err := r.Run(context.Background(), cfg)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Run = %v, want %v\nstderr:\n%s", err, tc.want, errOut.String())
			}
			if res.StopReason != tc.reason {
				t.Errorf("StopReason = %q, want %q", res.StopReason, tc.reason)
			}
			if tc.want == ErrNoClosingLine && !strings.Contains(err.Error(), res.Exit) {
				t.Errorf("error %q does not give QEMU's exit (%s)", err, res.Exit)
			}
			if (tc.reason == "SHUTDOWN guest-reset" || res.ExitStatus == 0) && tc.want != nil && !strings.Contains(err.Error(), "triple fault") {
				t.Errorf("error %q does not call the reset a triple fault", err)
			}
			if res.Console.Closed != (res.Closing > 0) || res.Elapsed < res.Closing {
				t.Errorf("timings: closing %v elapsed %v", res.Closing, res.Elapsed)
			}
		})
	}
}

func TestRunStreamsConsoleAndTimes(t *testing.T) {
	cfg := fake(t, passScript)
	var out, errOut bytes.Buffer
	res, err := (&Runner{Stdout: &out, Stderr: &errOut}).Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := "physmap: booting\n" + strings.ReplaceAll(strings.ReplaceAll(passPrints, "print ", ""), "\r", "")
	if out.String() != want {
		t.Errorf("console = %q, want %q", out.String(), want)
	}
	if !strings.Contains(errOut.String(), "physmap-run: closing line after ") || !strings.Contains(errOut.String(), "QEMU exited after ") {
		t.Errorf("stderr lacks the timings:\n%s", errOut.String())
	}
	if res.ExitStatus != StatusPass || res.Closing <= 0 {
		t.Errorf("result %+v", res)
	}
	// The QMP socket the runner chose is on the command line it ran.
	if !strings.Contains(strings.Join(res.Argv, " "), "-qmp unix:") {
		t.Errorf("argv has no -qmp: %q", res.Argv)
	}
}

func TestRunTimeout(t *testing.T) {
	var script strings.Builder
	for i := range 30 {
		fmt.Fprintf(&script, "print boot line %d\n", i)
	}
	script.WriteString("sleep 30s\n")
	cfg := fake(t, script.String())
	cfg.Timeout = 300 * time.Millisecond
	start := time.Now()
	res, err := (&Runner{}).Run(context.Background(), cfg)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Run = %v, want ErrTimeout", err)
	}
	if time.Since(start) > 8*time.Second {
		t.Errorf("timeout took %v", time.Since(start))
	}
	var he *Error
	if !errors.As(err, &he) || len(he.Tail) != TailLines || he.Tail[TailLines-1] != "boot line 29" {
		t.Errorf("timeout error tail = %q", he.Tail)
	}
	if !res.TimedOut {
		t.Error("Result.TimedOut not set")
	}
}

func TestRunEnvironmentErrors(t *testing.T) {
	t.Run("qemu missing", func(t *testing.T) {
		cfg := fake(t, passScript)
		t.Setenv("PATH", t.TempDir())
		_, err := (&Runner{}).Run(context.Background(), cfg)
		if !errors.Is(err, ErrQEMUMissing) || !strings.Contains(err.Error(), "apt-get install -y qemu-system-x86") || ExitCode(err) != ExitUsage {
			t.Errorf("Run = %v", err)
		}
	})
	t.Run("kernel missing", func(t *testing.T) {
		cfg := fake(t, passScript)
		cfg.Kernel = filepath.Join(t.TempDir(), "physmap.elf")
		_, err := (&Runner{}).Run(context.Background(), cfg)
		if !errors.Is(err, ErrKernelMissing) || !strings.Contains(err.Error(), "make kernel") || ExitCode(err) != ExitUsage {
			t.Errorf("Run = %v", err)
		}
	})
	t.Run("memory too small", func(t *testing.T) {
		cfg := fake(t, passScript)
		cfg.Memory = "256M"
		if _, err := (&Runner{}).Run(context.Background(), cfg); !errors.Is(err, ErrMemoryTooSmall) {
			t.Errorf("Run = %v", err)
		}
	})
}

var holdScript = "\nwaitqmp\n" + passPrints + "print physmap: holding\nhold"

func TestRunHoldHook(t *testing.T) {
	cfg := fake(t, holdScript)
	var got string
	r := &Runner{OnHold: func(ctx context.Context, m *Monitor) error {
		var err error
		got, err = m.HumanMonitorCommand(ctx, "info tlb")
		return err
	}}
	res, err := r.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got != "fake monitor output\r\n" {
		t.Errorf("hook got %q", got)
	}
	if !res.Held || res.StopReason != "SHUTDOWN host-qmp-quit" {
		t.Errorf("held %v, stop reason %q: QEMU was not quit through QMP", res.Held, res.StopReason)
	}
}

func TestRunHoldHookError(t *testing.T) {
	cfg := fake(t, holdScript)
	r := &Runner{OnHold: func(ctx context.Context, m *Monitor) error { return errors.New("gva2gpa disagrees") }}
	if _, err := r.Run(context.Background(), cfg); !errors.Is(err, ErrHold) || !strings.Contains(err.Error(), "gva2gpa disagrees") {
		t.Errorf("Run = %v, want ErrHold", err)
	}
}

func TestRunHoldUntilInterrupt(t *testing.T) {
	cfg := fake(t, holdScript)
	sig := make(chan os.Signal, 1)
	var errOut bytes.Buffer
	r := &Runner{Interrupt: sig, Stderr: &errOut}
	done := make(chan struct{})
	var res *Result
	var err error
	go func() { res, err = r.Run(context.Background(), cfg); close(done) }()
	select {
	case <-done:
		t.Fatalf("run ended before the interrupt: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	sig <- syscall.SIGINT
	<-done
	if err != nil || !res.Held || res.StopReason != "SHUTDOWN host-qmp-quit" {
		t.Errorf("Run = %v, held %v, reason %q", err, res.Held, res.StopReason)
	}
	if !strings.Contains(errOut.String(), "holding") {
		t.Errorf("no holding note:\n%s", errOut.String())
	}
}

// TestRunHoldOutlastsTimeout checks that a held machine stays held past the
// timeout, which bounds only the boot, until it is interrupted.
func TestRunHoldOutlastsTimeout(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		want         error
	}{
		{"pass", holdScript, nil},
		// A failed self-test stays a failure while holding.
		{"count mismatch", strings.Replace(holdScript, "selftest: ", "selftest: 1", 1), ErrCountMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fake(t, tc.script)
			cfg.Timeout = 200 * time.Millisecond
			sig := make(chan os.Signal, 1)
			done := make(chan struct{})
			var res *Result
			var err error
			go func() { res, err = (&Runner{Interrupt: sig}).Run(context.Background(), cfg); close(done) }()
			select {
			case <-done:
				t.Fatalf("the run ended at the timeout, not held: %v", err)
			case <-time.After(800 * time.Millisecond):
			}
			sig <- syscall.SIGINT
			<-done
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) || !res.Held || res.TimedOut {
				t.Errorf("Run = %v (want %v), held %v, timed out %v", err, tc.want, res.Held, res.TimedOut)
			}
		})
	}
}

func TestRunKVMFallback(t *testing.T) {
	for _, tc := range []struct {
		kvm       string
		wantAccel Accel
		wantCPU   string
	}{
		{"abort", TCG, "max"},
		{"off", TCG, "max"},
		{"ok", KVM, "host"},
	} {
		t.Run(tc.kvm, func(t *testing.T) {
			cfg := fake(t, passScript)
			t.Setenv("FAKEQEMU_KVM", tc.kvm)
			cfg.Accel = KVM
			var errOut bytes.Buffer
			res, err := (&Runner{Stderr: &errOut}).Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			argv := " " + strings.Join(res.Argv, " ") + " "
			if !strings.Contains(argv, " -accel "+string(tc.wantAccel)+" ") || !strings.Contains(argv, " -cpu "+tc.wantCPU+" ") {
				t.Errorf("ran %s, want -accel %s -cpu %s", argv, tc.wantAccel, tc.wantCPU)
			}
			notes := strings.Count(errOut.String(), "KVM cannot run the guest")
			if (tc.wantAccel == TCG) != (notes == 1) {
				t.Errorf("fallback notes: %d in\n%s", notes, errOut.String())
			}
			if tc.kvm == "abort" && !strings.Contains(errOut.String(), "MSR 0x10a") {
				t.Errorf("note does not quote QEMU's complaint:\n%s", errOut.String())
			}
		})
	}
}

// TestRunBadMachine runs the ways a machine fails before the self-test can
// run: QEMU's own refusals and the kernel's early boot. Each is exit status
// 2 with one line that says why.
func TestRunBadMachine(t *testing.T) {
	for _, tc := range []struct {
		name      string
		script    string
		noReserve bool
		want      error
		says      string
		notSays   string
	}{
		{"unknown cpu", "stderr qemu-system-x86_64: unable to find CPU model 'bogus'\nexit 1", false,
			ErrQEMURefused, "start: QEMU refused the machine: qemu-system-x86_64: unable to find CPU model 'bogus'", ""},
		{"not a kernel", "stderr qemu: invalid kernel header\nexit 1", false, ErrQEMURefused, "qemu: invalid kernel header", ""},
		{"memory", "stderr qemu-system-x86_64: cannot set up guest memory 'microvm.ram': Cannot allocate memory\nexit 1", false,
			ErrQEMURefused, "Cannot allocate memory; physmap touches little of its RAM: try -noreserve", ""},
		{"memory with noreserve", "stderr qemu-system-x86_64: cannot set up guest memory 'microvm.ram': Cannot allocate memory\nexit 1", true,
			ErrQEMURefused, "Cannot allocate memory", "try -noreserve"},
		{"early boot cpu", "print physmap: early boot: CPU lacks RDRAND (CPUID.01H:ECX[30]); try -cpu max\nexit 5", false,
			ErrEarlyBoot, "physmap: early boot: CPU lacks RDRAND (CPUID.01H:ECX[30]); try -cpu max", "triple fault"},
		{"early boot ram", "print physmap: early boot: no RAM for the runtime at [0x10000000, 0x18000000)\nexit 7", false,
			ErrEarlyBoot, "physmap: early boot: no RAM for the runtime at [0x10000000, 0x18000000)", ""},
		{"early boot status, line lost", "exit 5", false, ErrEarlyBoot, "CPU feature physmap needs is missing (QEMU exit status 5", ""},
		{"early boot line, then a reset", "waitqmp\nprint physmap: early boot: CPU lacks NX\nevent SHUTDOWN {\"guest\":true,\"reason\":\"guest-reset\"}\nexit 0", false,
			ErrEarlyBoot, "physmap: early boot: CPU lacks NX", "triple fault"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fake(t, tc.script)
			cfg.NoReserve = tc.noReserve
			var errOut bytes.Buffer
			res, err := (&Runner{Stderr: &errOut}).Run(context.Background(), cfg)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Run = %v, want %v", err, tc.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.says) || strings.Contains(msg, "\n") || (tc.notSays != "" && strings.Contains(msg, tc.notSays)) {
				t.Errorf("error %q: want one line with %q, without %q", msg, tc.says, tc.notSays)
			}
			if ExitCode(err) != ExitUsage {
				t.Errorf("ExitCode = %d, want %d", ExitCode(err), ExitUsage)
			}
			if d := Details(err, res); len(d) != 0 {
				t.Errorf("Details = %q: the one line should say it all", d)
			}
		})
	}
	// A QEMU that fails after the guest spoke is the kernel's failure, not
	// a refusal.
	cfg := fake(t, "print physmap: booting\nstderr qemu-system-x86_64: something\nexit 1")
	if _, err := (&Runner{}).Run(context.Background(), cfg); !errors.Is(err, ErrNoClosingLine) || ExitCode(err) != ExitFailed {
		t.Errorf("Run = %v, want ErrNoClosingLine", err)
	}
}

func TestRunDetailsOfAFailedSelfTest(t *testing.T) {
	var script strings.Builder
	script.WriteString("print PASS a: x\nprint FAIL walk.image: frame 0x1000 off by one\nprint FAIL mm.check: W+X leaf\n")
	script.WriteString("print " + strings.Repeat("{\"runs\":[]}", 2000) + "\n") // a JSON dump on the console
	script.WriteString("print selftest: 1 passed, 2 failed, manifest 0\nexit 3")
	cfg := fake(t, script.String())
	res, err := (&Runner{}).Run(context.Background(), cfg)
	if !errors.Is(err, ErrSelfTestFailed) || !strings.Contains(err.Error(), "2 failed: walk.image, mm.check") {
		t.Fatalf("Run = %v", err)
	}
	want := []string{"FAIL walk.image: frame 0x1000 off by one", "FAIL mm.check: W+X leaf"}
	if d := Details(err, res); strings.Join(d, "\n") != strings.Join(want, "\n") {
		t.Errorf("Details = %q, want %q", d, want)
	}
	// A run that stopped before its verdict shows the console's end, long
	// lines cut.
	cfg = fake(t, "print PASS a: x\nprint "+strings.Repeat("x", 5000)+"\nstderr qemu: oops\nexit 1")
	res, err = (&Runner{}).Run(context.Background(), cfg)
	d := Details(err, res)
	if len(d) != 3 || d[0] != "| PASS a: x" || len(d[1]) > detailWidth+40 || !strings.Contains(d[1], "(4800 more bytes)") || d[2] != "! qemu: oops" {
		t.Errorf("Details = %q", d)
	}
}

func TestRunBulkChannel(t *testing.T) {
	cfg := fake(t, "bulk physmap: json begin\nbulk {\"mode\":4}\nbulk physmap: json end\n"+passScript)
	res, err := (&Runner{}).Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := "physmap: json begin\n{\"mode\":4}\nphysmap: json end\n"; string(res.Bulk) != want {
		t.Errorf("Result.Bulk = %q, want %q", res.Bulk, want)
	}
	// A file the caller names keeps it.
	cfg = fake(t, "bulk hello\n"+passScript)
	cfg.Bulk = filepath.Join(t.TempDir(), "bulk.txt")
	os.WriteFile(cfg.Bulk, []byte("stale\n"), 0o644)
	res, err = (&Runner{}).Run(context.Background(), cfg)
	if b, _ := os.ReadFile(cfg.Bulk); err != nil || string(b) != "hello\n" || string(res.Bulk) != "hello\n" {
		t.Errorf("Run = %v; file %q, Result.Bulk %q; want hello only", err, b, res.Bulk)
	}
}

// TestRunUserQMP holds a machine with a second QMP monitor: a client there
// talks to QEMU while the harness keeps its own connection, which then
// quits the machine normally.
func TestRunUserQMP(t *testing.T) {
	cfg := fake(t, holdScript)
	cfg.UserQMP = filepath.Join(t.TempDir(), "user.sock")
	sig := make(chan os.Signal, 1)
	var errOut bytes.Buffer
	r := &Runner{Interrupt: sig, Stderr: &errOut}
	done := make(chan struct{})
	var res *Result
	var err error
	go func() { res, err = r.Run(context.Background(), cfg); close(done) }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, derr := DialMonitor(ctx, cfg.UserQMP)
	if derr != nil {
		t.Fatal(derr)
	}
	out, herr := m.HumanMonitorCommand(ctx, "info registers")
	m.Close()
	if herr != nil || out != "fake monitor output\r\n" {
		t.Errorf("the user's monitor answered %q, %v", out, herr)
	}
	select {
	case <-done:
		t.Fatalf("the run ended when the user's client left: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	sig <- syscall.SIGINT
	<-done
	if err != nil || !res.Held || res.StopReason != "SHUTDOWN host-qmp-quit" {
		t.Errorf("Run = %v, held %v, reason %q: the harness lost its own monitor", err, res.Held, res.StopReason)
	}
	if !strings.Contains(errOut.String(), "your QMP monitor is "+cfg.UserQMP) {
		t.Errorf("the holding note does not name the user's socket:\n%s", errOut.String())
	}
}

// TestRunStayHeld checks that a machine stays held after the hook, until
// interrupted, past the timeout.
func TestRunStayHeld(t *testing.T) {
	cfg := fake(t, holdScript)
	cfg.Timeout = 300 * time.Millisecond
	sig := make(chan os.Signal, 1)
	hooked := make(chan struct{})
	r := &Runner{Interrupt: sig, StayHeld: true, OnHold: func(ctx context.Context, m *Monitor) error {
		close(hooked)
		return nil
	}}
	done := make(chan struct{})
	var res *Result
	var err error
	go func() { res, err = r.Run(context.Background(), cfg); close(done) }()
	<-hooked
	select {
	case <-done:
		t.Fatalf("the run ended after the hook: %v", err)
	case <-time.After(time.Second):
	}
	sig <- syscall.SIGINT
	<-done
	if err != nil || !res.Held || res.TimedOut || res.StopReason != "SHUTDOWN host-qmp-quit" {
		t.Errorf("Run = %v, held %v, timed out %v, reason %q", err, res.Held, res.TimedOut, res.StopReason)
	}
}
