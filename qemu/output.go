package qemu

// The runner's output: the console and its notes share one terminal, whose
// file description QEMU may have made non-blocking.

import (
	"bytes"
	"errors"
	"io"
	"os"
	"reflect"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// steadyWriter writes all of every buffer to a file that may be
// non-blocking. QEMU's -serial stdio makes its stdin O_NONBLOCK (QEMU
// chardev/char-stdio.c, qemu_chr_open_stdio), and when that stdin is the
// harness's terminal, the flag is on the open file description that the
// harness's stdout and stderr share with it: a write to a terminal that is
// behind (paused with ^S, or a slow emulator) then fails with EAGAIN after
// writing part of the buffer or nothing. Go's os.File waits for such a file
// only if it was already non-blocking when the program started; otherwise the
// error comes back and the rest of the buffer would be lost. steadyWriter
// waits until the file is writable again and goes on.
type steadyWriter struct {
	f *os.File
}

// newSteadyWriter returns w itself unless it is a file.
func newSteadyWriter(w io.Writer) io.Writer {
	if f, ok := w.(*os.File); ok {
		return steadyWriter{f}
	}
	return w
}

func (w steadyWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := w.f.Write(p[n:])
		n += m
		if err == nil {
			continue
		}
		if !errors.Is(err, syscall.EAGAIN) {
			return n, err
		}
		if err := waitWritable(w.f); err != nil {
			return n, err
		}
	}
	return n, nil
}

// waitWritable blocks until f can take more bytes. It reaches the descriptor
// through SyscallConn, since File.Fd would switch a file Go polls back to
// blocking mode, which is the file status QEMU shares.
func waitWritable(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var perr error
	err = rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		for {
			_, perr = unix.Poll(fds, -1)
			if perr != unix.EINTR {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return perr
}

// partialMax bounds the unfinished console line a terminal keeps to show
// again after a note (a prompt and what was typed after it).
const partialMax = 256

// terminal serialises the console and the runner's notes onto Stdout and
// Stderr, so that a note never lands in the middle of a console line (the
// kernel's shell prompt, for one): when the screen's last byte was not a
// newline, a note starts on a fresh line, and in interactive mode the
// unfinished console line is shown again after it, so the person at the
// prompt still sees it. QEMU's stderr lines are treated like notes.
type terminal struct {
	mu     sync.Mutex
	out    io.Writer // the console
	err    io.Writer // notes and QEMU's stderr
	shared bool      // out and err are one screen (a terminal, or 2>&1)
	reecho bool      // show the unfinished console line again after a note

	screenMid  bool   // shared: the screen's last byte was not a newline
	errMid     bool   // not shared: err's last byte was not a newline
	qemuMid    bool   // QEMU's stderr is in the middle of a line
	consoleMid bool   // the console's last byte was not a newline
	partial    []byte // the console since its last newline, at most partialMax
}

func newTerminal(out, err io.Writer, interactive bool) *terminal {
	t := &terminal{out: out, err: err, shared: sameWriter(out, err), reecho: interactive}
	if t.out == nil {
		t.out = io.Discard
	}
	if t.err == nil {
		t.err = io.Discard
	}
	t.out, t.err = newSteadyWriter(t.out), newSteadyWriter(t.err)
	return t
}

// sameWriter reports whether a and b write to the same place: the same
// file, or the same writer.
func sameWriter(a, b io.Writer) bool {
	fa, oka := a.(*os.File)
	fb, okb := b.(*os.File)
	if oka && okb {
		sa, erra := fa.Stat()
		sb, errb := fb.Stat()
		return erra == nil && errb == nil && os.SameFile(sa, sb)
	}
	if a == nil || b == nil || reflect.TypeOf(a) != reflect.TypeOf(b) || !reflect.TypeOf(a).Comparable() {
		return false
	}
	return a == b
}

// Console returns the writer the console goes to.
func (t *terminal) Console() io.Writer { return consoleSide{t} }

// Stderr returns the writer QEMU's stderr goes to.
func (t *terminal) Stderr() io.Writer { return stderrSide{t} }

// ConsoleEnded records that QEMU's console has ended: its unfinished line,
// if any, is no longer a prompt to show again.
func (t *terminal) ConsoleEnded() {
	t.mu.Lock()
	t.reecho = false
	t.mu.Unlock()
}

type consoleSide struct{ t *terminal }

func (c consoleSide) Write(p []byte) (int, error) {
	t := c.t
	t.mu.Lock()
	defer t.mu.Unlock()
	n, err := t.out.Write(p)
	if n == 0 {
		return n, err
	}
	p = p[:n]
	t.consoleMid = p[n-1] != '\n'
	if t.shared {
		t.screenMid = t.consoleMid
	}
	if i := bytes.LastIndexByte(p, '\n'); i >= 0 {
		t.partial, p = t.partial[:0], p[i+1:]
	}
	t.partial = append(t.partial, p...)
	if len(t.partial) > partialMax {
		t.partial = append(t.partial[:0], t.partial[len(t.partial)-partialMax:]...)
	}
	return n, err
}

type stderrSide struct{ t *terminal }

func (s stderrSide) Write(p []byte) (int, error) {
	t := s.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	if !t.qemuMid {
		t.freshLine()
	}
	n, err := t.err.Write(p)
	if n == 0 {
		return n, err
	}
	t.qemuMid = p[n-1] != '\n'
	t.wrote(t.qemuMid)
	if !t.qemuMid {
		t.reechoPartial()
	}
	return n, err
}

// Note writes one line of the runner's own on a line of its own.
func (t *terminal) Note(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.freshLine()
	io.WriteString(t.err, line+"\n")
	t.wrote(false)
	t.reechoPartial()
}

// freshLine ends the line in progress on the screen, or on err when it is
// not the console's screen. The caller holds t.mu.
func (t *terminal) freshLine() {
	if (t.shared && t.screenMid) || (!t.shared && t.errMid) {
		io.WriteString(t.err, "\n")
		t.wrote(false)
	}
}

// wrote records that err's last byte was (mid) or was not (!mid) inside a
// line. The caller holds t.mu.
func (t *terminal) wrote(mid bool) {
	if t.shared {
		t.screenMid = mid
	} else {
		t.errMid = mid
	}
}

// reechoPartial shows the unfinished console line again after a note that
// followed it on the same screen. It goes to err, the note's stream, so that
// the console's own copy keeps every byte once. The caller holds t.mu.
func (t *terminal) reechoPartial() {
	if t.reecho && t.shared && t.consoleMid && len(t.partial) > 0 {
		t.err.Write(t.partial)
		t.screenMid = true
	}
}

// ttyStdin gives QEMU its own open file description of the terminal in, so
// that the O_NONBLOCK flag QEMU sets on its stdin does not reach the
// harness's stdout and stderr, which share in's description when all three
// are one terminal. It also saves the terminal's mode, which QEMU makes raw
// and restores when it exits normally, so that restore can put it back after
// a QEMU that was killed. For anything but a terminal it returns in and a
// no-op restore.
func ttyStdin(in io.Reader) (io.Reader, func()) {
	f, ok := in.(*os.File)
	if !ok {
		return in, func() {}
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return in, func() {}
	}
	var (
		saved *unix.Termios
		fd    uintptr
	)
	rc.Control(func(d uintptr) {
		fd = d
		saved, err = unix.IoctlGetTermios(int(d), unix.TCGETS)
	})
	if err != nil {
		return in, func() {} // not a terminal
	}
	restoreMode := func() {
		rc.Control(func(d uintptr) { unix.IoctlSetTermios(int(d), unix.TCSETS, saved) })
	}
	// Linux: opening /proc/self/fd/N opens the terminal device again, a new
	// open file description with its own status flags.
	own, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(fd)), os.O_RDONLY|syscall.O_NOCTTY, 0)
	if err != nil {
		return in, restoreMode // the steady writers still keep every byte
	}
	return own, func() {
		own.Close()
		restoreMode()
	}
}

// stderrHoldBack is how long QEMU's stderr is held back at the start of a
// run, unless the guest speaks first: a QEMU that refuses the machine says
// why and exits within it, and the runner then says it once, in its error.
const stderrHoldBack = 500 * time.Millisecond

// gate holds back what is written to it until opened, or drops it.
type gate struct {
	w io.Writer

	mu   sync.Mutex
	open bool
	held []byte
}

func (g *gate) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open {
		return g.w.Write(p)
	}
	g.held = append(g.held, p...)
	return len(p), nil
}

// Open writes what was held and lets later writes through.
func (g *gate) Open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.open {
		g.open = true
		if len(g.held) > 0 {
			g.w.Write(g.held)
		}
		g.held = nil
	}
}

// Drop forgets what was held; later writes go through.
func (g *gate) Drop() {
	g.mu.Lock()
	g.held = nil
	g.mu.Unlock()
	g.Open()
}

// opener opens its gate at the first byte written to it.
type opener struct{ g *gate }

func (o opener) Write(p []byte) (int, error) {
	if len(p) > 0 {
		o.g.Open()
	}
	return len(p), nil
}
