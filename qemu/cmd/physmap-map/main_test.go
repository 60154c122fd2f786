package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/physmap/physmap/qemu"
	"github.com/physmap/physmap/qemu/internal/picture"
)

// Real consoles, shared with package picture's tests.
const (
	console4    = "../../internal/picture/testdata/console-4level-6g.txt"
	consoleFail = "../../internal/picture/testdata/console-4level-fail.txt"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "sub", "map.svg")
	var stderr bytes.Buffer
	if code := run([]string{"-console", console4, "-o", out}, &stderr); code != qemu.ExitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("<?xml")) || !bytes.Contains(b, []byte("self-test passed")) {
		t.Errorf("%s: not the picture of a passing boot", out)
	}

	// A failing boot is drawn, says so, and exits 1.
	failed := filepath.Join(dir, "failed.svg")
	stderr.Reset()
	if code := run([]string{"-console", consoleFail, "-o", failed}, &stderr); code != qemu.ExitFailed {
		t.Errorf("failing console: exit %d, want %d: %s", code, qemu.ExitFailed, stderr.String())
	}
	if b, err := os.ReadFile(failed); err != nil || !bytes.Contains(b, []byte("SELF-TEST FAILED")) {
		t.Errorf("failing console: picture %v, error %v; want one titled SELF-TEST FAILED", len(b), err)
	}
	if !strings.Contains(stderr.String(), "39 passed, 3 failed") {
		t.Errorf("failing console: stderr %q does not give the verdict", stderr.String())
	}

	empty := filepath.Join(dir, "empty.txt")
	if err := os.WriteFile(empty, []byte("selftest: 1 passed, 0 failed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"-console", console4, "-m", "2G"}, qemu.ExitUsage},
		{[]string{"-console", filepath.Join(dir, "missing")}, qemu.ExitUsage},
		{[]string{"-console", empty, "-o", filepath.Join(dir, "x.svg")}, qemu.ExitFailed},
		{[]string{"stray"}, qemu.ExitUsage},
		{[]string{"-kernel", filepath.Join(dir, "missing.elf"), "-o", filepath.Join(dir, "y.svg")}, qemu.ExitUsage},
	} {
		stderr.Reset()
		if code := run(c.args, &stderr); code != c.code {
			t.Errorf("run(%q) = %d, want %d: %s", c.args, code, c.code, stderr.String())
		}
	}
}

// TestRunPNG writes the PNG beside the SVG, or says in one line how to get
// rsvg-convert.
func TestRunPNG(t *testing.T) {
	dir := t.TempDir()
	png := filepath.Join(dir, "map.png")
	var stderr bytes.Buffer
	code := run([]string{"-console", console4, "-o", filepath.Join(dir, "map.svg"), "-png", png}, &stderr)
	if _, err := exec.LookPath(picture.RSVG); err != nil {
		if code != qemu.ExitUsage || !strings.Contains(stderr.String(), "apt-get install -y librsvg2-bin") {
			t.Errorf("without rsvg-convert: exit %d, %q", code, stderr.String())
		}
		return
	}
	if code != qemu.ExitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	b, err := os.ReadFile(png)
	if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("%s: %d bytes, error %v; want a PNG", png, len(b), err)
	}

	// And without it on PATH.
	t.Setenv("PATH", dir)
	stderr.Reset()
	code = run([]string{"-console", console4, "-o", filepath.Join(dir, "map2.svg"), "-png", filepath.Join(dir, "map2.png")}, &stderr)
	if code != qemu.ExitUsage || strings.Count(stderr.String(), "apt-get install -y librsvg2-bin") != 1 {
		t.Errorf("rsvg-convert off PATH: exit %d, %q", code, stderr.String())
	}
}
