package shell

import (
	"errors"
	"fmt"
)

// Sentinel errors, wrapped by *Error; test for them with errors.Is.
var (
	ErrUnknownCommand = errors.New("unknown command")
	ErrUsage          = errors.New("wrong arguments")
	ErrNotHex         = errors.New("not a hex address")
	ErrNoSymbol       = errors.New("no such symbol")
	ErrOverflow       = errors.New("address arithmetic overflows")
	ErrNonCanonical   = errors.New("not canonical")
	ErrPhysRange      = errors.New("beyond the physical address space")
	ErrNotMapped      = errors.New("not mapped")
	ErrBadCount       = errors.New("bad count")
	ErrNoRegion       = errors.New("no such region")
	ErrFault          = errors.New("the access faulted")
	ErrNoTables       = errors.New("no live page tables")
	ErrLineTooLong    = errors.New("line too long")
	ErrBadNumber      = errors.New("not a number")
	ErrNoProcess      = errors.New("no such process")
	ErrUserCopy       = errors.New("the CPU cannot read under PTI's user copy")
)

// Error is a command's failure: which command, the argument at fault as
// typed (or as formatted), the sentinel, and the one line the user sees
// after "error: ".
type Error struct {
	Cmd string // the command, as typed
	Arg string // the argument at fault, "" if none
	Err error  // one of the sentinels, possibly wrapping the machine's error
	Msg string // the message, one line
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func errorf(cmd, arg string, err error, format string, args ...any) *Error {
	return &Error{Cmd: cmd, Arg: arg, Err: err, Msg: fmt.Sprintf(format, args...)}
}
