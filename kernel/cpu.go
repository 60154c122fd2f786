//go:build tamago

package main

import (
	"fmt"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/boot"
)

// Plausible TSC rates: anything outside means the calibration is wrong.
const (
	minTSCHz = 100_000_000
	maxTSCHz = 10_000_000_000
)

// checkClock reports how the runtime clock was calibrated.
func checkClock(r *report) {
	c := boot.Clock
	switch {
	case c.Err != nil:
		r.fail("clock", "TSC not calibrated: %v", c.Err)
	case c.TSCHz < minTSCHz || c.TSCHz > maxTSCHz:
		r.fail("clock", "TSC calibrated by %s at %d Hz, outside [%d, %d]", c.Source, c.TSCHz, uint64(minTSCHz), uint64(maxTSCHz))
	default:
		r.pass("clock", "TSC at %.3f MHz, measured against %s", float64(c.TSCHz)/1e6, c.Source)
	}
}

// checkCPU reports the processor features physmap needs and the state of
// paging the boot left.
func checkCPU(r *report, levels int) amd64.Features {
	f := amd64.ReadFeatures(amd64.Cpuid)
	need := func(name string, have bool, what string) {
		if have {
			r.pass(name, "%s: present", what)
		} else {
			r.fail(name, "%s: absent, and physmap needs it", what)
		}
	}
	need("cpu.nx", f.NX, "NX (CPUID 0x80000001 EDX[20])")
	need("cpu.pae", f.PAE, "PAE (CPUID 1 EDX[6])")
	need("cpu.pge", f.PGE, "PGE (CPUID 1 EDX[13])")

	cr0, cr4, efer := amd64.ReadCR0(), amd64.ReadCR4(), amd64.Rdmsr(amd64.MSR_EFER)
	mode := 4
	if cr4&amd64.CR4_LA57 != 0 {
		mode = 5
	}
	state := fmt.Sprintf("CR0.PG=%d CR4.PAE=%d EFER.LMA=%d, %d-level paging; CPUID Page1GB=%s LA57=%s, %d physical address bits",
		bit(cr0&amd64.CR0_PG), bit(cr4&amd64.CR4_PAE), bit(efer&amd64.EFER_LMA), mode, yes(f.Page1GB), yes(f.LA57), f.PhysAddrBits)
	r.check("cpu.paging", cr0&amd64.CR0_PG != 0 && cr4&amd64.CR4_PAE != 0 && efer&amd64.EFER_LMA != 0, "%s", state)

	// The early boot chose the mode: 5-level where CPUID has LA57, unless
	// physmap.levels=4.
	want, why := 4, "CPUID has no LA57"
	switch {
	case levels == 4:
		why = "physmap.levels=4"
	case f.LA57:
		want, why = 5, "CPUID has LA57"
	}
	if levels == 5 && !f.LA57 {
		r.fail("paging.mode", "physmap.levels=5 asked for, but CPUID has no LA57: %d-level paging", mode)
		return f
	}
	r.check("paging.mode", mode == want, "%d-level paging (CR4.LA57=%d), want %d: %s", mode, bit(cr4&amd64.CR4_LA57), want, why)
	return f
}

func bit(v uint64) int {
	if v != 0 {
		return 1
	}
	return 0
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
