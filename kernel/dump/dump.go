// Package dump is the machine-readable description of physmap's live
// address space: the kernel prints it on the serial console between
// BeginLine and EndLine, and host tools (the QEMU cross-check, the SVG map)
// extract it from the console. It is pure Go, shared by both sides.
//
// Addresses are JSON strings in hex ("0xffff888000000000"): JSON numbers
// lose precision above 2^53 in many readers.
package dump

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/physmap/physmap/mm"
)

// The lines around the JSON document on the console. The document itself is
// one line.
const (
	BeginLine = "physmap: json begin"
	EndLine   = "physmap: json end"
)

// Addr is a 64-bit address or size that marshals as a hex string.
type Addr uint64

// MarshalText writes a as 0x..., which encoding/json quotes: a text
// marshaler's output is only escaped, where a JSON marshaler's is parsed
// again (the dump holds a few hundred addresses, and the guest runs under
// TCG).
func (a Addr) MarshalText() ([]byte, error) { return a.appendText(nil), nil }

// appendText appends a as 0x and its lowercase hex digits.
func (a Addr) appendText(b []byte) []byte {
	return strconv.AppendUint(append(b, "0x"...), uint64(a), 16)
}

// UnmarshalJSON reads a hex string.
func (a *Addr) UnmarshalJSON(b []byte) error {
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return fmt.Errorf("dump: address %s is not a string", b)
	}
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
	if err != nil || !strings.HasPrefix(s, "0x") {
		return fmt.Errorf("dump: address %q is not 0x-prefixed hex", s)
	}
	*a = Addr(v)
	return nil
}

// Dump is the whole document.
type Dump struct {
	Mode    int      `json:"mode"`    // paging levels: 4 or 5
	CR3     Addr     `json:"cr3"`     // physical address of the top-level table
	Regions []Region `json:"regions"` // the Linux layout in force, in address order
	Runs    []Run    `json:"runs"`    // present leaves, merged into runs, in VA order
	Aliases []Alias  `json:"aliases"` // physical ranges mapped at several VAs
	// The descriptor-table registers as the kernel reads them (SIDT,
	// SGDT, STR and the base and limit of the descriptor TR selects);
	// absent from older dumps.
	IDTR *DescReg `json:"idtr,omitempty"`
	GDTR *DescReg `json:"gdtr,omitempty"`
	TR   *TaskReg `json:"tr,omitempty"`
	// Process says the tables are a process's (physmap.mm), not the
	// kernel's; absent for the kernel's.
	Process *Process `json:"process,omitempty"`
	// Checks is how long each check took, in the order reported: the
	// guest's time from the previous result to its own; absent from
	// older dumps.
	Checks []CheckTime `json:"check_ns,omitempty"`
}

// CheckTime is one check's share of the boot, in guest nanoseconds.
type CheckTime struct {
	Name string `json:"name"`
	Ns   int64  `json:"ns"`
}

// Process is the process whose address space a dump describes.
type Process struct {
	PID int `json:"pid"`
	// UserCopy says CR3 is PTI's user copy of the process's root pair.
	UserCopy bool `json:"user_copy,omitempty"`
	// Pages are the process's own user pages, with their frames.
	Pages []Page `json:"pages"`
}

// Page is one user page of a process.
type Page struct {
	VA   Addr   `json:"va"`
	PA   Addr   `json:"pa"`
	What string `json:"what"` // "text", "data", "stack", ...
}

// DescReg is a descriptor-table register: base and limit.
type DescReg struct {
	Base  Addr `json:"base"`
	Limit Addr `json:"limit"`
}

// TaskReg is the task register: its selector and the TSS descriptor's base
// and limit.
type TaskReg struct {
	Selector Addr `json:"selector"`
	Base     Addr `json:"base"`
	Limit    Addr `json:"limit"`
}

// Region is one row of the layout table.
type Region struct {
	Start  Addr   `json:"start"`
	End    Addr   `json:"end"` // exclusive; 0 means the top of the space
	Name   string `json:"name"`
	Symbol string `json:"symbol,omitempty"` // Linux's name, e.g. page_offset_base
	Marker string `json:"marker,omitempty"` // ptdump's section marker
}

// Flags are a leaf's effective permissions and caching bits.
type Flags struct {
	Write  bool `json:"rw"`
	User   bool `json:"user"`
	NX     bool `json:"nx"`
	Global bool `json:"global"`
	PWT    bool `json:"pwt,omitempty"`
	PCD    bool `json:"pcd,omitempty"`
	PAT    bool `json:"pat,omitempty"`
}

// FlagsOf converts mm's attributes.
func FlagsOf(a mm.Attr) Flags {
	return Flags{Write: a&mm.AttrWrite != 0, User: a&mm.AttrUser != 0, NX: a&mm.AttrNX != 0, Global: a&mm.AttrGlobal != 0,
		PWT: a&mm.AttrPWT != 0, PCD: a&mm.AttrPCD != 0, PAT: a&mm.AttrPAT != 0}
}

// Run is Count leaves of one size and level with the same flags: either
// virtually and physically contiguous, or, with a Stride, clones: leaves
// Stride bytes apart that all map the frames at PA (espfix's 65536).
type Run struct {
	VA     Addr   `json:"va"`
	PA     Addr   `json:"pa"`
	Size   Addr   `json:"size"` // page size in bytes
	Count  uint64 `json:"count"`
	Stride Addr   `json:"stride,omitempty"` // clones: the VA step; 0 for a contiguous run
	Level  string `json:"level"`            // pte, pmd, pud
	Flags  Flags  `json:"flags"`
	Region string `json:"region"` // name of the layout region holding VA
}

// End returns the first VA after the run's last leaf.
func (r Run) End() Addr {
	if r.Stride != 0 {
		return r.VA + r.Stride*Addr(r.Count-1) + r.Size
	}
	return r.VA + r.Size*Addr(r.Count)
}

// PAEnd returns the end of the physical range the run maps: a contiguous
// run's Count pages, a clone run's one.
func (r Run) PAEnd() Addr {
	if r.Stride != 0 {
		return r.PA + r.Size
	}
	return r.PA + r.Size*Addr(r.Count)
}

// Leaf returns the run's i-th leaf as a run of one.
func (r Run) Leaf(i uint64) Run {
	l := r
	l.Count, l.Stride = 1, 0
	if r.Stride != 0 {
		l.VA = r.VA + r.Stride*Addr(i)
		return l
	}
	l.VA, l.PA = r.VA+r.Size*Addr(i), r.PA+r.Size*Addr(i)
	return l
}

// Expand returns the runs with every clone run replaced by its leaves, for
// readers that want one run per place.
func Expand(runs []Run) []Run {
	var out []Run
	for _, r := range runs {
		if r.Stride == 0 {
			out = append(out, r)
			continue
		}
		for i := range r.Count {
			out = append(out, r.Leaf(i))
		}
	}
	return out
}

// Alias is a physical range and every virtual range that maps it.
type Alias struct {
	What string `json:"what"` // e.g. "kernel text", "module data"
	PA   Addr   `json:"pa"`
	Len  Addr   `json:"len"`
	VAs  []Addr `json:"vas"` // first address of each virtual alias
}

// Runs merges an address space's leaves into runs, naming each run's region
// from layout.
func Runs(as *mm.AddressSpace, layout *mm.Layout) []Run {
	var out []Run
	// Leaves come in address order: the region of the last one is looked
	// up again only when a leaf leaves it. A leaf joins the last run when
	// its size, level, flag bits and region are the run's: compared as
	// numbers, the run's strings and Flags made only for a run's first.
	var region mm.Region
	var last *Run
	var lastLevel mm.Level
	var lastAttrs mm.Attr
	for leaf := range as.AllLeaves() {
		if region.Size == 0 || !region.Contains(leaf.VA) {
			region = layout.Find(leaf.VA)
		}
		va, pa, size, attrs := Addr(leaf.VA), Addr(leaf.PA), Addr(leaf.Size), leaf.Attrs&flagAttrs
		if last != nil && last.Size == size && lastLevel == leaf.Level && lastAttrs == attrs && last.Region == region.Name {
			switch {
			case last.Stride == 0 && last.End() == va && last.PAEnd() == pa:
				last.Count++
				continue
			// Clones of one frame at a fixed step: a second leaf starts
			// the run, later ones must keep the step.
			case last.PA == pa && last.Count == 1 && va > last.VA && va-last.VA > last.Size:
				last.Stride, last.Count = va-last.VA, 2
				continue
			case last.PA == pa && last.Stride != 0 && va == last.VA+last.Stride*Addr(last.Count):
				last.Count++
				continue
			}
		}
		out = append(out, Run{VA: va, PA: pa, Size: size, Count: 1, Level: leaf.Level.String(), Flags: FlagsOf(attrs), Region: region.Name})
		last, lastLevel, lastAttrs = &out[len(out)-1], leaf.Level, attrs
	}
	return out
}

// flagAttrs are the attributes Flags holds: two leaves whose attributes
// agree on these have the same Flags.
const flagAttrs = mm.AttrWrite | mm.AttrUser | mm.AttrNX | mm.AttrGlobal | mm.AttrPWT | mm.AttrPCD | mm.AttrPAT

// RegionsOf converts a layout.
func RegionsOf(l *mm.Layout) []Region {
	out := make([]Region, len(l.Regions))
	for i, r := range l.Regions {
		out[i] = Region{Start: Addr(r.Start), End: Addr(r.Start.Add(r.Size)), Name: r.Name, Symbol: r.Symbol, Marker: r.Marker}
	}
	return out
}

// Write prints d between BeginLine and EndLine, the JSON on one line.
func Write(w io.Writer, d *Dump) error {
	b := append([]byte(BeginLine), '\n')
	b = append(d.AppendJSON(b), '\n')
	b = append(append(b, EndLine...), '\n')
	_, err := w.Write(b)
	return err
}

// ErrNoDump reports a console without a complete dump.
var ErrNoDump = errors.New("dump: no complete JSON dump on the console")

// Extract finds the dump in a console log.
func Extract(console io.Reader) (*Dump, error) {
	sc := bufio.NewScanner(console)
	sc.Buffer(make([]byte, 0, 1<<20), 256<<20)
	var body []string
	in := false
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case line == BeginLine:
			in, body = true, nil
		case line == EndLine && in:
			var d Dump
			if err := json.Unmarshal([]byte(strings.Join(body, "")), &d); err != nil {
				return nil, fmt.Errorf("dump: %w", err)
			}
			return &d, nil
		case in:
			body = append(body, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, ErrNoDump
}
