package mm

import (
	"errors"
	"testing"
)

// TestPTIUserCopy builds a user copy as pti.c does: the 512 GiB entry
// over a kernel range shared from the kernel's tables, a page of its own
// beside it, the kernel copy's user entry NX at the top; releasing the
// copy frees its own tables only.
func TestPTIUserCopy(t *testing.T) {
	for _, mode := range []Mode{Mode4Level, Mode5Level} {
		t.Run(mode.String(), func(t *testing.T) {
			e := newEnv(t, mode)
			cea := VirtAddr(0xfffffe0000000000)
			if err := e.as.Map(cea, 0x200000, 0x1000, PageKernel, Only(Size4K)); err != nil {
				t.Fatal(err)
			}
			before := e.alloc.InUse()
			root, err := e.alloc.AllocFrame()
			if err != nil {
				t.Fatal(err)
			}
			user := NewAt(mode, root, e.mem, e.alloc, NopTLB)
			l := P4D
			if mode == Mode4Level {
				l = PGD
			}
			if err := user.ShareEntry(e.as, cea, l); err != nil {
				t.Fatal(err)
			}
			if err := user.ShareEntry(e.as, cea, l); !errors.Is(err, ErrAlreadyMapped) {
				t.Errorf("sharing twice: %v", err)
			}
			if err := user.ShareEntry(e.as, 0xffffffff80000000, l); !errors.Is(err, ErrNotShareable) {
				t.Errorf("sharing an empty entry: %v", err)
			}
			if err := user.Map(0x400000, 0x300000, 0x1000, AttrUser, Only(Size4K)); err != nil {
				t.Fatal(err)
			}
			// Shared: a later kernel mapping in the same 512 GiB shows.
			if err := e.as.Map(cea.Add(0x1000), 0x201000, 0x1000, PageKernel, Only(Size4K)); err != nil {
				t.Fatal(err)
			}
			if tr, err := user.Translate(cea.Add(0x1000)); err != nil || tr.PA != 0x201000 {
				t.Fatalf("shared entry: %+v, %v", tr, err)
			}
			if !user.SetTopNX(0x400000) || user.TopEntry(0x400000)&NX == 0 {
				t.Error("SetTopNX left the entry executable")
			}
			if tr, err := user.Translate(0x400000); err != nil || tr.Attrs&AttrNX == 0 {
				t.Errorf("under a top-level NX entry: %+v, %v", tr, err)
			}
			if user.SetTopNX(VirtAddr(1) << mode.Shift(PGD)) {
				t.Error("SetTopNX of an empty entry reported it present")
			}
			if !user.Unshare(cea, l) || user.Unshare(cea, l) {
				t.Error("Unshare did not report the entry once")
			}
			if err := user.Release(); err != nil {
				t.Fatal(err)
			}
			if got := e.alloc.InUse(); got != before {
				t.Errorf("after the copy's release %d frames in use, want %d", got, before)
			}
			if tr, err := e.as.Translate(cea.Add(0x1000)); err != nil || tr.PA != 0x201000 {
				t.Errorf("the kernel's cea after the copy's release: %+v, %v", tr, err)
			}
		})
	}
}

// TestWithholdGlobal builds under PTI's mask: Map and Protect drop G,
// SetGlobal puts it back on whole leaves (a 2M page stays one page) and
// takes it off again, each change invalidated, holes passed over.
func TestWithholdGlobal(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			e := newEnv(t, mode)
			e.as.Withhold(AttrGlobal)
			base := VirtAddr(0xffffffff80000000)
			if err := e.as.Map(base, 0x200000, 0x200000, PageKernelExec, Only(Size2M)); err != nil {
				t.Fatal(err)
			}
			if err := e.as.Map(base.Add(0x400000), 0x400000, 0x1000, PageKernel, Only(Size4K)); err != nil {
				t.Fatal(err)
			}
			global := func(va VirtAddr) bool {
				t.Helper()
				tr, err := e.as.Translate(va)
				if err != nil {
					t.Fatal(err)
				}
				return tr.Attrs&AttrGlobal != 0
			}
			if global(base) || global(base.Add(0x400000)) {
				t.Fatal("Map kept G that was withheld")
			}
			if err := e.do(func() error { return e.as.Protect(base.Add(0x400000), 0x1000, PageKernelRO) }); err != nil {
				t.Fatal(err)
			}
			if global(base.Add(0x400000)) {
				t.Error("Protect kept G that was withheld")
			}
			// One page inside the 2M leaf, and a hole, in one range.
			if err := e.do(func() error { return e.as.SetGlobal(base.Add(0x1000), 0x600000, true) }); err != nil {
				t.Fatal(err)
			}
			tr, _ := e.as.Translate(base)
			if !global(base) || tr.Size != Size2M || !global(base.Add(0x400000)) {
				t.Errorf("SetGlobal(true): %v %v, %v", global(base), tr.Size, global(base.Add(0x400000)))
			}
			if err := e.do(func() error { return e.as.SetGlobal(base, 0x200000, false) }); err != nil {
				t.Fatal(err)
			}
			if global(base) || !global(base.Add(0x400000)) {
				t.Error("SetGlobal(false) cleared the wrong leaves")
			}
			e.check()
		})
	}
}
