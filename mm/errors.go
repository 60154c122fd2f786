package mm

import (
	"errors"
	"fmt"
)

// Sentinel errors; test for them with errors.Is.
var (
	ErrNotMapped     = errors.New("not mapped")
	ErrAlreadyMapped = errors.New("already mapped")
	ErrMisaligned    = errors.New("misaligned")
	ErrNonCanonical  = errors.New("non-canonical address")
	ErrNoMemory      = errors.New("out of frames")
	ErrReadOnly      = errors.New("address space opened read-only")
	ErrBadLength     = errors.New("bad length")
	ErrPhysRange     = errors.New("physical address beyond MAXPHYADDR")
	ErrDoubleFree    = errors.New("frame freed twice")
	ErrNotOwned      = errors.New("frame not owned by this allocator")
	ErrReservedBits  = errors.New("reserved bits set")
)

// Error is the error returned by address-space operations: which operation
// failed, at which address and level, and why.
type Error struct {
	Op    string   // "map", "unmap", "protect", "translate", "new"
	VA    VirtAddr // the address at fault
	Level Level    // the level at fault, or NoLevel
	Err   error    // the cause, often a sentinel above
}

func (e *Error) Error() string {
	if e.Level == NoLevel {
		return fmt.Sprintf("mm: %s %v: %v", e.Op, e.VA, e.Err)
	}
	return fmt.Sprintf("mm: %s %v (%v): %v", e.Op, e.VA, e.Level, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func opErr(op string, va VirtAddr, l Level, err error) error {
	return &Error{Op: op, VA: va, Level: l, Err: err}
}
