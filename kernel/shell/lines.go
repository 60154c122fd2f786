package shell

import (
	"io"
	"strings"
)

// MaxLine is the longest command line Lines keeps; the rest of a longer
// line is dropped and the line reported as ErrLineTooLong.
const MaxLine = 256

// MaxHistory is how many lines the history keeps.
const MaxHistory = 64

// Control characters Lines understands.
const (
	keyCtrlC     = 0x03
	keyCtrlD     = 0x04
	keyBackspace = 0x08
	keyLF        = '\n'
	keyCR        = '\r'
	keyCtrlU     = 0x15
	keyEsc       = 0x1b
	keyDEL       = 0x7f
)

// Escape sequences (ECMA-48 5.4): ESC [ then parameter bytes 0x30-0x3f
// and intermediate bytes 0x20-0x2f up to one final byte 0x40-0x7e (CSI,
// what most terminals send for the arrow keys: ESC [ A), or ESC O and one
// final byte (SS3, the arrow keys in a terminal's application mode: ESC O
// A).
const (
	csiIntro   = '['
	ss3Intro   = 'O'
	finalFirst = 0x40
	finalLast  = 0x7e
	paramFirst = 0x20 // intermediate bytes, then parameter bytes
	paramLast  = 0x3f
	keyUp      = 'A' // final byte of the up arrow, in CSI and SS3 alike
	keyDown    = 'B'
)

// escState is where Lines is in an escape sequence.
type escState uint8

const (
	escNone escState = iota
	escStart
	escCSI
	escSS3
)

// Lines is a small line discipline over a byte source, for a serial port
// in raw mode: it echoes what is typed (when echo is set), ends a line at
// CR, LF or CRLF, erases a character with backspace or DEL and the line
// with ^U, drops the line on ^C (the prompt comes back), ends the input on
// ^D at an empty line, and recalls earlier lines with the up and down
// arrows. Escape sequences are parsed to their end: CSI to its final byte,
// SS3 with its one, and an ESC followed by anything else is dropped, the
// byte after it kept. Other control characters and bytes beyond ASCII are
// ignored.
type Lines struct {
	in      io.ByteReader
	echo    io.Writer
	lastCR  bool     // the previous line ended with CR: skip one LF
	history []string // earlier lines, oldest first
}

// NewLines reads lines from in, echoing to echo (nil: no echo, as for a
// script on the host).
func NewLines(in io.ByteReader, echo io.Writer) *Lines {
	return &Lines{in: in, echo: echo}
}

func (l *Lines) say(s string) {
	if l.echo != nil {
		io.WriteString(l.echo, s)
	}
}

// editor is the line being typed.
type editor struct {
	l     *Lines
	buf   []byte
	long  bool   // more than MaxLine bytes were typed
	hist  int    // the history entry shown; len(history): the line typed
	draft []byte // the line typed, while a history entry is shown
}

// replace shows s instead of the line on screen.
func (e *editor) replace(s []byte) {
	e.l.say(strings.Repeat("\b \b", len(e.buf)))
	e.buf = append(e.buf[:0], s...)
	e.long = false
	e.l.say(string(s))
}

// key acts on the final byte of an escape sequence: the up and down arrows
// walk the history; the other keys are ignored.
func (e *editor) key(final byte) {
	h := e.l.history
	switch final {
	case keyUp:
		if e.hist == 0 {
			return
		}
		if e.hist == len(h) {
			e.draft = append(e.draft[:0], e.buf...)
		}
		e.hist--
		e.replace([]byte(h[e.hist]))
	case keyDown:
		if e.hist == len(h) {
			return
		}
		e.hist++
		if e.hist == len(h) {
			e.replace(e.draft)
			return
		}
		e.replace([]byte(h[e.hist]))
	}
}

// remember adds a line to the history, unless it is empty or repeats the
// last one.
func (l *Lines) remember(line string) {
	if strings.TrimSpace(line) == "" || (len(l.history) > 0 && l.history[len(l.history)-1] == line) {
		return
	}
	if len(l.history) == MaxHistory {
		l.history = append(l.history[:0], l.history[1:]...)
	}
	l.history = append(l.history, line)
}

// History returns the lines the up arrow recalls, oldest first.
func (l *Lines) History() []string { return append([]string(nil), l.history...) }

// ReadLine returns the next line without its end. At the end of input, or
// at ^D on an empty line, it returns io.EOF (a partial last line is
// returned with io.EOF). A line longer than MaxLine returns the first
// MaxLine bytes and an *Error wrapping ErrLineTooLong.
func (l *Lines) ReadLine() (string, error) {
	e := &editor{l: l, hist: len(l.history)}
	esc := escNone
	for {
		c, err := l.in.ReadByte()
		if err != nil {
			return string(e.buf), err
		}
		if l.lastCR {
			l.lastCR = false
			if c == keyLF {
				continue
			}
		}
		switch esc {
		case escStart:
			switch c {
			case csiIntro:
				esc = escCSI
				continue
			case ss3Intro:
				esc = escSS3
				continue
			case keyEsc:
				continue // ESC ESC: the first is dropped
			}
			esc = escNone // a lone ESC: dropped, c is typed
		case escCSI:
			switch {
			case c >= paramFirst && c <= paramLast, c == keyDEL:
				continue
			case c >= finalFirst && c <= finalLast:
				esc = escNone
				e.key(c)
				continue
			}
			esc = escNone // cut short by a control character: c acts
		case escSS3:
			esc = escNone
			if c >= finalFirst && c <= finalLast {
				e.key(c)
				continue
			}
		}
		switch {
		case c == keyCR || c == keyLF:
			l.lastCR = c == keyCR
			l.say("\n")
			if e.long {
				return string(e.buf), errorf("", "", ErrLineTooLong, "line longer than %d characters", MaxLine)
			}
			l.remember(string(e.buf))
			return string(e.buf), nil
		case c == keyBackspace || c == keyDEL:
			if len(e.buf) > 0 && !e.long {
				e.buf = e.buf[:len(e.buf)-1]
				l.say("\b \b")
			}
		case c == keyCtrlU:
			e.replace(nil)
		case c == keyCtrlC:
			l.say("^C\n")
			return "", nil
		case c == keyCtrlD:
			if len(e.buf) == 0 && !e.long {
				l.say("^D")
				return "", io.EOF
			}
		case c == keyEsc:
			esc = escStart
		case c < ' ' || c > '~':
			// other control characters and non-ASCII: ignored
		case len(e.buf) >= MaxLine:
			e.long = true
		default:
			e.buf = append(e.buf, c)
			l.say(string(c))
		}
	}
}
