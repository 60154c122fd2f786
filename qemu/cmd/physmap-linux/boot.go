package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/physmap/physmap/kernel/dump"
	"github.com/physmap/physmap/qemu"
	"github.com/physmap/physmap/qemu/linux"
)

// defaultTSCkHz is the TSC rate told to Linux when the host's is unknown.
const defaultTSCkHz = 2000000

// hostTSCkHz returns the host CPU's clock in kHz from /proc/cpuinfo. Under
// TCG the guest's TSC counts the host's (QEMU's cpu_get_ticks reads the
// host TSC), so this is the rate Linux should be told.
func hostTSCkHz() (uint64, bool) {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(k) != "cpu MHz" {
			continue
		}
		mhz, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || mhz <= 0 {
			return 0, false
		}
		return uint64(mhz * 1000), true
	}
	return 0, false
}

// linuxBoot is one boot of Linux and what its hold hook found.
type linuxBoot struct {
	cfg      qemu.Config
	config   []byte // the kernel's .config, if the host has it
	useXP    bool
	record   bool
	console  []string
	guest    *linux.Guest
	analysis *linux.Analysis
	machine  *linux.Machine
	err      error // the hook's, kept apart from the runner's verdict
}

// writeInitramfs writes the initramfs to dir and returns its path: the
// user's initrd, if any, first, then physmap-linux's archive, whose /init
// replaces theirs (the kernel unpacks concatenated archives in order).
func writeInitramfs(dir string, fs *linux.Initramfs, userInitrd string) (string, error) {
	p := filepath.Join(dir, "initramfs.cpio")
	f, err := os.Create(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if userInitrd != "" {
		u, err := os.Open(userInitrd)
		if err != nil {
			return "", fmt.Errorf("%w: initrd: %v", linux.ErrEnvironment, err)
		}
		_, err = io.Copy(f, u)
		u.Close()
		if err != nil {
			return "", err
		}
		// Archives start 4-byte aligned (buffer-format.rst).
		if off, _ := f.Seek(0, io.SeekCurrent); off%4 != 0 {
			f.Write(make([]byte, 4-off%4))
		}
	}
	w := bufio.NewWriter(f)
	if err := fs.Write(w); err != nil {
		return "", err
	}
	if err := w.Flush(); err != nil {
		return "", err
	}
	return p, f.Close()
}

// inspect reads the held Linux guest through m, once its /init has
// printed console.
func (b *linuxBoot) inspect(ctx context.Context, m *qemu.Monitor, console []string) error {
	g, err := linux.ParseGuest(strings.NewReader(strings.Join(console, "\n")))
	if err != nil {
		return err
	}
	b.guest = g
	if _, err := linux.Pause(ctx, m); err != nil {
		return err
	}
	mc, err := linux.Probe(ctx, m)
	if err != nil {
		return err
	}
	b.machine = mc
	memPath := b.cfg.MemPath
	var size uint64
	if b.useXP {
		memPath = ""
	} else if fi, err := os.Stat(memPath); err == nil {
		size = uint64(fi.Size())
	}
	src, closeSrc, err := mc.Source(m.HumanMonitorCommand, memPath, size)
	if err != nil {
		return err
	}
	defer closeSrc()
	mem := linux.NewGuestMem(ctx, src)
	b.analysis, err = linux.Analyze(mem, mc.Regs, g, b.config)
	return err
}

// physmapBoot boots physmap with the flags the comparison uses and returns
// its JSON dump.
func physmapBoot(ctx context.Context, cfg qemu.Config, stderr io.Writer) (*dump.Dump, error) {
	var console bytes.Buffer
	r := &qemu.Runner{Stdout: &console, Stderr: stderr, Name: "physmap-linux (physmap)"}
	res, err := r.Run(ctx, cfg)
	if err != nil {
		var he *qemu.Error
		if errors.As(err, &he) && len(he.Tail) > 0 {
			return nil, fmt.Errorf("physmap boot: %v; last console lines:\n  | %s", err, strings.Join(he.Tail, "\n  | "))
		}
		return nil, fmt.Errorf("physmap boot: %v", err)
	}
	// The dump comes over the bulk channel, apart from the console.
	d, err := dump.Extract(bytes.NewReader(res.Bulk))
	if err != nil {
		return nil, fmt.Errorf("physmap boot: %v", err)
	}
	return d, nil
}

// readPhysmapDump reads a saved physmap console log holding a JSON dump.
func readPhysmapDump(p string) (*dump.Dump, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", linux.ErrEnvironment, err)
	}
	defer f.Close()
	d, err := dump.Extract(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", p, err)
	}
	return d, nil
}
