package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
)

// The scaling sweep runs QEMU through this program itself, in wrapper mode,
// for two things the harness's command line does not give:
//
//   - QEMU's peak resident memory, from the rusage of the QEMU it waited
//     for, printed on stderr (maxRSSPrefix) where the runner keeps QEMU's
//     last lines;
//   - guest RAM larger than the host's: plain -m allocates guest RAM with
//     an accounted mmap, which Linux's default heuristic overcommit refuses
//     beyond RAM plus swap (QEMU: "cannot set up guest memory"). The
//     wrapper backs the same -m with memory-backend-ram reserve=off
//     (MAP_NORESERVE), so only the pages the guest touches cost the host.
//     The guest sees the same machine.
//
// wrapEnv names the real QEMU; when it is set this process is the wrapper.
const wrapEnv = "PHYSMAP_BENCH_QEMU"

// ramBackendID names the memory backend the wrapper adds.
const ramBackendID = "physmap-bench.ram"

// noReserve rewrites a QEMU argv (without argv[0]) so that its -m memory
// comes from an unreserved RAM backend. An argv without -m or -machine is
// returned unchanged.
func noReserve(args []string) []string {
	mem, machine := -1, -1
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "-m":
			mem = i + 1
		case "-machine":
			machine = i + 1
		}
	}
	if mem < 0 || machine < 0 {
		return args
	}
	out := append([]string(nil), args...)
	out[machine] += ",memory-backend=" + ramBackendID
	return append(out, "-object", fmt.Sprintf("memory-backend-ram,id=%s,size=%s,reserve=off", ramBackendID, strings.TrimSpace(args[mem])))
}

// wrapQEMU runs the real QEMU with args, passes signals on, prints its peak
// RSS and returns its exit status.
func wrapQEMU(real string, args []string) int {
	cmd := exec.Command(real, noReserve(args)...)
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
