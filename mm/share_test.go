package mm

import "testing"

// TestShareKernelHalf: a process's address space made as pgd_alloc makes
// one sees the kernel's kernel half (and a change below its top level),
// has a user half of its own, and releasing it frees only its own tables.
func TestShareKernelHalf(t *testing.T) {
	for _, mode := range []Mode{Mode4Level, Mode5Level} {
		t.Run(mode.String(), func(t *testing.T) {
			e := newEnv(t, mode)
			kva := mode.KernelStart().Add(0x1234 << 21)
			if err := e.as.Map(kva, 0x200000, 0x1000, PageKernel, Only(Size4K)); err != nil {
				t.Fatal(err)
			}
			proc, err := New(mode, e.mem, e.alloc, NopTLB)
			if err != nil {
				t.Fatal(err)
			}
			if err := proc.ShareKernelHalf(e.as); err != nil {
				t.Fatal(err)
			}
			if err := proc.ShareKernelHalf(e.as); err == nil {
				t.Error("sharing twice succeeded")
			}
			if err := proc.Map(0x400000, 0x300000, 0x1000, AttrUser|AttrNX, Only(Size4K)); err != nil {
				t.Fatal(err)
			}
			tr, err := proc.Translate(kva)
			if err != nil || tr.PA != 0x200000 {
				t.Fatalf("kernel address in the process: %+v, %v", tr, err)
			}
			if _, err := e.as.Translate(0x400000); err == nil {
				t.Error("the process's user page shows in the kernel's tables")
			}
			// A change below the top level shows in both.
			if err := e.as.Map(kva.Add(0x1000), 0x201000, 0x1000, PageKernel, Only(Size4K)); err != nil {
				t.Fatal(err)
			}
			if tr, err := proc.Translate(kva.Add(0x1000)); err != nil || tr.PA != 0x201000 {
				t.Fatalf("a later kernel mapping in the process: %+v, %v", tr, err)
			}
			if err := proc.ReleaseUser(); err != nil {
				t.Fatal(err)
			}
			if got := e.alloc.InUse(); got != e.as.TablePages() {
				t.Errorf("after ReleaseUser %d frames in use, the kernel's tables are %d", got, e.as.TablePages())
			}
			if tr, err := e.as.Translate(kva); err != nil || tr.PA != 0x200000 {
				t.Errorf("the kernel's mapping after the release: %+v, %v", tr, err)
			}
			e.check()
		})
	}
}
