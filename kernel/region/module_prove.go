package region

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/physmap/physmap/kernel/modload"
	"github.com/physmap/physmap/mm"
)

// What the modules' functions must return, from their C sources
// (kernel/modules/c/reloc.c and deps.c), not from the loader.
const (
	relocWord0     = 0x72656c6f63300000 // reloc_words[0]
	relocWord2     = 0x72656c6f63320000 // reloc_words[2], reloc_index's word
	relocProbeLen  = len("reloc: called\n")
	depsAddend     = 0x44455053 // DEPS_ADDEND, "DEPS"
	signExtend32Lo = mm.VirtAddr(0xffffffff80000000)
)

// groupWant is what module_enable_ro and module_enable_nx leave on a
// group's pages once init has run (kernel/module/strict_rwx.c): write and
// execute, and whether the direct-map alias is read-only too.
var groupWant = [modload.NumGroups]struct{ write, exec, aliasRO bool }{
	modload.GroupText:        {false, true, true},
	modload.GroupRodata:      {false, false, true},
	modload.GroupROAfterInit: {false, false, true},
	modload.GroupData:        {true, false, false},
}

// moduleChecks are the module area's checks, in the order Prove reports
// them.
var moduleChecks = []string{"module.load", "module.reloc", "module.deps", "module.reach", "module.unload"}

// Prove checks the loaded modules on the live tables and the CPU, then
// unloads them, checks that, and loads them again for the shell.
func (m *Modules) Prove(p *Proof) {
	if p.Bases.ModuleErr != nil || len(m.Loaded) == 0 {
		err := p.Bases.ModuleErr
		if err == nil {
			err = errors.New("no module is loaded")
		}
		for _, c := range moduleChecks {
			fail(p.R, c, "%v", err)
		}
		return
	}
	report := func(name string, msg string, err error) {
		if err != nil {
			fail(p.R, name, "%v", err)
		} else {
			pass(p.R, name, "%s", msg)
		}
	}
	msg, err := m.proveLoad(p)
	report("module.load", msg, err)
	msg, err = m.proveReloc(p)
	report("module.reloc", msg, err)
	msg, err = m.proveDeps(p)
	report("module.deps", msg, err)
	msg, err = m.proveReach(p)
	report("module.reach", msg, err)
	msg, err = m.proveUnload(p)
	report("module.unload", msg, err)
}

// proveLoad: every page of every module maps the frame the loader copied
// it to, with its group's permissions; the direct-map alias of each frame
// is NX, and read-only for the read-only groups; the page after each
// module is unmapped; the frames are RAM, no table's, and not one run.
func (m *Modules) proveLoad(p *Proof) (string, error) {
	var lines []string
	for _, lm := range m.Loaded {
		var err error
		pages, apart := 0, 0
		var prev mm.PhysAddr
		lm.Pages(func(g modload.Group, va mm.VirtAddr, pa mm.PhysAddr) {
			if err != nil {
				return
			}
			want := groupWant[g]
			t, e := p.Live.Translate(va)
			switch {
			case e != nil:
				err = fmt.Errorf("module %s %v page %v: %w", lm.Img.Name(), g, va, e)
			case t.PA != pa:
				err = fmt.Errorf("module %s %v page %v maps %v, not the frame %v the loader copied it to", lm.Img.Name(), g, va, t.PA, pa)
			case t.Attrs&mm.AttrWrite != 0 != want.write || t.Attrs&mm.AttrNX == 0 != want.exec:
				err = fmt.Errorf("module %s %v page %v is %v, want write=%v exec=%v", lm.Img.Name(), g, va, t.Attrs, want.write, want.exec)
			case p.Act.Tables.Owns(pa):
				err = fmt.Errorf("module %s %v page %v is backed by %v, a page-table frame", lm.Img.Name(), g, va, pa)
			}
			if err != nil {
				return
			}
			if e := p.expectDirect("module "+lm.Img.Name(), pa); e != nil {
				err = e
				return
			}
			a, e := p.Live.Translate(p.DirectVA(pa))
			switch {
			case e != nil:
				err = fmt.Errorf("the direct-map alias %v of module %s's frame %v: %w", p.DirectVA(pa), lm.Img.Name(), pa, e)
			case a.Attrs&mm.AttrNX == 0:
				err = fmt.Errorf("the direct-map alias %v of module %s's %v frame %v is executable", p.DirectVA(pa), lm.Img.Name(), g, pa)
			case want.aliasRO && a.Attrs&mm.AttrWrite != 0:
				err = fmt.Errorf("the direct-map alias %v of module %s's %v frame %v is writable: set_memory_ro reaches every alias", p.DirectVA(pa), lm.Img.Name(), g, pa)
			}
			if err != nil {
				return
			}
			// The CPU agrees: a write through a read-only page faults.
			if want.aliasRO {
				if e := p.expectReadOnly(fmt.Sprintf("the direct-map alias of module %s's %v", lm.Img.Name(), g), p.DirectVA(pa)); e != nil {
					err = e
					return
				}
			}
			if !want.write {
				if e := p.expectReadOnly(fmt.Sprintf("module %s's %v", lm.Img.Name(), g), va); e != nil {
					err = e
					return
				}
			}
			if pages > 0 && pa != prev.Add(page) {
				apart++
			}
			prev = pa
			pages++
		})
		if err != nil {
			return "", err
		}
		if t, e := p.Live.Translate(lm.Guard()); e == nil {
			return "", fmt.Errorf("module %s's guard page %v maps %v", lm.Img.Name(), lm.Guard(), t.PA)
		}
		if pages > 1 && apart == 0 {
			return "", fmt.Errorf("module %s's %d frames are one physical run", lm.Img.Name(), pages)
		}
		var secs []string
		for g := range modload.NumGroups {
			if n := len(lm.Frames[g]); n > 0 {
				secs = append(secs, fmt.Sprintf("%v %d", g, n))
			}
		}
		lines = append(lines, fmt.Sprintf("%s at %v: %s pages over %d frames, %d breaks between them",
			lm.Img.Name(), lm.Img.Base, strings.Join(secs, ", "), pages, apart))
	}
	return strings.Join(lines, "; ") + "; text ro x, rodata and ro_after_init ro NX, data RW NX, " +
		"each over the frame the loader copied it to; their direct-map aliases NX, ro for all but data, where a write faults; a guard page after each", nil
}

// call calls a function of a module by name.
func (m *Modules) call(p *Proof, mod, fn string) (uint64, error) {
	lm, err := m.find(mod)
	if err != nil {
		return 0, err
	}
	va, err := lm.symbol(fn)
	if err != nil {
		return 0, err
	}
	v, f := p.CPU.Call(va)
	if f.Faulted {
		return 0, fmt.Errorf("calling %s at %v: %v", fn, va, f)
	}
	return v, nil
}

// proveReloc calls reloc's functions: each returns a value only a correctly
// applied relocation of its kind gives, compared with the live tables and
// the C source.
func (m *Modules) proveReloc(p *Proof) (string, error) {
	if p.Bases.PageOffsetErr != nil || p.Bases.TextErr != nil {
		return "", errors.Join(p.Bases.PageOffsetErr, p.Bases.TextErr)
	}
	pobPA, ok := p.Ref.Export(SymPageOffsetBase)
	if !ok {
		return "", errors.New("the kernel exports no page_offset_base")
	}
	pobVA := p.KernelVA(pobPA)
	want := []struct {
		fn   string
		want uint64
		what string
	}{
		{"reloc_pc32", uint64(p.Bases.PageOffset), "page_offset_base read RIP-relative (PC32)"},
		{"reloc_plt32", uint64(relocProbeLen), "physmap_console_write's return, called (PLT32)"},
		{"reloc_abs64", uint64(pobVA), "&page_offset_base in the kernel text mapping (64)"},
		{"reloc_index32s", relocWord2, "reloc_words[2] through a 32-bit displacement (32S)"},
		{"reloc_ro_after_init", uint64(p.Bases.PageOffset), "page_offset_base as init saved it"},
	}
	for _, w := range want {
		got, err := m.call(p, "reloc", w.fn)
		if err != nil {
			return "", err
		}
		if got != w.want {
			return "", fmt.Errorf("%s returned %#x, want %#x: %s", w.fn, got, w.want, w.what)
		}
	}
	// reloc_abs32s returns &reloc_words[0] as a 32S immediate: the word
	// there, read through the direct map of the frame the live tables
	// give, is the source's.
	got, err := m.call(p, "reloc", "reloc_abs32s")
	if err != nil {
		return "", err
	}
	t, err := p.Live.Translate(mm.VirtAddr(got))
	if err != nil {
		return "", fmt.Errorf("reloc_abs32s returned %#x: %w", got, err)
	}
	var b [8]byte
	if n, f := p.CPU.Read(p.DirectVA(t.PA), b[:]); f.Faulted || n != len(b) {
		return "", fmt.Errorf("reading %v: %v", p.DirectVA(t.PA), f)
	}
	if w := binary.LittleEndian.Uint64(b[:]); w != relocWord0 {
		return "", fmt.Errorf("reloc_abs32s returned %#x, where the word is %#x, not reloc_words[0] %#x", got, w, uint64(relocWord0))
	}
	lm, _ := m.find("reloc")
	var kinds []string
	for _, c := range lm.Img.Object().RelocCounts() {
		kinds = append(kinds, fmt.Sprintf("%d %v", c.Count, c.Type))
	}
	return fmt.Sprintf("reloc's functions return page_offset_base %#x (PC32), what the console write returned (PLT32), &page_offset_base %v (64), reloc_words through 32S; relocations %s",
		uint64(p.Bases.PageOffset), pobVA, strings.Join(kinds, ", ")), nil
}

// proveDeps calls deps_call, which calls reloc's exported reloc_add and
// counts itself in reloc's exported reloc_calls; reloc cannot be unloaded
// while deps uses it.
func (m *Modules) proveDeps(p *Proof) (string, error) {
	if p.Bases.PageOffsetErr != nil {
		return "", p.Bases.PageOffsetErr
	}
	reloc, err := m.find("reloc")
	if err != nil {
		return "", err
	}
	calls, err := reloc.symbol("reloc_calls")
	if err != nil {
		return "", err
	}
	read := func() (uint64, error) {
		var b [8]byte
		if n, f := p.CPU.Read(calls, b[:]); f.Faulted || n != len(b) {
			return 0, fmt.Errorf("reading reloc_calls at %v: %v", calls, f)
		}
		return binary.LittleEndian.Uint64(b[:]), nil
	}
	before, err := read()
	if err != nil {
		return "", err
	}
	got, err := m.call(p, "deps", "deps_call")
	if err != nil {
		return "", err
	}
	if want := uint64(p.Bases.PageOffset) + depsAddend; got != want {
		return "", fmt.Errorf("deps_call returned %#x, want reloc_add(%#x) = page_offset_base+%#x = %#x", got, depsAddend, depsAddend, want)
	}
	after, err := read()
	if err != nil {
		return "", err
	}
	if after != before+1 {
		return "", fmt.Errorf("reloc_calls went from %d to %d over one deps_call", before, after)
	}
	if _, err := m.reg.CanRemove("reloc"); err == nil {
		return "", errors.New("reloc could be unloaded while deps uses it")
	}
	return fmt.Sprintf("deps_call returned reloc_add(%#x) = %#x and counted itself in reloc_calls (%d -> %d); reloc is in use by deps, so it cannot be unloaded first",
		depsAddend, got, before, after), nil
}

// proveReach tries reloc at two more places and watches the loader refuse
// both: at the start of vmalloc space, and at the direct-map address of its
// own frames, both outside the top 2 GB that -mcmodel=kernel's
// sign-extended 32-bit addresses reach and more than 2 GB from _text.
// Then it calls reloc's position-independent reloc_abs32s through the
// direct-map alias of its frame: the CPU refuses to fetch it (NX).
func (m *Modules) proveReach(p *Proof) (string, error) {
	if p.Bases.TextErr != nil || p.Bases.PageOffsetErr != nil {
		return "", errors.Join(p.Bases.TextErr, p.Bases.PageOffsetErr)
	}
	reloc, err := m.find("reloc")
	if err != nil {
		return "", err
	}
	textPA := reloc.Frames[modload.GroupText][0]
	reg := modload.NewRegistry(m.Kallsyms)
	var lines []string
	for _, try := range []struct {
		what string
		base mm.VirtAddr
	}{
		{"vmalloc", p.Act.region(mm.KindVmalloc).Start},
		{"its frames' direct-map address", p.DirectVA(textPA)},
	} {
		if try.base >= signExtend32Lo || dist(try.base, p.Bases.Text) < 2*uint64(mm.GB) {
			return "", fmt.Errorf("the %s placement %v is within the top 2 GB or within 2 GB of _text %v", try.what, try.base, p.Bases.Text)
		}
		area := mm.VirtRange{Start: try.base, End: try.base.Add(reloc.Img.Object().Size())}
		_, err := reg.Link(reloc.Img.Object(), try.base, area)
		var pe *modload.PlacementError
		if !errors.As(err, &pe) {
			return "", fmt.Errorf("loading reloc at %s %v, %s from _text, was not refused for its reach: %v", try.what, try.base, distText(try.base, p.Bases.Text), err)
		}
		lines = append(lines, fmt.Sprintf("at %s %v (%s from _text) refused: %s", try.what, try.base, distText(try.base, p.Bases.Text), pe.First().Msg))
	}
	fn, err := reloc.symbol("reloc_abs32s")
	if err != nil {
		return "", err
	}
	off := uint64(fn - reloc.Img.Groups[modload.GroupText].VA)
	pa := reloc.Frames[modload.GroupText][off/page].Add(off % page)
	if v, f := p.CPU.Call(p.DirectVA(pa)); !f.Faulted {
		return "", fmt.Errorf("reloc_abs32s ran through its direct-map alias %v and returned %#x: the direct map executes", p.DirectVA(pa), v)
	}
	return fmt.Sprintf("%s; at MODULES_VADDR+%#x (%s from _text) accepted; reloc_abs32s fetched through the direct map %v faults (NX)",
		strings.Join(lines, "; "), uint64(reloc.Img.Base-m.area.Start), distText(reloc.Img.Base, p.Bases.Text), p.DirectVA(pa)), nil
}

// dist is |a-b|.
func dist(a, b mm.VirtAddr) uint64 {
	if a > b {
		return uint64(a - b)
	}
	return uint64(b - a)
}

// distText prints a distance in the units the console uses elsewhere
// (HumanSize's binary kB, MB, GB, TB, PB), to a tenth.
func distText(a, b mm.VirtAddr) string {
	d := float64(dist(a, b))
	for _, u := range []struct {
		size uint64
		name string
	}{{mm.PB, "PB"}, {mm.TB, "TB"}, {mm.GB, "GB"}, {mm.MB, "MB"}} {
		if d >= float64(u.size) {
			return fmt.Sprintf("%.1f %s", d/float64(u.size), u.name)
		}
	}
	return fmt.Sprintf("%.0f B", d)
}

// DistText is distText for the kernel's report.
func DistText(a, b mm.VirtAddr) string { return distText(a, b) }

// proveUnload unloads the modules newest first and checks on the live
// tables that each range and guard page is unmapped, each frame's
// direct-map alias RW NX again, and that the allocator got every frame
// back; then it loads them again, for the shell.
func (m *Modules) proveUnload(p *Proof) (string, error) {
	s := p.Act
	type gone struct {
		name   string
		r      mm.VirtRange
		guard  mm.VirtAddr
		frames []mm.PhysAddr
	}
	var all []gone
	held := 0
	for _, lm := range m.Loaded {
		g := gone{name: lm.Img.Name(), r: lm.Img.Range(), guard: lm.Guard()}
		lm.Pages(func(_ modload.Group, _ mm.VirtAddr, pa mm.PhysAddr) { g.frames = append(g.frames, pa) })
		held += lm.frameCount()
		all = append(all, g)
	}
	free := s.Frames.FreeFrames()
	if err := m.unloadAll(s); err != nil {
		return "", err
	}
	check := func() error {
		for _, g := range all {
			for va := g.r.Start; va <= g.guard; va = va.Add(page) {
				if t, err := p.Live.Translate(va); err == nil {
					return fmt.Errorf("after unloading %s, %v still maps %v", g.name, va, t.PA)
				}
			}
			for _, pa := range g.frames {
				a, err := p.Live.Translate(p.DirectVA(pa))
				if err != nil {
					return fmt.Errorf("after unloading %s, its frame %v's direct-map alias: %w", g.name, pa, err)
				}
				if a.Attrs&mm.AttrWrite == 0 || a.Attrs&mm.AttrNX == 0 {
					return fmt.Errorf("after unloading %s, its frame %v's direct-map alias is %v, not RW NX", g.name, pa, a.Attrs)
				}
			}
		}
		if got := s.Frames.FreeFrames() - free; got != uint64(held) {
			return fmt.Errorf("unloading gave %d frames back to the allocator, the modules held %d", got, held)
		}
		return nil
	}
	err := check()
	if lerr := m.loadAll(s); lerr != nil {
		return "", errors.Join(err, fmt.Errorf("loading the modules again: %w", lerr))
	}
	if err != nil {
		return "", err
	}
	var names []string
	for i := len(all) - 1; i >= 0; i-- {
		names = append(names, all[i].name)
	}
	return fmt.Sprintf("unloaded %s: their ranges and guard pages unmapped, their %d frames back in the allocator, their direct-map aliases RW NX again (loaded again for the shell)",
		strings.Join(names, " then "), held), nil
}

// Inject applies one of the module area's injections, after the modules
// are loaded.
func (m *Modules) Inject(s *Space, name string) error {
	reloc, err := m.find("reloc")
	if err != nil {
		return err
	}
	switch name {
	case "module-data-frame-off":
		other, err := s.Tables.AllocFrame()
		if err != nil {
			return err
		}
		if err := writeBytes(s.CPU, "a frame", s.DirectVA(other), zeroPage[:]); err != nil {
			return err
		}
		return remapPage(s, reloc.Img.Groups[modload.GroupData].VA, other)
	case "module-alias-rw":
		pa := reloc.Frames[modload.GroupText][0]
		t, err := s.AS.Translate(s.DirectVA(pa))
		if err != nil {
			return err
		}
		return s.AS.Protect(s.DirectVA(pa), page, t.Attrs|mm.AttrWrite)
	case "module-alias-exec":
		pa := reloc.Frames[modload.GroupText][0]
		t, err := s.AS.Translate(s.DirectVA(pa))
		if err != nil {
			return err
		}
		return s.AS.Protect(s.DirectVA(pa), page, t.Attrs&^mm.AttrNX)
	case "module-pob-changed":
		for _, ks := range s.Exports {
			if ks.Name == SymPageOffsetBase {
				return writeBytes(s.CPU, "page_offset_base", s.DirectVA(ks.PA), le64(uint64(s.Layout.PageOffset())+uint64(mm.GB)))
			}
		}
		return errors.New("the kernel exports no page_offset_base")
	case "module-deps-patched":
		deps, err := m.find("deps")
		if err != nil {
			return err
		}
		va, err := deps.symbol("deps_call")
		if err != nil {
			return err
		}
		pa, _ := deps.frameOf(va)
		// XOR EAX, EAX; RET, past the read-only text and alias.
		return patchReadOnly(s.CPU, "deps_call", s.DirectVA(pa), []byte{0x31, 0xc0, 0xc3})
	case "module-guard-mapped":
		last := m.Loaded[len(m.Loaded)-1]
		pa, err := s.Frames.AllocFrame()
		if err != nil {
			return err
		}
		return s.AS.Map(last.Guard(), pa, page, mm.PageKernel, mm.Only(mm.Size4K))
	case "module-at-modules-vaddr":
		// A page at MODULES_VADDR itself, below KASLR's 1 to 1024 pages:
		// the module area's first leaf is then where no module loads.
		pa, err := s.Frames.AllocFrame()
		if err != nil {
			return err
		}
		return s.AS.Map(m.area.Start, pa, page, mm.PageKernel, mm.Only(mm.Size4K))
	}
	return fmt.Errorf("modules: no injection %q", name)
}
