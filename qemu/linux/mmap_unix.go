//go:build unix

package linux

import (
	"os"
	"syscall"
)

// mmapReadOnly maps size bytes of f read-only and shared: the guest's
// writes show through, and nothing here can write back.
func mmapReadOnly(f *os.File, size uint64) ([]byte, error) {
	return syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
}

func munmap(b []byte) error { return syscall.Munmap(b) }
