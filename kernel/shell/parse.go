package shell

import (
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

// parseAddr reads a hex address or SYMBOL[+HEX], SYMBOL being the Linux
// symbol of a layout region (page_offset_base, __START_KERNEL_map, ...).
func parseAddr(l *mm.Layout, cmd, s string) (uint64, error) {
	if v, ok := parseHex(s); ok {
		return v, nil
	}
	sym, off, hasOff := strings.Cut(s, "+")
	for _, r := range l.Regions {
		if r.Symbol == "" || r.Symbol != sym {
			continue
		}
		if !hasOff {
			return uint64(r.Start), nil
		}
		if o, ok := parseHex(off); ok {
			return uint64(r.Start.Add(o)), nil
		}
		break
	}
	return 0, errorf(cmd, s, ErrNotHex, "%q is not a hex address", s)
}

// parseVA reads a virtual address and checks it is canonical in the
// layout's mode.
func parseVA(l *mm.Layout, cmd, s string) (mm.VirtAddr, error) {
	v, err := parseAddr(l, cmd, s)
	if err != nil {
		return 0, err
	}
	va := mm.VirtAddr(v)
	if !l.Mode.Canonical(va) {
		return 0, errorf(cmd, s, ErrNonCanonical, "0x%016x is not canonical in %v mode", v, l.Mode)
	}
	return va, nil
}

// parsePA reads a physical address below 2^physBits.
func parsePA(l *mm.Layout, physBits uint, cmd, s string) (mm.PhysAddr, error) {
	v, err := parseAddr(l, cmd, s)
	if err != nil {
		return 0, err
	}
	if physBits < 64 && v>>physBits != 0 {
		return 0, errorf(cmd, s, ErrPhysRange, "%#x is beyond the %d-bit physical address space", v, physBits)
	}
	return mm.PhysAddr(v), nil
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
