//go:build tamago

package main

import (
	"fmt"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/mm"
)

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

// int3 fills the rest of the module's text page.
const int3 = 0xcc

// module is the loaded module: a text page and a data page, virtually
// adjacent in the module area, backed by frames apart from each other.
type module struct {
	text, data     mm.VirtAddr
	textPA, dataPA mm.PhysAddr
}

// loadModule takes two non-adjacent frames of RAM, fills them through the
// direct map as Linux's module loader writes through a writable alias, and
// maps them at MODULES_VADDR: text RO+X, data RW+NX.
func (k *kspace) loadModule() error {
	frames, err := k.frames.AllocScattered(2)
	if err != nil {
		return err
	}
	mod, _ := k.layout.Region(mm.KindModules)
	base := mod.Start.Add(k.place.moduleOffset)
	m := &module{text: base, data: base.Add(page), textPA: frames[0], dataPA: frames[1]}
	code := k.directVA(m.textPA)
	for off := uint64(0); off < page; off++ {
		b := byte(int3)
		if off < uint64(len(moduleCode)) {
			b = moduleCode[off]
		}
		*(*byte)(ptrAt(code.Add(off))) = b
	}
	data := k.directVA(m.dataPA)
	for off := uint64(0); off < page; off += 8 {
		write64(data.Add(off), 0)
	}
	write64(data, moduleMagic)
	if err := k.as.Map(m.text, m.textPA, page, mm.PageKernelExec, mm.Only(mm.Size4K)); err != nil {
		return err
	}
	if err := k.as.Map(m.data, m.dataPA, page, mm.PageKernel, mm.Only(mm.Size4K)); err != nil {
		return err
	}
	k.mod = m
	fmt.Printf("physmap: module loaded at %v: text frame %v, data frame %v\n", m.text, m.textPA, m.dataPA)
	return nil
}

// proveModule walks the module's pages, runs its code where it is mapped
// and writes its data through the module address.
func (k *kspace) proveModule(r *report, live *mm.AddressSpace) {
	m := k.mod
	for _, p := range []struct {
		name        string
		va          mm.VirtAddr
		write, exec bool
	}{{"text", m.text, false, true}, {"data", m.data, true, false}} {
		t, err := live.Translate(p.va)
		if err != nil {
			r.fail("walk.module", "module %s at %v: %v", p.name, p.va, err)
			return
		}
		if k.alloc.Owns(t.PA) {
			r.fail("walk.module", "module %s at %v is backed by %v, a page-table frame", p.name, p.va, t.PA)
			return
		}
		d, err := live.Translate(k.directVA(t.PA))
		if err != nil || d.PA != t.PA {
			r.fail("walk.module", "module %s frame %v is not reachable at page_offset_base+pa %v (%v)", p.name, t.PA, k.directVA(t.PA), err)
			return
		}
		if w, x := t.Attrs&mm.AttrWrite != 0, t.Attrs&mm.AttrNX == 0; w != p.write || x != p.exec {
			r.fail("walk.module", "module %s at %v is %v, want write=%v exec=%v", p.name, p.va, t.Attrs, p.write, p.exec)
			return
		}
	}
	if m.dataPA == m.textPA.Add(page) || m.textPA == m.dataPA.Add(page) {
		r.fail("walk.module", "module frames %v and %v are physically adjacent", m.textPA, m.dataPA)
		return
	}
	r.pass("walk.module", "text %v -> %v RO+X, data %v -> %v RW+NX: virtually adjacent, physically apart, both also at page_offset_base+pa", m.text, m.textPA, m.data, m.dataPA)

	got, f := amd64.ProbeCall(uint64(m.text))
	switch want := moduleRet(m.text); {
	case f.Faulted:
		r.fail("exec.module", "calling the module at %v: %v", m.text, f)
	case got != want:
		r.fail("exec.module", "the module at %v returned %#x, want %#x (its address+7 plus its data %#x)", m.text, got, want, uint64(moduleMagic))
	default:
		r.pass("exec.module", "the module's function at %v read its data page RIP-relative and returned %#x = %v+7+%#x", m.text, got, m.text, uint64(moduleMagic))
	}

	lo := k.directVA(m.dataPA)
	if _, err := probe(lo); err != nil {
		r.fail("write-through.module", "%v", err)
		return
	}
	if f := amd64.ProbeWrite64(uint64(m.data.Add(8)), canary); f.Faulted {
		r.fail("write-through.module", "writing module data at %v: %v", m.data.Add(8), f)
		return
	}
	got = read64(lo.Add(8))
	write64(m.data.Add(8), 0)
	r.check("write-through.module", got == canary, "canary %#x written at %v read back %#x at page_offset_base+pa %v", uint64(canary), m.data.Add(8), got, lo.Add(8))
}
