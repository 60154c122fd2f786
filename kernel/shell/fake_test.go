package shell

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/physmap/physmap/kernel/selftest"
	"github.com/physmap/physmap/mm"
)

// The fake machine's physical memory: a small kernel image whose text is
// mapped three times (identity, direct map, __START_KERNEL_map), the rest
// of RAM in the direct map, a module page whose last bytes start an
// instruction that runs into an unmapped page, and a page at the top of
// the lower half.
const (
	fakeRAM      = 32 << 20   // RAM is [0, 32 MiB)
	fakeText     = 0x100_0000 // kernel text: 16 KiB at 16 MiB
	fakeTextLen  = 0x4000
	fakeModule   = 0x180_0000 // the module's text frame
	fakeTopFrame = 0x190_0000 // the frame behind the last page of the lower half
	fakeUserPage = 0x1a0_0000 // process 1's text frame, at 0x400000 in its tables
	fakePhysBits = 40
)

// fakeCode is the start of the fake kernel text.
var fakeCode = []byte{
	0x49, 0x3b, 0x66, 0x10, // cmp rsp, qword ptr [r14+0x10]
	0x76, 0x10, // jbe .+0x12
	0x55,             // push rbp
	0x48, 0x89, 0xe5, // mov rbp, rsp
	0x0f, 0x0b, // ud2
}

// fakeTableRAM is where the fake's page tables live: apart from its RAM.
var fakeTableRAM = mm.PhysRange{Start: 0x7_4000_0000, End: 0x7_4000_0000 + 4<<20}

// fakeMachine is a Machine over mm's simulated memory.
type fakeMachine struct {
	t        *testing.T
	layout   *mm.Layout
	as       *mm.AddressSpace
	proc     *mm.AddressSpace // process 1's: the kernel half shared, a user page
	ram      map[mm.PhysAddr]byte
	readIn   []mm.PhysAddr // the roots ReadIn read under
	noTables bool
	selftest bool // what Selftest reports
	reruns   int
}

// newFake builds the fake machine's tables in mode; wx adds one writable
// executable page in vmalloc space.
func newFake(t *testing.T, mode mm.Mode, wx bool) *fakeMachine {
	t.Helper()
	f := &fakeMachine{t: t, layout: mm.DefaultLayout(mode), ram: map[mm.PhysAddr]byte{}, selftest: true}
	mem := mm.NewSparseMem(fakeTableRAM)
	alloc := mm.NewMemblock([]mm.PhysRange{fakeTableRAM}, nil)
	as, err := mm.New(mode, mem, alloc, mm.NopTLB)
	if err != nil {
		t.Fatal(err)
	}
	f.as = as
	po := f.layout.PageOffset()
	ktext, _ := f.layout.Region(mm.KindKernelText)
	mod, _ := f.layout.Region(mm.KindModules)
	vm, _ := f.layout.Region(mm.KindVmalloc)
	all := mm.Only(mm.Size4K) | mm.Only(mm.Size2M)
	steps := []error{
		as.Map(po, 0, fakeRAM, mm.PageKernel, all),
		as.Protect(po.Add(fakeText), fakeTextLen, mm.PageKernelRO),
		as.Map(ktext.Start.Add(fakeText), fakeText, fakeTextLen, mm.PageKernelExec, all),
		as.Map(mm.VirtAddr(fakeText), fakeText, fakeTextLen, 0, all),
		as.Map(mod.Start, fakeModule, uint64(mm.Size4K), mm.PageKernelExec, all),
		as.Map(mode.UserEnd().Sub(uint64(mm.Size4K)), fakeTopFrame, uint64(mm.Size4K), mm.AttrNX, all),
	}
	if wx {
		steps = append(steps, as.Map(vm.Start, 0x1000, uint64(mm.Size4K), mm.AttrWrite, all))
	}
	if err := errors.Join(steps...); err != nil {
		t.Fatal(err)
	}
	proc, err := mm.New(mode, mem, alloc, mm.NopTLB)
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(proc.ShareKernelHalf(as), proc.Map(0x400000, fakeUserPage, uint64(mm.Size4K), mm.AttrUser, all)); err != nil {
		t.Fatal(err)
	}
	f.proc = proc
	for i, b := range []byte("process 1's text") {
		f.ram[mm.PhysAddr(fakeUserPage+i)] = b
	}
	for i, b := range fakeCode {
		f.ram[mm.PhysAddr(fakeText+i)] = b
	}
	// The module page ends with the first two bytes of "mov rax, [rbx]".
	f.ram[fakeModule+0xffe], f.ram[fakeModule+0xfff] = 0x48, 0x8b
	for i := range 16 {
		f.ram[mm.PhysAddr(fakeTopFrame+0x1000-16+i)] = byte('A' + i)
	}
	return f
}

func (f *fakeMachine) Layout() *mm.Layout { return f.layout }

func (f *fakeMachine) Tables() (*mm.AddressSpace, error) {
	if f.noTables {
		return nil, fmt.Errorf("%w: the layout was not built", ErrNoTables)
	}
	return f.as, nil
}

func (f *fakeMachine) PhysBits() uint { return fakePhysBits }

// Read translates byte by byte, as the CPU would, and "faults" like the
// kernel's probe reports it.
func (f *fakeMachine) Read(va mm.VirtAddr, p []byte) (int, error) {
	return f.readThrough(f.as, va, p)
}

// ReadIn reads through the tables at root: the fake's or process 1's.
func (f *fakeMachine) ReadIn(root mm.PhysAddr, va mm.VirtAddr, p []byte) (int, error) {
	f.readIn = append(f.readIn, root)
	for _, as := range []*mm.AddressSpace{f.as, f.proc} {
		if as.Root() == root {
			return f.readThrough(as, va, p)
		}
	}
	f.t.Errorf("ReadIn(%v): no such tables", root)
	return 0, nil
}

func (f *fakeMachine) readThrough(as *mm.AddressSpace, va mm.VirtAddr, p []byte) (int, error) {
	mode := f.layout.Mode
	if len(p) > 0 && (!mode.Canonical(va) || !mode.Canonical(va.Add(uint64(len(p)-1)))) {
		f.t.Errorf("Read(%v, %d bytes): not canonical", va, len(p))
	}
	for i := range p {
		a := va.Add(uint64(i))
		t, err := as.Translate(a)
		if err != nil {
			return i, fmt.Errorf("#PF cr2=%#x code=0x0 (not-present read) rip=0x100b1360", uint64(a))
		}
		p[i] = f.ram[t.PA]
	}
	return len(p), nil
}

func (f *fakeMachine) Regions(w io.Writer) error {
	_, err := io.WriteString(w, "fake regions table\n")
	return err
}

// fakeSymbols are the fake kernel's image symbols, at its text mapping.
var fakeSymbols = []Symbol{
	{"_text", 0xffffffff81000000, 0},
	{"_stext", 0xffffffff81000000, 0},
	{"_etext", 0xffffffff81004000, 0},
	{"__start_rodata", 0xffffffff81004000, 0},
	{"_end", 0xffffffff81004000, 0},
	{"fake_module_init", 0xffffffffa0000000, 0xffffffffa0002000},
}

func (f *fakeMachine) Symbols() []Symbol { return fakeSymbols }

// Processes gives process 1, with its own tables (the fake kernel's half
// shared, a user page at 0x400000), and process 2, which ran under PTI.
func (f *fakeMachine) Processes() []Process {
	if f.noTables {
		return nil
	}
	return []Process{{PID: 1, State: "exited 0", Root: f.proc.Root(), Syscalls: 3, Exceptions: 1,
		Pages: []ProcessPage{{VA: 0x400000, What: "text"}}, SharedTop: 4, KernelTop: 4, Tables: f.proc},
		// Process 2 ran under PTI: the fake's tables stand for its user
		// copy too.
		{PID: 2, State: "exited 0", Root: f.as.Root(), SharedTop: 4, KernelTop: 4, Tables: f.as, UserCopy: f.as}}
}

func (f *fakeMachine) Modules(w io.Writer) error {
	_, err := io.WriteString(w, "fake 4096 0 - Live 0xffffffffa0000000\n")
	return err
}

// Selftest prints one check and the closing line, passing or failing as
// f.selftest says.
func (f *fakeMachine) Selftest(w io.Writer) selftest.Summary {
	f.reruns++
	s := selftest.Summary{Passed: 1}
	if !f.selftest {
		s = selftest.Summary{Failed: 1}
	}
	fmt.Fprintln(w, selftest.Result{Verdict: selftest.Verdict(f.selftest), Check: "fake", Detail: "the fake's one check"})
	fmt.Fprintln(w, s)
	return s
}
