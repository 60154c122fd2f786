package region

import (
	"encoding/binary"
	"fmt"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/kernel/selftest"
	"github.com/physmap/physmap/mm"
)

// Page-table isolation, as Linux 6.1 builds it with pti=on
// (arch/x86/mm/pti.c): each process's root is an 8 KiB pair, the kernel
// copy (the whole kernel half, as pgd_alloc shares it) and 4 KiB above it
// the user copy, whose kernel half maps only what entering and leaving
// the kernel needs: the cpu_entry_area and espfix, their 512 GiB entries
// shared with the kernel's tables (pti_clone_user_shared and
// pti_setup_espfix64, through pti_clone_p4d), and the entry text
// (pti_clone_entry_text). No kernel image beside it: pti=on keeps the
// image out (pti_kernel_image_global_ok). The kernel copy's user-half
// top-level entries get NX (__pti_set_user_pgtbl). Entry stubs switch
// between the copies with CR3 bit 12 (arch/x86/entry/calling.h).
//
// physmap's departures: the entry text is mapped as its own 4 KiB pages
// (6.1 clones its 2 MiB pmds); the user copy's user half has tables of
// its own over the process's frames (Linux writes the same top-level
// entry into both copies), because the kernel copy's user half also holds
// the runtime's window; the top-level entry over the window keeps X in
// the kernel copy, since the kernel runs there; no PCID, which QEMU 7.2's
// TCG does not offer (without it 6.1's CR3 switch, like this one, drops
// every non-global translation); the return to ring 3 is always IRETQ.
//
// As in 6.1 the kernel's mappings are not global under PTI
// (probe_page_size_mask), but for the cpu_entry_area's (cea_set_pte) and
// the leaves over the entry text, in both copies (pti_clone_pgtable): the
// CR3 load to the user copy leaves nothing else of the kernel's in the
// TLB.

const (
	// checkPTI is the check; injectPTIDirect shares the direct map's
	// entry into the user copies.
	checkPTI        = "pti"
	injectPTIDirect = "pti-directmap-shared"
	// injectPTIGlobal sets G on one direct-map leaf.
	injectPTIGlobal = "pti-global-leaf"
	// cr3User is PTI_USER_PGTABLE_MASK: CR3 bit 12 selects the user copy.
	cr3User = 1 << 12
)

// level512G is the level whose entries map 512 GiB: the p4d in 5-level
// mode, the pgd in 4-level mode (where the p4d is folded into it).
func level512G(s *Space) mm.Level {
	if s.AS.Mode() == mm.Mode5Level {
		return mm.P4D
	}
	return mm.PGD
}

// ptiShared are the addresses whose 512 GiB entries the user copy shares
// with the kernel: the cpu_entry_area, and espfix where it is mapped.
func ptiShared(s *Space) []mm.VirtAddr {
	out := []mm.VirtAddr{s.region(mm.KindCPUEntryArea).Start}
	if _, err := s.AS.Translate(s.region(mm.KindESPFix).Start); err == nil {
		out = append(out, s.region(mm.KindESPFix).Start)
	}
	return out
}

// entryText is the entry text's range in the kernel text mapping.
func entryText(s *Space) (mm.VirtRange, error) {
	t, ok := s.Ring3.PTIText()
	if !ok {
		return mm.VirtRange{}, fmt.Errorf("the entry stubs are not all between ptiEntryText and ptiEntryTextEnd (%#x-%#x)", t.Start, t.End)
	}
	start := s.KernelVA(mm.PhysAddr(t.Start)).AlignDown(page)
	end := s.KernelVA(mm.PhysAddr(t.End)).Add(page - 1).AlignDown(page)
	return mm.VirtRange{Start: start, End: end}, nil
}

// ptiStack is the cpu_entry_area's entry stack: the scratch words at its
// bottom must be where user.s spills RAX.
func ptiStack(s *Space) (bottom, top mm.VirtAddr, err error) {
	bottom = s.region(mm.KindCPUEntryArea).Start.Add(ceaEntryStack)
	if bottom != amd64.PTIScratch {
		return 0, 0, fmt.Errorf("the entry stack is at %v, the PTI stubs spill to %#x", bottom, uint64(amd64.PTIScratch))
	}
	return bottom, bottom.Add(page), nil
}

// userCopy fills pr's user copy: the process's pages, the shared 512 GiB
// entries, the entry text; then NX on the kernel copy's user entries.
func (u *User) userCopy(s *Space, kernel *mm.AddressSpace, pr *Process) error {
	uas := pr.UserAS
	for _, pg := range pr.Pages {
		if err := uas.Map(pg.VA, pg.PA, page, pg.Attrs, mm.Only(mm.Size4K)); err != nil {
			return err
		}
	}
	for _, va := range ptiShared(s) {
		if err := uas.ShareEntry(kernel, va, level512G(s)); err != nil {
			return err
		}
	}
	text, err := entryText(s)
	if err != nil {
		return err
	}
	for va := text.Start; va < text.End; va = va.Add(page) {
		t, err := kernel.Translate(va)
		if err != nil {
			return fmt.Errorf("the entry text at %v: %w", va, err)
		}
		if err := uas.Map(va, t.PA, page, mm.PageKernelExec, mm.Only(mm.Size4K)); err != nil {
			return err
		}
	}
	win := pr.AS.Mode().Index(mm.VirtAddr(s.Window.Start), mm.PGD)
	for _, pg := range pr.Pages {
		if pr.AS.Mode().Index(pg.VA, mm.PGD) != win && pr.AS.TopEntry(pg.VA)&mm.User != 0 {
			pr.AS.SetTopNX(pg.VA)
		}
	}
	if u.inject == injectPTIDirect {
		return uas.ShareEntry(kernel, s.DirectVA(0), level512G(s))
	}
	return nil
}

// ptiGates points the gates of the exceptions a process raises at the
// stubs' aliases in the entry text, in the cpu_entry_area's IDT (the
// runtime's window is not in the user copy), and returns what puts them
// back.
func (u *User) ptiGates(s *Space) (func(), error) {
	base, limit := s.CPU.SIDT()
	t, err := s.AS.Translate(mm.VirtAddr(base))
	if err != nil {
		return nil, fmt.Errorf("the IDT at %#x: %w", base, err)
	}
	idt := s.DirectVA(t.PA)
	old, err := readBytes(s.CPU, "the IDT", idt, int(limit)+1)
	if err != nil {
		return nil, err
	}
	patched := append([]byte(nil), old...)
	vecs, pcs := s.Ring3.Gates()
	for i, v := range vecs {
		off := v * amd64.GATE_SIZE
		if off+amd64.GATE_SIZE > len(patched) {
			return nil, fmt.Errorf("vector %d is beyond the IDT's limit %#x", v, limit)
		}
		g := amd64.DecodeGate(binary.LittleEndian.Uint64(patched[off:]), binary.LittleEndian.Uint64(patched[off+8:]))
		g.Offset = uint64(s.KernelVA(mm.PhysAddr(pcs[i])))
		lo, hi := g.Encode()
		binary.LittleEndian.PutUint64(patched[off:], lo)
		binary.LittleEndian.PutUint64(patched[off+8:], hi)
	}
	if err := writeBytes(s.CPU, "the IDT", idt, patched); err != nil {
		return nil, err
	}
	return func() { _ = writeBytes(s.CPU, "the IDT", idt, old) }, nil
}

// provePTI checks PTI's two copies. Expected: the pair's layout from the
// CPU's records (CR3 as each entry stub found it, and as the kernel then
// ran); what the user copy may map in the kernel half from mm.rst's
// cpu_entry_area and espfix ranges and from the linker's entry-text
// symbols; the addresses it must not map from the live kernel tables
// (page_offset_base, _text, a module); the process's pages from the
// kernel copy, read by a second walk.
func (u *User) provePTI(p *Proof) (string, error) {
	mode := p.Live.Mode()
	t, ok := p.Act.Ring3.PTIText()
	if !ok {
		return "", fmt.Errorf("the entry stubs are not all inside the entry text")
	}
	text := mm.VirtRange{Start: p.KernelVA(mm.PhysAddr(t.Start)).AlignDown(page), End: p.KernelVA(mm.PhysAddr(t.End)).Add(page - 1).AlignDown(page)}
	cea, espfix := p.spec(mm.KindCPUEntryArea), p.spec(mm.KindESPFix)
	var module mm.VirtAddr
	for l := range p.Live.Leaves(mm.VirtRange{Start: p.spec(mm.KindModules).Start, End: p.spec(mm.KindModules).Last()}) {
		module = l.VA
		break
	}
	var nCEA, nESP, nText, nx, nwin int
	nGlobal, nLocal, err := p.ptiGlobalScan(u.Procs)
	if err != nil {
		return "", err
	}
	for _, pr := range u.Procs {
		if len(pr.Syscalls) == 0 {
			return "", fmt.Errorf("process %d made no system call (%s)", pr.PID, pr.State())
		}
		sc := pr.Syscalls[0]
		kroot := mm.PhysAddr(sc.KernelCR3)
		uroot := mm.PhysAddr(sc.EntryCR3 & amd64.CR3_ADDR_MASK)
		switch {
		case sc.EntryCR3&cr3User == 0:
			return "", fmt.Errorf("process %d's system call entered with CR3 %#x: bit 12 clear, the kernel copy", pr.PID, sc.EntryCR3)
		case !kroot.IsAligned(2*page) || uroot != kroot.Add(page):
			return "", fmt.Errorf("process %d: CR3 %#x at entry, %v in the kernel: not an 8 KiB pair, user copy 4 KiB above", pr.PID, sc.EntryCR3, kroot)
		case !pr.Exited:
			return "", fmt.Errorf("process %d never returned to exit (%s)", pr.PID, pr.State())
		}
		for _, c := range pr.Syscalls {
			if c.EntryCR3 != sc.EntryCR3 || mm.PhysAddr(c.KernelCR3) != kroot {
				return "", fmt.Errorf("process %d's system call %d: CR3 %#x at entry, %#x in the kernel, not its pair", pr.PID, c.Nr, c.EntryCR3, c.KernelCR3)
			}
		}
		kv, uv := mm.Open(mode, kroot, p.Act.Mem), mm.Open(mode, uroot, p.Act.Mem)
		// The user copy's kernel half.
		for l := range uv.AllLeaves() {
			if l.VA < mode.KernelStart() {
				continue
			}
			r := l.Range()
			switch {
			case cea.Contains(r.Start) && cea.Contains(r.End-1):
				nCEA++
			case espfix.Contains(r.Start) && espfix.Contains(r.End-1):
				nESP++
			case r.Start >= text.Start && r.End <= text.End:
				kt, err := kv.Translate(l.VA)
				if err != nil || kt.PA != l.PA || l.Attrs&(mm.AttrWrite|mm.AttrNX|mm.AttrUser) != 0 {
					return "", fmt.Errorf("process %d's user copy maps the entry text at %v to %v %v, the kernel copy to %+v (%v)", pr.PID, l.VA, l.PA, l.Attrs, kt, err)
				}
				nText++
			default:
				return "", fmt.Errorf("process %d's user copy maps %v (%v, %v) in the kernel half, outside the cpu_entry_area, espfix and the entry text %v-%v", pr.PID, l.VA, l.PA, l.Size, text.Start, text.End)
			}
		}
		// What it must not map.
		own := pr.Pages[len(pr.Pages)-1]
		for _, a := range []struct {
			what string
			va   mm.VirtAddr
		}{{"its own stack page at page_offset_base+pa", p.DirectVA(own.PA)}, {"_text", p.Bases.Text},
			{"kernel data", p.KernelVA(targetPA())}, {"a module", module}, {"the runtime's window", mm.VirtAddr(p.Act.Window.Start)}} {
			if a.va == 0 {
				continue
			}
			if tr, err := uv.Translate(a.va); err == nil {
				return "", fmt.Errorf("process %d's user copy maps %s at %v (-> %v)", pr.PID, a.what, a.va, tr.PA)
			}
		}
		// The user half: the process's pages, as the kernel copy maps them.
		for _, pg := range pr.Pages {
			kt, kerr := kv.Translate(pg.VA)
			ut, uerr := uv.Translate(pg.VA)
			if kerr != nil || uerr != nil || kt.PA != ut.PA || kt.Attrs&^mm.AttrNX != ut.Attrs&^mm.AttrNX {
				return "", fmt.Errorf("process %d's %s page %v: kernel copy %+v (%v), user copy %+v (%v)", pr.PID, pg.What, pg.VA, kt, kerr, ut, uerr)
			}
		}
		// The kernel copy's user-half top-level entries: NX where U/S,
		// but the one over the runtime's window.
		win := mode.Index(mm.VirtAddr(p.Act.Window.Start), mm.PGD)
		seen := map[int]bool{}
		for _, pg := range pr.Pages {
			i := mode.Index(pg.VA, mm.PGD)
			if seen[i] {
				continue
			}
			seen[i] = true
			switch e := kv.TopEntry(pg.VA); {
			case i == win:
				nwin++
			case e&mm.NX == 0:
				return "", fmt.Errorf("process %d's kernel copy: the top-level entry over %v is executable (%#x)", pr.PID, pg.VA, uint64(e))
			default:
				nx++
			}
		}
	}
	n := len(u.Procs)
	return fmt.Sprintf("each process's root is an 8 KiB pair: its system calls entered under the user copy (CR3 bit 12 set) and the kernel ran under the kernel copy 4 KiB below; the user copy's kernel half maps the cpu_entry_area (%d pages), espfix (%d pages) and the entry text (%d %s at %v) and nothing else: no page_offset_base, _text, kernel data, module or runtime window; its user half maps each of the process's pages as the kernel copy does; in the kernel copies %d top-level user entries are NX, %d not, being over the runtime's window too; of the kernel copy's leaves %d are global (cpu_entry_area, entry text) and %d not",
		nCEA/n, nESP/n, nText/n, selftest.Plural(nText/n, "page", "pages"), text.Start, nx, nwin, nGlobal, nLocal), nil
}

// ptiGlobalScan holds every leaf of the first process's kernel copy (whose
// tables below the top are every process's and the kernel's) to Linux's
// rule under PTI: global in the cpu_entry_area and over the entry text
// (ptiGlobal), nowhere else, the runtime's window included. It returns
// how many leaves are global and how many are not.
func (p *Proof) ptiGlobalScan(procs []*Process) (global, local int, err error) {
	if len(procs) == 0 || len(procs[0].Syscalls) == 0 {
		return 0, 0, fmt.Errorf("no process made a system call")
	}
	kv := mm.Open(p.Live.Mode(), mm.PhysAddr(procs[0].Syscalls[0].KernelCR3), p.Act.Mem)
	cea := p.spec(mm.KindCPUEntryArea)
	for l := range kv.AllLeaves() {
		want := p.ptiGlobal(l.VA, l.Size)
		got := l.Attrs&mm.AttrGlobal != 0
		switch {
		case got && !want:
			return 0, 0, fmt.Errorf("the kernel copy's leaf at %v (%v, -> %v) is global: under PTI only the cpu_entry_area and the entry text are", l.VA, l.Size, l.PA)
		case want && !got && cea.Contains(l.VA):
			return 0, 0, fmt.Errorf("the cpu_entry_area's leaf at %v is not global (cea_set_pte makes it so)", l.VA)
		case want && !got:
			return 0, 0, fmt.Errorf("the leaf at %v over the entry text is not global (pti_clone_pgtable makes it so)", l.VA)
		case got:
			global++
		default:
			local++
		}
	}
	return global, local, nil
}
