package qemu

import (
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/physmap/physmap/qemu/internal/testelf"
)

// pvhKernel is what physmap's kernel looks like to CheckKernel.
var pvhKernel = testelf.PVH

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckKernel(t *testing.T) {
	noNote := pvhKernel
	noNote.Owner = ""
	gnuNote := pvhKernel
	gnuNote.Owner = "GNU"
	otherType := pvhKernel
	otherType.NoteType = 17
	zeroEntry := pvhKernel
	zeroEntry.Entry = 0
	arm := pvhKernel
	arm.Machine = elf.EM_AARCH64
	dyn := pvhKernel
	dyn.Type = elf.ET_DYN
	for _, tc := range []struct {
		name string
		path func(t *testing.T) string
		want error
		says string
	}{
		{"physmap", func(t *testing.T) string { return writeFile(t, "k.elf", pvhKernel.Bytes()) }, nil, ""},
		{"missing", func(t *testing.T) string { return filepath.Join(t.TempDir(), "none.elf") }, ErrKernelMissing, "no such file"},
		{"directory", func(t *testing.T) string { return t.TempDir() }, ErrKernelMissing, "is a directory"},
		{"empty", func(t *testing.T) string { return writeFile(t, "k.elf", nil) }, ErrKernelMissing, "is empty"},
		{"text", func(t *testing.T) string { return writeFile(t, "k.elf", []byte("root:x:0:0:root:/root:/bin/bash\n")) }, ErrBadKernel, "not an ELF file"},
		{"truncated ELF", func(t *testing.T) string { return writeFile(t, "k.elf", pvhKernel.Bytes()[:20]) }, ErrBadKernel, "a broken ELF file"},
		{"three bytes", func(t *testing.T) string { return writeFile(t, "k.elf", []byte("\x7fEL")) }, ErrBadKernel, "not an ELF file"},
		{"aarch64", func(t *testing.T) string { return writeFile(t, "k.elf", arm.Bytes()) }, ErrBadKernel, "EM_AARCH64"},
		{"shared object", func(t *testing.T) string { return writeFile(t, "k.elf", dyn.Bytes()) }, ErrBadKernel, "ET_DYN"},
		{"no note", func(t *testing.T) string { return writeFile(t, "k.elf", noNote.Bytes()) }, ErrBadKernel, "no Xen PVH entry note"},
		{"GNU note only", func(t *testing.T) string { return writeFile(t, "k.elf", gnuNote.Bytes()) }, ErrBadKernel, "no Xen PVH entry note"},
		{"other Xen note", func(t *testing.T) string { return writeFile(t, "k.elf", otherType.Bytes()) }, ErrBadKernel, "type 18"},
		{"zero entry", func(t *testing.T) string { return writeFile(t, "k.elf", zeroEntry.Bytes()) }, ErrBadKernel, "no Xen PVH entry note"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckKernel(tc.path(t))
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("CheckKernel = %v, want %v", err, tc.want)
			}
			if err == nil {
				return
			}
			if msg := err.Error(); !strings.Contains(msg, tc.says) || strings.Contains(msg, "\n") || !strings.Contains(msg, "make kernel") {
				t.Errorf("CheckKernel = %q: want one line saying %q and how to build the kernel", msg, tc.says)
			}
			if ExitCode(err) != ExitUsage {
				t.Errorf("ExitCode = %d, want %d", ExitCode(err), ExitUsage)
			}
		})
	}
}

// TestCheckKernelBuilt checks the kernel make builds, when there is one.
func TestCheckKernelBuilt(t *testing.T) {
	path := filepath.Join("..", "build", "physmap.elf")
	if _, err := os.Stat(path); err != nil {
		t.Skip("no build/physmap.elf; make kernel builds it")
	}
	if err := CheckKernel(path); err != nil {
		t.Error(err)
	}
}
