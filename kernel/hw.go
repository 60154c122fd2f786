//go:build tamago

package main

import (
	"bytes"
	"time"
	"unsafe"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/boot"
	"github.com/physmap/physmap/mm"
)

// hwCPU is the running processor as package region sees it. Memory
// accesses are guarded block copies: for each page touched, one probed
// access (amd64.ProbeRead64 or ProbeWrite8, which survive a page fault)
// shows the page is readable or writable, then the rest of the page is
// copied directly, since permissions are per page.
type hwCPU struct{}

// chunks splits [va, va+n) at page boundaries.
func chunks(va mm.VirtAddr, n int, fn func(at mm.VirtAddr, off, size int) bool) {
	for off := 0; off < n; {
		at := va.Add(uint64(off))
		size := min(n-off, int(page-uint64(at)%page))
		if !fn(at, off, size) {
			return
		}
		off += size
	}
}

// bytesAt views n bytes at va.
func bytesAt(va mm.VirtAddr, n int) []byte { return unsafe.Slice((*byte)(amd64.Ptr(uint64(va))), n) }

func (hwCPU) Read(va mm.VirtAddr, p []byte) (n int, f amd64.Fault) {
	chunks(va, len(p), func(at mm.VirtAddr, off, size int) bool {
		if _, f = amd64.ProbeRead64(uint64(at.AlignDown(8))); f.Faulted {
			return false
		}
		copy(p[off:off+size], bytesAt(at, size))
		n += size
		return true
	})
	return n, f
}

// Equal3 compares in place, with no copy, in pieces that cross no page
// boundary of a, b or c: each piece's three pages probed once, then
// compared, each read once.
func (hwCPU) Equal3(a, b, c mm.VirtAddr, n int) (int, amd64.Fault) {
	for off := 0; off < n; {
		at, bt, ct := a.Add(uint64(off)), b.Add(uint64(off)), c.Add(uint64(off))
		size := min(n-off, int(page-uint64(at)%page), int(page-uint64(bt)%page), int(page-uint64(ct)%page))
		for _, va := range []mm.VirtAddr{at, bt, ct} {
			if _, f := amd64.ProbeRead64(uint64(va.AlignDown(8))); f.Faulted {
				return 0, f
			}
		}
		differs := 0
		switch {
		case size == int(page):
			differs = amd64.Equal3Page(uint64(at), uint64(bt), uint64(ct))
		case !bytes.Equal(bytesAt(at, size), bytesAt(bt, size)):
			differs = 1
		case !bytes.Equal(bytesAt(at, size), bytesAt(ct, size)):
			differs = 2
		}
		if differs != 0 {
			return differs, amd64.Fault{}
		}
		off += size
	}
	return 0, amd64.Fault{}
}

// probeWritable shows the page of at readable, then writable by writing
// the byte already at at: a probe that lands changes nothing.
func probeWritable(at mm.VirtAddr) amd64.Fault {
	if _, f := amd64.ProbeRead64(uint64(at.AlignDown(8))); f.Faulted {
		return f
	}
	return amd64.ProbeWrite8(uint64(at), bytesAt(at, 1)[0])
}

func (hwCPU) Write(va mm.VirtAddr, p []byte) (n int, f amd64.Fault) {
	chunks(va, len(p), func(at mm.VirtAddr, off, size int) bool {
		if f = probeWritable(at); f.Faulted {
			return false
		}
		copy(bytesAt(at, size), p[off:off+size])
		n += size
		return true
	})
	return n, f
}

// FillPage probes the page as Write does, then lets fill write it where it
// is: permissions are per page, so the rest of it is writable too.
func (hwCPU) FillPage(va mm.VirtAddr, fill func(p *[page]byte)) amd64.Fault {
	if uint64(va)%page != 0 {
		panic("FillPage: va not page aligned")
	}
	if f := probeWritable(va); f.Faulted {
		return f
	}
	fill((*[page]byte)(amd64.Ptr(uint64(va))))
	return amd64.Fault{}
}

func (hwCPU) Call(va mm.VirtAddr) (uint64, amd64.Fault) { return amd64.ProbeCall(uint64(va)) }

func (hwCPU) Load64(va mm.VirtAddr) (uint64, amd64.Fault) { return amd64.ProbeRead64(uint64(va)) }
func (hwCPU) Store64(va mm.VirtAddr, v uint64) amd64.Fault {
	return amd64.ProbeWrite64(uint64(va), v)
}

// InvalidatePage executes INVLPG (SDM Vol. 3A 4.10.4.1).
func (hwCPU) InvalidatePage(va mm.VirtAddr) { amd64.Invlpg(uint64(va)) }

// FlushAll toggles CR4.PGE, which drops global entries too; with PGE off
// there are none, and reloading CR3 flushes the rest.
func (hwCPU) FlushAll() {
	cr4 := amd64.ReadCR4()
	if cr4&amd64.CR4_PGE == 0 {
		amd64.WriteCR3(amd64.ReadCR3())
		return
	}
	amd64.WriteCR4(cr4 &^ amd64.CR4_PGE)
	amd64.WriteCR4(cr4)
}

func (hwCPU) CR0() uint64           { return amd64.ReadCR0() }
func (hwCPU) SetCR0(v uint64)       { amd64.WriteCR0(v) }
func (hwCPU) CR4() uint64           { return amd64.ReadCR4() }
func (hwCPU) SetCR4(v uint64)       { amd64.WriteCR4(v) }
func (hwCPU) EFER() uint64          { return amd64.Rdmsr(amd64.MSR_EFER) }
func (hwCPU) SetEFER(v uint64)      { amd64.Wrmsr(amd64.MSR_EFER, v) }
func (hwCPU) CR3() mm.PhysAddr      { return mm.PhysAddr(amd64.ReadCR3() & amd64.CR3_ADDR_MASK) }
func (hwCPU) LoadCR3(r mm.PhysAddr) { amd64.WriteCR3(uint64(r)) }

func (hwCPU) SIDT() (uint64, uint16) { return amd64.Sidt() }
func (hwCPU) SGDT() (uint64, uint16) { return amd64.Sgdt() }

// LIDT, LGDT, LTR and STR: SDM Vol. 2A "LGDT/LIDT", "LTR", Vol. 2B "STR".
func (hwCPU) LIDT(base uint64, limit uint16) { amd64.Lidt(base, limit) }
func (hwCPU) LGDT(base uint64, limit uint16) { amd64.Lgdt(base, limit) }
func (hwCPU) LTR(sel uint16)                 { amd64.Ltr(sel) }
func (hwCPU) STR() uint16                    { return amd64.Str() }

func (hwCPU) CPUID(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32) {
	return amd64.Cpuid(leaf, subleaf)
}

func (hwCPU) ReadMSR(msr uint32) uint64 { return amd64.Rdmsr(msr) }

func (hwCPU) Read32(va mm.VirtAddr) (uint32, amd64.Fault) { return amd64.ProbeRead32(uint64(va)) }

func (hwCPU) Write32(va mm.VirtAddr, v uint32) amd64.Fault {
	return amd64.ProbeWrite32(uint64(va), v)
}

// physMem reaches physical memory through a linear mapping of it: virtual =
// physical + off. physmap's table frames lie in the runtime's window, which
// is identity mapped before and after the switch, so off is 0 (Linux uses
// the direct map, __va(); physmap keeps its tables reachable even when a
// fault injection breaks the direct map).
type physMem struct {
	off uint64
}

func (m *physMem) ptr(pa mm.PhysAddr) *uint64 {
	return (*uint64)(amd64.Ptr(uint64(pa) + m.off))
}

func (m *physMem) Read64(pa mm.PhysAddr) uint64     { return *m.ptr(pa) }
func (m *physMem) Write64(pa mm.PhysAddr, v uint64) { *m.ptr(pa) = v }

// ViewFrame shows the walker a table page where it is (mm.FrameViewer):
// every frame is reachable through the linear mapping.
func (m *physMem) ViewFrame(pa mm.PhysAddr) *[512]uint64 {
	return (*[512]uint64)(unsafe.Pointer(m.ptr(pa)))
}

func (m *physMem) ZeroFrame(pa mm.PhysAddr) {
	p := (*[512]uint64)(unsafe.Pointer(m.ptr(pa)))
	clear(p[:])
}

// hwRing3 enters ring 3 with package amd64.
type hwRing3 struct{}

func (hwRing3) Setup(lstar, cstar mm.VirtAddr) {
	amd64.SetupSyscall(amd64.KernelCS(), uint64(lstar), uint64(cstar))
	boot.MaskPIC()
}
func (hwRing3) AcceptInterrupt()           { amd64.AcceptInterrupt() }
func (hwRing3) Nanotime() int64            { return time.Now().UnixNano() }
func (hwRing3) SetLSTAR(lstar mm.VirtAddr) { amd64.Wrmsr(amd64.MSR_LSTAR, uint64(lstar)) }
func (hwRing3) Stubs() (syscall, syscallCR3, cstar mm.PhysAddr) {
	return mm.PhysAddr(amd64.SyscallEntryPC()), mm.PhysAddr(amd64.SyscallEntryCR3PC()), mm.PhysAddr(amd64.IgnoreSysretPC())
}
func (hwRing3) SetStubCR3(root mm.PhysAddr) { amd64.SetStubCR3(uint64(root)) }
func (hwRing3) Run(r *amd64.UserRegs, root mm.PhysAddr, sysret bool) amd64.Trap {
	return amd64.RunUser(r, uint64(root), sysret)
}
func (hwRing3) KernelCS() uint16               { return amd64.KernelCS() }
func (hwRing3) PTIText() (amd64.PTIText, bool) { return amd64.PTIEntryText() }
func (hwRing3) Gates() ([]int, []uint64)       { return amd64.TrapGatePCs() }
func (hwRing3) RunPTI(r *amd64.UserRegs, root mm.PhysAddr, tramp, exit mm.VirtAddr) amd64.Trap {
	return amd64.RunUserPTI(r, uint64(root), uint64(root)|1<<12, uint64(tramp), uint64(exit))
}

// CopyFromUser reads user memory as copy_from_user does: STAC, the copy,
// CLAC, where SMAP is on (STAC and CLAC #UD on a CPU without SMAP; with
// CR4.SMAP set, the CPU has it).
func (hwRing3) CopyFromUser(va mm.VirtAddr, p []byte) (int, amd64.Fault) {
	if amd64.ReadCR4()&amd64.CR4_SMAP == 0 {
		return hwCPU{}.Read(va, p)
	}
	amd64.Stac()
	defer amd64.Clac()
	return hwCPU{}.Read(va, p)
}
