package modload_test

import (
	"testing"

	"golang.org/x/arch/x86/x86asm"

	"github.com/physmap/physmap/kernel/modload"
	"github.com/physmap/physmap/kernel/modules/modtest"
	"github.com/physmap/physmap/mm"
)

// operand is what an instruction's relocated operand points at, as the CPU
// would compute it: a RIP-relative address, a branch target, a
// sign-extended immediate or absolute displacement.
type operand struct {
	op     x86asm.Op
	kind   string // "rip", "rel", "imm", "disp"
	target mm.VirtAddr
}

// decode disassembles the function at va up to its RET and lists the
// operands that carry an address.
func decode(t *testing.T, img *modload.Image, va mm.VirtAddr) []operand {
	t.Helper()
	var out []operand
	for pc := va; ; {
		code := read(t, img, pc, 15)
		inst, err := x86asm.Decode(code, 64)
		if err != nil {
			t.Fatalf("decode at %v: %v", pc, err)
		}
		next := pc.Add(uint64(inst.Len))
		for _, a := range inst.Args {
			switch a := a.(type) {
			case x86asm.Mem:
				switch {
				case a.Base == x86asm.RIP:
					out = append(out, operand{inst.Op, "rip", next.Add(uint64(a.Disp))})
				case a.Base == 0 && a.Index != 0:
					out = append(out, operand{inst.Op, "disp", mm.VirtAddr(a.Disp)})
				}
			case x86asm.Rel:
				out = append(out, operand{inst.Op, "rel", next.Add(uint64(int64(a)))})
			case x86asm.Imm:
				if int64(a) < -0x10000 { // an address, not a length
					out = append(out, operand{inst.Op, "imm", mm.VirtAddr(a)})
				}
			}
		}
		if inst.Op == x86asm.RET || inst.Op == x86asm.JMP {
			return out
		}
		pc = next
	}
}

// Each probe function, disassembled after relocation, reaches what its
// relocations name: the kernel's page_offset_base and console write at the
// fake kernel table's addresses, the module's data where readelf and the
// layout put it, and deps reaches reloc's exports.
func TestDecodedProbes(t *testing.T) {
	objs := modtest.Modules(t)
	for _, pl := range placements {
		t.Run(pl.name, func(t *testing.T) {
			reloc, deps := mustParse(t, objs["reloc"]), mustParse(t, objs["deps"])
			r := modload.NewRegistry(pl.kernel)
			imgs := loadAll(t, r, pl.base(reloc.Size()+deps.Size()), reloc, deps)
			// addr finds a symbol from readelf's values and the layout.
			addr := func(img int, name string) mm.VirtAddr {
				raw := objs[[]string{"reloc", "deps"}[img]]
				a, ok := symbolVA(t, imgs[img], pl.kernel, readelfSections(t, raw), readelfSymbols(t, raw), name, imgs...)
				if !ok {
					t.Fatalf("no address for %s", name)
				}
				return a
			}
			pob, _ := pl.kernel.Lookup("page_offset_base")
			cw, _ := pl.kernel.Lookup("physmap_console_write")
			for _, c := range []struct {
				img  int
				fn   string
				want []operand
			}{
				{0, "reloc_pc32", []operand{{x86asm.MOV, "rip", pob}}},
				{0, "reloc_plt32", []operand{{x86asm.MOV, "imm", addr(0, "reloc_probe")}, {x86asm.JMP, "rel", cw}}},
				{0, "reloc_abs64", []operand{{x86asm.MOV, "rip", addr(0, "reloc_table")}}},
				{0, "reloc_abs32s", []operand{{x86asm.MOV, "imm", addr(0, "reloc_words")}}},
				{0, "reloc_index32s", []operand{{x86asm.MOV, "rip", addr(0, "reloc_index")}, {x86asm.MOV, "disp", addr(0, "reloc_words")}}},
				{0, "reloc_ro_after_init", []operand{{x86asm.MOV, "rip", addr(0, "reloc_saved_pob")}}},
				{0, "reloc_add", []operand{{x86asm.MOV, "rip", pob}}},
				{1, "deps_call", []operand{{x86asm.ADD, "rip", addr(0, "reloc_calls")}, {x86asm.JMP, "rel", addr(0, "reloc_add")}}},
			} {
				got := decode(t, imgs[c.img], addr(c.img, c.fn))
				if len(got) != len(c.want) {
					t.Errorf("%s: operands %+v, want %+v", c.fn, got, c.want)
					continue
				}
				for i := range got {
					if got[i] != c.want[i] {
						t.Errorf("%s: operand %d %+v, want %+v", c.fn, i, got[i], c.want[i])
					}
				}
			}
			// The pointer table R_X86_64_64 filled: page_offset_base and
			// &reloc_words[1].
			table := addr(0, "reloc_table")
			if got := mm.VirtAddr(read64(t, imgs[0], table)); got != pob {
				t.Errorf("reloc_table[0] = %v, want page_offset_base %v", got, pob)
			}
			if got, want := mm.VirtAddr(read64(t, imgs[0], table.Add(8))), addr(0, "reloc_words").Add(8); got != want {
				t.Errorf("reloc_table[1] = %v, want &reloc_words[1] %v", got, want)
			}
			// reloc_saved_pob is in the ro_after_init group.
			g := imgs[0].Groups[modload.GroupROAfterInit]
			if a := addr(0, "reloc_saved_pob"); a < g.VA || a >= g.VA.Add(g.Size) {
				t.Errorf("reloc_saved_pob at %v, outside ro_after_init [%v, +%#x)", a, g.VA, g.Size)
			}
		})
	}
}
