package linux

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The x86 boot protocol's setup header (Documentation/arch/x86/boot.rst):
// "HdrS" at 0x202 and, from protocol 2.00, the offset of the kernel
// version string, less 0x200, at 0x20e.
const (
	hdrMagicOff    = 0x202
	hdrVersionOff  = 0x20e
	hdrVersionBase = 0x200
)

// KernelRelease reads the release ("6.1.0-48-amd64") from a bzImage's
// version string, the first word of what uname -r would say.
func KernelRelease(image []byte) (string, error) {
	if len(image) < hdrVersionOff+2 || string(image[hdrMagicOff:hdrMagicOff+4]) != "HdrS" {
		return "", fmt.Errorf("not an x86 bzImage: no \"HdrS\" setup header at %#x", hdrMagicOff)
	}
	off := int(binary.LittleEndian.Uint16(image[hdrVersionOff:])) + hdrVersionBase
	if off >= len(image) {
		return "", fmt.Errorf("bzImage version string offset %#x lies outside the file", off)
	}
	s := image[off:]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	f := strings.Fields(string(s))
	if len(f) == 0 {
		return "", fmt.Errorf("bzImage has an empty version string")
	}
	return f[0], nil
}

// Kernel is a kernel to boot and where its modules are.
type Kernel struct {
	Image   string // bzImage path
	Release string
	Modules string // /lib/modules/<release>, or "" if absent
	Config  string // /boot/config-<release>, or "" if absent
}

// OpenKernel reads the release of the bzImage at p and finds its modules
// and configuration under root ("/" on a host).
func OpenKernel(root, p string) (*Kernel, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, envErr("kernel: %v", err)
	}
	rel, err := KernelRelease(data)
	if err != nil {
		return nil, envErr("kernel %s: %v", p, err)
	}
	k := &Kernel{Image: p, Release: rel}
	if fi, err := os.Stat(filepath.Join(root, "lib/modules", rel, "modules.dep")); err == nil && !fi.IsDir() {
		k.Modules = filepath.Join(root, "lib/modules", rel)
	}
	if fi, err := os.Stat(filepath.Join(root, "boot", "config-"+rel)); err == nil && !fi.IsDir() {
		k.Config = filepath.Join(root, "boot", "config-"+rel)
	}
	return k, nil
}

// DefaultKernel returns the installed Debian kernel under root: the
// newest /boot/vmlinuz-* (by version order) whose modules are installed.
func DefaultKernel(root string) (*Kernel, error) {
	images, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	slices.SortFunc(images, func(a, b string) int { return compareVersions(b, a) })
	for _, img := range images {
		k, err := OpenKernel(root, img)
		if err == nil && k.Modules != "" {
			return k, nil
		}
	}
	return nil, envErr("no kernel with its modules in %s and %s; install one with: %s",
		filepath.Join(root, "boot"), filepath.Join(root, "lib/modules"), InstallHint)
}

// compareVersions orders strings by their runs of digits as numbers, so
// vmlinuz-6.1.0-48 comes after vmlinuz-6.1.0-9.
func compareVersions(a, b string) int {
	for a != "" && b != "" {
		da, db := digitsPrefix(a), digitsPrefix(b)
		switch {
		case da != "" && db != "":
			if c := len(strings.TrimLeft(da, "0")) - len(strings.TrimLeft(db, "0")); c != 0 {
				return c
			}
			if c := strings.Compare(strings.TrimLeft(da, "0"), strings.TrimLeft(db, "0")); c != 0 {
				return c
			}
			a, b = a[len(da):], b[len(db):]
		default:
			if a[0] != b[0] {
				return int(a[0]) - int(b[0])
			}
			a, b = a[1:], b[1:]
		}
	}
	return len(a) - len(b)
}

func digitsPrefix(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

// ConfigValue returns CONFIG_name's value in a kernel .config ("y", "m", a
// number), or "" when it is not set.
func ConfigValue(config []byte, name string) string {
	prefix := "CONFIG_" + name + "="
	for _, line := range strings.Split(string(config), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}
