package amd64

import (
	"testing"
	"unsafe"
)

// TestEqual3Page: equal3Page names b for a difference in any byte of b,
// c for one in c alone, b when both differ, and neither for three equal
// pages.
func TestEqual3Page(t *testing.T) {
	a, b, c := make([]byte, 4096), make([]byte, 4096), make([]byte, 4096)
	for i := range a {
		a[i] = byte(i * 13)
	}
	copy(b, a)
	copy(c, a)
	addr := func(p []byte) uint64 { return uint64(uintptr(unsafe.Pointer(&p[0]))) }
	if got := equal3Page(addr(a), addr(b), addr(c)); got != 0 {
		t.Fatalf("three equal pages: %d", got)
	}
	for i := range a {
		b[i] ^= 0x01
		if got := equal3Page(addr(a), addr(b), addr(c)); got != 1 {
			t.Fatalf("a difference in b at byte %d: %d, want 1", i, got)
		}
		c[i] ^= 0x80
		if got := equal3Page(addr(a), addr(b), addr(c)); got != 1 {
			t.Fatalf("differences in b and c at byte %d: %d, want 1", i, got)
		}
		b[i] ^= 0x01
		if got := equal3Page(addr(a), addr(b), addr(c)); got != 2 {
			t.Fatalf("a difference in c at byte %d: %d, want 2", i, got)
		}
		c[i] ^= 0x80
		a[i] ^= 0x04 // a itself differs from both: b is named
		if got := equal3Page(addr(a), addr(b), addr(c)); got != 1 {
			t.Fatalf("a difference in a at byte %d: %d, want 1", i, got)
		}
		a[i] ^= 0x04
	}
}
