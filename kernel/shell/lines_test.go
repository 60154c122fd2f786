package shell

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// Escape sequences the tests type.
const (
	up      = "\x1b[A"
	down    = "\x1b[B"
	upSS3   = "\x1bOA"
	downSS3 = "\x1bOB"
	erase1  = "\b \b"
)

func erase(n int) string { return strings.Repeat(erase1, n) }

func TestLines(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		lines []string // the lines read before the end of input
		last  string   // the partial line returned with io.EOF
		echo  string
	}{
		{"lf", "walk 1\nx 2\n", []string{"walk 1", "x 2"}, "", "walk 1\nx 2\n"},
		{"cr", "walk 1\rx 2\r", []string{"walk 1", "x 2"}, "", "walk 1\nx 2\n"},
		{"crlf", "walk 1\r\n\r\nx 2\r\n", []string{"walk 1", "", "x 2"}, "", "walk 1\n\nx 2\n"},
		{"lf-lf", "a\n\nb\n", []string{"a", "", "b"}, "", "a\n\nb\n"},
		{"backspace", "wakl\b\blk\x7f\x7flk 1\n", []string{"walk 1"}, "", "wakl" + erase(2) + "lk" + erase(2) + "lk 1\n"},
		{"backspace-empty", "\b\x7fhelp\n", []string{"help"}, "", "help\n"},
		{"ctrl-c", "walk zz\x03help\n", []string{"", "help"}, "", "walk zz^C\nhelp\n"},
		{"ctrl-u-erases-in-place", "walk zz\x15help\n", []string{"help"}, "", "walk zz" + erase(7) + "help\n"},
		{"ctrl-u-empty", "\x15help\n", []string{"help"}, "", "help\n"},
		{"ctrl-d-empty-ends", "help\n\x04walk\n", []string{"help"}, "", "help\n^D"},
		{"ctrl-d-in-line-ignored", "he\x04lp\n", []string{"help"}, "", "help\n"},
		{"arrows-left-right-ignored", "he\x1b[Clp\x1b[D\n", []string{"help"}, "", "help\n"},
		{"csi-with-parameters", "he\x1b[1;5Clp\x1b[3~\n", []string{"help"}, "", "help\n"},
		{"ss3-keys", "he\x1bOPlp\x1bOC\n", []string{"help"}, "", "help\n"},
		// The byte after a lone ESC is typed, not eaten.
		{"lone-esc", "\x1bhelp\n", []string{"help"}, "", "help\n"},
		{"esc-esc", "h\x1b\x1b[Celp\n", []string{"help"}, "", "help\n"},
		{"esc-then-enter", "help\x1b\n", []string{"help"}, "", "help\n"},
		// A sequence cut short by a control character: the character acts.
		{"csi-cut-by-enter", "help\x1b[1\nx\n", []string{"help", "x"}, "", "help\nx\n"},
		{"ss3-cut-by-enter", "help\x1bO\n", []string{"help"}, "", "help\n"},
		{"escape-at-end", "help\x1b[", nil, "help", "help"},
		{"control-and-8bit", "h\x01e\x80l\tp\n", []string{"help"}, "", "help\n"},
		{"partial", "help\nexi", []string{"help"}, "exi", "help\nexi"},
		// History.
		{"up-recalls", "walk 1\n" + up + "\n", []string{"walk 1", "walk 1"}, "", "walk 1\nwalk 1\n"},
		{"up-ss3", "walk 1\n" + upSS3 + "\n", []string{"walk 1", "walk 1"}, "", "walk 1\nwalk 1\n"},
		{"up-up", "a\nb\n" + up + up + "\n", []string{"a", "b", "a"}, "", "a\nb\nb" + erase(1) + "a\n"},
		{"up-past-oldest", "a\n" + up + up + up + "\n", []string{"a", "a"}, "", "a\na\n"},
		{"up-then-edit", "walk 1\n" + up + "\b2\n", []string{"walk 1", "walk 2"}, "", "walk 1\nwalk 1" + erase1 + "2\n"},
		{"down-restores-draft", "a\nxy" + up + down + "z\n", []string{"a", "xyz"}, "", "a\nxy" + erase(2) + "a" + erase(1) + "xyz\n"},
		{"down-ss3", "a\nb\n" + up + up + downSS3 + "\n", []string{"a", "b", "b"}, "", "a\nb\nb" + erase(1) + "a" + erase(1) + "b\n"},
		{"down-at-newest", "a\n" + down + "b\n", []string{"a", "b"}, "", "a\nb\n"},
		{"up-on-first-line", up + "help\n", []string{"help"}, "", "help\n"},
		{"repeats-once", "a\na\n\nb\n" + up + up + "\n", []string{"a", "a", "", "b", "a"}, "", "a\na\n\nb\nb" + erase(1) + "a\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var echo strings.Builder
			l := NewLines(strings.NewReader(tc.in), &echo)
			var got []string
			for {
				line, err := l.ReadLine()
				if err == io.EOF {
					if line != tc.last {
						t.Errorf("last line %q, want %q", line, tc.last)
					}
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, line)
			}
			if strings.Join(got, "|") != strings.Join(tc.lines, "|") {
				t.Errorf("lines %q, want %q", got, tc.lines)
			}
			if echo.String() != tc.echo {
				t.Errorf("echo %q, want %q", echo.String(), tc.echo)
			}
		})
	}
}

func TestLinesTooLong(t *testing.T) {
	in := strings.Repeat("a", MaxLine) + "bcd\b\nhelp\n" + up + "\n"
	l := NewLines(strings.NewReader(in), nil)
	line, err := l.ReadLine()
	if !errors.Is(err, ErrLineTooLong) || line != strings.Repeat("a", MaxLine) {
		t.Errorf("long line: %d bytes, %v", len(line), err)
	}
	if line, err := l.ReadLine(); line != "help" || err != nil {
		t.Errorf("after a long line: %q, %v", line, err)
	}
	// The long line is not in the history: up recalls help.
	if line, err := l.ReadLine(); line != "help" || err != nil {
		t.Errorf("up after a long line: %q, %v", line, err)
	}
}

func TestHistoryBounded(t *testing.T) {
	var in strings.Builder
	for i := range MaxHistory + 10 {
		fmt.Fprintf(&in, "x %d\n", i)
	}
	l := NewLines(strings.NewReader(in.String()), nil)
	for range MaxHistory + 10 {
		if _, err := l.ReadLine(); err != nil {
			t.Fatal(err)
		}
	}
	h := l.History()
	if len(h) != MaxHistory || h[0] != "x 10" || h[len(h)-1] != fmt.Sprintf("x %d", MaxHistory+9) {
		t.Errorf("history has %d lines, %q to %q", len(h), h[0], h[len(h)-1])
	}
}
