package qemu

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ProbeTimeout bounds one KVM probe.
const ProbeTimeout = 10 * time.Second

// ProbeKVM reports whether QEMU can run cfg's guest under KVM. Opening
// /dev/kvm is not enough: a host may expose a KVM device that cannot run an
// ordinary guest (on a paravirtual host QEMU 7.2 aborts while resetting the
// vCPU, "failed to set MSR 0x10a", before the guest runs a single
// instruction). So the probe starts QEMU with cfg's own command line under
// -accel kvm, paused with -S (QEMU has then created and reset the vCPU and
// loaded the kernel), asks QMP query-kvm, and quits it. It returns nil when
// KVM is enabled, or an error whose text is QEMU's first complaint.
func ProbeKVM(ctx context.Context, cfg Config) error {
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "physmap-kvm")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg.Accel, cfg.QMP, cfg.GDB, cfg.Interactive = KVM, filepath.Join(dir, "qmp.sock"), false, false
	cfg.UserQMP, cfg.Bulk = "", "" // the probe serves no one and runs no guest
	argv, err := cfg.Command()
	if err != nil {
		return err
	}
	argv = append(argv, "-S")
	cmd := exec.Command(argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() { cmd.Process.Kill(); <-exited }()
	complaint := func() error {
		line, _, _ := strings.Cut(strings.TrimSpace(stderr.String()), "\n")
		if line == "" {
			line = "no message"
		}
		return fmt.Errorf("QEMU under KVM exited (%v): %s", waitErr, line)
	}

	dialCtx, stopDial := context.WithCancel(ctx)
	defer stopDial()
	go func() {
		select {
		case <-exited:
			stopDial()
		case <-dialCtx.Done():
		}
	}()
	// preferExit returns QEMU's own complaint if it died, else err.
	preferExit := func(err error) error {
		select {
		case <-exited:
			return complaint()
		case <-time.After(500 * time.Millisecond):
			return err
		}
	}
	mon, err := DialMonitor(dialCtx, cfg.QMP)
	if err != nil {
		return preferExit(err)
	}
	defer mon.Close()
	status, err := mon.QueryKVM(ctx)
	if err != nil {
		return preferExit(err)
	}
	quitCtx, stopQuit := context.WithTimeout(context.Background(), 2*time.Second)
	defer stopQuit()
	mon.Quit(quitCtx)
	if !status.Enabled {
		return fmt.Errorf("QEMU reports KVM present=%v enabled=%v", status.Present, status.Enabled)
	}
	return nil
}

// chooseAccel applies the result of a KVM probe to cfg: a failed probe falls
// back to TCG (and to the default TCG CPU if the CPU was left at its
// default). It returns the config to run and a note for the user, empty if
// nothing changed.
func chooseAccel(cfg Config, probeErr error) (Config, string) {
	if cfg.accel() != KVM || probeErr == nil {
		return cfg, ""
	}
	cfg.Accel = TCG
	return cfg, fmt.Sprintf("KVM cannot run the guest here (%v); using -accel tcg -cpu %s", probeErr, cfg.cpu())
}
