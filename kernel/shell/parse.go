package shell

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	"github.com/physmap/physmap/mm"
)

// parseHex reads a 64-bit hex number: optional 0x, optional _ separators.
func parseHex(s string) (uint64, bool) {
	t := strings.ReplaceAll(s, "_", "")
	if len(t) > 1 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X') {
		t = t[2:]
	}
	if t == "" || t[0] == '+' || t[0] == '-' {
		return 0, false
	}
	v, err := strconv.ParseUint(t, 16, 64)
	return v, err == nil
}

// isIdent reports whether s can be a symbol's name: letters, digits, _ and
// . (GCC's local symbols: foo.cold, foo.isra.0), not starting with a digit.
func isIdent(s string) bool {
	for i, c := range s {
		switch {
		case c == '_' || c == '.' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != ""
}

// addr is an address expression as typed and what it came to.
type addr struct {
	v      uint64
	symbol bool // it starts with a symbol (a virtual address)
}

// parseAddr reads an address expression: a hex number or a symbol (see
// symbols), then any number of +HEX or -HEX offsets. Wrapping past 2^64 or
// below 0 is an error, not an address.
func (s *Shell) parseAddr(cmd, arg string) (addr, error) {
	// Split at each + or -: base, then signed offsets.
	var terms []string
	start := 0
	for i := 0; i < len(arg); i++ {
		if arg[i] == '+' || arg[i] == '-' {
			terms = append(terms, arg[start:i])
			start = i
		}
	}
	terms = append(terms, arg[start:])
	base := terms[0]
	var a addr
	if v, ok := parseHex(base); ok {
		a.v = v
	} else if sym, ok := s.symbols().lookup(base); ok {
		a = addr{uint64(sym.VA), true}
	} else if isIdent(base) {
		return addr{}, errorf(cmd, arg, ErrNoSymbol, "%s", s.symbols().unknown(base))
	} else {
		return addr{}, errorf(cmd, arg, ErrNotHex, "%q is not a hex address or a symbol", arg)
	}
	for _, t := range terms[1:] {
		off, ok := parseHex(t[1:])
		if !ok {
			return addr{}, errorf(cmd, arg, ErrNotHex, "%q: offset %q is not a hex number", arg, t[1:])
		}
		var borrow uint64
		old := a.v
		if t[0] == '+' {
			a.v, borrow = bits.Add64(a.v, off, 0)
			if borrow != 0 {
				return addr{}, errorf(cmd, arg, ErrOverflow, "%q overflows: %#x + %#x is past 2^64", arg, old, off)
			}
			continue
		}
		a.v, borrow = bits.Sub64(a.v, off, 0)
		if borrow != 0 {
			return addr{}, errorf(cmd, arg, ErrOverflow, "%q overflows: %#x - %#x is below 0", arg, old, off)
		}
	}
	return a, nil
}

// parseVA reads a virtual address and checks it is canonical in the
// layout's mode.
func (s *Shell) parseVA(cmd, arg string) (mm.VirtAddr, error) {
	a, err := s.parseAddr(cmd, arg)
	if err != nil {
		return 0, err
	}
	l := s.m.Layout()
	va := mm.VirtAddr(a.v)
	if !l.Mode.Canonical(va) {
		return 0, errorf(cmd, arg, ErrNonCanonical, "0x%016x is not canonical in %v mode", a.v, l.Mode)
	}
	return va, nil
}

// parsePA reads a physical address below 2^physBits: a hex number (with
// offsets), or a symbol expression, which is a virtual address and is
// translated through the live tables. via is the virtual address a symbol
// gave, 0 for a plain number.
func (s *Shell) parsePA(cmd, arg string) (pa mm.PhysAddr, via mm.VirtAddr, err error) {
	a, err := s.parseAddr(cmd, arg)
	if err != nil {
		return 0, 0, err
	}
	if a.symbol {
		va := mm.VirtAddr(a.v)
		if mode := s.m.Layout().Mode; !mode.Canonical(va) {
			return 0, 0, errorf(cmd, arg, ErrNonCanonical, "0x%016x is not canonical in %v mode", a.v, mode)
		}
		as, err := s.tables(cmd)
		if err != nil {
			return 0, 0, err
		}
		t, err := as.Translate(va)
		if err != nil {
			return 0, 0, errorf(cmd, arg, ErrNotMapped, "%s is the virtual address 0x%016x, which is not mapped: no physical address", arg, uint64(va))
		}
		return t.PA, va, nil
	}
	physBits := s.m.PhysBits()
	if physBits < 64 && a.v>>physBits != 0 {
		return 0, 0, errorf(cmd, arg, ErrPhysRange, "%#x is beyond the %d-bit physical address space", a.v, physBits)
	}
	return mm.PhysAddr(a.v), 0, nil
}

// parseCount reads a count from 1 to max, decimal or 0x-prefixed hex; an
// absent count is def.
func parseCount(cmd string, args []string, i, def, max int) (int, error) {
	if len(args) <= i {
		return def, nil
	}
	s := args[i]
	t, base := strings.ReplaceAll(s, "_", ""), 10
	if h, ok := strings.CutPrefix(strings.ToLower(t), "0x"); ok {
		t, base = h, 16
	}
	n, err := strconv.ParseUint(t, base, 32)
	if err != nil || n < 1 || n > uint64(max) {
		return 0, errorf(cmd, s, ErrBadCount, "%q is not a count from 1 to %d", s, max)
	}
	return int(n), nil
}

// describe writes va as the nearest symbol at or below it plus an offset,
// or "" when no symbol is at or below it.
func (s *Shell) describe(va mm.VirtAddr) string {
	sym, ok := s.symbols().nearest(va)
	if !ok {
		return ""
	}
	if sym.VA == va {
		return sym.Name
	}
	return fmt.Sprintf("%s+%#x", sym.Name, uint64(va-sym.VA))
}
