// Package progtest links physmap's user programs for host tests with the
// Makefile's own rule (make programs, into a temporary PROGRAM_OBJ), so
// tests read the executables the kernel embeds, linked with the same
// flags. It needs gcc and make; when one is missing the test fails with
// the command that installs it.
package progtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/physmap/physmap/kernel/modules/modtest"
)

var (
	once sync.Once
	elfs map[string][]byte
	err  error
)

// Build returns each program of the Makefile's PROGRAMS by name.
func Build(t testing.TB) map[string][]byte {
	t.Helper()
	for _, tool := range []string{"gcc", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: run  sudo %s", tool, modtest.AptLine)
		}
	}
	root := modtest.Root(t)
	once.Do(func() { elfs, err = build(root) })
	if err != nil {
		t.Fatal(err)
	}
	return elfs
}

func build(root string) (map[string][]byte, error) {
	tmp, err := os.MkdirTemp("", "physmap-programs-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("make", "-s", "--no-print-directory", "programs", "PROGRAM_OBJ="+tmp)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("make programs: %v\n%s", err, out)
	}
	files, err := filepath.Glob(filepath.Join(tmp, "*.elf"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("make programs linked nothing in %s", tmp)
	}
	out := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		out[filepath.Base(f[:len(f)-len(".elf")])] = data
	}
	return out, nil
}
