package selftest

import "strings"

// Width is the console's line width: the kernel wraps longer check lines.
const Width = 100

// ContinuationPrefix starts each continuation of a wrapped check line.
const ContinuationPrefix = "    "

// Wrap breaks line into lines of at most width columns at spaces, every
// line after the first starting with ContinuationPrefix. A word longer
// than a line is cut. A line that fits is returned as it is.
func Wrap(line string, width int) []string {
	if len(line) <= width {
		return []string{line}
	}
	var out []string
	cur, empty := "", true // the line being filled; whether it has a word yet
	for _, w := range strings.Split(line, " ") {
		if !empty && len(cur)+1+len(w) <= width {
			cur += " " + w
			continue
		}
		if !empty {
			out, cur, empty = append(out, cur), ContinuationPrefix, true
		}
		// w starts a line; a word too long for one is cut where it ends.
		for len(cur)+len(w) > width {
			n := width - len(cur)
			out, cur, w = append(out, cur+w[:n]), ContinuationPrefix, w[n:]
		}
		cur, empty = cur+w, false
	}
	return append(out, cur)
}

// Unwrap joins a wrapped line's continuation to it.
func Unwrap(line, continuation string) string {
	return line + " " + strings.TrimPrefix(continuation, ContinuationPrefix)
}

// IsContinuation reports whether line continues a wrapped check line.
func IsContinuation(line string) bool {
	return strings.HasPrefix(line, ContinuationPrefix) && len(line) > len(ContinuationPrefix) && line[len(ContinuationPrefix)] != ' '
}

// Plural is one when n is 1, else many: a count's noun on the console,
// "1 page" and "2 pages".
func Plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
