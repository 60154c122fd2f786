package linux

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/physmap/physmap/mm"
)

// Control register bits the analysis reads (SDM Vol. 3A 2.5, 4.1.1).
const (
	cr0PG      = 1 << 31 // paging enabled
	cr4PCIDE   = 1 << 17 // CR3[11:0] hold a PCID
	cr4LA57    = 1 << 12 // 5-level paging
	eferLMA    = 1 << 10 // IA-32e mode active
	cr3AddrMsk = 0x000ffffffffff000
	// ptiUserBit is the bit of CR3 that selects the user copy of a PTI
	// pgd: Linux allocates the kernel pgd as an 8 KiB pair and the user
	// half sits 4 KiB above it (arch/x86/include/asm/pgtable.h:
	// PTI_PGTABLE_SWITCH_BIT = PAGE_SHIFT).
	ptiUserBit = 1 << 12
)

// Registers are the control registers QEMU's info registers shows.
type Registers struct {
	CR0, CR3, CR4, EFER uint64
}

var regField = regexp.MustCompile(`\b(CR0|CR3|CR4|EFER)=([0-9a-f]+)\b`)

// ParseRegisters reads CR0, CR3, CR4 and EFER from QEMU's info registers
// (target/i386/cpu-dump.c: x86_cpu_dump_state).
func ParseRegisters(text string) (Registers, error) {
	var r Registers
	seen := map[string]bool{}
	for _, m := range regField.FindAllStringSubmatch(text, -1) {
		v, _ := strconv.ParseUint(m[2], 16, 64)
		switch m[1] {
		case "CR0":
			r.CR0 = v
		case "CR3":
			r.CR3 = v
		case "CR4":
			r.CR4 = v
		case "EFER":
			r.EFER = v
		}
		seen[m[1]] = true
	}
	for _, k := range []string{"CR0", "CR3", "CR4", "EFER"} {
		if !seen[k] {
			return r, fmt.Errorf("info registers shows no %s (first line %q)", k, firstLine(text))
		}
	}
	return r, nil
}

// Mode is the paging mode the registers say is in force, or an error when
// the CPU is not in 64-bit paging.
func (r Registers) Mode() (mm.Mode, error) {
	if r.CR0&cr0PG == 0 || r.EFER&eferLMA == 0 {
		return 0, fmt.Errorf("the CPU is not in 64-bit paging (CR0=%#x EFER=%#x)", r.CR0, r.EFER)
	}
	if r.CR4&cr4LA57 != 0 {
		return mm.Mode5Level, nil
	}
	return mm.Mode4Level, nil
}

// Root is the table CR3 points at: bits 51:12 (SDM Vol. 3A 4.5), the PCID
// or PWT/PCD bits below dropped.
func (r Registers) Root() mm.PhysAddr { return mm.PhysAddr(r.CR3 & cr3AddrMsk) }

// Span is one piece of QEMU's flat view of guest physical memory.
type Span struct {
	Range  mm.PhysRange
	Kind   string // "ram", "rom", "romd", "i/o"
	Region string // the memory region's name, e.g. a memory backend's id
	Offset uint64 // offset of Range.Start within Region
}

// RAM reports whether the span reads as memory.
func (s Span) RAM() bool { return s.Kind == "ram" || s.Kind == "rom" || s.Kind == "romd" }

// mtreeLine is one range of info mtree -f (QEMU softmmu/memory.c:
// mtree_print_flatview): "  START-END (prio P, KIND): NAME [@OFFSET] ...".
var mtreeLine = regexp.MustCompile(`^\s+([0-9a-f]+)-([0-9a-f]+) \(prio -?\d+, ([a-z/]+)\): (\S+)(?: @([0-9a-f]+))?`)

// ParseFlatView reads the first flat view of info mtree -f: the one of
// address space "memory", the guest's physical address space.
func ParseFlatView(text string) ([]Span, error) {
	var out []Span
	in := false
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, "FlatView #"):
			if in {
				return finishSpans(out)
			}
		case strings.Contains(line, `AS "memory"`):
			in = true
		case in:
			m := mtreeLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			lo, _ := strconv.ParseUint(m[1], 16, 64)
			hi, _ := strconv.ParseUint(m[2], 16, 64)
			var off uint64
			if m[5] != "" {
				off, _ = strconv.ParseUint(m[5], 16, 64)
			}
			out = append(out, Span{Range: mm.PhysRange{Start: mm.PhysAddr(lo), End: mm.PhysAddr(hi + 1)}, Kind: m[3], Region: m[4], Offset: off})
		}
	}
	if !in {
		return nil, fmt.Errorf("info mtree -f shows no flat view of address space \"memory\" (first line %q)", firstLine(text))
	}
	return finishSpans(out)
}

func finishSpans(out []Span) ([]Span, error) {
	if len(out) == 0 {
		return nil, fmt.Errorf("info mtree -f: the flat view of \"memory\" has no ranges")
	}
	slices.SortFunc(out, func(a, b Span) int { return cmp.Compare(a.Range.Start, b.Range.Start) })
	return out, nil
}

// Memdev is one memory backend from QMP query-memdev.
type Memdev struct {
	ID    string `json:"id"`
	Size  uint64 `json:"size"`
	Share bool   `json:"share"`
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(s)
}

// RAMRanges returns the spans that are RAM of region id.
func RAMRanges(spans []Span, id string) []mm.PhysRange {
	var out []mm.PhysRange
	for _, s := range spans {
		if s.Region == id && s.RAM() {
			out = append(out, s.Range)
		}
	}
	return out
}
