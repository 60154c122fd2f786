package region

import (
	"bytes"
	"fmt"

	"github.com/physmap/physmap/mm"
)

// Modules is the module area at MODULES_VADDR, where module_alloc
// (arch/x86/kernel/module.c) maps a module's pages: virtually contiguous,
// over frames from anywhere in RAM, each also reachable through the
// direct map. physmap's module is one position-independent function and a
// data page, copied by the loader through the direct map (as Linux's
// loader writes through a writable alias) into two frames apart from each
// other; text RO+X, data RW+NX (module_enable_ro, module_enable_nx).
type Modules struct {
	// TextPA and DataPA are the frames the loader filled: the
	// expectation walk.module holds the live tables to.
	TextPA, DataPA mm.PhysAddr
	// VA is where the loader mapped the text; the data page follows.
	VA mm.VirtAddr
}

// moduleMagic is the module's data: its code returns it added to its own
// address, which proves both where it ran and that it read its data page
// RIP-relative.
const moduleMagic = 0x6d6f_6475_6c65_0000 // "\0\0eludom"

// moduleCode is the module's one function, position independent, in the
// ProbeCall convention (result in RAX, plain RET):
//
//	lea rax, [rip+0]        ; rax = T+7, where T is the function's address
//	mov rcx, [rip+0xff2]    ; the qword at T+14+0xff2 = T+4096: the data page
//	add rax, rcx
//	ret
var moduleCode = []byte{
	0x48, 0x8d, 0x05, 0x00, 0x00, 0x00, 0x00,
	0x48, 0x8b, 0x0d, 0xf2, 0x0f, 0x00, 0x00,
	0x48, 0x01, 0xc8,
	0xc3,
}

// moduleRet is what the module's function returns when it runs at text.
func moduleRet(text mm.VirtAddr) uint64 { return uint64(text) + 7 + moduleMagic }

func (m *Modules) Populate(s *Space) error {
	frames, err := s.Frames.AllocScattered(2)
	if err != nil {
		return err
	}
	m.TextPA, m.DataPA = frames[0], frames[1]
	text := bytes.Repeat([]byte{int3}, int(page))
	copy(text, moduleCode)
	if err := writeBytes(s.CPU, "the module's text", s.DirectVA(m.TextPA), text); err != nil {
		return err
	}
	data := make([]byte, page)
	copy(data, le64(moduleMagic))
	if err := writeBytes(s.CPU, "the module's data", s.DirectVA(m.DataPA), data); err != nil {
		return err
	}
	m.VA = s.region(mm.KindModules).Start.Add(s.Place.ModuleOffset)
	if err := s.AS.Map(m.VA, m.TextPA, page, mm.PageKernelExec, mm.Only(mm.Size4K)); err != nil {
		return err
	}
	if err := s.AS.Map(m.VA.Add(page), m.DataPA, page, mm.PageKernel, mm.Only(mm.Size4K)); err != nil {
		return err
	}
	s.logf("physmap: module loaded at %v: text frame %v, data frame %v", m.VA, m.TextPA, m.DataPA)
	return nil
}

func le64(v uint64) []byte {
	b := make([]byte, 8)
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return b
}

func (m *Modules) Inject(s *Space, name string) error {
	switch name {
	case "module-pt-frame":
		return remapPage(s, m.VA.Add(page), s.AS.Root())
	case "module-data-frame-off":
		other, err := s.Frames.AllocFrame()
		if err != nil {
			return err
		}
		if err := writeBytes(s.CPU, "a frame", s.DirectVA(other), zeroPage[:]); err != nil {
			return err
		}
		return remapPage(s, m.VA.Add(page), other)
	case "module-at-modules-vaddr":
		base := s.region(mm.KindModules).Start
		for i, pa := range []mm.PhysAddr{m.TextPA, m.DataPA} {
			t, err := s.AS.Translate(m.VA.Add(uint64(i) * page))
			if err != nil {
				return err
			}
			if err := s.AS.Unmap(m.VA.Add(uint64(i)*page), page); err != nil {
				return err
			}
			if err := s.AS.Map(base.Add(uint64(i)*page), pa, page, t.Attrs, mm.Only(mm.Size4K)); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("modules: no injection %q", name)
}

// Prove checks walk.module, exec.module and write-through.module at the
// module's address as found in the live tables (the module area's first
// leaf). Expectation: the frames the loader filled.
func (m *Modules) Prove(p *Proof) {
	if p.Bases.ModuleErr != nil {
		for _, c := range []string{"walk.module", "exec.module", "write-through.module"} {
			fail(p.R, c, "%v", p.Bases.ModuleErr)
		}
		return
	}
	text, data := p.Bases.Module, p.Bases.Module.Add(page)
	err := func() error {
		for _, pg := range []struct {
			name        string
			va          mm.VirtAddr
			pa          mm.PhysAddr
			write, exec bool
		}{{"text", text, m.TextPA, false, true}, {"data", data, m.DataPA, true, false}} {
			t, err := p.Live.Translate(pg.va)
			if err != nil {
				return fmt.Errorf("module %s at %v: %w", pg.name, pg.va, err)
			}
			if t.PA != pg.pa {
				return fmt.Errorf("module %s at %v maps %v, not the frame %v the loader filled", pg.name, pg.va, t.PA, pg.pa)
			}
			if p.Act.Tables.Owns(t.PA) {
				return fmt.Errorf("module %s at %v is backed by %v, a page-table frame", pg.name, pg.va, t.PA)
			}
			if err := p.expectDirect("module "+pg.name, t.PA); err != nil {
				return err
			}
			if w, x := t.Attrs&mm.AttrWrite != 0, t.Attrs&mm.AttrNX == 0; w != pg.write || x != pg.exec {
				return fmt.Errorf("module %s at %v is %v, want write=%v exec=%v", pg.name, pg.va, t.Attrs, pg.write, pg.exec)
			}
		}
		if m.DataPA == m.TextPA.Add(page) || m.TextPA == m.DataPA.Add(page) {
			return fmt.Errorf("module frames %v and %v are physically adjacent", m.TextPA, m.DataPA)
		}
		return nil
	}()
	if err != nil {
		fail(p.R, "walk.module", "%v", err)
	} else {
		pass(p.R, "walk.module", "text %v -> %v RO+X, data %v -> %v RW+NX: the frames the loader filled, virtually adjacent, physically apart, both also at page_offset_base+pa",
			text, m.TextPA, data, m.DataPA)
	}

	got, f := p.CPU.Call(text)
	switch want := moduleRet(text); {
	case f.Faulted:
		fail(p.R, "exec.module", "calling the module at %v: %v", text, f)
	case got != want:
		fail(p.R, "exec.module", "the module at %v returned %#x, want %#x (its address+7 plus its data %#x)", text, got, want, uint64(moduleMagic))
	default:
		pass(p.R, "exec.module", "the module's function at %v read its data page RIP-relative and returned %#x = %v+7+%#x", text, got, text, uint64(moduleMagic))
	}

	if p.Bases.PageOffsetErr != nil {
		fail(p.R, "write-through.module", "%v", p.Bases.PageOffsetErr)
		return
	}
	if err := p.expectWriteThrough("the module's data", data.Add(8), p.DirectVA(m.DataPA).Add(8)); err != nil {
		fail(p.R, "write-through.module", "%v", err)
		return
	}
	pass(p.R, "write-through.module", "canary %#x written at %v read back at page_offset_base+pa %v of the frame the loader filled", uint64(canary), data.Add(8), p.DirectVA(m.DataPA).Add(8))
}
