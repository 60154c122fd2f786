package shell

import (
	"io"
	"strings"
)

// MaxLine is the longest command line Lines keeps; the rest of a longer
// line is dropped and the line reported as ErrLineTooLong.
const MaxLine = 256

// Control characters Lines understands.
const (
	keyCtrlC     = 0x03
	keyBackspace = 0x08
	keyLF        = '\n'
	keyCR        = '\r'
	keyCtrlU     = 0x15
	keyEsc       = 0x1b
	keyDEL       = 0x7f
)

// Lines is a minimal line discipline over a byte source, for a serial
// port in raw mode: it echoes what is typed (when echo is set), ends a line
// at CR, LF or CRLF, erases with backspace or DEL, drops the line on ^C or
// ^U (an empty line: the prompt comes back), and skips escape sequences (arrow keys) and other control characters.
type Lines struct {
	in     io.ByteReader
	echo   io.Writer
	lastCR bool // the previous line ended with CR: skip one LF
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

// ReadLine returns the next line without its end. At the end of input it
// returns what it has and io.EOF (a partial last line is returned with
// io.EOF). A line longer than MaxLine returns the first MaxLine bytes and
// an *Error wrapping ErrLineTooLong.
func (l *Lines) ReadLine() (string, error) {
	var b strings.Builder
	long := false
	for {
		c, err := l.in.ReadByte()
		if err != nil {
			return b.String(), err
		}
		if l.lastCR {
			l.lastCR = false
			if c == keyLF {
				continue
			}
		}
		switch {
		case c == keyCR || c == keyLF:
			l.lastCR = c == keyCR
			l.say("\n")
			if long {
				return b.String(), errorf("", "", ErrLineTooLong, "line longer than %d characters", MaxLine)
			}
			return b.String(), nil
		case c == keyBackspace || c == keyDEL:
			if s := b.String(); len(s) > 0 && !long {
				b.Reset()
				b.WriteString(s[:len(s)-1])
				l.say("\b \b")
			}
		case c == keyCtrlC || c == keyCtrlU:
			l.say("^" + string(rune('@'+c)) + "\n")
			return "", nil
		case c == keyEsc:
			if err := l.skipEscape(); err != nil {
				return b.String(), err
			}
		case c < ' ' || c > '~':
			// other control characters and non-ASCII: ignored
		case b.Len() >= MaxLine:
			long = true
		default:
			b.WriteByte(c)
			l.say(string(c))
		}
	}
}

// skipEscape drops the rest of an escape sequence: ESC [ parameters final
// byte (CSI, what arrow keys send), or ESC and one more byte.
func (l *Lines) skipEscape() error {
	c, err := l.in.ReadByte()
	if err != nil || (c != '[' && c != 'O') {
		return err
	}
	for {
		c, err := l.in.ReadByte()
		if err != nil {
			return err
		}
		if c >= 0x40 && c <= 0x7e {
			return nil
		}
	}
}
