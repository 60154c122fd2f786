package mm

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// tableRAM is where the test allocator finds table frames: an odd base
// above 4 GiB that no host pointer or small virtual address resembles.
var tableRAM = PhysRange{0x7_4000_0000, 0x7_4000_0000 + 64<<20}

var modes = []Mode{Mode4Level, Mode5Level}

// recTLB records every invalidation so tests can check each change was
// flushed.
type recTLB struct {
	pages   []VirtAddr
	flushes int
}

func (r *recTLB) InvalidatePage(va VirtAddr) { r.pages = append(r.pages, va) }
func (r *recTLB) FlushAll()                  { r.flushes++ }
func (r *recTLB) reset()                     { r.pages, r.flushes = nil, 0 }

// covered reports whether the page range of lf was invalidated.
func (r *recTLB) covered(lf Leaf) bool {
	if r.flushes > 0 {
		return true
	}
	for _, va := range r.pages {
		if lf.Range().Contains(va) || (va >= lf.VA && va <= lf.VA.Add(uint64(lf.Size)-1)) {
			return true
		}
	}
	return false
}

type env struct {
	t     testing.TB
	mode  Mode
	mem   *SparseMem
	alloc *Memblock
	tlb   *recTLB
	as    *AddressSpace
}

func newEnv(t testing.TB, mode Mode) *env {
	t.Helper()
	return newEnvRAM(t, mode, tableRAM)
}

func newEnvRAM(t testing.TB, mode Mode, ram PhysRange) *env {
	t.Helper()
	e := &env{t: t, mode: mode, mem: NewSparseMem(ram), alloc: NewMemblock([]PhysRange{ram}, nil), tlb: &recTLB{}}
	as, err := New(mode, e.mem, e.alloc, e.tlb)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.as = as
	return e
}

// leaves lists every leaf of the address space.
func (e *env) leaves() []Leaf { return slices.Collect(e.as.AllLeaves()) }

// check runs the checker, allowing W+X (tests map whatever they like).
func (e *env) check() {
	e.t.Helper()
	if err := Check(e.as, CheckOptions{Owns: e.alloc.Owns, AllowWX: true}); err != nil {
		e.t.Fatalf("Check: %v", err)
	}
	if got, want := e.as.TablePages(), e.alloc.InUse(); got != want {
		e.t.Fatalf("tables reachable %d, frames allocated %d: leak", got, want)
	}
}

// do runs op and checks that every leaf that changed or vanished was
// invalidated in the TLB.
func (e *env) do(op func() error) error {
	e.t.Helper()
	before := e.leaves()
	e.tlb.reset()
	err := op()
	after := map[VirtAddr]Leaf{}
	for _, lf := range e.leaves() {
		after[lf.VA] = lf
	}
	for _, lf := range before {
		if a, ok := after[lf.VA]; ok && a == lf {
			continue
		}
		if !e.tlb.covered(lf) {
			e.t.Errorf("leaf %v %v -> %v changed without a TLB invalidation", lf.Level, lf.VA, lf.PA)
		}
	}
	return err
}

// run is a compact description of equal leaves: n pages of size from va/pa.
type run struct {
	va   VirtAddr
	pa   PhysAddr
	size PageSize
	n    int
}

func (r run) String() string { return fmt.Sprintf("%v->%v %dx%v", r.va, r.pa, r.n, r.size) }

// runs compresses leaves into runs of contiguous, equally sized pages.
func runs(ls []Leaf) []run {
	var out []run
	for _, lf := range ls {
		if n := len(out); n > 0 {
			r := &out[n-1]
			off := uint64(r.n) * uint64(r.size)
			if r.size == lf.Size && r.va.Add(off) == lf.VA && r.pa.Add(off) == lf.PA {
				r.n++
				continue
			}
		}
		out = append(out, run{lf.VA, lf.PA, lf.Size, 1})
	}
	return out
}

func runsString(rs []run) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.String())
	}
	return strings.Join(s, ", ")
}

func wantErr(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
	var e *Error
	if want != nil && !errors.As(err, &e) {
		t.Fatalf("error %v is not an *mm.Error", err)
	}
}

// kbase returns a kernel-half base for mode: the documented direct map.
func kbase(m Mode) VirtAddr { return DefaultLayout(m).PageOffset() }
