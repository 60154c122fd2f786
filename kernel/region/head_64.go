package region

import (
	"bytes"
	"fmt"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/mm"
)

// KernelImage is the kernel text mapping: the image at __START_KERNEL_map
// + pa - phys_base (arch/x86/kernel/head_64.S fills level2_kernel_pgt with
// it), text RO+X, rodata RO+NX, data and bss RW+NX as mark_rodata_ro
// leaves them (arch/x86/mm/init_64.c); and, as set_memory_ro changes every
// alias of a frame (cpa_process_alias, arch/x86/mm/pat/set_memory.c), the
// direct-map aliases of text and rodata RO+NX.
type KernelImage struct {
	// Executed counts the text pages whose RET exec.kernel ran, and
	// NoRET those that hold no 0xc3 byte to run.
	Executed, NoRET int
}

// imagePageSizes are the page sizes the image may use.
func imagePageSizes() mm.PageSizes { return mm.Only(mm.Size4K) | mm.Only(mm.Size2M) }

func (k *KernelImage) Populate(s *Space) error {
	im := s.Image
	for _, sec := range []struct {
		r     mm.PhysRange
		attrs mm.Attr
	}{{im.Text, mm.PageKernelExec}, {im.Rodata, mm.PageKernelRO}, {im.Data, mm.PageKernel}} {
		if err := s.AS.Map(s.KernelVA(sec.r.Start), sec.r.Start, sec.r.Len(), sec.attrs, imagePageSizes()); err != nil {
			return fmt.Errorf("kernel image %v: %w", sec.r, err)
		}
	}
	for _, ro := range []mm.PhysRange{im.Text, im.Rodata} {
		if err := s.AS.Protect(s.DirectVA(ro.Start), ro.Len(), mm.PageKernelRO); err != nil {
			return fmt.Errorf("direct-map alias of %v: %w", ro, err)
		}
	}
	return nil
}

func (k *KernelImage) Inject(s *Space, name string) error {
	im := s.Image
	switch name {
	case "kernel-frame-off":
		// Not _text's own page: the proofs find _text by its frame.
		for _, pa := range []mm.PhysAddr{im.Text.Start.Add(page), im.Data.Start} {
			if err := remapPage(s, s.KernelVA(pa), pa.Add(page)); err != nil {
				return err
			}
		}
		return nil
	case "directmap-frame-off":
		return remapPage(s, s.DirectVA(im.Text.Start), im.Text.Start.Add(page))
	case "text-writable":
		return s.AS.Protect(s.KernelVA(im.Text.Start), im.Text.Len(), mm.AttrWrite|mm.AttrGlobal)
	case "text-nx":
		// The last text page exec.kernel can run: one holding a 0xc3
		// byte, read where the running code is.
		buf := make([]byte, page)
		for pa := im.Text.End - mm.PhysAddr(page); pa >= im.Text.Start; pa -= mm.PhysAddr(page) {
			if _, f := s.CPU.Read(mm.VirtAddr(pa), buf); f.Faulted {
				return &FaultError{What: "reading kernel text", VA: mm.VirtAddr(pa), Fault: f}
			}
			if bytes.IndexByte(buf, ret) >= 0 {
				return s.AS.Protect(s.KernelVA(pa), page, mm.PageKernelRO)
			}
		}
		return fmt.Errorf("kernel image: no text page holds a RET")
	}
	return fmt.Errorf("kernel image: no injection %q", name)
}

// remapPage points the page at va to the frame pa, keeping its
// permissions (a huge page around it is split).
func remapPage(s *Space, va mm.VirtAddr, pa mm.PhysAddr) error {
	t, err := s.AS.Translate(va)
	if err != nil {
		return err
	}
	if err := s.AS.Unmap(va, page); err != nil {
		return err
	}
	return s.AS.Map(va, pa, page, t.Attrs, mm.Only(mm.Size4K))
}

func (k *KernelImage) Prove(p *Proof) {
	if err := p.Bases.TextErr; err != nil {
		for _, c := range []string{"walk.image", "walk.perms", "content", "write-through", "exec.kernel", "fault.ro", "alias.first-insn"} {
			fail(p.R, c, "%v", err)
		}
		return
	}
	p.proveImageWalk()
	p.provePerms()
	p.proveContent()
	p.proveWriteThrough()
	k.proveExec(p)
	p.proveFaultRO()
	p.proveFirstInstruction()
}

// imagePages calls fn for every 4 KiB page of r, stopping at the first
// error.
func imagePages(r mm.PhysRange, fn func(pa mm.PhysAddr) error) (int, error) {
	n := 0
	for pa := r.Start; pa < r.End; pa = pa.Add(page) {
		if err := fn(pa); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// expectAlias walks the leaves over alias(r), where r is page aligned:
// every page of it must be mapped (with frames, to r's frame at the same
// offset), and check passes on each leaf (with the first address of r it
// covers). One walk of the range, not one per page: the same pages,
// translated alike.
func (p *Proof) expectAlias(r mm.PhysRange, alias func(mm.PhysAddr) mm.VirtAddr, frames bool, check func(mm.Leaf, mm.VirtAddr) error) error {
	start := alias(r.Start)
	end := start.Add(r.Len())
	frameOf := func(va mm.VirtAddr) mm.PhysAddr { return r.Start.Add(uint64(va - start)) }
	next := start
	for lf := range p.Live.Leaves(mm.VirtRange{Start: start, End: end}) {
		lo := max(lf.VA, start)
		if lo != next {
			return fmt.Errorf("%v (alias of %v): %w", next, frameOf(next), mm.ErrNotMapped)
		}
		if got, want := lf.PA.Add(uint64(lo-lf.VA)), frameOf(lo); frames && got != want {
			return fmt.Errorf("%v translates to %v, want the image frame %v", lo, got, want)
		}
		if err := check(lf, lo); err != nil {
			return err
		}
		next = min(lf.VA.Add(uint64(lf.Size)), end)
	}
	if next != end {
		return fmt.Errorf("%v (alias of %v): %w", next, frameOf(next), mm.ErrNotMapped)
	}
	return nil
}

// proveImageWalk: every image page is its own frame through the kernel
// text mapping, the direct map and the identity window. Expectation: the
// frames from the linker's symbols; __START_KERNEL_map + pa without KASLR.
func (p *Proof) proveImageWalk() {
	const name = "walk.image"
	im := p.Ref.Image
	kt := p.spec(mm.KindKernelText)
	if want := kt.Start.Add(uint64(im.Text.Start)); !p.Ref.KASLR && p.Bases.Text != want {
		fail(p.R, name, "_text is mapped at %v, not at __START_KERNEL_map+pa %v", p.Bases.Text, want)
		return
	}
	if p.Bases.PageOffsetErr != nil {
		fail(p.R, name, "%v", p.Bases.PageOffsetErr)
		return
	}
	n := int(im.All().Len() / page)
	for _, alias := range []func(mm.PhysAddr) mm.VirtAddr{p.KernelVA, p.DirectVA, func(pa mm.PhysAddr) mm.VirtAddr { return mm.VirtAddr(pa) }} {
		if err := p.expectAlias(im.All(), alias, true, func(mm.Leaf, mm.VirtAddr) error { return nil }); err != nil {
			fail(p.R, name, "%v", err)
			return
		}
	}
	pass(p.R, name, "%d image pages of %v, each one frame at _text+off (%v), page_offset_base+pa and pa", n, im.All(), p.Bases.Text)
}

// provePerms: Linux's permissions on both aliases of every image page.
func (p *Proof) provePerms() {
	const name = "walk.perms"
	if p.Bases.PageOffsetErr != nil {
		fail(p.R, name, "%v", p.Bases.PageOffsetErr)
		return
	}
	im := p.Ref.Image
	rules := []struct {
		name        string
		r           mm.PhysRange
		va          func(mm.PhysAddr) mm.VirtAddr
		write, exec bool
	}{
		{"kernel text", im.Text, p.KernelVA, false, true},
		{"kernel rodata", im.Rodata, p.KernelVA, false, false},
		{"kernel data", im.Data, p.KernelVA, true, false},
		{"direct-map alias of text", im.Text, p.DirectVA, false, false},
		{"direct-map alias of rodata", im.Rodata, p.DirectVA, false, false},
		{"direct-map alias of data", im.Data, p.DirectVA, true, false},
	}
	for _, ru := range rules {
		err := p.expectAlias(ru.r, ru.va, false, func(lf mm.Leaf, va mm.VirtAddr) error {
			if w, x := lf.Attrs&mm.AttrWrite != 0, lf.Attrs&mm.AttrNX == 0; w != ru.write || x != ru.exec {
				return fmt.Errorf("%s at %v is %v, want write=%v exec=%v", ru.name, va, lf.Attrs, ru.write, ru.exec)
			}
			return nil
		})
		if err != nil {
			fail(p.R, name, "%v", err)
			return
		}
	}
	// Linux's own check of the double mapping: __va(__pa(_stext)) is
	// another address of the same frame.
	stext := p.Bases.Text
	t, err := p.Live.Translate(stext)
	if err != nil {
		fail(p.R, name, "_stext %v: %v", stext, err)
		return
	}
	va := p.DirectVA(t.PA)
	d, err := p.Live.Translate(va)
	switch {
	case err != nil:
		fail(p.R, name, "__va(__pa(_stext)) = %v: %v", va, err)
	case d.PA != t.PA || va == stext:
		fail(p.R, name, "__va(__pa(_stext)) = %v maps %v, _stext %v maps %v: want another address of the same frame", va, d.PA, stext, t.PA)
	default:
		pass(p.R, name, "text RO+X, rodata RO+NX, data RW+NX, direct-map text and rodata RO+NX; _stext=%v __pa(_stext)=%v __va(__pa(_stext))=%v != _stext, same frame",
			stext, t.PA, va)
	}
}

// proveContent: every image page reads the same through the kernel text
// mapping and the direct map as at its identity address, where the
// running code is.
func (p *Proof) proveContent() {
	const name = "content"
	if p.Bases.PageOffsetErr != nil {
		fail(p.R, name, "%v", p.Bases.PageOffsetErr)
		return
	}
	n, err := imagePages(p.Ref.Image.All(), func(pa mm.PhysAddr) error {
		aliases := [...]mm.VirtAddr{p.KernelVA(pa), p.DirectVA(pa)}
		differs, f := p.CPU.Equal3(mm.VirtAddr(pa), aliases[0], aliases[1], int(page))
		switch {
		case f.Faulted:
			return &FaultError{What: "reading an image page", VA: mm.VirtAddr(f.CR2), Fault: f}
		case differs != 0:
			return fmt.Errorf("%v does not read what its frame %v holds", aliases[differs-1], pa)
		}
		return nil
	})
	if err != nil {
		fail(p.R, name, "%v", err)
		return
	}
	pass(p.R, name, "%d image pages read the same through _text+off and page_offset_base+pa as at pa", n)
}

// proveWriteThrough: a canary written through the kernel text mapping of
// every data and bss page reads back through the direct map.
func (p *Proof) proveWriteThrough() {
	const name = "write-through"
	if p.Bases.PageOffsetErr != nil {
		fail(p.R, name, "%v", p.Bases.PageOffsetErr)
		return
	}
	n, err := imagePages(p.Ref.Image.Data, func(pa mm.PhysAddr) error {
		return p.expectWriteThrough("a data page", p.KernelVA(pa), p.DirectVA(pa))
	})
	if err != nil {
		fail(p.R, name, "%v", err)
		return
	}
	pass(p.R, name, "a canary written at _text+off read back at page_offset_base+pa on all %d data and bss pages", n)
}

// ret is the RET instruction's opcode. Executing any 0xc3 byte, wherever
// it lies in the instruction stream, is a RET: so a call to it proves the
// page it lies on is executable through the alias called.
const ret = 0xc3

// proveExec runs RIPProbe through the kernel text mapping (its result
// names the address it ran at), then a RET on every text page that holds
// one, through the same alias.
func (k *KernelImage) proveExec(p *Proof) {
	const name = "exec.kernel"
	pa := p.Ref.Image.RIPProbe
	va := p.KernelVA(pa)
	got, f := p.CPU.Call(va)
	if f.Faulted {
		fail(p.R, name, "calling RIPProbe at %v: %v", va, f)
		return
	}
	if want := uint64(va) + RIPProbeLen; got != want {
		fail(p.R, name, "RIPProbe at %v reported RIP %#x, want %#x", va, got, want)
		return
	}
	buf := make([]byte, page)
	k.Executed, k.NoRET = 0, 0
	_, err := imagePages(p.Ref.Image.Text, func(pa mm.PhysAddr) error {
		// The RET is looked for in what the alias itself reads: only a
		// byte the CPU will fetch as 0xc3 is called.
		va := p.KernelVA(pa)
		if _, f := p.CPU.Read(va, buf); f.Faulted {
			return &FaultError{What: "reading kernel text", VA: va, Fault: f}
		}
		i := bytes.IndexByte(buf, ret)
		if i < 0 {
			k.NoRET++
			return nil
		}
		at := va.Add(uint64(i))
		if _, f := p.CPU.Call(at); f.Faulted {
			return fmt.Errorf("the RET at %v (page %v): %v", at, pa, f)
		}
		k.Executed++
		return nil
	})
	if err != nil {
		fail(p.R, name, "%v", err)
		return
	}
	pass(p.R, name, "RIPProbe (pa %v) ran at %v (RIP after its first instruction %#x); a RET ran through _text+off on %d of %d text pages (%d hold no 0xc3 byte)",
		pa, va, got, k.Executed, k.Executed+k.NoRET, k.NoRET)
}

// proveFaultRO writes kernel text through the kernel text mapping.
func (p *Proof) proveFaultRO() {
	const name = "fault.ro"
	text := p.KernelVA(p.Ref.Image.Text.Start)
	b, err := readBytes(p.CPU, "kernel text", text, 1)
	if err != nil {
		fail(p.R, name, "%v", err)
		return
	}
	_, f := p.CPU.Write(text, b) // the byte already there: harmless if it lands
	what := fmt.Sprintf("writing kernel text at %v", text)
	if err := expectFault(what, f, amd64.PF_P|amd64.PF_W); err != nil {
		fail(p.R, name, "%v", err)
		return
	}
	pass(p.R, name, "%s: #PF cr2=%#x code=%#x (%v)", what, f.CR2, uint64(f.Code), f.Code)
}

// proveFirstInstruction: the kernel's first instruction through its three
// aliases is one frame and the same bytes.
func (p *Proof) proveFirstInstruction() {
	const name = "alias.first-insn"
	if p.Bases.PageOffsetErr != nil {
		fail(p.R, name, "%v", p.Bases.PageOffsetErr)
		return
	}
	pa := p.Ref.Image.Text.Start
	var first []byte
	for _, va := range []mm.VirtAddr{mm.VirtAddr(pa), p.KernelVA(pa), p.DirectVA(pa)} {
		t, err := p.Live.Translate(va)
		if err != nil {
			fail(p.R, name, "%v: %v", va, err)
			return
		}
		b, err := readBytes(p.CPU, "the first instruction", va, 16)
		if err != nil {
			fail(p.R, name, "%v", err)
			return
		}
		switch {
		case t.PA != pa:
			fail(p.R, name, "%v maps frame %v, want the first text frame %v", va, t.PA, pa)
			return
		case first == nil:
			first = b
		case !bytes.Equal(b, first):
			fail(p.R, name, "%v reads % x, %v reads % x", va, b, mm.VirtAddr(pa), first)
			return
		}
	}
	pass(p.R, name, "one frame %v behind %v, %v and %v, decoding to %q", pa, mm.VirtAddr(pa), p.KernelVA(pa), p.DirectVA(pa), disasm(first, uint64(pa)))
}
