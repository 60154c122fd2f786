//go:build !unix

package linux

import (
	"errors"
	"os"
)

func mmapReadOnly(*os.File, uint64) ([]byte, error) {
	return nil, errors.New("mapping a file is supported on Unix hosts only; use the xp fallback")
}

func munmap([]byte) error { return nil }
