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
