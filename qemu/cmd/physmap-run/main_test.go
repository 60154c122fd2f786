package main

import (
	"bytes"
	"debug/elf"
	"fmt"
	"github.com/physmap/physmap/kernel/selftest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/physmap/physmap/qemu/internal/testelf"
)

// fakeQEMU is the fake QEMU, built once.
var fakeQEMU string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "physmap-run-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fakeQEMU = filepath.Join(dir, "qemu-system-x86_64")
	build := exec.Command("go", "build", "-o", fakeQEMU, "../../internal/fakeqemu")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the fake QEMU:", err)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func file(t *testing.T, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "physmap.elf")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestExitStatus runs the command on each bad input the issue lists, and
// on a passing and a failing boot: every bad input is exit status 2 with
// one line that names it.
func TestExitStatus(t *testing.T) {
	noNote := testelf.PVH
	noNote.Owner = ""
	arm := testelf.PVH
	arm.Machine = elf.EM_AARCH64
	pass := passingBoot() + "exit 1"
	for _, tc := range []struct {
		name   string
		args   []string
		kernel []byte // nil: a PVH kernel
		script string // the fake QEMU's; "" for pass
		want   int
		says   string
	}{
		{"pass", nil, nil, "", 0, "physmap-run: ok: selftest: "},
		{"self-test failed", nil, nil, "print PASS a: x\nprint FAIL mm.check: W+X leaf\nprint selftest: 1 passed, 1 failed, manifest 0\nexit 3", 1,
			"physmap-run: verdict: self-test failed: 1 failed: mm.check\n  FAIL mm.check: W+X leaf"},
		{"timeout 0", []string{"-timeout", "0"}, nil, "", 2, "physmap-run: timeout: bad timeout: 0s: must be positive"},
		{"timeout negative", []string{"-timeout", "-1s"}, nil, "", 2, "physmap-run: timeout: bad timeout: -1s: must be positive"},
		{"timeout absurd", []string{"-timeout", "10000h"}, nil, "", 2, "physmap-run: timeout: bad timeout: 10000h0m0s: more than 24h0m0s"},
		{"cpu empty", []string{"-cpu", ""}, nil, "", 2, `physmap-run: cpu: bad CPU model: "": empty CPU model`},
		{"memory too small", []string{"-m", "256M"}, nil, "", 2, "physmap-run: memory: memory size below the minimum"},
		{"memory malformed", []string{"-m", "2Q"}, nil, "", 2, `physmap-run: memory: bad memory size: "2Q": unknown unit "q"`},
		{"kernel missing", []string{"-kernel", "/nonexistent/physmap.elf"}, nil, "", 2, "physmap-run: kernel: no kernel image: stat /nonexistent/physmap.elf: no such file or directory; build it with: make kernel"},
		{"kernel empty", nil, []byte{}, "", 2, "is empty; build it with: make kernel"},
		{"kernel not ELF", nil, []byte("#!/bin/sh\n"), "", 2, "physmap-run: kernel: not a kernel QEMU can boot: "},
		{"kernel for arm64", nil, arm.Bytes(), "", 2, "EM_AARCH64"},
		{"kernel without PVH note", nil, noNote.Bytes(), "", 2, "no Xen PVH entry note"},
		{"QEMU refuses the cpu", []string{"-cpu", "bogus"}, nil, "stderr qemu-system-x86_64: unable to find CPU model 'bogus'\nexit 1", 2,
			"physmap-run: start: QEMU refused the machine: qemu-system-x86_64: unable to find CPU model 'bogus'"},
		{"QEMU cannot allocate", []string{"-m", "2T"}, nil, "stderr qemu-system-x86_64: cannot set up guest memory 'microvm.ram': Cannot allocate memory\nexit 1", 2,
			"Cannot allocate memory; physmap touches little of its RAM: try -noreserve"},
		{"early boot", []string{"-cpu", "qemu64"}, nil, "print physmap: early boot: no RDRAND (CPUID.01H:ECX[30]) for TamaGo's RNG; try -cpu max\nexit 5", 2,
			"physmap-run: physmap: early boot: no RDRAND (CPUID.01H:ECX[30]) for TamaGo's RNG; try -cpu max"},
		{"-quit alone", []string{"-quit"}, nil, "", 2, "physmap-run: -quit goes with -crosscheck"},
		{"stray argument", []string{"extra"}, nil, "", 2, `physmap-run: unexpected arguments ["extra"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("QEMU", fakeQEMU)
			script := tc.script
			if script == "" {
				script = pass
			}
			t.Setenv("FAKEQEMU_SCRIPT", script)
			kernel := tc.kernel
			if kernel == nil {
				kernel = testelf.PVH.Bytes()
			}
			args := append([]string{"-kernel", file(t, kernel), "-timeout", "20s"}, tc.args...)
			var stdout, stderr bytes.Buffer
			got := run(args, strings.NewReader(""), &stdout, &stderr)
			if got != tc.want || !strings.Contains(stderr.String(), tc.says) {
				t.Errorf("exit %d, want %d; stderr:\n%s\nwant it to say %q", got, tc.want, stderr.String(), tc.says)
			}
			if tc.want == 2 {
				// One clear line: the error, after at most the harness's
				// own QEMU exit note.
				var errs []string
				for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
					if !strings.HasPrefix(l, "physmap-run: QEMU exited after ") {
						errs = append(errs, l)
					}
				}
				if len(errs) != 1 {
					t.Errorf("%d lines for a bad input, want one:\n%s", len(errs), stderr.String())
				}
			}
		})
	}
}

func TestPrint(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if got := run([]string{"-print", "-qmp", "/tmp/me.sock", "-gdb"}, nil, &stdout, &stderr); got != 0 {
		t.Fatalf("exit %d: %s", got, stderr.String())
	}
	line := stdout.String()
	for _, want := range []string{"-chardev file,id=physmap.bulk,path=build/physmap-bulk.txt -device isa-debugcon,iobase=0xe9,chardev=physmap.bulk",
		"-qmp unix:/tmp/me.sock,server=on,wait=off", "-gdb tcp:127.0.0.1:1234 -S"} {
		if !strings.Contains(line, want) {
			t.Errorf("command line %s lacks %s", line, want)
		}
	}
}

// passingBoot is the fake QEMU's print commands for a boot that passes:
// its config line, every check of its manifest, its closing line.
func passingBoot() string {
	cfg := selftest.Config{Levels: 5, Page1GB: true, Layout: "distro", Vsyscall: "none"}
	var b strings.Builder
	b.WriteString("print " + cfg.String() + "\n")
	m := selftest.Manifest(cfg)
	for _, name := range m {
		b.WriteString("print PASS " + name + ": fine\n")
	}
	b.WriteString("print " + selftest.Summary{Passed: len(m), Manifest: len(m)}.String() + "\n")
	return b.String()
}
