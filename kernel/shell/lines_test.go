package shell

import (
	"errors"
	"io"
	"strings"
	"testing"
)

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
		{"backspace", "wakl\b\blk\x7f\x7flk 1\n", []string{"walk 1"}, "", "wakl\b \b\b \blk\b \b\b \blk 1\n"},
		{"backspace-empty", "\b\x7fhelp\n", []string{"help"}, "", "help\n"},
		{"ctrl-c", "walk zz\x03help\n", []string{"", "help"}, "", "walk zz^C\nhelp\n"},
		{"ctrl-u", "walk zz\x15help\n", []string{"", "help"}, "", "walk zz^U\nhelp\n"},
		{"arrows", "he\x1b[Alp\x1bOB\x1b[1;5C\n", []string{"help"}, "", "help\n"},
		{"control-and-8bit", "h\x01e\x80l\tp\n", []string{"help"}, "", "help\n"},
		{"partial", "help\nexi", []string{"help"}, "exi", "help\nexi"},
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
	in := strings.Repeat("a", MaxLine) + "bcd\b\nhelp\n"
	l := NewLines(strings.NewReader(in), nil)
	line, err := l.ReadLine()
	if !errors.Is(err, ErrLineTooLong) || line != strings.Repeat("a", MaxLine) {
		t.Errorf("long line: %d bytes, %v", len(line), err)
	}
	if line, err := l.ReadLine(); line != "help" || err != nil {
		t.Errorf("after a long line: %q, %v", line, err)
	}
}
