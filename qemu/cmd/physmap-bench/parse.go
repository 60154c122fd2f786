package main

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/physmap/physmap/kernel/dump"
	"github.com/physmap/physmap/kernel/selftest"
)

// Phase is one guest phase: when it ended and how long it took since the
// previous one (the first from the TSC's start, about QEMU's start), in
// milliseconds of guest time.
type Phase struct {
	Name string  `json:"name"`
	AtMs float64 `json:"at_ms"`
	Ms   float64 `json:"ms"`
}

// Tables is one "tables: REGION PAGES (min MIN)" line.
type Tables struct {
	Region string `json:"region"`
	Pages  int    `json:"pages"`
	Min    int    `json:"min"`
}

// Guest is what one boot's console says about itself.
type Guest struct {
	Levels      int      `json:"levels,omitempty"`      // 4 or 5, from cpu.paging
	Page1GB     bool     `json:"page1gb"`               // CPUID Page1GB, from cpu.paging
	RAMMiB      uint64   `json:"ram_mib,omitempty"`     // from e820
	Phases      []Phase  `json:"phases,omitempty"`      // in console order
	TablePages  int      `json:"table_pages,omitempty"` // from layout.build
	DirectMin   int      `json:"direct_min,omitempty"`  // the direct map's minimum, from layout.build
	Tables      []Tables `json:"tables,omitempty"`      // per region
	Leaves      uint64   `json:"leaves,omitempty"`      // present leaves in the JSON dump
	LeavesBySz  []uint64 `json:"leaves_4k_2m_1g,omitempty"`
	DumpMissing bool     `json:"dump_missing,omitempty"` // no JSON dump on the bulk channel or the console
	// Checks is each check's guest time in ms, from the dump, in the
	// order reported.
	Checks []CheckMs `json:"checks,omitempty"`
}

// CheckMs is one check's guest time: from the previous result (or phase
// line) to its own.
type CheckMs struct {
	Name string  `json:"name"`
	Ms   float64 `json:"ms"`
}

var (
	pagingRe = regexp.MustCompile(`(\d)-level paging \(CR4\.LA57=\d\).*; CPUID Page1GB=(yes|no)`)
	e820Re   = regexp.MustCompile(`^BIOS-e820: \[mem 0x([0-9a-f]+)-0x([0-9a-f]+)\] usable$`)
	buildRe  = regexp.MustCompile(`^physmap: .* tables at 0x[0-9a-f]+ live in CR3: (\d+) table pages \(the direct map alone needs at least (\d+)\)`)
	tablesRe = regexp.MustCompile(`^tables: (.+) (\d+) \(min (\d+)\)$`)
)

// ParseConsole reads a boot's console lines and its bulk channel, where the
// kernel writes the JSON dump (a kernel that printed the dump on its console
// is read from there).
func ParseConsole(lines []string, bulk []byte) Guest {
	var g Guest
	var prev time.Duration
	for _, line := range lines {
		line = strings.TrimRight(line, "\r")
		if p, err := selftest.ParsePhase(line); err == nil {
			g.Phases = append(g.Phases, Phase{Name: p.Name, AtMs: ms(p.At), Ms: ms(p.At - prev)})
			prev = p.At
			continue
		}
		if m := pagingRe.FindStringSubmatch(line); m != nil && strings.HasPrefix(line, "PASS paging.mode") {
			g.Levels, _ = strconv.Atoi(m[1])
			g.Page1GB = m[2] == "yes"
		} else if m := e820Re.FindStringSubmatch(line); m != nil {
			// The verbose log's e820 table, as Linux prints it: inclusive
			// ends, usable ranges summed.
			lo, _ := strconv.ParseUint(m[1], 16, 64)
			hi, _ := strconv.ParseUint(m[2], 16, 64)
			g.RAMMiB += (hi - lo + 1) >> 20
		} else if m := buildRe.FindStringSubmatch(line); m != nil {
			g.TablePages, _ = strconv.Atoi(m[1])
			g.DirectMin, _ = strconv.Atoi(m[2])
		} else if m := tablesRe.FindStringSubmatch(line); m != nil {
			t := Tables{Region: m[1]}
			t.Pages, _ = strconv.Atoi(m[2])
			t.Min, _ = strconv.Atoi(m[3])
			g.Tables = append(g.Tables, t)
		}
	}
	d, err := dump.Extract(bytes.NewReader(bulk))
	if err != nil {
		d, err = dump.Extract(strings.NewReader(strings.Join(lines, "\n")))
	}
	if err != nil {
		g.DumpMissing = true
		return g
	}
	for _, c := range d.Checks {
		g.Checks = append(g.Checks, CheckMs{Name: c.Name, Ms: float64(c.Ns) / 1e6})
	}
	g.LeavesBySz = make([]uint64, 3)
	for _, r := range d.Runs {
		g.Leaves += r.Count
		switch r.Size {
		case 4 << 10:
			g.LeavesBySz[0] += r.Count
		case 2 << 20:
			g.LeavesBySz[1] += r.Count
		case 1 << 30:
			g.LeavesBySz[2] += r.Count
		}
	}
	return g
}

// Phase returns the named phase.
func (g Guest) Phase(name string) (Phase, bool) {
	for _, p := range g.Phases {
		if p.Name == name {
			return p, true
		}
	}
	return Phase{}, false
}

// ProofsMs is the proofs phase: its end minus the previous phase's.
func (g Guest) ProofsMs() (float64, bool) {
	p, ok := g.Phase("proofs")
	return p.Ms, ok
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// maxRSSPrefix starts the line the QEMU wrapper prints on stderr after QEMU
// exits: "physmap-bench: qemu maxrss KIB".
const maxRSSPrefix = "physmap-bench: qemu maxrss "

// ParseMaxRSS finds the wrapper's line among QEMU's stderr lines.
func ParseMaxRSS(stderr []string) (int64, bool) {
	for i := len(stderr) - 1; i >= 0; i-- {
		if s, ok := strings.CutPrefix(strings.TrimSpace(stderr[i]), maxRSSPrefix); ok {
			n, err := strconv.ParseInt(s, 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
