// Package modtest compiles physmap's C modules for host tests with the
// Makefile's own rule (make modules, into a temporary MODULE_OBJ), so the
// tests load the very objects the kernel embeds, built with the same
// flags. It needs gcc and binutils (readelf) from Debian and make; when
// one is missing the test fails with the command that installs it.
package modtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// AptLine installs what modtest needs.
const AptLine = "apt-get install -y gcc binutils make"

// need fails t unless every tool is on PATH.
func need(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: run  sudo %s", tool, AptLine)
		}
	}
}

// Root returns the repository root, the directory holding go.mod.
func Root(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("modtest: cannot find its own source file")
	}
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("modtest: no go.mod at %s: %v", root, err)
	}
	return root
}

type built struct {
	objs map[string][]byte
	err  error
}

var (
	mu    sync.Mutex
	cache = map[string]built{}
)

// Build runs `make modules` for the sources in dir (relative to the root)
// and returns each object by module name (its file's stem). names, if
// given, are the MODULES to build; otherwise the Makefile's default list.
// Results are kept for the test binary's life.
func Build(t testing.TB, dir string, names ...string) map[string][]byte {
	t.Helper()
	need(t, "gcc", "make")
	key := dir + ":" + strings.Join(names, " ")
	mu.Lock()
	defer mu.Unlock()
	b, ok := cache[key]
	if !ok {
		b.objs, b.err = build(Root(t), dir, names)
		cache[key] = b
	}
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.objs
}

func build(root, dir string, names []string) (map[string][]byte, error) {
	tmp, err := os.MkdirTemp("", "physmap-modules-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	args := []string{"-s", "-C", root, "modules", "MODULES_DIR=" + dir, "MODULE_OBJ=" + tmp}
	if len(names) > 0 {
		args = append(args, "MODULES="+strings.Join(names, " "))
	}
	cmd := exec.Command("make", args...)
	// A make that runs `go test` passes its jobserver and flags down; this
	// make is a separate build.
	cmd.Env = append(os.Environ(), "MAKEFLAGS=", "MFLAGS=", "MAKELEVEL=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	files, err := filepath.Glob(filepath.Join(tmp, "*.o"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("make modules in %s built no object (%v)", dir, err)
	}
	objs := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		objs[strings.TrimSuffix(filepath.Base(f), ".o")] = data
	}
	return objs, nil
}

// Modules returns the kernel's modules (kernel/modules/c), by name.
func Modules(t testing.TB) map[string][]byte {
	t.Helper()
	return Build(t, "kernel/modules/c")
}

// Readelf runs binutils' readelf with args on obj and returns its output.
func Readelf(t testing.TB, obj []byte, args ...string) string {
	t.Helper()
	need(t, "readelf")
	f := filepath.Join(t.TempDir(), "obj.o")
	if err := os.WriteFile(f, obj, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("readelf", append(args, f)...).CombinedOutput()
	if err != nil {
		t.Fatalf("readelf %v: %v\n%s", args, err, out)
	}
	return string(out)
}
