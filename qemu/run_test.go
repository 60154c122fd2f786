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
	kernel := filepath.Join(t.TempDir(), "physmap.elf")
	if err := os.WriteFile(kernel, []byte("\x7fELF"), 0o644); err != nil {
		t.Fatal(err)
	}
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

func TestRunHoldTimeoutIsNotFailure(t *testing.T) {
	cfg := fake(t, holdScript)
	cfg.Timeout = 500 * time.Millisecond
	res, err := (&Runner{}).Run(context.Background(), cfg)
	if err != nil || !res.Held || !res.TimedOut {
		t.Errorf("Run = %v, held %v timed out %v", err, res.Held, res.TimedOut)
	}
	// A failed self-test stays a failure while holding.
	cfg = fake(t, strings.Replace(holdScript, "selftest: ", "selftest: 1", 1))
	cfg.Timeout = 500 * time.Millisecond
	if _, err := (&Runner{}).Run(context.Background(), cfg); !errors.Is(err, ErrCountMismatch) {
		t.Errorf("Run = %v, want ErrCountMismatch", err)
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
