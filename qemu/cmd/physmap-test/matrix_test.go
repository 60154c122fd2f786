package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/physmap/physmap/kernel/selftest"
	"github.com/physmap/physmap/qemu"
)

func TestMatrix(t *testing.T) {
	want := map[string]bool{
		"m=512M/cpu=max": true, "m=512M/cpu=max,-la57": true, "m=512M/cpu=qemu64,+rdrand": true,
		"m=2G/cpu=max": true, "m=2G/cpu=max,-la57": true, "m=2G/cpu=qemu64,+rdrand": true,
		"m=6G/cpu=max": true, "m=6G/cpu=max,-la57": true, "m=6G/cpu=qemu64,+rdrand": true,
		"clock/sleep=2s": true, "levels/4-on-la57": true,
		"kaslr/5-level/rdrand": true, "kaslr/4-level/rdrand": true,
		"kaslr/5-level/seed=1": true, "kaslr/4-level/seed=1": true, "kaslr/5-level/seed=2": true, "kaslr/4-level/seed=2": true,
		"kaslr/5-level/seed=10": true, "kaslr/4-level/seed=10": true,
		"kaslr/5-level/seed=0xfeedface": true, "kaslr/4-level/seed=0xfeedface": true,
		"kaslr/5-level/seed=0xffffffffffffffff": true, "kaslr/4-level/seed=0xffffffffffffffff": true,
		"inject/unknown": true, "inject/vmalloc-misaligned-without-kaslr": true,
		"inject/directmap-hole-no-1g": true, "inject/vmemmap-off-by-one-6g": true,
		"shell/4-level": true, "shell/5-level": true, "shell/pti": true, "shell/failed-boot": true,
		"early/no-rdrand": true, "early/no-long-mode": true,
		"vsyscall/emulate": true, "vsyscall/xonly": true, "xpfo/5-level": true, "xpfo/4-level": true,
		"pti/5-level": true, "pti/4-level": true, "pti/xpfo": true,
		"process/5-level": true, "process/4-level": true, "process/pti/5-level": true, "process/pti/4-level": true, "process/xpfo": true,
		"config/mmrst/5-level": true, "config/mmrst/4-level": true,
	}
	// Every environment and every injection of the registry, the latter in
	// both paging modes.
	for _, r := range selftest.Registry {
		for _, e := range r.Environments {
			want[e.Name] = true
		}
		for _, in := range r.Injections {
			want["inject/5-level/"+in.Name] = true
			want["inject/4-level/"+in.Name] = true
		}
	}
	seen := map[string]bool{}
	for _, c := range matrix() {
		if seen[c.Name] {
			t.Errorf("duplicate case %q", c.Name)
		}
		seen[c.Name] = true
		if _, err := c.config("k.elf").Command(); err != nil {
			t.Errorf("case %q: %v", c.Name, err)
		}
		if c.CrossCheck && (len(c.Expect.Fails) > 0 || !strings.Contains(c.config("k.elf").Append, qemu.HoldOption)) {
			t.Errorf("case %q cross-checks but does not pass and hold: %+v", c.Name, c.config("k.elf"))
		}
		if wantCC := strings.HasPrefix(c.Name, "m=") || strings.HasPrefix(c.Name, "process/") || strings.HasPrefix(c.Name, "kaslr/") && strings.Contains(c.Name, "/seed="); wantCC != c.CrossCheck {
			t.Errorf("case %q: CrossCheck %v, want it on the memory x CPU, process and KASLR seed cases only", c.Name, c.CrossCheck)
		}
		for _, f := range c.Expect.Fails {
			if _, _, ok := selftest.LookupCheck(f); !ok && f != "inject" {
				t.Errorf("case %q expects FAIL %q, which is no check of the manifest", c.Name, f)
			}
		}
		if strings.HasPrefix(c.Name, "inject/") && strings.Count(c.Name, "/") == 2 && !c.Expect.Exact {
			t.Errorf("injection case %q must fail exactly its checks", c.Name)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("matrix lacks %q", name)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("matrix has %d cases, want %d", len(seen), len(want))
	}
}

// TestEveryCheckCanFail holds the matrix to the manifest's promise: every
// check of every configuration is failed by some case of the matrix.
func TestEveryCheckCanFail(t *testing.T) {
	failed := map[string]bool{}
	for _, c := range matrix() {
		for _, f := range c.Expect.Fails {
			failed[f] = true
		}
	}
	for _, cfg := range []selftest.Config{{Levels: 4}, {Levels: 5, Page1GB: true}, {Levels: 5, KASLR: true, Page1GB: true},
		{Levels: 4, Vsyscall: "emulate"}, {Levels: 5, Page1GB: true, Vsyscall: "xonly"}} {
		for _, name := range selftest.Manifest(cfg) {
			if !failed[name] {
				t.Errorf("no case of the matrix fails %s", name)
			}
		}
	}
}

func TestRunListAndSelect(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-list", "-run", "^option/"}, &out, &errOut); code != qemu.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if got := strings.Fields(out.String()); len(got) != 4 || got[0] != "option/unknown" {
		t.Errorf("-run ^option/ listed %q", got)
	}
	if code := run([]string{"-run", "nothing-matches"}, &out, &errOut); code != qemu.ExitUsage {
		t.Errorf("empty selection exit %d, want %d", code, qemu.ExitUsage)
	}
}

func TestRunBadInputs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"-kernel", t.TempDir() + "/none.elf", "-run", "cpu=max$"}, "physmap-test: kernel: no kernel image: "},
		{[]string{"-timeout", "0"}, "physmap-test: timeout: bad timeout: 0s: must be positive"},
		{[]string{"-parallel", "0"}, "physmap-test: -parallel 0: want 1 or more"},
		{[]string{"-run", "("}, "physmap-test: -run \"(\": error parsing regexp"},
	} {
		var out, errOut bytes.Buffer
		code := run(tc.args, &out, &errOut)
		if code != qemu.ExitUsage || out.Len() != 0 || !strings.HasPrefix(errOut.String(), tc.says) || strings.Count(errOut.String(), "\n") != 1 {
			t.Errorf("%q: exit %d, output %q, stderr %q; want 2 and one line %q", tc.args, code, out.String(), errOut.String(), tc.says)
		}
	}
}

func TestShellCases(t *testing.T) {
	for _, c := range shellCases {
		if !strings.Contains(" "+c.Append+" ", " "+qemu.ShellOption+" ") {
			t.Errorf("case %q: a shell case boots with %s", c.Name, qemu.ShellOption)
		}
		if len(c.Expect.Fails) > 0 && c.Name != "shell/failed-boot" {
			t.Errorf("case %q: only shell/failed-boot may fail", c.Name)
		}
		// The shell ends at exit, quit, or ^D on an empty line.
		if n := len(c.Shell); n == 0 || (c.Shell[n-1].Send != "exit" && c.Shell[n-1].Send != "quit" && c.Shell[n-1].Send != "\x04") {
			t.Errorf("case %q does not end with exit, quit or ^D", c.Name)
		}
		for _, ex := range c.Shell {
			if _, err := regexp.Compile(ex.Expect); err != nil {
				t.Errorf("case %q, %q: %v", c.Name, ex.Send, err)
			}
		}
	}
}
