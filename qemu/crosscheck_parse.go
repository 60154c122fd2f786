package qemu

// The cross-check's reading of QEMU's answers: info tlb and gva2gpa
// parsed, and both views turned into leaves.

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/physmap/physmap/kernel/dump"
	"github.com/physmap/physmap/mm"
)

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

// The descriptor-table registers in QEMU's info registers
// (target/i386/cpu-dump.c: x86_cpu_dump_state): "GDT=     base limit",
// "IDT=     base limit", "TR =sel base limit flags".
var (
	gdtField = regexp.MustCompile(`(?m)^GDT=\s+([0-9a-f]{16}) ([0-9a-f]{8})`)
	idtField = regexp.MustCompile(`(?m)^IDT=\s+([0-9a-f]{16}) ([0-9a-f]{8})`)
	trField  = regexp.MustCompile(`(?m)^TR =([0-9a-f]{4}) ([0-9a-f]{16}) ([0-9a-f]{8})`)
)

// DescRegs are IDTR, GDTR and TR as QEMU's info registers shows them.
type DescRegs struct {
	IDT, GDT dump.DescReg
	TR       dump.TaskReg
}

// ParseDescRegs reads IDTR, GDTR and TR from info registers.
func ParseDescRegs(regs string) (DescRegs, bool) {
	hex := func(s string) dump.Addr { v, _ := strconv.ParseUint(s, 16, 64); return dump.Addr(v) } // the patterns match hex only
	g, i, t := gdtField.FindStringSubmatch(regs), idtField.FindStringSubmatch(regs), trField.FindStringSubmatch(regs)
	if g == nil || i == nil || t == nil {
		return DescRegs{}, false
	}
	return DescRegs{
		IDT: dump.DescReg{Base: hex(i[1]), Limit: hex(i[2])},
		GDT: dump.DescReg{Base: hex(g[1]), Limit: hex(g[2])},
		TR:  dump.TaskReg{Selector: hex(t[1]), Base: hex(t[2]), Limit: hex(t[3])},
	}, true
}

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
