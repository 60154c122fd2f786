package shell

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/arch/x86/x86asm"

	"github.com/physmap/physmap/kernel/selftest"
	"github.com/physmap/physmap/mm"
)

// Limits of x and dis.
const (
	defaultDump = 64
	maxDump     = 4096
	defaultDis  = 8
	maxDis      = 64
	// maxInsnLen is the longest x86 instruction (SDM Vol. 2A 2.3.11).
	maxInsnLen = 15
	// dumpWidth is the bytes per hex dump line.
	dumpWidth = 16
	// disBytes is the width, in bytes, of dis's byte column.
	disBytes = 10
	// maxWXList bounds the W+X mappings wx lists.
	maxWXList = 16
)

// walk prints every entry the walk of VA visits, like crash's vtop: the
// levels it reached, the not-present entry where it stopped, then the PA.
func (s *Shell) walk(args []string) error {
	l := s.m.Layout()
	va, err := s.parseVA("walk", args[0])
	if err != nil {
		return err
	}
	as, err := s.tables("walk")
	if err != nil {
		return err
	}
	t, err := as.Translate(va)
	under := ""
	if s.use.pid != 0 {
		under = ", " + s.use.String()
	}
	fmt.Fprintf(s.out, "0x%016x%s in %s (%v%s, top table %v)\n", uint64(va), s.symbolNote(va), regionName(l.Find(va)), as.Mode(), under, as.Root())
	fmt.Fprintf(s.out, "  %-5s %-18s %5s  %s\n", "level", "table", "index", "entry")
	for _, st := range t.Path() {
		fmt.Fprintf(s.out, "  %-5v 0x%016x %5d  %s\n", st.Level, uint64(st.Table), st.Index, st.Entry.Decode(st.Level, s.m.PhysBits()))
	}
	if errors.Is(err, mm.ErrNotMapped) {
		last := t.Path()[t.NSteps-1]
		return errorf("walk", args[0], ErrNotMapped, "0x%016x is not mapped (%v entry %d of the table at %v is not present)",
			uint64(va), last.Level, last.Index, last.Table)
	}
	if err != nil {
		return errorf("walk", args[0], err, "walking 0x%016x: %v", uint64(va), err)
	}
	fmt.Fprintf(s.out, "PA %v (%v page at %v, effective %v)\n", t.PA, t.Size, t.PA.AlignDown(uint64(t.Size)), t.Attrs)
	return nil
}

// symbolNote is " (_stext+0x10)" for an address with a symbol at or below
// it in the same region, "" otherwise.
func (s *Shell) symbolNote(va mm.VirtAddr) string {
	sym, ok := s.symbols().nearest(va)
	r := s.m.Layout().Find(va)
	if !ok || !r.Contains(sym.VA) || (sym.VA == va && sym.Name == r.Symbol) {
		return "" // none, or only the region's own name, which follows
	}
	return " (" + s.describe(va) + ")"
}

// aliases lists every virtual address that maps a physical address.
func (s *Shell) aliases(args []string) error {
	l := s.m.Layout()
	pa, via, err := s.parsePA("aliases", args[0])
	if err != nil {
		return err
	}
	if via != 0 {
		fmt.Fprintf(s.out, "%s is 0x%016x, which maps %v\n", args[0], uint64(via), pa)
	}
	as, err := s.tables("aliases")
	if err != nil {
		return err
	}
	var found []mm.Leaf
	for lf := range as.AllLeaves() {
		if pa >= lf.PA && pa < lf.PA.Add(uint64(lf.Size)) {
			found = append(found, lf)
		}
	}
	if len(found) == 0 {
		return errorf("aliases", args[0], ErrNotMapped, "%v is not mapped at any virtual address", pa)
	}
	fmt.Fprintf(s.out, "%v (frame %v) is mapped at %d virtual address%s:\n", pa, pa.AlignDown(uint64(mm.Size4K)), len(found), plural(len(found), "", "es"))
	for _, lf := range found {
		va := lf.VA.Add(uint64(pa - lf.PA))
		fmt.Fprintf(s.out, "  0x%016x  %-2v %-3v  %-14v  %s\n", uint64(va), lf.Size, lf.Level, lf.Attrs, regionName(l.Find(va)))
	}
	return nil
}

// plural is one for n == 1, else many.
var plural = selftest.Plural

// canonicalLen returns how many of n bytes from the canonical va stay
// canonical: up to the end of the lower half, or up to 2^64.
func canonicalLen(m mm.Mode, va mm.VirtAddr, n int) int {
	if va < m.UserEnd() {
		return int(min(uint64(n), uint64(m.UserEnd()-va)))
	}
	return int(min(uint64(n), -uint64(va))) // va is in the upper half: not 0
}

// read reads n bytes at va, clipped to the canonical half va lies in. The
// error, if any, is an *Error for the first byte not read.
func (s *Shell) read(cmd string, va mm.VirtAddr, n int) ([]byte, error) {
	mode := s.m.Layout().Mode
	want := canonicalLen(mode, va, n)
	buf := make([]byte, want)
	read := s.m.Read
	if s.use.pid != 0 {
		pr, err := s.usedProcess(cmd)
		if err != nil {
			return nil, err
		}
		if s.use.user {
			return nil, errorf(cmd, "", ErrUserCopy, "%s reads through the CPU, which cannot run the kernel under %s: kernel text is not mapped there (use %d reads through its kernel copy; walk and ptdump read the user copy)", cmd, s.use, s.use.pid)
		}
		read = func(va mm.VirtAddr, p []byte) (int, error) { return s.m.ReadIn(pr.Root, va, p) }
	}
	got, err := read(va, buf)
	buf = buf[:got]
	switch {
	case err != nil:
		at := va.Add(uint64(got))
		return buf, errorf(cmd, "", fmt.Errorf("%w: %w", ErrFault, err), "reading 0x%016x: %v", uint64(at), err)
	case want < n:
		at := va.Add(uint64(want))
		return buf, errorf(cmd, "", ErrNonCanonical, "0x%016x is not canonical in %v mode", uint64(at), mode)
	}
	return buf, nil
}

// dump prints a hex dump read through a virtual address.
func (s *Shell) dump(args []string) error {
	va, err := s.parseVA("x", args[0])
	if err != nil {
		return err
	}
	n, err := parseCount("x", args, 1, defaultDump, maxDump)
	if err != nil {
		return err
	}
	b, err := s.read("x", va, n)
	hexDump(s.out, va, b)
	return err
}

// hexDump prints b, read at va, dumpWidth bytes a line: address, bytes in
// two groups, printable ASCII.
func hexDump(w io.Writer, va mm.VirtAddr, b []byte) {
	for off := 0; off < len(b); off += dumpWidth {
		line := b[off:min(off+dumpWidth, len(b))]
		var hex, text strings.Builder
		for i := range dumpWidth {
			if i == dumpWidth/2 {
				hex.WriteByte(' ')
			}
			if i >= len(line) {
				hex.WriteString("   ")
				continue
			}
			fmt.Fprintf(&hex, "%02x ", line[i])
			if c := line[i]; c >= ' ' && c <= '~' {
				text.WriteByte(c)
			} else {
				text.WriteByte('.')
			}
		}
		fmt.Fprintf(w, "0x%016x  %s |%s|\n", uint64(va.Add(uint64(off))), hex.String(), text.String())
	}
}

// dis disassembles instructions read through a virtual address.
func (s *Shell) dis(args []string) error {
	va, err := s.parseVA("dis", args[0])
	if err != nil {
		return err
	}
	n, err := parseCount("dis", args, 1, defaultDis, maxDis)
	if err != nil {
		return err
	}
	b, readErr := s.read("dis", va, n*maxInsnLen)
	off := 0
	for range n {
		pc := va.Add(uint64(off))
		inst, err := decode(b[off:], readErr == nil)
		switch {
		case errors.Is(err, x86asm.ErrTruncated):
			// The instruction runs into the fault (or the end of the
			// half): that is the error to report.
			return readErr
		case err != nil:
			fmt.Fprintf(s.out, "0x%016x  %s  (bad: %v)\n", uint64(pc), insnBytes(b[off:off+1]), err)
			off++
			continue
		}
		fmt.Fprintf(s.out, "0x%016x  %s  %s\n", uint64(pc), insnBytes(b[off:off+inst.Len]), x86asm.IntelSyntax(inst, uint64(pc), nil))
		off += inst.Len
	}
	return nil
}

// decode decodes the instruction at the start of b. When b may end
// before the instruction does (complete is false: the read stopped at a
// fault), it decodes b followed by two different fillers: the instruction
// lies wholly in b only if both give the same length within b; otherwise
// the error is x86asm.ErrTruncated.
func decode(b []byte, complete bool) (x86asm.Inst, error) {
	if complete || len(b) >= maxInsnLen {
		return x86asm.Decode(b, 64)
	}
	var fill [2][]byte
	for i, f := range []byte{0x00, 0xff} {
		fill[i] = append(append([]byte(nil), b...), bytes.Repeat([]byte{f}, maxInsnLen)...)
	}
	i0, err0 := x86asm.Decode(fill[0], 64)
	i1, err1 := x86asm.Decode(fill[1], 64)
	if err0 != nil || err1 != nil || i0.Len != i1.Len || i0.Len > len(b) {
		return x86asm.Inst{}, x86asm.ErrTruncated
	}
	return i0, nil
}

// insnBytes prints an instruction's bytes in a column of disBytes.
func insnBytes(b []byte) string {
	var sb strings.Builder
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(' ')
		}
		fmt.Fprintf(&sb, "%02x", c)
	}
	return fmt.Sprintf("%-*s", disBytes*3-1, sb.String())
}

// ptdump prints the live tables in Linux's ptdump format, all of them or
// the part in one region.
func (s *Shell) ptdump(args []string) error {
	phys := len(args) > 0 && args[0] == "-phys"
	if phys {
		args = args[1:]
	}
	l := s.m.Layout()
	var region *mm.Region
	if len(args) > 0 {
		r, err := s.findRegion("ptdump", strings.Join(args, " "))
		if err != nil {
			return err
		}
		region = &r
	}
	as, err := s.tables("ptdump")
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := mm.Ptdump(&buf, as, mm.PtdumpOptions{Layout: l, PhysAddr: phys}); err != nil {
		return errorf("ptdump", "", err, "ptdump: %v", err)
	}
	if region == nil {
		_, err := s.out.Write(buf.Bytes())
		return err
	}
	fmt.Fprintf(s.out, "ptdump of %s [0x%016x-0x%016x]\n", regionName(*region), uint64(region.Start), uint64(region.Last()))
	markers := map[string]mm.VirtAddr{}
	for _, m := range l.Markers() {
		markers[m.Name] = m.Start
	}
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		if ptdumpLineIn(line, *region, markers) {
			io.WriteString(s.out, line)
		}
	}
	for lf := range as.AllLeaves() {
		if lf.VA <= region.Last() && lf.VA.Add(uint64(lf.Size)-1) >= region.Start {
			return nil
		}
	}
	fmt.Fprintln(s.out, "(nothing mapped)")
	return nil
}

// ptdumpLineIn reports whether a ptdump line belongs to region r: a marker
// placed inside it, or a run that overlaps it.
func ptdumpLineIn(line string, r mm.Region, markers map[string]mm.VirtAddr) bool {
	if name, ok := strings.CutPrefix(strings.TrimSpace(line), "---[ "); ok {
		at, ok := markers[strings.TrimSuffix(name, " ]---")]
		return ok && r.Contains(at)
	}
	// "0x%016x-0x%016x ...": start, then the exclusive end (0: the top).
	if len(line) < 37 || line[18] != '-' {
		return false
	}
	start, err1 := strconv.ParseUint(line[2:18], 16, 64)
	end, err2 := strconv.ParseUint(line[21:37], 16, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	last := mm.VirtAddr(end - 1) // end 0 wraps to the top
	return mm.VirtAddr(start) <= r.Last() && last >= r.Start
}

// wx runs Linux's W+X audit on both canonical halves and lists what it
// finds.
// lsmod prints /proc/modules' lines, as Linux's lsmod reads them.
func (s *Shell) lsmod([]string) error {
	return s.m.Modules(s.out)
}

func (s *Shell) wx(args []string) error {
	as, err := s.tables("wx")
	if err != nil {
		return err
	}
	mode := as.Mode()
	var lower, upper uint64
	var found []mm.Leaf
	for lf := range as.AllLeaves() {
		if lf.Attrs&mm.AttrWrite == 0 || lf.Attrs&mm.AttrNX != 0 {
			continue
		}
		if lf.VA < mode.UserEnd() {
			lower += uint64(lf.Size) / uint64(mm.Size4K)
		} else {
			upper += uint64(lf.Size) / uint64(mm.Size4K)
		}
		found = append(found, lf)
	}
	fmt.Fprintf(s.out, "kernel half [0x%016x, top]: %s\n", uint64(mode.KernelStart()), mm.WXReport(upper))
	fmt.Fprintf(s.out, "lower half [0, 0x%016x): %s\n", uint64(mode.UserEnd()), mm.WXReport(lower))
	for i, lf := range found {
		if i == maxWXList {
			fmt.Fprintf(s.out, "  ... and %d more\n", len(found)-i)
			break
		}
		fmt.Fprintf(s.out, "  W+X 0x%016x %-2v %-3v -> %v  %v\n", uint64(lf.VA), lf.Size, lf.Level, lf.PA, lf.Attrs)
	}
	return nil
}

// sym lists the symbols, or says what one address expression is: its
// value, the nearest symbol at or below it and its region.
func (s *Shell) sym(args []string) error {
	l := s.m.Layout()
	if len(args) == 0 {
		for _, sym := range s.symbols().sorted() {
			where := shortName(l.Find(sym.VA).Kind)
			if where == "" {
				where = "(hole)"
			}
			fmt.Fprintf(s.out, "0x%016x  %-22s %s\n", uint64(sym.VA), sym.Name, where)
		}
		return nil
	}
	va, err := s.parseVA("sym", args[0])
	if err != nil {
		return err
	}
	var names []string
	for _, sym := range s.symbols().all() {
		if sym.VA == va && !slices.Contains(names, sym.Name) {
			names = append(names, sym.Name)
		}
	}
	desc := strings.Join(names, ", ")
	if desc == "" {
		desc = s.describe(va)
	}
	if desc == "" {
		desc = "no symbol at or below it"
	}
	fmt.Fprintf(s.out, "0x%016x  %s  (%s)\n", uint64(va), desc, regionName(l.Find(va)))
	return nil
}
