package linux

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cavaliergopher/cpio"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// ErrEnvironment wraps what is missing on the host: a kernel, busybox, a
// module. Commands map it to exit status 2.
var ErrEnvironment = errors.New("environment")

func envErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrEnvironment, fmt.Sprintf(format, args...))
}

// InstallHint is the command that provides the default kernel and busybox.
const InstallHint = "apt-get install -y linux-image-amd64 busybox-static"

// ModuleDir is where the initramfs keeps the modules, decompressed.
const ModuleDir = "lib/modules/physmap"

// ModuleFile is a module to put in the initramfs.
type ModuleFile struct {
	Name string // as /proc/modules shows it: crc7
	Path string // on the host: .../kernel/lib/crc7.ko, .ko.xz, .ko.zst or .ko.gz
}

// Initramfs is the content of the initial ramdisk physmap-linux boots.
type Initramfs struct {
	Busybox []byte       // a statically linked busybox
	Modules []ModuleFile // loaded in this order
}

// Write writes the initramfs as a newc cpio archive (the format
// Documentation/driver-api/early-userspace/buffer-format.rst describes),
// uncompressed, with fixed timestamps so the same input gives the same
// bytes.
func (f *Initramfs) Write(w io.Writer) error {
	cw := cpio.NewWriter(w)
	dir := func(name string) error {
		return cw.WriteHeader(&cpio.Header{Name: name, Mode: cpio.TypeDir | 0o755, Links: 2})
	}
	file := func(name string, mode cpio.FileMode, data []byte) error {
		if err := cw.WriteHeader(&cpio.Header{Name: name, Mode: cpio.TypeReg | mode, Size: int64(len(data))}); err != nil {
			return err
		}
		_, err := cw.Write(data)
		return err
	}
	for _, d := range []string{"bin", "dev", "proc", "sys", "lib", "lib/modules", ModuleDir} {
		if err := dir(d); err != nil {
			return err
		}
	}
	if err := file("bin/busybox", 0o755, f.Busybox); err != nil {
		return err
	}
	var names []string
	for _, m := range f.Modules {
		data, err := ReadModule(m.Path)
		if err != nil {
			return err
		}
		name := m.Name + ".ko"
		if err := file(path.Join(ModuleDir, name), 0o644, data); err != nil {
			return err
		}
		names = append(names, name)
	}
	if err := file("init", 0o755, []byte(InitScript(names))); err != nil {
		return err
	}
	return cw.Close()
}

// elfMagic starts an uncompressed module.
var elfMagic = []byte("\x7fELF")

// ReadModule returns a module file's ELF image, decompressing .ko.xz,
// .ko.zst and .ko.gz (the compressions CONFIG_MODULE_COMPRESS_* produce),
// so busybox insmod can load it whatever the kernel's decompression
// support.
func ReadModule(p string) ([]byte, error) {
	raw, err := os.ReadFile(p)
	if err != nil {
		return nil, envErr("module: %v", err)
	}
	var r io.Reader
	switch {
	case strings.HasSuffix(p, ".ko"):
		r = bytes.NewReader(raw)
	case strings.HasSuffix(p, ".ko.xz"):
		if r, err = xz.NewReader(bytes.NewReader(raw)); err != nil {
			return nil, envErr("module %s: %v", p, err)
		}
	case strings.HasSuffix(p, ".ko.zst"):
		d, err := zstd.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, envErr("module %s: %v", p, err)
		}
		defer d.Close()
		r = d
	case strings.HasSuffix(p, ".ko.gz"):
		if r, err = gzip.NewReader(bytes.NewReader(raw)); err != nil {
			return nil, envErr("module %s: %v", p, err)
		}
	default:
		return nil, envErr("module %s: not a .ko, .ko.xz, .ko.zst or .ko.gz file", p)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, envErr("module %s: %v", p, err)
	}
	if !bytes.HasPrefix(data, elfMagic) {
		return nil, envErr("module %s: not an ELF object after decompression", p)
	}
	return data, nil
}

// FindModules looks names up in modDir/modules.dep (depmod's list, paths
// relative to modDir) and returns each with its dependencies before it, each
// once.
func FindModules(modDir string, names []string) ([]ModuleFile, error) {
	f, err := os.Open(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		return nil, envErr("modules: %v", err)
	}
	defer f.Close()
	deps := map[string][]string{} // module name -> its file, then its dependencies' files
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		deps[moduleName(mod)] = append([]string{mod}, strings.Fields(rest)...)
	}
	if err := sc.Err(); err != nil {
		return nil, envErr("modules: %v", err)
	}
	var out []ModuleFile
	for _, name := range names {
		files, ok := deps[name]
		if !ok {
			return nil, envErr("module %s is not in %s (built in, or not a module of this kernel)", name, filepath.Join(modDir, "modules.dep"))
		}
		// modules.dep lists a module's dependencies so that the last one
		// is loaded first (modprobe loads them in reverse).
		for i := len(files) - 1; i >= 0; i-- {
			m := ModuleFile{Name: moduleName(files[i]), Path: filepath.Join(modDir, files[i])}
			if !slices.ContainsFunc(out, func(o ModuleFile) bool { return o.Name == m.Name }) {
				out = append(out, m)
			}
		}
	}
	return out, nil
}

// moduleName turns kernel/lib/crc-itu-t.ko.xz into crc_itu_t, the name the
// kernel gives it (scripts/Makefile.lib: modname with - replaced by _).
func moduleName(file string) string {
	base := path.Base(file)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

// ReadBusybox reads a busybox binary and checks it is statically linked:
// the initramfs has no dynamic loader.
func ReadBusybox(p string) ([]byte, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, envErr("busybox: %v; install it with: %s", err, InstallHint)
	}
	ef, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, envErr("busybox %s: not an ELF executable: %v", p, err)
	}
	defer ef.Close()
	for _, prog := range ef.Progs {
		if prog.Type == elf.PT_INTERP {
			return nil, envErr("busybox %s is dynamically linked; the initramfs needs busybox-static (%s)", p, InstallHint)
		}
	}
	if ef.Machine != elf.EM_X86_64 {
		return nil, envErr("busybox %s is for %v, not x86-64", p, ef.Machine)
	}
	return data, nil
}
