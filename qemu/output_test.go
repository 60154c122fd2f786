package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// nonblockingPipe returns a pipe whose write end Go took for a blocking file
// and which then became O_NONBLOCK behind Go's back: what the harness's
// stdout is once QEMU has made the terminal they share non-blocking.
func nonblockingPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r, w = os.NewFile(uintptr(p[0]), "pipe-r"), os.NewFile(uintptr(p[1]), "pipe-w")
	if err := unix.SetNonblock(p[1], true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// pattern is n bytes of numbered lines, so a lost or repeated stretch shows.
func pattern(n int) []byte {
	var b []byte
	for i := 0; len(b) < n; i++ {
		b = fmt.Appendf(b, "console line %07d\n", i)
	}
	return b[:n]
}

func TestSteadyWriterKeepsEveryByte(t *testing.T) {
	const size = 1 << 20 // 16 times a pipe's buffer
	want := pattern(size)

	// The failure it prevents: a plain write to the paused reader's pipe
	// stops short with EAGAIN.
	_, w := nonblockingPipe(t)
	n, err := w.Write(want)
	if !errors.Is(err, syscall.EAGAIN) || n >= size {
		t.Fatalf("plain write to a full non-blocking pipe: %d bytes, %v; want fewer than %d and EAGAIN", n, err, size)
	}

	r, w := nonblockingPipe(t)
	got := make(chan []byte)
	go func() {
		time.Sleep(300 * time.Millisecond) // the terminal is paused
		b, _ := io.ReadAll(r)
		got <- b
	}()
	sw := newSteadyWriter(w)
	for p := want; len(p) > 0; {
		k := min(len(p), 4096) // the console reader's chunks
		if n, err := sw.Write(p[:k]); n != k || err != nil {
			t.Fatalf("Write = %d, %v; want %d, nil", n, err, k)
		}
		p = p[k:]
	}
	w.Close()
	if b := <-got; !bytes.Equal(b, want) {
		t.Errorf("the reader got %d bytes, want %d (lost %d)", len(b), size, size-len(b))
	}
}

func TestTerminalNotesOnAFreshLine(t *testing.T) {
	for _, tc := range []struct {
		name        string
		interactive bool
		steps       []string // "c:" console bytes, "n:" a note, "e:" QEMU stderr bytes
		want        string   // the shared screen
	}{
		{"after a whole line", false, []string{"c:selftest: 1 passed, 0 failed\n", "n:closing"}, "selftest: 1 passed, 0 failed\nclosing\n"},
		{"after the prompt", false, []string{"c:physmap> ", "n:closing"}, "physmap> \nclosing\n"},
		{"after the prompt, interactive", true, []string{"c:physmap> wal", "n:closing", "c:k"}, "physmap> wal\nclosing\nphysmap> walk"},
		{"two notes", true, []string{"c:physmap> ", "n:one", "n:two"}, "physmap> \none\nphysmap> \ntwo\nphysmap> "},
		{"QEMU's stderr in pieces", false, []string{"c:phys", "e:qemu: a", "e:b\n", "c:map\n"}, "phys\nqemu: ab\nmap\n"},
		{"note after a cut stderr line", false, []string{"e:qemu: a", "n:x"}, "qemu: a\nx\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var screen bytes.Buffer
			term := newTerminal(&screen, &screen, tc.interactive)
			for _, s := range tc.steps {
				switch s[:2] {
				case "c:":
					term.Console().Write([]byte(s[2:]))
				case "e:":
					term.Stderr().Write([]byte(s[2:]))
				case "n:":
					term.Note(s[2:])
				}
			}
			if screen.String() != tc.want {
				t.Errorf("screen %q, want %q", screen.String(), tc.want)
			}
		})
	}
	t.Run("apart", func(t *testing.T) {
		// The console to a file, the notes to a terminal: no empty lines.
		var out, errOut bytes.Buffer
		term := newTerminal(&out, &errOut, true)
		term.Console().Write([]byte("physmap> "))
		term.Note("closing")
		if out.String() != "physmap> " || errOut.String() != "closing\n" {
			t.Errorf("console %q, notes %q", out.String(), errOut.String())
		}
	})
}

// TestRunNotesNeverOnThePrompt boots the fake QEMU interactively: the
// console ends at a prompt, and the runner's notes start on lines of their
// own.
func TestRunNotesNeverOnThePrompt(t *testing.T) {
	cfg := fake(t, passPrints+"prompt physmap> \nsleep 200ms\nexit 1")
	cfg.Interactive = true
	var screen bytes.Buffer
	r := &Runner{Stdout: &screen, Stderr: &screen, Stdin: strings.NewReader("")}
	if _, err := r.Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(screen.String(), "\n") {
		if i := strings.Index(l, "physmap-run: "); i > 0 {
			t.Errorf("a note in the middle of a line: %q", l)
		}
	}
	if !strings.Contains(screen.String(), "\nphysmap-run: QEMU exited after ") {
		t.Errorf("no exit note on a line of its own:\n%s", screen.String())
	}
}

// openPty returns a pseudo-terminal's master and its slave, the slave
// opened the way a shell hands a program its terminal: blocking, so that Go
// takes it for a blocking file as it does os.Stdout.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(mfd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	sfd, err := unix.Open(fmt.Sprintf("/dev/pts/%d", n), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	master, slave = os.NewFile(uintptr(mfd), "ptmx"), os.NewFile(uintptr(sfd), "pts")
	// The slave first: the master's reader then sees EIO and lets go.
	t.Cleanup(func() { slave.Close(); master.Close() })
	return master, slave
}

// TestRunPausedTerminalLosesNothing is make qemu with a terminal that stops
// reading for a second: the harness's stdin, stdout and stderr are one
// terminal, the fake QEMU makes its stdin non-blocking as QEMU does, and
// floods the console. Every byte must reach the terminal, in order, and the
// harness's own file description must stay blocking.
func TestRunPausedTerminalLosesNothing(t *testing.T) {
	const size = 1 << 20
	master, slave := openPty(t)
	cfg := fake(t, fmt.Sprintf("nonblock\nflood %d\nexit 1", size))
	cfg.Interactive = true
	r := &Runner{Stdout: slave, Stderr: slave, Stdin: slave}
	done := make(chan error, 1)
	go func() { _, err := r.Run(context.Background(), cfg); done <- err }()

	time.Sleep(time.Second) // the terminal is paused
	var screen bytes.Buffer
	chunks := make(chan []byte)
	go func() {
		for {
			buf := make([]byte, 64<<10)
			n, err := master.Read(buf)
			if n > 0 {
				chunks <- buf[:n]
			}
			if err != nil {
				close(chunks)
				return
			}
		}
	}()
	var runErr error
	running := true
	for quiet := time.After(time.Minute); ; {
		select {
		case b, ok := <-chunks:
			if !ok {
				goto read
			}
			screen.Write(b)
			if !running {
				quiet = time.After(300 * time.Millisecond)
			}
		case runErr = <-done:
			running = false
			quiet = time.After(300 * time.Millisecond)
		case <-quiet:
			goto read
		}
	}
read:
	if running {
		t.Fatal("the run did not end")
	}
	// The run failed for having no closing line; that is not the point.
	if !errors.Is(runErr, ErrNoClosingLine) {
		t.Errorf("Run = %v", runErr)
	}
	flags, err := unix.FcntlInt(slave.Fd(), unix.F_GETFL, 0)
	if err != nil || flags&unix.O_NONBLOCK != 0 {
		t.Errorf("the harness's terminal became non-blocking (flags %#x, %v)", flags, err)
	}
	var got []byte
	for _, l := range strings.SplitAfter(strings.ReplaceAll(screen.String(), "\r", ""), "\n") {
		if strings.HasPrefix(l, "flood ") {
			got = append(got, l...)
		}
	}
	want := floodBytes(size)
	if !bytes.Equal(got, want) {
		t.Errorf("the terminal showed %d console bytes, want %d (lost %d)", len(got), len(want), len(want)-len(got))
	}
}

// floodBytes is what fakeqemu's flood N writes.
func floodBytes(n int) []byte {
	var b []byte
	for i := 0; len(b) < n; i++ {
		line := fmt.Sprintf("flood %08d ", i)
		b = append(b, line+strings.Repeat(".", 63-len(line))+"\n"...)
	}
	return b[:n]
}
