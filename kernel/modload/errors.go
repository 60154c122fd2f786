package modload

import (
	"debug/elf"
	"fmt"
	"strings"

	"github.com/physmap/physmap/mm"
)

// Errno is the errno Linux's module loader returns for a failure
// (include/uapi/asm-generic/errno-base.h). Every [Error] wraps one, so
// errors.Is(err, modload.ENOEXEC) works.
type Errno int

// The errnos the loader returns, with Linux's values.
const (
	ENOENT  Errno = 2  // unknown symbol (kernel/module/main.c: simplify_symbols)
	ENOEXEC Errno = 8  // malformed object, bad relocation
	EAGAIN  Errno = 11 // EWOULDBLOCK: other modules use it (delete_module)
	ENOMEM  Errno = 12 // no room for it (module_alloc fails)
	EBUSY   Errno = 16 // permanent: it has init but no exit (delete_module)
	EEXIST  Errno = 17 // a module of that name is loaded (add_unformed_module)
	EINVAL  Errno = 22 // a base address that is not page-aligned
)

// Error returns the errno's name.
func (e Errno) Error() string {
	switch e {
	case ENOENT:
		return "ENOENT"
	case ENOEXEC:
		return "ENOEXEC"
	case EAGAIN:
		return "EAGAIN"
	case ENOMEM:
		return "ENOMEM"
	case EBUSY:
		return "EBUSY"
	case EEXIST:
		return "EEXIST"
	case EINVAL:
		return "EINVAL"
	}
	return fmt.Sprintf("errno %d", int(e))
}

// Error is one refusal of the loader. Msg is a single line: Linux 6.1's own
// wording (meaning, not its code) where Linux checks the same thing, with
// Linux set; otherwise physmap's, for a check Linux does not make. Detail,
// when set, is physmap's explanation for a second line ("physmap: ...").
type Error struct {
	Module string // the module's name, "" before it is known
	Errno  Errno
	Msg    string
	Linux  bool   // Msg is the message Linux 6.1 prints for this input
	Detail string // physmap's explanation, "" if none
	Reloc  *Reloc // the relocation at fault, for relocation errors
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the errno.
func (e *Error) Unwrap() error { return e.Errno }

// linuxErr is an error Linux 6.1 reports in these words.
func linuxErr(mod string, errno Errno, format string, args ...any) *Error {
	return &Error{Module: mod, Errno: errno, Msg: line(format, args...), Linux: true}
}

// ownErr is an error from a check physmap makes and Linux 6.1 does not.
func ownErr(mod string, errno Errno, format string, args ...any) *Error {
	return &Error{Module: mod, Errno: errno, Msg: line(format, args...)}
}

// withDetail sets the physmap explanation.
func (e *Error) withDetail(format string, args ...any) *Error {
	e.Detail = line(format, args...)
	return e
}

// line formats a message and escapes what would break it as one printable
// line: names come from the object, which may hold any bytes.
func line(format string, args ...any) string {
	msg := fmt.Sprintf(format, args...)
	for i := 0; i < len(msg); i++ {
		if c := msg[i]; c < 0x20 || c >= 0x7f {
			return escape(msg)
		}
	}
	return msg
}

// escape writes control characters and non-ASCII bytes as \xNN.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			fmt.Fprintf(&b, "\\x%02x", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// PlacementError is the refusal of a base address: every relocation that
// cannot reach from there, in the order the loader applies them (Linux
// stops at the first). Its message is the first one's.
type PlacementError struct {
	Module    string
	Base      mm.VirtAddr
	Overflows []*Error // each with Reloc set
}

// Error returns the line Linux 6.1 prints for this placement: its first
// overflow of a kind Linux checks, or physmap's first if Linux checks none
// of them.
func (e *PlacementError) Error() string { return e.First().Msg }

// First returns the overflow Linux 6.1 reports first (R_X86_64_32 or 32S;
// it does not check PC32 and PLT32), or the first of all if there is none.
func (e *PlacementError) First() *Error {
	for _, o := range e.Overflows {
		if o.Linux {
			return o
		}
	}
	return e.Overflows[0]
}

// Unwrap returns the overflows, so errors.As finds the first *Error and
// errors.Is finds ENOEXEC.
func (e *PlacementError) Unwrap() []error {
	errs := make([]error, len(e.Overflows))
	for i, o := range e.Overflows {
		errs[i] = o
	}
	return errs
}

// Summary gives the overflows in one line: how many of each type, and how
// far out of reach the farthest of each type is, e.g. "reloc at
// 0xffffc90000000000: 3 R_X86_64_PC32 up to 0x36ff9122c0a1 (55.0 TiB), ...
// cannot reach".
func (e *PlacementError) Summary() string {
	type agg struct {
		n   int
		far uint64
	}
	var order []elf.R_X86_64
	by := map[elf.R_X86_64]*agg{}
	for _, o := range e.Overflows {
		r := o.Reloc
		a := by[r.Type]
		if a == nil {
			a = &agg{}
			by[r.Type] = a
			order = append(order, r.Type)
		}
		a.n++
		a.far = max(a.far, reach(r))
	}
	parts := make([]string, len(order))
	for i, t := range order {
		parts[i] = fmt.Sprintf("%d %v up to %s", by[t].n, t, bytesText(by[t].far))
	}
	return line("%s at %v: %s cannot reach", e.Module, e.Base, strings.Join(parts, ", "))
}

// UnknownSymbolError lists every undefined symbol nothing provides, as
// simplify_symbols reports each one before failing the load.
type UnknownSymbolError struct {
	Module string
	Names  []string
}

// Error gives Linux's line for the first name and lists the others.
func (e *UnknownSymbolError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: Unknown symbol %s (err %d)", e.Module, e.Names[0], -int(ENOENT))
	if len(e.Names) > 1 {
		fmt.Fprintf(&b, "; also unknown: %s", strings.Join(e.Names[1:], ", "))
	}
	return line("%s", b.String())
}

// Lines gives Linux's line for each name, as the kernel log would show them.
func (e *UnknownSymbolError) Lines() []string {
	lines := make([]string, len(e.Names))
	for i, n := range e.Names {
		lines[i] = line("%s: Unknown symbol %s (err %d)", e.Module, n, -int(ENOENT))
	}
	return lines
}

// Unwrap returns ENOENT.
func (e *UnknownSymbolError) Unwrap() error { return ENOENT }
