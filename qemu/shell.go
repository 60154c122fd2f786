package qemu

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"

	"github.com/physmap/physmap/kernel/option"
	"github.com/physmap/physmap/kernel/shell"
)

// ShellOption is the kernel option that leaves the console at the shell.
const ShellOption = option.Prefix + "shell=1"

// WithShell returns the kernel command line with ShellOption added, unless
// it already says physmap.shell= either way.
func WithShell(cmdline string) string {
	for _, w := range strings.Fields(cmdline) {
		if strings.HasPrefix(w, option.Prefix+"shell=") {
			return cmdline
		}
	}
	return strings.TrimSpace(cmdline + " " + ShellOption)
}

// ErrShell reports a scripted shell session whose answers were not the
// expected ones, or that ended early. ExitCode maps it to 1.
var ErrShell = errors.New("shell script failed")

// Exchange is one line typed at the kernel's shell (physmap.shell=1) and
// what its answer must show.
type Exchange struct {
	// Send is the line typed after the prompt, without its newline.
	Send string
	// Expect is a regular expression the answer must match: the console
	// output after the line's echo up to the next prompt (or, for the last
	// line, typically exit, up to QEMU's exit).
	Expect string
}

// Answer is what the shell printed for one Exchange.
type Answer struct {
	Send string
	Got  string // the answer, without the echo of the line
	OK   bool   // Got matches the exchange's Expect
}

// scripter plays a shell script on QEMU's serial port: it watches the
// console bytes for the prompt, types the next line into QEMU's stdin, and
// collects each answer up to the following prompt. It is the io.Writer the
// console reader copies QEMU's output to.
type scripter struct {
	script []Exchange
	res    []*regexp.Regexp
	stdin  io.WriteCloser

	mu      sync.Mutex
	buf     []byte // console bytes not yet consumed
	next    int    // the exchange to send next
	sent    bool   // script[next] was typed and its answer is being collected
	answers []Answer
	errs    []string
}

// newScripter checks the script's regexps.
func newScripter(script []Exchange, stdin io.WriteCloser) (*scripter, error) {
	s := &scripter{script: script, stdin: stdin}
	for i, ex := range script {
		re, err := regexp.Compile(ex.Expect)
		if err != nil {
			return nil, &Error{Op: "shell", Err: ErrShell, Detail: fmt.Sprintf("exchange %d (%q): %v", i, ex.Send, err)}
		}
		s.res = append(s.res, re)
	}
	return s, nil
}

// Write takes console output and moves the script along.
func (s *scripter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, p...)
	for s.next < len(s.script) {
		i := bytes.Index(s.buf, []byte(shell.Prompt))
		if i < 0 {
			break
		}
		if s.sent {
			s.answer(s.buf[:i])
		}
		s.buf = s.buf[i+len(shell.Prompt):]
		if s.next == len(s.script) {
			break
		}
		if _, err := io.WriteString(s.stdin, s.script[s.next].Send+"\n"); err != nil {
			s.errs = append(s.errs, fmt.Sprintf("typing %q: %v", s.script[s.next].Send, err))
			s.next = len(s.script)
			break
		}
		s.sent = true
	}
	if s.next == len(s.script) && s.stdin != nil {
		s.stdin.Close()
		s.stdin = nil
	}
	return len(p), nil
}

// answer judges the answer to the exchange in flight.
func (s *scripter) answer(out []byte) {
	got := strings.ReplaceAll(string(out), "\r", "")
	if _, rest, ok := strings.Cut(got, "\n"); ok {
		got = rest // the echo of the line typed
	}
	ex := s.script[s.next]
	ok := s.res[s.next].MatchString(got)
	s.answers = append(s.answers, Answer{Send: ex.Send, Got: got, OK: ok})
	if !ok {
		s.errs = append(s.errs, fmt.Sprintf("%q answered %q, which does not match %q", ex.Send, firstLines(got, 4), ex.Expect))
	}
	s.next++
	s.sent = false
}

// firstLines shortens an answer for an error message.
func firstLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) <= n {
		return s
	}
	return strings.Join(lines[:n], "") + "..."
}

// finish is called when the console ends: the answer in flight ends there.
// It returns the answers and an error, quoting tail, for any mismatch or
// exchange not played.
func (s *scripter) finish(tail []string) ([]Answer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sent {
		s.answer(s.buf)
	}
	if s.stdin != nil {
		s.stdin.Close()
		s.stdin = nil
	}
	errs := s.errs
	if s.next < len(s.script) {
		errs = append(errs, fmt.Sprintf("the console ended before %q was typed (%d of %d lines played; no %q prompt?)",
			s.script[s.next].Send, s.next, len(s.script), shell.Prompt))
	}
	if len(errs) == 0 {
		return s.answers, nil
	}
	return s.answers, &Error{Op: "shell", Err: ErrShell, Detail: strings.Join(errs, "; "), Tail: tail}
}
