package boot

import (
	"bytes"
	"flag"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/physmap/physmap/amd64"
	"github.com/physmap/physmap/kernel/selftest"
)

var update = flag.Bool("update", false, "rewrite the generated early.s")

// TestEarlyAsm checks that early.s is what early.go renders.
func TestEarlyAsm(t *testing.T) {
	want := earlyAsm()
	if *update {
		if err := os.WriteFile(earlyAsmFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(earlyAsmFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run go test ./boot -run TestEarlyAsm -update", earlyAsmFile)
	}
}

// TestEarlyProtocol checks the early boot against what the harness reads:
// the prefix and the exit statuses of kernel/selftest, and the debug-exit
// device's (v<<1)|1.
func TestEarlyProtocol(t *testing.T) {
	if EarlyPrefix != selftest.EarlyPrefix {
		t.Errorf("EarlyPrefix %q, kernel/selftest says %q", EarlyPrefix, selftest.EarlyPrefix)
	}
	if s := earlyExitCPU<<1 | 1; s != selftest.StatusEarlyCPU {
		t.Errorf("earlyExitCPU %d makes QEMU exit %d, kernel/selftest says %d", earlyExitCPU, s, selftest.StatusEarlyCPU)
	}
	if s := earlyExitRAM<<1 | 1; s != selftest.StatusEarlyRAM {
		t.Errorf("earlyExitRAM %d makes QEMU exit %d, kernel/selftest says %d", earlyExitRAM, s, selftest.StatusEarlyRAM)
	}
	// Both differ from a self-test's own exit values.
	for _, v := range []int{earlyExitCPU, earlyExitRAM} {
		if v == 0 || v == 1 {
			t.Errorf("early exit value %d is a self-test's", v)
		}
	}
}

// TestEarlyLines checks each line as a person reads it: one line, the
// prefix, the feature and its CPUID bit as the SDM writes it, and a hint.
func TestEarlyLines(t *testing.T) {
	want := map[string]string{
		"RDRAND":    "physmap: early boot: this CPU lacks RDRAND (CPUID.01H:ECX[30]), which TamaGo's runtime needs to seed its RNG; try -cpu max or -cpu qemu64,+rdrand",
		"long mode": "physmap: early boot: this CPU lacks long mode (CPUID.80000001H:EDX[29]), which the early boot needs to enter 64-bit mode; try -cpu max or -cpu qemu64,+rdrand",
	}
	bitRE := regexp.MustCompile(`\(CPUID\.([0-9A-F]+)H:(E[ABCD]X)\[(\d+)\]\)`)
	seen := map[string]bool{}
	for _, n := range earlyNeeds {
		l := n.line()
		if w, ok := want[n.name]; ok && l != w {
			t.Errorf("%s:\n got %s\nwant %s", n.name, l, w)
		}
		if seen[n.name] {
			t.Errorf("%s listed twice", n.name)
		}
		seen[n.name] = true
		if !strings.HasPrefix(l, selftest.EarlyPrefix) || strings.ContainsAny(l, "\r\n\x00") || !strings.Contains(l, "; try -cpu ") {
			t.Errorf("%q: not one line with the prefix and a hint", l)
		}
		// The bit written in the line is the bit tested.
		m := bitRE.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("%q names no CPUID bit", l)
		}
		leaf, _ := strconv.ParseUint(m[1], 16, 32)
		bit, _ := strconv.Atoi(m[3])
		if uint32(leaf) != n.leaf || m[2] != n.reg.String() || n.mask != 1<<bit {
			t.Errorf("%q: line says leaf %s %s bit %s, the table tests leaf %#x %v mask %#x", l, m[1], m[2], m[3], n.leaf, n.reg, n.mask)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("%s is not checked", name)
		}
	}
	if l := earlyRAMLine(); l != "physmap: early boot: no RAM for the runtime at [0x10000000, 0x18000000): give the machine at least 384 MiB (-m 512M)" {
		t.Errorf("RAM line %q", l)
	}
}

// TestEarlyNeedsDecode runs the table over CPUID answers the way cpuinit
// does, for CPU models of QEMU's, and checks the first missing feature.
func TestEarlyNeedsDecode(t *testing.T) {
	// Leaf 1 EDX and ECX and leaf 0x80000001 EDX as QEMU 7.2's TCG
	// reports them for -cpu qemu64 and -cpu Nehalem (read in a guest).
	const (
		qemu64EDX     = 0x078bfbfd
		qemu64ECX     = 0x80002001
		qemu64ExtEDX  = 0x2193fbfd
		nehalemECX    = 0x80982201
		nehalemExtEDX = 0x20100800
	)
	cpu := func(maxBasic, maxExt, edx, ecx, extEDX uint32) amd64.CPUIDFunc {
		return func(leaf, _ uint32) (a, b, c, d uint32) {
			switch leaf {
			case 0:
				return maxBasic, 0, 0, 0
			case 1:
				return 0, 0, ecx, edx
			case 0x80000000:
				return maxExt, 0, 0, 0
			case 0x80000001:
				return 0, 0, 0, extEDX
			}
			return 0, 0, 0, 0
		}
	}
	for _, tc := range []struct {
		name string
		cpu  amd64.CPUIDFunc
		want string // the first missing feature, "" for none
	}{
		{"qemu64", cpu(0xd, 0x8000000a, qemu64EDX, qemu64ECX, qemu64ExtEDX), "RDRAND"},
		{"Nehalem", cpu(0xb, 0x80000008, qemu64EDX, nehalemECX, nehalemExtEDX), "RDRAND"},
		{"qemu64,+rdrand", cpu(0xd, 0x8000000a, qemu64EDX, qemu64ECX|amd64.INFO_ECX_RDRAND, qemu64ExtEDX), ""},
		{"qemu64,+rdrand,-nx", cpu(0xd, 0x8000000a, qemu64EDX, qemu64ECX|amd64.INFO_ECX_RDRAND, qemu64ExtEDX&^amd64.EXTINFO_EDX_NX), ""},
		{"qemu64,+rdrand,-pge", cpu(0xd, 0x8000000a, qemu64EDX&^amd64.INFO_EDX_PGE, qemu64ECX|amd64.INFO_ECX_RDRAND, qemu64ExtEDX), ""},
		{"qemu64,-sse2", cpu(0xd, 0x8000000a, qemu64EDX&^amd64.INFO_EDX_SSE2, qemu64ECX, qemu64ExtEDX), "SSE2"},
		{"-lm", cpu(0xd, 0x8000000a, qemu64EDX, qemu64ECX, qemu64ExtEDX&^amd64.EXTINFO_EDX_LM), "long mode"},
		// No extended leaves at all: leaf 0x80000001 beyond the maximum
		// would answer with another leaf's data, which is not trusted.
		{"no extended leaves", cpu(0xd, 0x0000000d, qemu64EDX, qemu64ECX, qemu64ExtEDX), "long mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := firstMissing(tc.cpu); got != tc.want {
				t.Errorf("first missing %q, want %q", got, tc.want)
			}
		})
	}
}

// firstMissing is cpuinit's walk of earlyNeeds in Go: a leaf above the
// maximum of its range counts as missing.
func firstMissing(cpuid amd64.CPUIDFunc) string {
	regs := func(leaf uint32) [4]uint32 {
		a, b, c, d := cpuid(leaf, 0)
		return [4]uint32{a, b, c, d}
	}
	for _, n := range earlyNeeds {
		if regs(n.leaf & 0x80000000)[regEAX] < n.leaf || regs(n.leaf)[n.reg]&n.mask != n.mask {
			return n.name
		}
	}
	return ""
}
