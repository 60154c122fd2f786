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
		"option/unknown": true, "option/malformed-hold": true, "cpu/no-nx": true,
		"clock/sleep=2s": true, "levels/4-on-la57": true, "levels/5-without-la57": true,
		"kaslr/5-level/rdrand": true, "kaslr/4-level/rdrand": true,
		"kaslr/5-level/seed=1": true, "kaslr/4-level/seed=1": true, "kaslr/5-level/seed=2": true, "kaslr/4-level/seed=2": true,
		"kaslr/5-level/seed=0xfeedface": true, "kaslr/4-level/seed=0xfeedface": true,
		"kaslr/5-level/seed=0xffffffffffffffff": true, "kaslr/4-level/seed=0xffffffffffffffff": true,
		"inject/5-level/kaslr-misaligned": true, "inject/4-level/kaslr-misaligned": true, "inject/kaslr-misaligned-without-kaslr": true,
		"inject/unknown": true, "inject/directmap-hole-no-1g": true,
		"inject/5-level/kernel-frame-off": true, "inject/4-level/kernel-frame-off": true,
		"inject/5-level/directmap-hole": true, "inject/4-level/directmap-hole": true,
		"inject/5-level/directmap-exec": true, "inject/4-level/directmap-exec": true,
		"inject/5-level/text-writable": true, "inject/4-level/text-writable": true,
		"inject/5-level/no-invlpg": true, "inject/4-level/no-invlpg": true,
		"inject/5-level/module-pt-frame": true, "inject/4-level/module-pt-frame": true,
		"inject/5-level/old-base": true, "inject/4-level/old-base": true,
		"inject/5-level/vmemmap-off-by-one": true, "inject/4-level/vmemmap-off-by-one": true,
		"inject/5-level/cpu-entry-gdt-writable": true, "inject/4-level/cpu-entry-gdt-writable": true,
		"inject/5-level/vsyscall-no-user": true, "inject/4-level/vsyscall-no-user": true,
		"inject/5-level/poke-no-flush": true, "inject/4-level/poke-no-flush": true, "inject/vmemmap-off-by-one-6g": true,
		"shell/4-level": true, "shell/5-level": true,
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
		if c.CrossCheck && (c.ExpectFail != "" || !strings.Contains(c.config("k.elf").Append, qemu.HoldOption)) {
			t.Errorf("case %q cross-checks but does not pass and hold: %+v", c.Name, c.config("k.elf"))
		}
		if wantCC := strings.HasPrefix(c.Name, "m=") || strings.HasPrefix(c.Name, "kaslr/") && strings.Contains(c.Name, "/seed="); wantCC != c.CrossCheck {
			t.Errorf("case %q: CrossCheck %v, want it on the memory x CPU and KASLR seed cases only", c.Name, c.CrossCheck)
		}
		if c.ExpectFail != "" && !selftest.ValidCheckName(c.ExpectFail) {
			t.Errorf("case %q expects bad check name %q", c.Name, c.ExpectFail)
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

func TestRunListAndSelect(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-list", "-run", "^option/"}, &out, &errOut); code != qemu.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if got := strings.Fields(out.String()); len(got) != 2 || got[0] != "option/unknown" {
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
		if !strings.Contains(" "+c.Append+" ", " "+qemu.ShellOption+" ") || c.ExpectFail != "" {
			t.Errorf("case %q: a shell case boots with %s and must pass", c.Name, qemu.ShellOption)
		}
		if n := len(c.Shell); n == 0 || c.Shell[n-1].Send != "exit" {
			t.Errorf("case %q does not end with exit", c.Name)
		}
		for _, ex := range c.Shell {
			if _, err := regexp.Compile(ex.Expect); err != nil {
				t.Errorf("case %q, %q: %v", c.Name, ex.Send, err)
			}
		}
	}
}
