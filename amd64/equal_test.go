package amd64

import (
	"testing"
	"unsafe"
)

// TestEqualPage: equalPage finds a difference in any byte of the page, and
// none in two equal pages.
func TestEqualPage(t *testing.T) {
	a, b := make([]byte, 4096), make([]byte, 4096)
	for i := range a {
		a[i] = byte(i * 7)
	}
	copy(b, a)
	addr := func(p []byte) uint64 { return uint64(uintptr(unsafe.Pointer(&p[0]))) }
	if !equalPage(addr(a), addr(b)) {
		t.Fatal("equal pages differ")
	}
	for i := range b {
		b[i] ^= 0x10
		if equalPage(addr(a), addr(b)) {
			t.Fatalf("a difference at byte %d is not seen", i)
		}
		b[i] ^= 0x10
	}
}
