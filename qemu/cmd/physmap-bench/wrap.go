package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// The scaling sweep runs QEMU through this program itself, in wrapper mode,
// to learn QEMU's peak resident memory, from the rusage of the QEMU it
// waited for, printed on stderr (maxRSSPrefix) where the runner keeps
// QEMU's last lines. (Guest RAM larger than the host's comes from
// qemu.Config.NoReserve, in the harness's one command line.)
//
// wrapEnv names the real QEMU; when it is set this process is the wrapper.
const wrapEnv = "PHYSMAP_BENCH_QEMU"

// wrapQEMU runs the real QEMU with args, passes signals on, prints its peak
// RSS and returns its exit status.
func wrapQEMU(real string, args []string) int {
	cmd := exec.Command(real, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "physmap-bench: %v\n", err)
		return 1
	}
	go func() {
		for s := range sigs {
			cmd.Process.Signal(s)
		}
	}()
	cmd.Wait()
	ps := cmd.ProcessState
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		fmt.Fprintf(os.Stderr, "%s%d\n", maxRSSPrefix, ru.Maxrss) // KiB on Linux
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
