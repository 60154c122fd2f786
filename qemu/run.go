package qemu

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

	"github.com/physmap/physmap/kernel/selftest"
)

// Stop timings: how long QEMU gets to quit through QMP, then after SIGTERM,
// before it is killed.
const (
	quitGrace = 3 * time.Second
	termGrace = 2 * time.Second
)

// Runner boots the kernel under QEMU and judges the self-test.
type Runner struct {
	// Stdout receives the serial console: whole lines as they arrive, or in
	// interactive mode every byte as it arrives. Nil discards it.
	Stdout io.Writer
	// Stderr receives QEMU's stderr and the runner's notes. Nil discards it.
	Stderr io.Writer
	// Stdin goes to QEMU's serial port in interactive mode; nil means
	// os.Stdin.
	Stdin io.Reader
	// Name prefixes the runner's notes ("physmap-run").
	Name string
	// Expect says what the self-test must show; the zero value asks for a
	// passing boot with every check of its manifest.
	Expect Expect
	// OnHold, if set, is called once with the live machine's QMP connection
	// when the console shows selftest.HoldLine; QEMU is quit when it
	// returns (unless StayHeld), and an error from it fails the run. Without
	// it a holding machine stays held until Interrupt fires. Config.Timeout
	// bounds the boot and the hook, never the hold.
	OnHold func(ctx context.Context, m *Monitor) error
	// StayHeld keeps the machine held after OnHold returns, until Interrupt
	// fires, instead of quitting it.
	StayHeld bool
	// DialQMP connects to QEMU's QMP socket at path; nil means DialMonitor.
	// CrossCheck.Dial relays answers too long for the QMP library.
	DialQMP func(ctx context.Context, path string) (*Monitor, error)
	// Interrupt stops the run (a held machine is then quit normally);
	// typically fed by signal.Notify for SIGINT and SIGTERM.
	Interrupt <-chan os.Signal
	// ProbeKVM checks that KVM can run the guest; nil means ProbeKVM.
	ProbeKVM func(context.Context, Config) error
	// Shell, if set, is typed at the kernel's shell (physmap.shell=1), a
	// line after each prompt, through QEMU's stdin; each answer must match.
	// End it with exit, which ends QEMU. Not with Interactive or GDB.
	Shell []Exchange

	// taps also receive the console (the cross-check's console fallback).
	taps []io.Writer
	// term is the run's console and notes; bulkPath its bulk channel's file.
	mu       sync.Mutex
	term     *terminal
	bulkPath string
}

// Result is what a run observed.
type Result struct {
	Config     Config        // the config actually run (after a KVM fallback)
	Argv       []string      // QEMU's argv
	Console    *Console      // the parsed console
	ExitStatus int           // QEMU's exit status, -1 if killed by a signal or not started
	Exit       string        // how QEMU ended, for people ("exit status 1", "signal: aborted")
	StopReason string        // from QMP: "SHUTDOWN guest-reset", ...; may be empty
	Closing    time.Duration // QEMU start to the closing line; 0 if none
	Elapsed    time.Duration // QEMU start to its exit
	Held       bool          // the machine held and was quit by the runner
	TimedOut   bool
	Shell      []Answer // the shell's answers to Runner.Shell
	Stderr     []string // QEMU's last stderr lines
	// Bulk is what the kernel wrote to the bulk channel (Config.Bulk): the
	// JSON dump of its live tables (see dump.Extract).
	Bulk []byte
}

// Notef writes a note of the runner's (or its caller's) to Stderr, prefixed
// with Name, on a line of its own even when the console is in the middle of
// one.
func (r *Runner) Notef(format string, args ...any) { r.notef(format, args...) }

// notef writes one of the runner's notes, on a line of its own.
func (r *Runner) notef(format string, args ...any) {
	if r.Stderr == nil {
		return
	}
	name := r.Name
	if name == "" {
		name = "physmap-run"
	}
	r.mu.Lock()
	t := r.term
	r.mu.Unlock()
	line := fmt.Sprintf(name+": "+format, args...)
	if t == nil {
		fmt.Fprintln(r.Stderr, line)
		return
	}
	t.Note(line)
}

// BulkSoFar returns what the kernel has written to the bulk channel in the
// run in progress (or the last run): for a hold hook, which runs while the
// machine is alive. A Runner runs one boot at a time.
func (r *Runner) BulkSoFar() ([]byte, error) {
	r.mu.Lock()
	path := r.bulkPath
	r.mu.Unlock()
	if path == "" {
		return nil, &Error{Op: "bulk", Err: ErrStart, Detail: "no run has a bulk channel yet"}
	}
	return os.ReadFile(path)
}

// prepare validates cfg, finds QEMU and the kernel, and settles the
// accelerator.
func (r *Runner) prepare(ctx context.Context, cfg Config) (Config, error) {
	if _, err := cfg.Command(); err != nil {
		return cfg, err
	}
	bin, err := exec.LookPath(cfg.binary())
	if err != nil {
		return cfg, &Error{Op: "start", Err: ErrQEMUMissing,
			Detail: fmt.Sprintf("%s not found (%v); install it with: apt-get install -y qemu-system-x86", cfg.binary(), err)}
	}
	cfg.Binary = bin
	if err := CheckKernel(cfg.Kernel); err != nil {
		return cfg, err
	}
	if cfg.accel() == KVM {
		probe := r.ProbeKVM
		if probe == nil {
			probe = ProbeKVM
		}
		var note string
		cfg, note = chooseAccel(cfg, probe(ctx, cfg))
		if note != "" {
			r.notef("%s", note)
		}
	}
	return cfg, nil
}

// Run boots cfg and returns what it saw, and nil if the verdict is success.
// The error is an *Error wrapping one of the package's sentinels; ExitCode
// maps it to the commands' exit status.
//
// It runs in stages: prepare checks the configuration and the kernel;
// setup makes the private directory, the command and its pipes; start
// starts QEMU, the console reader and the QMP connection; watch follows the
// boot until QEMU has exited; collect gathers what QEMU left; judge gives
// the verdict, and a shell script's answers are read last.
func (r *Runner) Run(ctx context.Context, cfg Config) (*Result, error) {
	res := &Result{ExitStatus: -1, Console: new(Console)}
	term := newTerminal(r.Stdout, r.Stderr, cfg.Interactive || cfg.GDB)
	r.mu.Lock()
	r.term, r.bulkPath = term, ""
	r.mu.Unlock()
	cfg, err := r.prepare(ctx, cfg)
	res.Config = cfg
	if err != nil {
		return res, err
	}
	b := &boot{r: r, cfg: cfg, res: res, term: term}
	defer b.cleanup()
	if err := b.setup(); err != nil {
		return res, err
	}
	if err := b.start(ctx); err != nil {
		return res, err
	}
	b.watch(ctx)
	b.collect()
	err = r.judge(res, b.interrupted, b.hookErr)
	if b.sc != nil {
		var shellErr error
		res.Shell, shellErr = b.sc.finish(res.Console.Tail())
		if shellErr != nil && (err == nil || errors.Is(err, ErrTimeout) || errors.Is(err, ErrExitStatus)) {
			// A script stuck at a prompt ends in a timeout, one cut
			// short in the wrong status: say why.
			err = shellErr
		}
	}
	return res, err
}

// boot is one run's state, from setup to collect.
type boot struct {
	r    *Runner
	cfg  Config // as prepared
	run  Config // as run: the private QMP socket and bulk file
	res  *Result
	term *terminal

	cmd     *exec.Cmd
	stdout  io.Reader
	errGate *gate
	errTail *lineTail
	sc      *scripter
	qmpPath string
	started time.Time

	lines  chan string
	exited chan struct{}
	monc   chan *Monitor
	mon    *Monitor
	// stopDial gives up connecting to QMP: QEMU has exited.
	stopDial context.CancelFunc

	waitErr     error
	interrupted bool
	hookErr     error

	undo []func() // run by cleanup, last first
}

// cleanup undoes what the stages set up.
func (b *boot) cleanup() {
	for i := len(b.undo) - 1; i >= 0; i-- {
		b.undo[i]()
	}
}

// setup makes the harness's private QMP socket path and, unless the caller
// named one, the bulk channel's file, in a private directory; then the
// command, its pipes and its stdin.
func (b *boot) setup() error {
	r, cfg, res := b.r, b.cfg, b.res
	dir, err := os.MkdirTemp("", "physmap-run")
	if err != nil {
		return &Error{Op: "start", Err: ErrStart, Detail: err.Error()}
	}
	b.undo = append(b.undo, func() { os.RemoveAll(dir) })
	b.qmpPath = filepath.Join(dir, "qmp.sock")
	b.run = cfg
	b.run.QMP = b.qmpPath
	if b.run.Bulk == "" {
		b.run.Bulk = filepath.Join(dir, "bulk")
	}
	// QEMU creates the file only when it starts; an old one would pass for
	// this run's.
	if err := os.WriteFile(b.run.Bulk, nil, 0o644); err != nil {
		return &Error{Op: "start", Err: ErrStart, Detail: fmt.Sprintf("bulk channel: %v", err)}
	}
	r.mu.Lock()
	r.bulkPath = b.run.Bulk
	r.mu.Unlock()
	argv, err := b.run.Command()
	if err != nil {
		return err
	}
	res.Argv = argv

	b.cmd = exec.Command(argv[0], argv[1:]...)
	if b.stdout, err = b.cmd.StdoutPipe(); err != nil {
		return &Error{Op: "start", Err: ErrStart, Detail: err.Error()}
	}
	b.errGate = &gate{w: b.term.Stderr()}
	b.errTail = &lineTail{w: b.errGate, max: TailLines}
	b.cmd.Stderr = b.errTail
	if len(r.Shell) > 0 {
		if cfg.Interactive || cfg.GDB {
			return &Error{Op: "start", Err: ErrStart, Detail: "a shell script needs QEMU's stdin: not with -interactive or -gdb"}
		}
		stdin, err := b.cmd.StdinPipe()
		if err == nil {
			b.sc, err = newScripter(r.Shell, stdin)
		}
		if err != nil {
			return err
		}
	}
	if cfg.Interactive || cfg.GDB {
		in := r.Stdin
		if in == nil {
			in = os.Stdin
		}
		var restore func()
		b.cmd.Stdin, restore = ttyStdin(in)
		b.undo = append(b.undo, restore)
	} else {
		// Own process group: a ^C reaches only the runner, which then
		// quits QEMU through QMP and still reports.
		b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	return nil
}

// start starts QEMU, the console reader (lines to watch, bytes or lines to
// the terminal) and the QMP connection, which gives up when QEMU exits.
func (b *boot) start(ctx context.Context) error {
	b.started = time.Now()
	if err := b.cmd.Start(); err != nil {
		return &Error{Op: "start", Err: ErrStart, Detail: err.Error()}
	}
	holdBack := time.AfterFunc(stderrHoldBack, b.errGate.Open)
	b.undo = append(b.undo, func() { holdBack.Stop() })

	b.lines = make(chan string)
	console := []io.Writer{opener{b.errGate}, b.term.Console()}
	console = append(console, b.r.taps...)
	if b.sc != nil {
		// A shell script reads the raw bytes too: its prompt ends no line.
		console = append(console, b.sc)
	}
	go readConsole(b.stdout, io.MultiWriter(console...), b.cfg.Interactive || b.cfg.GDB || b.sc != nil, b.lines)

	b.exited = make(chan struct{})
	dialCtx, stopDial := context.WithCancel(ctx)
	b.stopDial = stopDial
	b.undo = append(b.undo, stopDial)
	b.monc = make(chan *Monitor, 1)
	dial := b.r.DialQMP
	if dial == nil {
		dial = DialMonitor
	}
	go func() {
		m, err := dial(dialCtx, b.qmpPath)
		if err != nil {
			b.monc <- nil
			return
		}
		b.monc <- m
	}()
	return nil
}

// watch follows the boot until QEMU has exited and its console has ended:
// console lines, the QMP connection, the hold hook, the timeout and
// interrupts.
func (b *boot) watch(ctx context.Context) {
	r, cfg, res := b.r, b.cfg, b.res
	var (
		timeout   <-chan time.Time
		stopTimer = func() {}
	)
	if cfg.Timeout > 0 {
		t := time.NewTimer(cfg.Timeout)
		b.undo = append(b.undo, func() { t.Stop() })
		timeout = t.C
		stopTimer = func() { t.Stop(); timeout = nil }
	}
	var (
		monDone     bool
		consoleDone bool
		stopping    bool
		hookDone    chan error
		hookCancel  context.CancelFunc = func() {}
	)
	b.undo = append(b.undo, func() { hookCancel() })
	holdNote := func() {
		where := "-qmp PATH would give you a QMP monitor"
		if cfg.UserQMP != "" {
			where = "your QMP monitor is " + cfg.UserQMP
		}
		r.notef("holding; %s; interrupt (^C) to quit", where)
	}
	startHook := func() {
		if r.OnHold == nil || b.mon == nil || hookDone != nil || !res.Console.Holding {
			return
		}
		var hctx context.Context
		hctx, hookCancel = context.WithCancel(ctx)
		hookDone = make(chan error, 1)
		mon := b.mon
		go func() { hookDone <- r.OnHold(hctx, mon) }()
	}
	stop := func() {
		if stopping {
			return
		}
		stopping = true
		go stopQEMU(b.cmd, b.mon, b.exited)
	}
	lines := b.lines
	for exitWait := (<-chan struct{})(nil); !consoleDone || exitWait != nil; {
		select {
		case line, ok := <-lines:
			if !ok {
				consoleDone = true
				lines = nil
				b.term.ConsoleEnded()
				// The console ends when QEMU exits: reap it.
				go func() { b.waitErr = b.cmd.Wait(); close(b.exited) }()
				exitWait = b.exited
				continue
			}
			switch res.Console.Feed(line) {
			case LineOther:
				if c := res.Console; c.HostSleep != 0 && strings.HasPrefix(line, selftest.SleptPrefix) {
					r.notef("a %v guest sleep took %.3fs of host time", c.Sleep, c.HostSleep.Seconds())
				}
			case LineClosing:
				res.Closing = time.Since(b.started)
				r.notef("closing line after %.2fs", res.Closing.Seconds())
			case LineHold:
				if r.OnHold == nil {
					// Held until interrupted: the timeout bounded the boot.
					stopTimer()
					holdNote()
					break
				}
				if b.mon == nil && monDone {
					b.hookErr = &Error{Op: "hold", Err: ErrHold, Detail: "no QMP connection to the held machine"}
					stop()
				}
				startHook()
			}
		case m := <-b.monc:
			b.monc, monDone, b.mon = nil, true, m
			if m != nil {
				b.undo = append(b.undo, func() { m.Close() })
			}
			startHook()
			if r.OnHold != nil && res.Console.Holding && m == nil {
				b.hookErr = &Error{Op: "hold", Err: ErrHold, Detail: "no QMP connection to the held machine"}
				stop()
			}
		case err := <-hookDone:
			hookDone = nil
			var he *Error
			switch {
			case errors.As(err, &he):
				b.hookErr = he // the hook's own verdict, such as a cross-check's
			case err != nil:
				b.hookErr = &Error{Op: "hold", Err: ErrHold, Detail: err.Error(), Tail: res.Console.Tail()}
			}
			res.Held = true
			if r.StayHeld && !stopping {
				stopTimer()
				holdNote()
				break
			}
			stop()
		case <-timeout:
			timeout = nil
			res.TimedOut = true
			if res.Console.Holding {
				res.Held = true
			}
			stop()
		case <-r.Interrupt:
			b.interrupted = true
			if res.Console.Holding {
				res.Held = true
			}
			stop()
		case <-exitWait:
			exitWait = nil
		}
	}
}

// collect gathers what the exited QEMU left: the QMP events that say why
// it stopped, its exit status and stderr, the bulk channel.
func (b *boot) collect() {
	res := b.res
	b.stopDial()
	res.Elapsed = time.Since(b.started)
	if b.monc != nil {
		// QEMU exited before watch took the connection: take it now for
		// the events it carried.
		if m := <-b.monc; m != nil {
			b.mon = m
			b.undo = append(b.undo, func() { m.Close() })
		}
	}
	if b.mon != nil {
		// Let the last events arrive: QEMU has exited, so the stream ends.
		select {
		case <-b.mon.Closed():
		case <-time.After(time.Second):
		}
		res.StopReason = b.mon.StopReason()
	}
	res.Exit = describeExit(b.waitErr)
	if ps := b.cmd.ProcessState; ps != nil {
		res.ExitStatus = ps.ExitCode()
	}
	res.Stderr = b.errTail.lines()
	res.Bulk, _ = os.ReadFile(b.run.Bulk) // an unreadable file is an empty channel
	if !res.Console.Closed && refused(res, b.interrupted) != nil {
		b.errGate.Drop() // the error says it
	}
	b.errGate.Open()
	b.r.notef("QEMU exited after %.2fs (%s%s)", res.Elapsed.Seconds(), res.Exit, optional(", ", res.StopReason))
}

// judge turns what a run saw into its verdict.
func (r *Runner) judge(res *Result, interrupted bool, hookErr error) error {
	c := res.Console
	fail := func(op string, err error, format string, args ...any) error {
		return &Error{Op: op, Err: err, Detail: fmt.Sprintf(format, args...), Tail: c.Tail()}
	}
	how := res.Exit + optional(", QMP: ", res.StopReason)
	if res.Config.accel() == KVM && len(c.Tail()) == 0 && !res.TimedOut && !interrupted {
		how += "; KVM failed at run time, try -accel tcg"
	}
	if !c.Closed {
		if err := early(res); err != nil {
			return err
		}
		if err := refused(res, interrupted); err != nil {
			return err
		}
	}
	switch {
	case !c.Closed && res.TimedOut:
		return fail("boot", ErrTimeout, "no closing line after %v", res.Config.Timeout)
	case !c.Closed && interrupted:
		return fail("boot", ErrInterrupted, "before the closing line")
	case !c.Closed:
		what := "QEMU exited"
		switch {
		case strings.Contains(res.StopReason, "guest-reset") || strings.Contains(res.StopReason, "RESET"):
			what = "guest reset (triple fault?)"
		case res.StopReason == "" && res.ExitStatus == 0:
			// No QMP event seen (QEMU may beat the connection), but
			// status 0 under -no-reboot without debug-exit is a reset
			// or a shutdown.
			what = "QEMU exited with status 0, a guest reset (triple fault?) or shutdown,"
		}
		return fail("boot", ErrNoClosingLine, "%s before the closing line (%s)", what, how)
	}
	if err := c.Judge(r.Expect); err != nil {
		return err
	}
	if c.HaveConfig {
		if err := ConfigAgrees(res.Config.Append, c.Config); err != nil {
			return err
		}
	}
	if hookErr != nil {
		return hookErr
	}
	if c.Holding && res.Held {
		return nil // the runner quit QEMU: its status says nothing
	}
	if res.TimedOut {
		return fail("boot", ErrTimeout, "after the closing line, QEMU did not exit within %v", res.Config.Timeout)
	}
	if interrupted {
		return fail("boot", ErrInterrupted, "after the closing line, before QEMU exited")
	}
	if want := ExpectedStatus(c.Summary); res.ExitStatus != want {
		return fail("verdict", ErrExitStatus, "closing line %q wants QEMU exit status %d, got %s", c.Summary, want, how)
	}
	return nil
}

// early recognises a run the kernel's early boot ended: its line on the
// console, or QEMU's exit status for it.
func early(res *Result) error {
	line := res.Console.Early
	if line == "" {
		switch res.ExitStatus {
		case selftest.StatusEarlyCPU:
			line = "a CPU feature physmap needs is missing (QEMU exit status 5; its line did not reach the console); try -cpu max"
		case selftest.StatusEarlyRAM:
			line = "no RAM for the runtime's window (QEMU exit status 7; its line did not reach the console); try -m 2G"
		default:
			return nil
		}
	}
	return &Error{Op: "physmap", Err: ErrEarlyBoot, Detail: strings.TrimPrefix(line, selftest.EarlyPrefix)}
}

// refused recognises a machine QEMU would not start: it exited with an
// error before the guest wrote a byte, with a complaint on its stderr.
func refused(res *Result, interrupted bool) error {
	if res.Console.Lines > 0 || res.TimedOut || interrupted || res.ExitStatus == 0 || len(res.Stderr) == 0 {
		return nil
	}
	var said []string
	for _, l := range res.Stderr {
		if strings.HasPrefix(l, "qemu") {
			said = append(said, strings.TrimSpace(l))
		}
	}
	if len(said) == 0 {
		said = res.Stderr
	}
	msg := strings.Join(said, " / ")
	if strings.Contains(msg, "cannot set up guest memory") && !res.Config.NoReserve {
		msg += "; physmap touches little of its RAM: try -noreserve (memory-backend-ram,reserve=off)"
	}
	return &Error{Op: "start", Err: ErrQEMURefused, Detail: msg}
}

// stopQEMU quits QEMU through QMP if it can, then by SIGTERM, then SIGKILL.
func stopQEMU(cmd *exec.Cmd, mon *Monitor, exited <-chan struct{}) {
	wait := func(d time.Duration) bool {
		select {
		case <-exited:
			return true
		case <-time.After(d):
			return false
		}
	}
	if mon != nil {
		ctx, cancel := context.WithTimeout(context.Background(), quitGrace)
		mon.Quit(ctx)
		cancel()
		if wait(quitGrace) {
			return
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if wait(termGrace) {
		return
	}
	cmd.Process.Kill()
}

// readConsole copies QEMU's serial output to out and sends its lines on
// lines, closing lines at end of file. In raw mode bytes go to out as they
// arrive (a prompt has no newline); otherwise whole lines do.
func readConsole(in io.Reader, out io.Writer, raw bool, lines chan<- string) {
	defer close(lines)
	if out == nil {
		out = io.Discard
	}
	br := bufio.NewReader(in)
	var partial strings.Builder
	for {
		if raw {
			buf := make([]byte, 4096)
			n, err := br.Read(buf)
			out.Write(buf[:n])
			for _, b := range buf[:n] {
				if b == '\n' {
					lines <- partial.String()
					partial.Reset()
				} else {
					partial.WriteByte(b)
				}
			}
			if err != nil {
				break
			}
			continue
		}
		line, err := br.ReadString('\n')
		if line != "" {
			if !strings.HasSuffix(line, "\n") {
				line += "\n"
			}
			io.WriteString(out, line)
			lines <- strings.TrimSuffix(line, "\n")
		}
		if err != nil {
			break
		}
	}
	if partial.Len() > 0 {
		lines <- partial.String()
	}
}

// lineTail passes writes through to w and keeps the last max lines.
type lineTail struct {
	w   io.Writer
	max int

	mu   sync.Mutex
	buf  []string
	part string
}

func (t *lineTail) Write(p []byte) (int, error) {
	if t.w != nil {
		t.w.Write(p)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.part + string(p)
	parts := strings.Split(s, "\n")
	t.part = parts[len(parts)-1]
	for _, l := range parts[:len(parts)-1] {
		t.buf = append(t.buf, strings.TrimRight(l, "\r"))
	}
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *lineTail) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]string(nil), t.buf...)
	if t.part != "" {
		out = append(out, t.part)
	}
	return out
}

// describeExit says how QEMU ended.
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

func optional(sep, s string) string {
	if s == "" {
		return ""
	}
	return sep + s
}
