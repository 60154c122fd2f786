package qemu

// The cross-check's comparison: the kernel's dump and QEMU's walk, leaf by
// leaf and section by section, and the report.

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/physmap/physmap/kernel/dump"
	"github.com/physmap/physmap/mm"
)

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
	Mode        mm.Mode
	CR3         mm.PhysAddr // the dump's, which QEMU's CR3 matched
	Kernel, Low Section     // the kernel half and the low (identity) window
	GVA         []GVACheck
	// Regs are the disagreements about IDTR, GDTR and TR, between QEMU
	// and the dump, or with the cpu_entry_area they must lie in; RegsSeen
	// says the dump claimed them.
	Regs         []string
	RegsSeen     bool
	Probes       int           // gva2gpa asked to tell a 1G leaf from a 2M one
	InfoTLBBytes int           // size of QEMU's info tlb answer
	Took         time.Duration // from the hold line's hook to the verdict
}

// cr3Tries and cr3Wait bound the wait for the held machine's CR3 to be the
// dump's: about a second.
const (
	cr3Tries = 20
	cr3Wait  = 50 * time.Millisecond
)

// MaxListed is how many differences a report lists before counting the rest.
const MaxListed = 10

// Differences counts every disagreement.
func (r *CrossReport) Differences() int {
	n := len(r.Kernel.Diffs) + len(r.Low.Diffs) + len(r.Regs)
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
	all := append([]string(nil), r.Regs...)
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
		regs := ""
		if r.RegsSeen {
			regs = "; IDTR, GDTR and TR agree and lie in the cpu_entry_area"
		}
		return fmt.Sprintf("%d leaves of the %s and %d of the %s agree with QEMU's info tlb (%s); %d gva2gpa agree%s %s",
			r.Kernel.Leaves, r.Kernel.Name, r.Low.Leaves, r.Low.Name, r.Mode, len(r.GVA), regs, took)
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
	if p := d.Process; p != nil {
		rep.Low.Name = fmt.Sprintf("user half of process %d", p.PID)
		if p.UserCopy {
			rep.Kernel.Name = fmt.Sprintf("kernel half of process %d's PTI user copy", p.PID)
		}
	}

	// The kernel prints the hold line before its last act, loading the
	// CR3 it holds in (a process's, from the entry text): give it a moment.
	var regs string
	for try := 0; ; try++ {
		var err error
		if regs, err = hmp(ctx, "info registers"); err != nil {
			return nil, err
		}
		m := cr3Field.FindStringSubmatch(regs)
		if m == nil {
			return nil, setup("no CR3 in info registers: %q", firstLine(regs))
		}
		cr3, _ := strconv.ParseUint(m[1], 16, 64)
		if cr3&cr3AddrMask == uint64(d.CR3)&cr3AddrMask {
			break
		}
		if try == cr3Tries-1 {
			return nil, setup("QEMU's CR3 is %#x, the dump describes the tables at %#x: not the live tables", cr3, uint64(d.CR3))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(cr3Wait):
		}
	}

	if d.IDTR != nil && d.GDTR != nil && d.TR != nil {
		rep.RegsSeen = true
		rep.Regs = compareDescRegs(d, regs)
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

// The aliases the gva2gpa checks use, as the kernel names them: the
// image's start with this prefix, each module frame's with the module's
// name and group ("reloc text").
const (
	aliasKernel     = "kernel "
	aliasKernelText = "kernel text"
)

// gvaPlan lists the gva2gpa checks: the first instruction through each of
// its aliases (all at the start of kernel text), and every page of the
// modules' frames through each of theirs. A process's dump adds each of
// its user pages; its PTI user copy has only those, since the image and
// the modules are not mapped there.
func gvaPlan(d *dump.Dump) ([]GVACheck, error) {
	var out []GVACheck
	if p := d.Process; p != nil {
		for _, pg := range p.Pages {
			out = append(out, GVACheck{What: fmt.Sprintf("process %d %s", p.PID, pg.What), VA: mm.VirtAddr(pg.VA), Want: mm.PhysAddr(pg.PA)})
		}
		if len(out) == 0 {
			return nil, &Error{Op: "crosscheck", Err: ErrCrossCheck, Detail: fmt.Sprintf("the dump of process %d lists no user page", p.PID)}
		}
		if p.UserCopy {
			return out, nil
		}
	}
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
	for _, va := range text.VAs {
		out = append(out, GVACheck{What: "first instruction", VA: mm.VirtAddr(va), Want: mm.PhysAddr(text.PA)})
	}
	modules := 0
	for _, a := range d.Aliases {
		if strings.HasPrefix(a.What, aliasKernel) || len(a.VAs) == 0 {
			continue
		}
		modules++
		for _, va := range a.VAs {
			for off := uint64(0); off < uint64(a.Len); off += uint64(mm.Size4K) {
				out = append(out, GVACheck{What: a.What, VA: mm.VirtAddr(va).Add(off), Want: mm.PhysAddr(a.PA).Add(off)})
			}
		}
	}
	if modules == 0 {
		return nil, &Error{Op: "crosscheck", Err: ErrCrossCheck, Detail: "the dump has no module frame with addresses"}
	}
	return out, nil
}

// compareDescRegs holds QEMU's IDTR, GDTR and TR to the dump's, and each
// base to the cpu_entry_area region of the dump's layout, mapped there.
func compareDescRegs(d *dump.Dump, regs string) []string {
	q, ok := ParseDescRegs(regs)
	if !ok {
		return []string{fmt.Sprintf("info registers shows no GDT, IDT or TR line: %q", firstLine(regs))}
	}
	var out []string
	if q.IDT != *d.IDTR {
		out = append(out, fmt.Sprintf("IDTR: QEMU %#x/%#x, the dump %#x/%#x", uint64(q.IDT.Base), uint64(q.IDT.Limit), uint64(d.IDTR.Base), uint64(d.IDTR.Limit)))
	}
	if q.GDT != *d.GDTR {
		out = append(out, fmt.Sprintf("GDTR: QEMU %#x/%#x, the dump %#x/%#x", uint64(q.GDT.Base), uint64(q.GDT.Limit), uint64(d.GDTR.Base), uint64(d.GDTR.Limit)))
	}
	if q.TR != *d.TR {
		out = append(out, fmt.Sprintf("TR: QEMU %#x %#x/%#x, the dump %#x %#x/%#x", uint64(q.TR.Selector), uint64(q.TR.Base), uint64(q.TR.Limit), uint64(d.TR.Selector), uint64(d.TR.Base), uint64(d.TR.Limit)))
	}
	var cea *dump.Region
	for i := range d.Regions {
		if d.Regions[i].Symbol == "CPU_ENTRY_AREA_BASE" {
			cea = &d.Regions[i]
		}
	}
	for _, b := range []struct {
		what string
		base dump.Addr
	}{{"IDTR", q.IDT.Base}, {"GDTR", q.GDT.Base}, {"TR", q.TR.Base}} {
		mapped := false
		for _, r := range d.Runs {
			if b.base >= r.VA && b.base < r.End() {
				mapped = true
			}
		}
		if cea == nil || b.base < cea.Start || b.base >= cea.End || !mapped {
			out = append(out, fmt.Sprintf("%s's base %#x is not a mapped address of the cpu_entry_area", b.what, uint64(b.base)))
		}
	}
	return out
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return strings.TrimRight(l, "\r")
}
