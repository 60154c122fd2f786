package qemu

// The cross-check: a second opinion on the kernel's page tables from QEMU's
// own MMU code. On a machine held with physmap.hold=1 the harness asks QEMU
// for every present leaf ("info tlb", QEMU target/i386/monitor.c: print_pte,
// tlb_info_la48, tlb_info_la57), for CR3 ("info registers") and for single
// translations ("gva2gpa", QEMU monitor/misc.c: hmp_gva2gpa), and compares
// the answers with the JSON dump the kernel wrote to the bulk channel
// (package kernel/dump; a kernel that printed it on its console instead is
// read from there).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/physmap/physmap/kernel/dump"
	"github.com/physmap/physmap/mm"
)

// Cross-check errors. ErrQEMUDisagrees wraps ErrCrossCheck, so errors.Is
// finds ErrCrossCheck for every cross-check failure.
var (
	ErrCrossCheck    = errors.New("cross-check with QEMU failed")
	ErrQEMUDisagrees = fmt.Errorf("%w: QEMU's page walk disagrees with the kernel's dump", ErrCrossCheck)
)

// HoldOption is the kernel option that makes the machine hold for the
// cross-check.
const HoldOption = "physmap.hold=1"

// WithHold returns the kernel command line appendLine with HoldOption added,
// or an error if it already sets physmap.hold to something else.
func WithHold(appendLine string) (string, error) {
	for _, w := range strings.Fields(appendLine) {
		if w == HoldOption {
			return appendLine, nil
		}
		if strings.HasPrefix(w, "physmap.hold=") {
			return "", &Error{Op: "crosscheck", Err: ErrCrossCheck, Detail: fmt.Sprintf("the cross-check needs %s, the command line has %s", HoldOption, w)}
		}
	}
	return strings.TrimSpace(appendLine + " " + HoldOption), nil
}

// TLBBits are the nine letters QEMU's info tlb prints after each leaf, in
// its order: the leaf entry's own bits, not combined with the levels above.
type TLBBits uint16

// The letters, in QEMU's order "XGPDACTUW".
const (
	TLBNX       TLBBits = 1 << iota // X: execute disable (bit 63)
	TLBGlobal                       // G: global (bit 8)
	TLBPSE                          // P: page size (bit 7): a 2M or 1G leaf
	TLBDirty                        // D (bit 6)
	TLBAccessed                     // A (bit 5)
	TLBPCD                          // C: cache disable (bit 4)
	TLBPWT                          // T: write-through (bit 3)
	TLBUser                         // U: user/supervisor (bit 2)
	TLBWrite                        // W: read/write (bit 1)
)

const tlbLetters = "XGPDACTUW"

// String prints b the way QEMU does, "-" for a clear bit.
func (b TLBBits) String() string {
	out := []byte(tlbLetters)
	for i := range out {
		if b&(1<<i) == 0 {
			out[i] = '-'
		}
	}
	return string(out)
}

// TLBEntry is one line of info tlb: a present leaf.
type TLBEntry struct {
	VA   mm.VirtAddr // canonical, as QEMU sign-extends it
	PA   mm.PhysAddr // the frame, masked to the leaf's page size
	Bits TLBBits
}

// tlbLine is QEMU's format: "%016lx: %016lx %c%c%c%c%c%c%c%c%c".
var tlbLine = regexp.MustCompile(`^([0-9a-f]{16}): ([0-9a-f]{16}) ([X-][G-][P-][D-][A-][C-][T-][U-][W-])$`)

// ParseTLB parses QEMU's info tlb output for x86-64 (lines end in "\r\n"
// over QMP). Any line it does not recognise is an error, "PG disabled"
// included.
func ParseTLB(text string) ([]TLBEntry, error) {
	var out []TLBEntry
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			continue
		}
		m := tlbLine.FindStringSubmatch(line)
		if m == nil {
			return nil, &Error{Op: "crosscheck", Err: ErrCrossCheck, Detail: fmt.Sprintf("info tlb line %d: %q is not \"VA: PA XGPDACTUW\"", i+1, line)}
		}
		va, _ := strconv.ParseUint(m[1], 16, 64)
		pa, _ := strconv.ParseUint(m[2], 16, 64)
		var bits TLBBits
		for j, c := range m[3] {
			if c != '-' {
				bits |= 1 << j
			}
		}
		out = append(out, TLBEntry{VA: mm.VirtAddr(va), PA: mm.PhysAddr(pa), Bits: bits})
	}
	return out, nil
}

// ParseGVA2GPA parses QEMU's gva2gpa answer: "gpa: 0x..." or "Unmapped".
func ParseGVA2GPA(text string) (pa mm.PhysAddr, mapped bool, err error) {
	s := strings.TrimSpace(text)
	if s == "Unmapped" {
		return 0, false, nil
	}
	if v, ok := strings.CutPrefix(s, "gpa: "); ok {
		// QEMU prints "%#" HWADDR_PRIx: 0 comes out as "0".
		n, perr := strconv.ParseUint(strings.TrimPrefix(v, "0x"), 16, 64)
		if perr == nil && (strings.HasPrefix(v, "0x") || v == "0") {
			return mm.PhysAddr(n), true, nil
		}
	}
	return 0, false, &Error{Op: "crosscheck", Err: ErrCrossCheck, Detail: fmt.Sprintf("gva2gpa answered %q, want \"gpa: 0x...\" or \"Unmapped\"", s)}
}

// cr3Field finds CR3 in QEMU's info registers.
var cr3Field = regexp.MustCompile(`\bCR3=([0-9a-f]{16})\b`)

// cr3AddrMask keeps the table address of CR3 (SDM Vol. 3A 4.5: bits 51:12;
// the low bits are PCID or PWT/PCD).
const cr3AddrMask = 0x000ffffffffff000

// Leaf is one present leaf as one side sees it.
type Leaf struct {
	VA    mm.VirtAddr
	PA    mm.PhysAddr
	Size  mm.PageSize
	Flags dump.Flags // PAT is always clear: info tlb does not show it
}

// String prints the leaf like ptdump: "2M -> 0x40000000 RW NX GLB".
func (l Leaf) String() string {
	f := []string{"ro"}
	if l.Flags.Write {
		f[0] = "RW"
	}
	for _, b := range []struct {
		on   bool
		name string
	}{{l.Flags.User, "USR"}, {l.Flags.PWT, "PWT"}, {l.Flags.PCD, "PCD"}, {l.Flags.Global, "GLB"}} {
		if b.on {
			f = append(f, b.name)
		}
	}
	if l.Flags.NX {
		f = append(f, "NX")
	} else {
		f = append(f, "x")
	}
	return fmt.Sprintf("%s -> %#x %s", l.Size, uint64(l.PA), strings.Join(f, " "))
}

// DumpLeaves expands the dump's runs into leaves. The dump's flags are the
// effective ones across levels; physmap's upper-level entries do not
// restrict (they are RW, not NX, and U only above user leaves), so they
// equal the leaf's own bits that QEMU prints.
func DumpLeaves(d *dump.Dump) ([]Leaf, error) {
	var out []Leaf
	for _, r := range d.Runs {
		size := mm.PageSize(r.Size)
		if size != mm.Size4K && size != mm.Size2M && size != mm.Size1G {
			return nil, &Error{Op: "crosscheck", Err: ErrCrossCheck, Detail: fmt.Sprintf("dump run at %#x has page size %#x", uint64(r.VA), uint64(r.Size))}
		}
		f := r.Flags
		f.PAT = false
		for i := uint64(0); i < r.Count; i++ {
			l := r.Leaf(i)
			out = append(out, Leaf{VA: mm.VirtAddr(l.VA), PA: mm.PhysAddr(l.PA), Size: size, Flags: f})
		}
	}
	return out, nil
}

// Prober asks QEMU to translate one address, as gva2gpa does.
type Prober func(ctx context.Context, va mm.VirtAddr) (pa mm.PhysAddr, mapped bool, err error)

// TLBLeaves turns info tlb's entries into leaves. A line with P is a 2M or a
// 1G leaf: info tlb prints both the same way. It is 2M unless its VA and PA
// are 1G-aligned and no other line falls in the gigabyte after it; then
// probe asks QEMU for VA+2M, which a 1G leaf maps at PA+2M and a lone 2M
// leaf leaves unmapped. It returns the leaves and the number of probes.
func TLBLeaves(ctx context.Context, entries []TLBEntry, probe Prober) ([]Leaf, int, error) {
	es := append([]TLBEntry(nil), entries...)
	sort.Slice(es, func(i, j int) bool { return es[i].VA < es[j].VA })
	out := make([]Leaf, 0, len(es))
	probes := 0
	for i, e := range es {
		l := Leaf{VA: e.VA, PA: e.PA, Size: mm.Size4K, Flags: dump.Flags{
			Write: e.Bits&TLBWrite != 0, User: e.Bits&TLBUser != 0, NX: e.Bits&TLBNX != 0,
			Global: e.Bits&TLBGlobal != 0, PWT: e.Bits&TLBPWT != 0, PCD: e.Bits&TLBPCD != 0}}
		if e.Bits&TLBPSE != 0 {
			l.Size = mm.Size2M
			lastVA := e.VA.Add(uint64(mm.Size1G) - 1)
			alone := i+1 == len(es) || es[i+1].VA > lastVA || lastVA < e.VA
			if e.VA.IsAligned(uint64(mm.Size1G)) && e.PA.IsAligned(uint64(mm.Size1G)) && alone {
				probes++
				pa, mapped, err := probe(ctx, e.VA.Add(uint64(mm.Size2M)))
				if err != nil {
					return nil, probes, err
				}
				if mapped && pa == e.PA.Add(uint64(mm.Size2M)) {
					l.Size = mm.Size1G
				}
			}
		}
		out = append(out, l)
	}
	return out, probes, nil
}

// DiffKind says how the two views of one address differ. Frame, size and
// flags may combine; missing and extra stand alone.
type DiffKind uint8

// Kinds of difference.
const (
	DiffMissing DiffKind = 1 << iota // in the dump, not in QEMU's walk
	DiffExtra                        // in QEMU's walk, not in the dump
	DiffFrame                        // another physical address
	DiffSize                         // another page size
	DiffFlags                        // other RW, user, NX, global, PWT or PCD bits
)

func (k DiffKind) String() string {
	var s []string
	for _, n := range []struct {
		k    DiffKind
		name string
	}{{DiffMissing, "missing from QEMU's walk"}, {DiffExtra, "not in the dump"}, {DiffFrame, "frame"}, {DiffSize, "page size"}, {DiffFlags, "flags"}} {
		if k&n.k != 0 {
			s = append(s, n.name)
		}
	}
	return strings.Join(s, ", ")
}

// Diff is one address where the kernel's dump and QEMU disagree.
type Diff struct {
	VA         mm.VirtAddr
	Kind       DiffKind
	Dump, QEMU Leaf // the zero Leaf on the side that has none
}

func (d Diff) String() string {
	view := func(l Leaf, has bool) string {
		if !has {
			return "not mapped"
		}
		return l.String()
	}
	return fmt.Sprintf("%#x (%s): dump %s; QEMU %s", uint64(d.VA), d.Kind,
		view(d.Dump, d.Kind&DiffExtra == 0), view(d.QEMU, d.Kind&DiffMissing == 0))
}

// Section is one part of the address space compared on its own.
type Section struct {
	Name   string
	Start  mm.VirtAddr
	Last   mm.VirtAddr // inclusive, so that the kernel half can end at the top
	Leaves int         // leaves compared: those either side has here
	Diffs  []Diff      // in VA order
}

func (s *Section) holds(va mm.VirtAddr) bool { return va >= s.Start && va <= s.Last }

// Compare fills s.Leaves and s.Diffs from both views.
func (s *Section) Compare(dumpLeaves, qemuLeaves []Leaf) {
	type pair struct {
		d, q       Leaf
		hasD, hasQ bool
	}
	at := map[mm.VirtAddr]*pair{}
	get := func(va mm.VirtAddr) *pair {
		p := at[va]
		if p == nil {
			p = new(pair)
			at[va] = p
		}
		return p
	}
	for _, l := range dumpLeaves {
		if s.holds(l.VA) {
			p := get(l.VA)
			p.d, p.hasD = l, true
		}
	}
	for _, l := range qemuLeaves {
		if s.holds(l.VA) {
			p := get(l.VA)
			p.q, p.hasQ = l, true
		}
	}
	s.Leaves, s.Diffs = len(at), nil
	for va, p := range at {
		var k DiffKind
		switch {
		case !p.hasQ:
			k = DiffMissing
		case !p.hasD:
			k = DiffExtra
		default:
			if p.d.PA != p.q.PA {
				k |= DiffFrame
			}
			if p.d.Size != p.q.Size {
				k |= DiffSize
			}
			if p.d.Flags != p.q.Flags {
				k |= DiffFlags
			}
		}
		if k != 0 {
			s.Diffs = append(s.Diffs, Diff{VA: va, Kind: k, Dump: p.d, QEMU: p.q})
		}
	}
	sort.Slice(s.Diffs, func(i, j int) bool { return s.Diffs[i].VA < s.Diffs[j].VA })
}

// GVACheck is one gva2gpa question and QEMU's answer.
type GVACheck struct {
	What   string // "first instruction", "module text", ...
	VA     mm.VirtAddr
	Want   mm.PhysAddr // from the dump
	Got    mm.PhysAddr // from QEMU, valid if Mapped
	Mapped bool
}

// OK reports whether QEMU translated VA to the frame the dump names.
func (g GVACheck) OK() bool { return g.Mapped && g.Got == g.Want }

func (g GVACheck) String() string {
	got := "Unmapped"
	if g.Mapped {
		got = fmt.Sprintf("%#x", uint64(g.Got))
	}
	return fmt.Sprintf("gva2gpa %#x (%s): dump %#x; QEMU %s", uint64(g.VA), g.What, uint64(g.Want), got)
}

// CrossReport is what a cross-check found.
type CrossReport struct {
	Mode         mm.Mode
	CR3          mm.PhysAddr // the dump's, which QEMU's CR3 matched
	Kernel, Low  Section     // the kernel half and the low (identity) window
	GVA          []GVACheck
	Probes       int           // gva2gpa asked to tell a 1G leaf from a 2M one
	InfoTLBBytes int           // size of QEMU's info tlb answer
	Took         time.Duration // from the hold line's hook to the verdict
}

// MaxListed is how many differences a report lists before counting the rest.
const MaxListed = 10

// Differences counts every disagreement.
func (r *CrossReport) Differences() int {
	n := len(r.Kernel.Diffs) + len(r.Low.Diffs)
	for _, g := range r.GVA {
		if !g.OK() {
			n++
		}
	}
	return n
}

// Problems lists the disagreements, at most MaxListed of them, then a line
// counting the rest.
func (r *CrossReport) Problems() []string {
	var all []string
	for _, s := range []*Section{&r.Kernel, &r.Low} {
		for _, d := range s.Diffs {
			all = append(all, s.Name+": "+d.String())
		}
	}
	for _, g := range r.GVA {
		if !g.OK() {
			all = append(all, g.String())
		}
	}
	if len(all) > MaxListed {
		all = append(all[:MaxListed], fmt.Sprintf("... and %d more", len(all)-MaxListed))
	}
	return all
}

// Summary is the one-line verdict.
func (r *CrossReport) Summary() string {
	gvaOK := 0
	for _, g := range r.GVA {
		if g.OK() {
			gvaOK++
		}
	}
	took := fmt.Sprintf("(%.2fs)", r.Took.Seconds())
	if r.Differences() == 0 {
		return fmt.Sprintf("%d leaves of the %s and %d of the %s agree with QEMU's info tlb (%s); %d gva2gpa agree %s",
			r.Kernel.Leaves, r.Kernel.Name, r.Low.Leaves, r.Low.Name, r.Mode, len(r.GVA), took)
	}
	return fmt.Sprintf("%d of %d leaves of the %s and %d of %d of the %s differ from QEMU's info tlb (%s); %d of %d gva2gpa agree %s",
		len(r.Kernel.Diffs), r.Kernel.Leaves, r.Kernel.Name, len(r.Low.Diffs), r.Low.Leaves, r.Low.Name, r.Mode, gvaOK, len(r.GVA), took)
}

// Err is nil when QEMU agrees with the dump everywhere, else an *Error
// wrapping ErrQEMUDisagrees that names the first difference.
func (r *CrossReport) Err() error {
	n := r.Differences()
	if n == 0 {
		return nil
	}
	return &Error{Op: "crosscheck", Err: ErrQEMUDisagrees, Detail: fmt.Sprintf("%d differences, the first: %s", n, r.Problems()[0])}
}

// HMP runs one human monitor command.
type HMP func(ctx context.Context, line string) (string, error)

// CompareWithQEMU asks QEMU, through hmp, for CR3, its walk of the live
// tables and single translations, and compares them with d. It returns an
// error only when the comparison could not be made; disagreements are in
// the report (see CrossReport.Err).
func CompareWithQEMU(ctx context.Context, d *dump.Dump, hmp HMP) (*CrossReport, error) {
	setup := func(format string, args ...any) error {
		return &Error{Op: "crosscheck", Err: ErrCrossCheck, Detail: fmt.Sprintf(format, args...)}
	}
	mode := mm.Mode(d.Mode)
	if !mode.Valid() {
		return nil, setup("the dump's paging mode is %d", d.Mode)
	}
	rep := &CrossReport{Mode: mode, CR3: mm.PhysAddr(d.CR3),
		Kernel: Section{Name: "kernel half", Start: mode.KernelStart(), Last: ^mm.VirtAddr(0)},
		Low:    Section{Name: "low window", Start: 0, Last: mode.UserEnd() - 1}}

	regs, err := hmp(ctx, "info registers")
	if err != nil {
		return nil, err
	}
	m := cr3Field.FindStringSubmatch(regs)
	if m == nil {
		return nil, setup("no CR3 in info registers: %q", firstLine(regs))
	}
	cr3, _ := strconv.ParseUint(m[1], 16, 64)
	if cr3&cr3AddrMask != uint64(d.CR3)&cr3AddrMask {
		return nil, setup("QEMU's CR3 is %#x, the dump describes the tables at %#x: not the live tables", cr3, uint64(d.CR3))
	}

	probe := func(ctx context.Context, va mm.VirtAddr) (mm.PhysAddr, bool, error) {
		out, err := hmp(ctx, fmt.Sprintf("gva2gpa %#x", uint64(va)))
		if err != nil {
			return 0, false, err
		}
		return ParseGVA2GPA(out)
	}
	tlb, err := hmp(ctx, "info tlb")
	if err != nil {
		return nil, err
	}
	rep.InfoTLBBytes = len(tlb)
	entries, err := ParseTLB(tlb)
	if err != nil {
		return nil, err
	}
	qemuLeaves, probes, err := TLBLeaves(ctx, entries, probe)
	rep.Probes = probes
	if err != nil {
		return nil, err
	}
	dumpLeaves, err := DumpLeaves(d)
	if err != nil {
		return nil, err
	}
	rep.Kernel.Compare(dumpLeaves, qemuLeaves)
	rep.Low.Compare(dumpLeaves, qemuLeaves)

	checks, err := gvaPlan(d)
	if err != nil {
		return nil, err
	}
	for _, c := range checks {
		c.Got, c.Mapped, err = probe(ctx, c.VA)
		if err != nil {
			return nil, err
		}
		rep.GVA = append(rep.GVA, c)
	}
	return rep, nil
}

// The aliases the gva2gpa checks use, as the kernel names them.
const (
	aliasKernelText = "kernel text"
	aliasModText    = "module text"
	aliasModData    = "module data"
)

// gvaPlan lists the gva2gpa checks: the first instruction through each of
// its aliases (all at the start of kernel text), and every page of the
// module's text and data through each of theirs.
func gvaPlan(d *dump.Dump) ([]GVACheck, error) {
	find := func(what string) (dump.Alias, error) {
		for _, a := range d.Aliases {
			if a.What == what {
				if len(a.VAs) == 0 {
					break
				}
				return a, nil
			}
		}
		return dump.Alias{}, &Error{Op: "crosscheck", Err: ErrCrossCheck, Detail: fmt.Sprintf("the dump has no %q alias with addresses", what)}
	}
	text, err := find(aliasKernelText)
	if err != nil {
		return nil, err
	}
	var out []GVACheck
	for _, va := range text.VAs {
		out = append(out, GVACheck{What: "first instruction", VA: mm.VirtAddr(va), Want: mm.PhysAddr(text.PA)})
	}
	for _, what := range []string{aliasModText, aliasModData} {
		a, err := find(what)
		if err != nil {
			return nil, err
		}
		for _, va := range a.VAs {
			for off := uint64(0); off < uint64(a.Len); off += uint64(mm.Size4K) {
				out = append(out, GVACheck{What: what, VA: mm.VirtAddr(va).Add(off), Want: mm.PhysAddr(a.PA).Add(off)})
			}
		}
	}
	return out, nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return strings.TrimRight(l, "\r")
}

// CrossCheck runs the cross-check from a Runner: Attach it, run, then read
// Report. It reads the kernel's dump from the runner's bulk channel (or, as
// a fallback, from the console it also captures), relays QMP so that
// answers longer than the QMP library's 64 KiB line limit arrive whole, and
// compares in the hold hook.
type CrossCheck struct {
	mu      sync.Mutex
	runner  *Runner  // the runner attached to, for its bulk channel
	partial []byte   // console bytes after the last newline
	lines   []string // the dump section being captured, BeginLine first
	section []string // the last complete dump section
	relay   *qmpRelay
	report  *CrossReport
	err     error
	ran     bool
}

// Attach makes r cross-check its boot: the hold hook compares the dump on
// r's bulk channel, the console is also copied to c for a kernel that
// printed its dump there, and QMP goes through c's relay. The boot's kernel
// command line must hold the machine (see WithHold).
func (c *CrossCheck) Attach(r *Runner) {
	c.mu.Lock()
	c.runner = r
	c.mu.Unlock()
	r.taps = append(r.taps, c)
	r.DialQMP = c.Dial
	r.OnHold = c.OnHold
}

// Write takes console output, in any chunks, and keeps the last dump
// section (dump.BeginLine to dump.EndLine).
func (c *CrossCheck) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(c.partial[:i]), "\r")
		c.partial = c.partial[i+1:]
		switch {
		case line == dump.BeginLine:
			c.lines = []string{line}
		case c.lines != nil:
			c.lines = append(c.lines, line)
			if line == dump.EndLine {
				c.section, c.lines = c.lines, nil
			}
		}
	}
	return len(p), nil
}

// Dump parses the kernel's dump: from the attached runner's bulk channel,
// else from the console.
func (c *CrossCheck) Dump() (*dump.Dump, error) {
	c.mu.Lock()
	text := strings.Join(c.section, "\n")
	r := c.runner
	c.mu.Unlock()
	if r != nil {
		bulk, err := r.BulkSoFar()
		if err == nil && len(bulk) > 0 {
			d, err := dump.Extract(bytes.NewReader(bulk))
			if err != nil {
				return nil, &Error{Op: "crosscheck", Err: ErrCrossCheck, Detail: fmt.Sprintf("the kernel's dump on the bulk channel: %v", err)}
			}
			return d, nil
		}
	}
	d, err := dump.Extract(strings.NewReader(text))
	if err != nil {
		return nil, &Error{Op: "crosscheck", Err: ErrCrossCheck, Detail: fmt.Sprintf("the kernel's dump (neither on the bulk channel nor on the console): %v", err)}
	}
	return d, nil
}

// OnHold is the Runner hook: it compares the captured dump with QEMU's view
// through m and returns the report's error.
func (c *CrossCheck) OnHold(ctx context.Context, m *Monitor) error {
	start := time.Now()
	rep, err := c.compare(ctx, m)
	if rep != nil {
		rep.Took = time.Since(start)
		if err == nil {
			err = rep.Err()
		}
	}
	c.mu.Lock()
	c.report, c.err, c.ran = rep, err, true
	c.mu.Unlock()
	return err
}

func (c *CrossCheck) compare(ctx context.Context, m *Monitor) (*CrossReport, error) {
	d, err := c.Dump()
	if err != nil {
		return nil, err
	}
	return CompareWithQEMU(ctx, d, func(ctx context.Context, line string) (string, error) {
		out, err := m.HumanMonitorCommand(ctx, line)
		if err != nil {
			return "", err
		}
		c.mu.Lock()
		relay := c.relay
		c.mu.Unlock()
		return relay.resolve(out)
	})
}

// Report returns what the cross-check found: the report (nil if it could
// not compare) and its verdict. A boot that never held did not cross-check,
// which is an error too.
func (c *CrossCheck) Report() (*CrossReport, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ran {
		return nil, &Error{Op: "crosscheck", Err: ErrCrossCheck, Detail: fmt.Sprintf("the machine never held (no %q line), so QEMU was not asked", "physmap: holding")}
	}
	return c.report, c.err
}

// Dial connects a Monitor to QEMU's QMP socket at path through a relay. The
// QMP library reads each message as one line of at most 64 KiB
// (bufio.Scanner's default; go-qemu issue 159), and info tlb's answer is
// larger: the relay passes every line through but such a long answer, which
// it keeps and replaces with a short reference that resolve turns back into
// the answer.
func (c *CrossCheck) Dial(ctx context.Context, path string) (*Monitor, error) {
	up, err := dialUnix(ctx, path)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "physmap-relay")
	if err != nil {
		up.Close()
		return nil, &Error{Op: "qmp", Err: ErrQMP, Detail: err.Error()}
	}
	ln, err := net.Listen("unix", filepath.Join(dir, "qmp.sock"))
	if err != nil {
		up.Close()
		os.RemoveAll(dir)
		return nil, &Error{Op: "qmp", Err: ErrQMP, Detail: err.Error()}
	}
	relay := &qmpRelay{}
	c.mu.Lock()
	c.relay = relay
	c.mu.Unlock()
	go func() {
		down, err := ln.Accept()
		ln.Close()
		os.RemoveAll(dir)
		if err != nil {
			up.Close()
			return
		}
		relay.pump(down, up)
	}()
	m, err := DialMonitor(ctx, ln.Addr().String())
	if err != nil {
		ln.Close()
		up.Close()
		return nil, err
	}
	return m, nil
}

// dialUnix connects to QEMU's socket, retrying while QEMU creates it.
func dialUnix(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "unix", path)
		if err == nil {
			return conn, nil
		}
		select {
		case <-ctx.Done():
			return nil, &Error{Op: "qmp", Err: ErrQMP, Detail: fmt.Sprintf("connect %s: %v (last error: %v)", path, ctx.Err(), err)}
		case <-time.After(qmpRetry):
		}
	}
}

// relayLineMax is the longest QMP line the relay passes through: half the
// library's limit, bufio.MaxScanTokenSize.
const relayLineMax = bufio.MaxScanTokenSize / 2

// relayRef starts the reference that stands for a kept answer; a NUL never
// starts a monitor command's text.
const relayRef = "\x00physmap-relay "

// qmpRelay copies QMP between the library (down) and QEMU (up), keeping
// the answers too long for the library.
type qmpRelay struct {
	mu   sync.Mutex
	kept map[int]json.RawMessage
	next int
}

func (r *qmpRelay) pump(down, up net.Conn) {
	go func() {
		io.Copy(up, down)
		up.Close()
	}()
	defer down.Close()
	br := bufio.NewReader(up)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if _, werr := down.Write(r.shorten(line)); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// shorten returns line, or for a reply too long for the library a reply
// with a reference to it.
func (r *qmpRelay) shorten(line []byte) []byte {
	if len(line) <= relayLineMax {
		return line
	}
	var reply struct {
		Return json.RawMessage `json:"return"`
		ID     json.RawMessage `json:"id,omitempty"`
	}
	if json.Unmarshal(line, &reply) != nil || reply.Return == nil {
		return line // not a reply: the library will fail on it
	}
	r.mu.Lock()
	if r.kept == nil {
		r.kept = map[int]json.RawMessage{}
	}
	n := r.next
	r.next++
	r.kept[n] = reply.Return
	r.mu.Unlock()
	short, _ := json.Marshal(struct {
		Return string          `json:"return"`
		ID     json.RawMessage `json:"id,omitempty"`
	}{relayRef + strconv.Itoa(n), reply.ID})
	return append(short, '\r', '\n')
}

// resolve turns a reference back into the kept answer; other text is
// returned as it is. A nil relay resolves nothing.
func (r *qmpRelay) resolve(out string) (string, error) {
	ref, ok := strings.CutPrefix(out, relayRef)
	if !ok || r == nil {
		return out, nil
	}
	n, err := strconv.Atoi(ref)
	r.mu.Lock()
	raw, found := r.kept[n]
	delete(r.kept, n)
	r.mu.Unlock()
	var s string
	if err != nil || !found || json.Unmarshal(raw, &s) != nil {
		return "", &Error{Op: "qmp", Err: ErrQMP, Detail: fmt.Sprintf("relay: no kept answer %q", ref)}
	}
	return s, nil
}
