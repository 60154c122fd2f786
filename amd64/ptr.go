//go:build tamago

package amd64

import "unsafe"

// Ptr turns an address into a pointer, for memory the Go runtime does not
// own: page tables, firmware structures, pages reached through an alias.
// It is the one place physmap makes such pointers, in assembly (ptr.s),
// because go vet rightly distrusts uintptr-to-pointer conversions in Go
// code; every use is an address of memory that stays mapped while used.
func Ptr(va uint64) unsafe.Pointer
