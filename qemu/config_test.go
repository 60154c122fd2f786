package qemu

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestCommand(t *testing.T) {
	base := "qemu-system-x86_64 -machine microvm,x-option-roms=on,pic=off,rtc=on -m %s -cpu %s -accel %s -smp 1 -nographic -monitor none -serial stdio -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04 -chardev null,id=physmap.bulk -device isa-debugcon,iobase=0xe9,chardev=physmap.bulk -kernel k.elf"
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"defaults", Config{Kernel: "k.elf", Memory: "2G"}, fmt.Sprintf(base, "2G", "max", "tcg")},
		{"cpu", Config{Kernel: "k.elf", Memory: "512M", CPU: "qemu64,+rdrand"}, fmt.Sprintf(base, "512M", "qemu64,+rdrand", "tcg")},
		{"kvm default cpu is host", Config{Kernel: "k.elf", Memory: "6G", Accel: KVM}, fmt.Sprintf(base, "6G", "host", "kvm")},
		{"kvm keeps user cpu", Config{Kernel: "k.elf", Memory: "6G", Accel: KVM, CPU: "max"}, fmt.Sprintf(base, "6G", "max", "kvm")},
		{"append qmp gdb", Config{Kernel: "k.elf", Memory: "16G", Append: "physmap.hold=1", QMP: "/tmp/q.sock", GDB: true},
			fmt.Sprintf(base, "16G", "max", "tcg") + " -append physmap.hold=1 -qmp unix:/tmp/q.sock,server=on,wait=off -gdb tcp:127.0.0.1:1234 -S"},
		{"user qmp beside the harness's", Config{Kernel: "k.elf", Memory: "2G", QMP: "/tmp/h.sock", UserQMP: "/tmp/me,1.sock"},
			fmt.Sprintf(base, "2G", "max", "tcg") + " -qmp unix:/tmp/h.sock,server=on,wait=off -qmp unix:/tmp/me,,1.sock,server=on,wait=off"},
		{"bulk to a file", Config{Kernel: "k.elf", Memory: "2G", Bulk: "build/physmap-bulk.txt"},
			strings.Replace(fmt.Sprintf(base, "2G", "max", "tcg"), "null,id=physmap.bulk", "file,id=physmap.bulk,path=build/physmap-bulk.txt", 1)},
		{"no reserve", Config{Kernel: "k.elf", Memory: "256G", NoReserve: true},
			strings.Replace(fmt.Sprintf(base, "256G", "max", "tcg"), "rtc=on", "rtc=on,memory-backend=physmap.ram", 1) +
				" -object memory-backend-ram,id=physmap.ram,size=256G,reserve=off"},
		{"binary override", Config{Binary: "/opt/q", Kernel: "k.elf", Memory: "1024"},
			strings.Replace(fmt.Sprintf(base, "1024", "max", "tcg"), "qemu-system-x86_64", "/opt/q", 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			argv, err := tc.cfg.Command()
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(argv, " "); got != tc.want {
				t.Errorf("Command() =\n%s\nwant\n%s", got, tc.want)
			}
			line := strings.Join(argv, " ")
			if strings.Contains(line, "pit=off") {
				t.Error("pit=off: the kernel calibrates its clock with the PIT")
			}
			// gdb on localhost only: -s, or tcp::1234, listen on every
			// interface.
			if strings.Contains(line, " -s ") || strings.Contains(line, "tcp::") {
				t.Error("gdb listens beyond localhost")
			}
		})
	}
}

func TestCommandRejects(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want error
	}{
		{Config{Kernel: "k", Memory: "256M"}, ErrMemoryTooSmall},
		{Config{Kernel: "k", Memory: "x"}, ErrBadMemory},
		{Config{Kernel: "k", Memory: "2G", Accel: "hvf"}, ErrBadAccel},
		{Config{Memory: "2G"}, ErrKernelMissing},
		{Config{Kernel: "k", Memory: "2G", CPU: "max -la57"}, ErrBadCPU},
		{Config{Kernel: "k", Memory: "2G", CPU: " "}, ErrBadCPU},
	} {
		if _, err := tc.cfg.Command(); !errors.Is(err, tc.want) {
			t.Errorf("%+v: Command() err = %v, want %v", tc.cfg, err, tc.want)
		}
	}
}

func TestParseMemory(t *testing.T) {
	for _, tc := range []struct {
		in   string
		mib  uint64
		want error
	}{
		{"512M", 512, nil},
		{"512", 512, nil},
		{"2G", 2048, nil},
		{"2g", 2048, nil},
		{"6G", 6144, nil},
		{"16G", 16384, nil},
		{"1T", 1 << 20, nil},
		{"524288K", 512, nil},
		{"2GB", 2048, nil},
		{" 2G ", 2048, nil},
		{"511M", 0, ErrMemoryTooSmall},
		{"511", 0, ErrMemoryTooSmall},
		{"256M", 0, ErrMemoryTooSmall},
		{"0", 0, ErrMemoryTooSmall},
		{"", 0, ErrBadMemory},
		{"G", 0, ErrBadMemory},
		{"1.5G", 0, ErrBadMemory},
		{"-2G", 0, ErrBadMemory},
		{"2X", 0, ErrBadMemory},
		{"2 G", 0, ErrBadMemory},
		{"1000K", 0, ErrBadMemory},
		{"99999999999999999999G", 0, ErrBadMemory},
		{"9999999999999999T", 0, ErrBadMemory},
		{"4096T", 4 << 30, nil},
		{"4097T", 0, ErrBadMemory},
	} {
		mib, err := ParseMemory(tc.in)
		if !errors.Is(err, tc.want) || mib != tc.mib {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d, %v", tc.in, mib, err, tc.mib, tc.want)
		}
	}
	_, err := ParseMemory("256M")
	if err == nil || !strings.Contains(err.Error(), "minimum is 512 MiB") {
		t.Errorf("ParseMemory(256M) error %q does not name the minimum", err)
	}
}

func TestCheckCPU(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"max", true},
		{"max,-la57", true},
		{"qemu64,+rdrand", true},
		{"Nehalem-v2", true},
		{"", false},
		{"  ", false},
		{"max, -la57", false},
		{",-la57", false},
		{"-la57", false},
		{"+rdrand", false},
	} {
		err := CheckCPU(tc.in)
		if (err == nil) != tc.ok || (err != nil && (!errors.Is(err, ErrBadCPU) || ExitCode(err) != ExitUsage)) {
			t.Errorf("CheckCPU(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestCheckTimeout(t *testing.T) {
	for _, tc := range []struct {
		in time.Duration
		ok bool
	}{
		{120 * time.Second, true},
		{time.Millisecond, true},
		{MaxTimeout, true},
		{0, false},
		{-time.Second, false},
		{MaxTimeout + time.Second, false},
		{1 << 62, false},
	} {
		err := CheckTimeout(tc.in)
		if (err == nil) != tc.ok || (err != nil && (!errors.Is(err, ErrBadTimeout) || ExitCode(err) != ExitUsage)) {
			t.Errorf("CheckTimeout(%v) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestChooseAccel(t *testing.T) {
	probeErr := errors.New("QEMU under KVM exited")
	for _, tc := range []struct {
		name     string
		cfg      Config
		probe    error
		accel    Accel
		cpu      string
		wantNote bool
	}{
		{"tcg untouched", Config{Accel: TCG}, probeErr, TCG, "max", false},
		{"kvm works", Config{Accel: KVM}, nil, KVM, "host", false},
		{"kvm falls back", Config{Accel: KVM}, probeErr, TCG, "max", true},
		{"kvm falls back keeping cpu", Config{Accel: KVM, CPU: "qemu64"}, probeErr, TCG, "qemu64", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, note := chooseAccel(tc.cfg, tc.probe)
			if got.accel() != tc.accel || got.cpu() != tc.cpu || (note != "") != tc.wantNote {
				t.Errorf("chooseAccel = accel %s cpu %s note %q; want %s %s note=%v", got.accel(), got.cpu(), note, tc.accel, tc.cpu, tc.wantNote)
			}
			if tc.wantNote && (strings.Contains(note, "\n") || !strings.Contains(note, "tcg")) {
				t.Errorf("note %q: want one line naming tcg", note)
			}
		})
	}
}

func TestShellQuote(t *testing.T) {
	got := ShellQuote([]string{"qemu", "-append", "physmap.hold=1 x", "-cpu", "qemu64,+rdrand", "it's", ""})
	want := `qemu -append 'physmap.hold=1 x' -cpu qemu64,+rdrand 'it'\''s' ''`
	if got != want {
		t.Errorf("ShellQuote = %s, want %s", got, want)
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{&Error{Op: "x", Err: ErrQEMUMissing}, ExitUsage},
		{&Error{Op: "x", Err: ErrKernelMissing}, ExitUsage},
		{&Error{Op: "x", Err: ErrMemoryTooSmall}, ExitUsage},
		{&Error{Op: "x", Err: ErrSelfTestFailed}, ExitFailed},
		{&Error{Op: "x", Err: ErrTimeout}, ExitFailed},
	} {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
