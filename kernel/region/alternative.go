package region

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"

	"github.com/physmap/physmap/mm"
)

// TextPoke is text_poke's machinery as Linux 6.1 builds it: poking_init
// (arch/x86/mm/init.c) gives the kernel a second mm, poking_mm, whose
// top-level table shares the kernel half (pgd_alloc: pgd_ctor copies
// swapper_pg_dir's kernel-half entries) and whose user half maps nothing
// but, while a patch is written, the text page(s) at poking_addr, a
// page-aligned user address (TASK_UNMAPPED_BASE plus a random offset with
// CONFIG_RANDOMIZE_BASE); __text_poke (arch/x86/kernel/alternative.c)
// maps the page there writable, loads poking_mm into CR3
// (use_temporary_mm), writes, clears the pte, switches back
// (unuse_temporary_mm) and flushes.
//
// Two departures, both forced by physmap's own runtime: poking_mm's user
// half also maps the low window (a copy of the kernel's user-half leaves),
// since physmap's code, stack and heap run there, at their identity
// addresses, while poking_mm is loaded; and the flush is an INVLPG of the
// cleared ptes while poking_mm is still loaded, where Linux calls
// flush_tlb_mm_range(poking_mm) after switching back. Without PCID, that
// call finds poking_mm no longer loaded and only advances its TLB
// generation: the CR3 load had already dropped the non-global entries,
// and a skipped flush could not be seen. Flushing before the switch is
// what makes the no-flush injection visible.
type TextPoke struct {
	pm   *mm.AddressSpace // poking_mm's tables
	addr mm.VirtAddr      // poking_addr
	// random says poking_addr was randomized (KASLR).
	random  bool
	noFlush bool // the poke-no-flush injection
}

// Linux's user address-space constants (arch/x86/include/asm/
// page_64_types.h, processor.h): DEFAULT_MAP_WINDOW, the 47-bit window
// mmap uses by default; TASK_SIZE_MAX, the whole user half but its last
// page (__VIRTUAL_MASK_SHIFT is 47, or 56 with 5-level paging); and
// TASK_UNMAPPED_BASE = PAGE_ALIGN(TASK_SIZE_LOW / 3), TASK_SIZE_LOW being
// DEFAULT_MAP_WINDOW for a 64-bit task.
const defaultMapWindow = 1<<47 - page

func taskSizeMax(mode mm.Mode) uint64 {
	if mode.Levels() == 5 {
		return 1<<56 - page
	}
	return 1<<47 - page
}

func taskUnmappedBase() mm.VirtAddr { return mm.VirtAddr(defaultMapWindow / 3).AlignUp(page) }

// pokingAddr is poking_init's choice of poking_addr, given a random
// number (kaslr_get_random_long("Poking")) if randomizing.
func pokingAddr(mode mm.Mode, random bool, r uint64) mm.VirtAddr {
	base := taskUnmappedBase()
	addr := base
	if random {
		addr = addr.Add((r &^ (page - 1)) % (taskSizeMax(mode) - uint64(base) - 3*page))
	}
	// The next page must lie under the same pmd: a patch may cross into it.
	if addr.Add(page).IsAligned(uint64(mm.Size2M)) {
		addr = addr.Add(page)
	}
	return addr
}

// pokingStream keys physmap's stand-in for kaslr_get_random_long("Poking"):
// a PCG stream of the KASLR seed apart from the placement's.
const pokingStream = 0x506f_6b69_6e67 // "Poking"

// pokePerm is __text_poke's protection: PAGE_KERNEL without _PAGE_GLOBAL,
// since flush_tlb_mm_range is meant for non-global entries.
const pokePerm = mm.PageKernel &^ mm.AttrGlobal

// Populate is poking_init: a new top-level table whose kernel half is the
// kernel's, poking_addr chosen, and the tables down to its pte allocated
// now (get_locked_pte), so that a poke never allocates.
func (tp *TextPoke) Populate(s *Space) error {
	mode := s.AS.Mode()
	tp.random = s.Place.KASLR != nil
	var r uint64
	if tp.random {
		r = mrand.New(mrand.NewPCG(s.Place.Seed, pokingStream)).Uint64()
	}
	tp.addr = pokingAddr(mode, tp.random, r)
	pm, err := mm.New(mode, s.Mem, s.Tables, s.TLB)
	if err != nil {
		return err
	}
	// physmap's departure: the low window, where its code runs, at the
	// same addresses and with the same permissions as in the kernel's
	// tables.
	for lf := range s.AS.Leaves(mm.VirtRange{Start: 0, End: mode.UserEnd()}) {
		if err := pm.Map(lf.VA, lf.PA, uint64(lf.Size), lf.Attrs, mm.Only(lf.Size)); err != nil {
			return fmt.Errorf("poking_mm: copying the low window's leaf at %v: %w", lf.VA, err)
		}
	}
	// get_locked_pte: map a page at poking_addr and clear its pte again,
	// which leaves the tables above it in place (Unmap would free them).
	if err := pm.Map(tp.addr, s.Image.Text.Start, 2*page, pokePerm, mm.Only(mm.Size4K)); err != nil {
		return fmt.Errorf("poking_mm: the tables for poking_addr %v: %w", tp.addr, err)
	}
	tp.pm = pm
	for i := range uint64(2) {
		if err := tp.setPTE(s, tp.addr.Add(i*page), 0); err != nil {
			return err
		}
	}
	tp.syncKernelHalf(s)
	s.logf("poking_init: poking_mm's top table at %v, poking_addr %v", pm.Root(), tp.addr)
	return nil
}

// pteSlot returns where poking_mm's pte for va lies: the tables above it
// exist from Populate on.
func (tp *TextPoke) pteSlot(va mm.VirtAddr) (mm.PhysAddr, error) {
	t, err := tp.pm.Translate(va)
	if err != nil && !errors.Is(err, mm.ErrNotMapped) {
		return 0, err
	}
	last := t.Path()[len(t.Path())-1]
	if last.Level != mm.PTE {
		return 0, fmt.Errorf("poking_mm has no pte table for %v (the walk ends at the %v)", va, last.Level)
	}
	return last.Table.Add(uint64(last.Index) * 8), nil
}

// setPTE writes poking_mm's pte for va: set_pte_at, or pte_clear with e 0.
// Nothing is flushed here.
func (tp *TextPoke) setPTE(s *Space, va mm.VirtAddr, e mm.Entry) error {
	slot, err := tp.pteSlot(va)
	if err != nil {
		return err
	}
	s.Mem.Write64(slot, uint64(e))
	return nil
}

// syncKernelHalf copies the kernel's top-level kernel-half entries into
// poking_mm's table: pgd_ctor's clone_pgd_range at poking_init, and later
// what sync_global_pgds (arch/x86/mm/init_64.c) does for every pgd when a
// new kernel-half top-level entry appears.
func (tp *TextPoke) syncKernelHalf(s *Space) {
	for i := entriesPerTable / 2; i < entriesPerTable; i++ {
		s.Mem.Write64(tp.pm.Root().Add(uint64(i)*8), s.Mem.Read64(s.AS.Root().Add(uint64(i)*8)))
	}
}

// entriesPerTable is PTRS_PER_PGD; the upper half is the kernel's
// (KERNEL_PGD_BOUNDARY).
const entriesPerTable = 512

func (tp *TextPoke) Inject(s *Space, name string) error {
	switch name {
	case "poke-no-flush":
		tp.noFlush = true
		return nil
	case "poke-kernel-alias":
		// The kernel's own tables keep a writable alias of RIPProbe's
		// text page at poking_addr, as a poke done in the kernel's mm
		// would leave it.
		return s.AS.Map(tp.addr, s.Image.RIPProbe.AlignDown(page), page, pokePerm, mm.Only(mm.Size4K))
	}
	return fmt.Errorf("text_poke: no injection %q", name)
}

// pokeDelta is added to RIPProbe's LEA displacement by the proof: patched,
// RIPProbe returns its address + 7 + pokeDelta.
const pokeDelta = 0x2a000

// ripProbeDisp is the offset of the disp32 in RIPProbe's LEA RAX,
// [RIP+disp] (48 8d 05 disp32).
const ripProbeDisp = 3

// pokeSeen is what the CPU showed during one poke.
type pokeSeen struct {
	root  mm.PhysAddr // CR3 while poking_mm was loaded
	addr  mm.VirtAddr // poking_addr as found in the live tables then
	frame mm.PhysAddr // what it mapped
	perm  mm.Attr
}

// textPoke writes b over kernel text at kva the way __text_poke does, and
// checks on the way what the CPU sees: while poking_mm is loaded, CR3's
// tables share the kernel half of the tables it replaced, their one user
// leaf outside the low window maps the text frame writable at a place
// poking_init could pick, and after pte_clear and its flush that address
// faults; back in the kernel's tables it faults too, and the text reads b.
func (tp *TextPoke) textPoke(p *Proof, kva mm.VirtAddr, b []byte) (pokeSeen, error) {
	s := p.Act
	var seen pokeSeen
	first := kva.AlignDown(page)
	n := uint64(1)
	if kva.Add(uint64(len(b))-1).AlignDown(page) != first {
		n = 2 // cross_page_boundary
	}
	tp.syncKernelHalf(s)
	for i := range n {
		t, err := p.Live.Translate(first.Add(i * page)) // virt_to_page
		if err != nil {
			return seen, fmt.Errorf("the text page at %v: %w", first.Add(i*page), err)
		}
		if err := tp.setPTE(s, tp.addr.Add(i*page), mm.MakeLeaf(mm.PTE, t.PA.AlignDown(page), pokePerm)); err != nil {
			return seen, err
		}
	}
	kernelRoot := p.CPU.CR3()
	p.CPU.LoadCR3(tp.pm.Root()) // use_temporary_mm: switch_mm_irqs_off
	err := func() error {
		seen.root = p.CPU.CR3()
		live := mm.Open(p.Live.Mode(), seen.root, s.Mem)
		var err error
		if seen.addr, seen.frame, seen.perm, err = tp.inspect(p, live, kernelRoot, s.Mem); err != nil {
			return err
		}
		err = writeBytes(p.CPU, "kernel text through poking_addr", seen.addr.Add(uint64(kva-first)), b)
		for i := range n {
			err = errors.Join(err, tp.setPTE(s, tp.addr.Add(i*page), 0)) // pte_clear
		}
		s.TLB.Skip = tp.noFlush
		for i := range n {
			s.TLB.InvalidatePage(tp.addr.Add(i * page))
		}
		s.TLB.Skip = false
		if err != nil {
			return err
		}
		for i := range n {
			va := tp.addr.Add(i * page)
			if _, f := p.CPU.Read(va, make([]byte, 8)); !f.Faulted {
				return fmt.Errorf("poking_addr %v still reads in poking_mm after pte_clear and its flush: a stale TLB entry, a writable alias of kernel text", va)
			}
		}
		return nil
	}()
	p.CPU.LoadCR3(kernelRoot) // unuse_temporary_mm; serialising
	if err != nil {
		return seen, err
	}
	for i := range n {
		if err := p.expectUnmapped("poking_addr in the kernel's own tables", tp.addr.Add(i*page)); err != nil {
			return seen, err
		}
	}
	got, err := readBytes(p.CPU, "patched text", kva, len(b))
	if err != nil {
		return seen, err
	}
	if !bytes.Equal(got, b) { // __text_poke's BUG_ON(memcmp(addr, src, len))
		return seen, fmt.Errorf("kernel text at %v reads % x after the poke, want % x", kva, got, b)
	}
	p.CPU.CPUID(0, 0) // text_poke_sync's sync_core: CPUID serialises (SDM Vol. 3A 9.1.3)
	return seen, nil
}

// inspect reads the tables in CR3 while poking_mm is loaded: their kernel
// half must be the kernel's (every top-level entry equal to the one in the
// kernel's table at kernelRoot), and their user half must map, besides the
// low window, exactly the text page(s) at one page-aligned place
// poking_init can choose, writable, NX, not global and not user.
func (tp *TextPoke) inspect(p *Proof, live *mm.AddressSpace, kernelRoot mm.PhysAddr, mem mm.PhysMem) (mm.VirtAddr, mm.PhysAddr, mm.Attr, error) {
	if live.Root() == kernelRoot {
		return 0, 0, 0, fmt.Errorf("CR3 still holds the kernel's table %v after loading poking_mm", kernelRoot)
	}
	for i := entriesPerTable / 2; i < entriesPerTable; i++ {
		k, q := mem.Read64(kernelRoot.Add(uint64(i)*8)), mem.Read64(live.Root().Add(uint64(i)*8))
		if k != q {
			return 0, 0, 0, fmt.Errorf("poking_mm's top-level entry %d is %#x, the kernel's %#x: its kernel half is not the kernel's", i, q, k)
		}
	}
	mode := live.Mode()
	var found []mm.Leaf
	for lf := range live.Leaves(mm.VirtRange{Start: 0, End: mode.UserEnd()}) {
		if p.Ref.Window.Contains(mm.PhysAddr(lf.VA)) && mm.PhysAddr(lf.VA) == lf.PA {
			continue // physmap's low window, identity mapped
		}
		found = append(found, lf)
	}
	if len(found) == 0 || len(found) > 2 {
		return 0, 0, 0, fmt.Errorf("poking_mm's user half maps %d pages besides the low window, want the 1 or 2 being patched", len(found))
	}
	for i, lf := range found {
		if lf.Size != mm.Size4K || lf.Attrs&permMask != pokePerm {
			return 0, 0, 0, fmt.Errorf("poking_mm maps %v as a %v page %v, want a 4K page %v (PAGE_KERNEL without _PAGE_GLOBAL)", lf.VA, lf.Size, lf.Attrs&permMask, pokePerm)
		}
		if i > 0 && lf.VA != found[0].VA.Add(page) {
			return 0, 0, 0, fmt.Errorf("poking_mm maps %v and %v, not two adjacent pages", found[0].VA, lf.VA)
		}
	}
	if err := pokingAddrValid(mode, found[0].VA, p.Ref.KASLR); err != nil {
		return 0, 0, 0, err
	}
	return found[0].VA, found[0].PA, found[0].Attrs, nil
}

// pokingAddrValid holds an address found in poking_mm to poking_init's
// rules: page aligned, from TASK_UNMAPPED_BASE up to three pages below
// TASK_SIZE, its next page under the same pmd; without randomization
// TASK_UNMAPPED_BASE itself (or the page after, by that last rule).
func pokingAddrValid(mode mm.Mode, va mm.VirtAddr, random bool) error {
	base := taskUnmappedBase()
	switch {
	case !va.IsAligned(page):
		return fmt.Errorf("poking_addr %v is not page aligned", va)
	case va < base || uint64(va) >= taskSizeMax(mode)-2*page:
		return fmt.Errorf("poking_addr %v lies outside [TASK_UNMAPPED_BASE %v, TASK_SIZE - 2 pages)", va, base)
	case va.Add(page).IsAligned(uint64(mm.Size2M)):
		return fmt.Errorf("poking_addr %v's next page starts another pmd", va)
	case !random && va != pokingAddr(mode, false, 0):
		return fmt.Errorf("poking_addr %v is not TASK_UNMAPPED_BASE %v (no KASLR)", va, base)
	}
	return nil
}

// Prove patches RIPProbe's LEA displacement with text_poke, runs it through
// the kernel text mapping, and puts it back. Expectations: the value
// RIPProbe must return at its address with and without the delta;
// poking_init's rules for poking_addr and __text_poke's protection, held
// to what the tables in CR3 show while poking_mm is loaded; the faults
// after the pte is cleared.
func (tp *TextPoke) Prove(p *Proof) {
	const name = "text_poke"
	if p.Bases.TextErr != nil {
		fail(p.R, name, "%v", p.Bases.TextErr)
		return
	}
	kva := p.KernelVA(p.Ref.Image.RIPProbe)
	disp := kva.Add(ripProbeDisp)
	err := p.expectUnmapped("poking_addr in the kernel's own tables", tp.addr)
	var orig []byte
	if err == nil {
		orig, err = readBytes(p.CPU, "RIPProbe", disp, 4)
	}
	if err != nil {
		fail(p.R, name, "%v", err)
		return
	}
	d := binary.LittleEndian.Uint32(orig)
	patched := binary.LittleEndian.AppendUint32(nil, d+pokeDelta)
	want := uint64(kva) + RIPProbeLen + uint64(int64(int32(d)))
	var got1, got2 uint64
	seen, err := tp.textPoke(p, disp, patched)
	if err == nil {
		if r, ft := p.CPU.Call(kva); ft.Faulted {
			err = fmt.Errorf("calling RIPProbe at %v: %v", kva, ft)
		} else {
			got1 = r
		}
	}
	_, err2 := tp.textPoke(p, disp, orig)
	if err = errors.Join(err, err2); err == nil {
		if r, ft := p.CPU.Call(kva); ft.Faulted {
			err = fmt.Errorf("calling RIPProbe at %v: %v", kva, ft)
		} else {
			got2 = r
		}
	}
	switch {
	case err != nil:
		fail(p.R, name, "%v", err)
	case got1 != want+pokeDelta:
		fail(p.R, name, "patched RIPProbe at %v returned %#x, want %#x", kva, got1, want+pokeDelta)
	case got2 != want:
		fail(p.R, name, "restored RIPProbe at %v returned %#x, want %#x", kva, got2, want)
	default:
		how := "TASK_UNMAPPED_BASE: fixed without KASLR, where Linux with CONFIG_RANDOMIZE_BASE randomizes it anyway"
		if p.Ref.KASLR {
			how = "randomized from the KASLR seed"
		}
		pass(p.R, name, "RIPProbe's displacement at %v (ro x) patched % x -> % x through poking_mm (top table %v, kernel half "+
			"the kernel's, user half also the low window: physmap's departure): poking_addr %v (%s) -> frame %v %v; "+
			"pte cleared and flushed with INVLPG before the switch back, it faults in both mms; the call at %v returned "+
			"%#x = +%#x, then %#x once restored",
			disp, orig, patched, seen.root, seen.addr, how, seen.frame.AlignDown(page), seen.perm&permMask, kva, got1, pokeDelta, got2)
	}
}
