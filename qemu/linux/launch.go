package linux

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/physmap/physmap/qemu"
)

// ErrBoot wraps a Linux boot that did not reach its report: QEMU exited, or
// the timeout ended first. Commands map it to exit status 1.
var ErrBoot = errors.New("Linux boot")

// Stop timings: how long QEMU gets to quit through QMP, then after SIGTERM,
// before it is killed.
const (
	quitGrace = 3 * time.Second
	termGrace = 2 * time.Second
	// dialTimeout bounds connecting to a QMP socket that exists.
	dialTimeout = 5 * time.Second
)

// Boot runs one Linux guest under QEMU, from the one command line
// qemu.Config writes, until its /init has printed its report (the line
// Ready), then hands the live machine's QMP connection to Inspect and quits
// QEMU. It does not speak physmap's self-test protocol: a Linux guest has
// no manifest of checks, so qemu.Runner, which judges one, is not used.
type Boot struct {
	// Config is the machine; its QMP socket is set by Run.
	Config qemu.Config
	// Ready is the console line, after MarkPrefix, that ends the report.
	Ready string
	// Inspect is called once with the QMP connection and the console so
	// far when Ready has been seen; QEMU is quit when it returns, and its
	// error is Run's.
	Inspect func(ctx context.Context, m *qemu.Monitor, console []string) error
	// Log receives every console line as it arrives (nil: none).
	Log io.Writer
	// Stderr receives QEMU's stderr (nil: discarded).
	Stderr io.Writer
	// Interrupt stops the run; typically fed by signal.Notify.
	Interrupt <-chan os.Signal
}

// Run boots b.Config and returns the console lines it saw.
func (b *Boot) Run(ctx context.Context) ([]string, error) {
	cfg := b.Config
	dir, err := os.MkdirTemp("", "physmap-linux-qmp")
	if err != nil {
		return nil, envErr("%v", err)
	}
	defer os.RemoveAll(dir)
	cfg.QMP = filepath.Join(dir, "qmp.sock")
	argv, err := cfg.Command()
	if err != nil {
		return nil, err
	}
	bin, err := exec.LookPath(argv[0])
	if err != nil {
		return nil, envErr("%s not found (%v); install it with: apt-get install -y qemu-system-x86", argv[0], err)
	}
	cmd := exec.Command(bin, argv[1:]...)
	// Own process group: a ^C reaches only this process, which then quits
	// QEMU through QMP.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, envErr("%v", err)
	}
	errTail := &tail{w: b.Stderr}
	cmd.Stderr = errTail
	if err := cmd.Start(); err != nil {
		return nil, envErr("cannot start QEMU: %v", err)
	}
	start := time.Now()
	exited := make(chan struct{})
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
		for sc.Scan() {
			lines <- strings.TrimRight(sc.Text(), "\r")
		}
	}()

	var console []string
	var timeout <-chan time.Time
	if cfg.Timeout > 0 {
		t := time.NewTimer(cfg.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	var mon *qemu.Monitor
	defer func() {
		if mon != nil {
			mon.Close()
		}
	}()
	stop := func() {
		if mon != nil {
			qctx, cancel := context.WithTimeout(context.Background(), quitGrace)
			mon.Quit(qctx)
			cancel()
		}
		select {
		case <-exited:
			return
		case <-time.After(quitGrace):
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			return
		case <-time.After(termGrace):
		}
		cmd.Process.Kill()
		<-exited
	}
	fail := func(format string, args ...any) error {
		return &BootError{Detail: fmt.Sprintf(format, args...), Tail: lastLines(console, qemu.TailLines), Stderr: errTail.lines()}
	}
	ready := MarkPrefix + b.Ready
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				// The console ends when QEMU exits.
				werr := cmd.Wait()
				close(exited)
				return console, fail("QEMU exited (%s) after %.1fs, before /init's report", describeExit(werr), time.Since(start).Seconds())
			}
			console = append(console, line)
			if b.Log != nil {
				fmt.Fprintln(b.Log, line)
			}
			if !strings.Contains(line, ready) {
				continue
			}
			go func() { cmd.Wait(); close(exited) }()
			go func() {
				for range lines {
				}
			}()
			dctx, cancel := context.WithTimeout(ctx, dialTimeout)
			var herr error
			mon, herr = qemu.DialMonitor(dctx, cfg.QMP)
			cancel()
			if herr == nil && b.Inspect != nil {
				herr = b.Inspect(ctx, mon, console)
			}
			stop()
			return console, herr
		case <-timeout:
			go func() { cmd.Wait(); close(exited) }()
			stop()
			return console, fail("no report from /init within %v", cfg.Timeout)
		case <-b.Interrupt:
			go func() { cmd.Wait(); close(exited) }()
			stop()
			return console, fail("interrupted after %.1fs", time.Since(start).Seconds())
		case <-ctx.Done():
			go func() { cmd.Wait(); close(exited) }()
			stop()
			return console, fail("%v", ctx.Err())
		}
	}
}

// BootError is a boot that did not reach /init's report, with the console's
// and QEMU's last lines.
type BootError struct {
	Detail string
	Tail   []string // last console lines
	Stderr []string // QEMU's last stderr lines
}

func (e *BootError) Error() string { return ErrBoot.Error() + ": " + e.Detail }

// Unwrap returns ErrBoot.
func (e *BootError) Unwrap() error { return ErrBoot }

func lastLines(s []string, n int) []string {
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return append([]string(nil), s...)
}

func describeExit(err error) string {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return "exit status 0"
	case errors.As(err, &ee):
		return ee.Error()
	}
	return err.Error()
}

// tail passes writes through to w and keeps the last lines.
type tail struct {
	w    io.Writer
	mu   sync.Mutex
	buf  []string
	part string
}

func (t *tail) Write(p []byte) (int, error) {
	if t.w != nil {
		t.w.Write(p)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	parts := strings.Split(t.part+string(p), "\n")
	t.part = parts[len(parts)-1]
	t.buf = lastLines(append(t.buf, parts[:len(parts)-1]...), qemu.TailLines)
	return len(p), nil
}

func (t *tail) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]string(nil), t.buf...)
	if t.part != "" {
		out = append(out, t.part)
	}
	return out
}
