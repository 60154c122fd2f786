package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/physmap/physmap/qemu"
	"github.com/physmap/physmap/qemu/linux"
)

// dialTimeout bounds connecting to -attach's socket.
const dialTimeout = 5 * time.Second

// attach inspects the QEMU guest serving QMP on o.attach, booting nothing:
// its CPUs are stopped while the tables are read and let run again after.
func attach(ctx context.Context, o options, stderr io.Writer) (*linux.Report, error) {
	fi, err := os.Stat(o.attach)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: QMP socket: %v", linux.ErrEnvironment, err)
	case fi.Mode()&os.ModeSocket == 0:
		return nil, fmt.Errorf("%w: %s is not a socket (want the path QEMU's -qmp unix:PATH,server=on serves)", linux.ErrEnvironment, o.attach)
	}
	var memSize uint64
	if o.memFile != "" {
		fi, err := os.Stat(o.memFile)
		if err != nil {
			return nil, fmt.Errorf("%w: memory file: %v", linux.ErrEnvironment, err)
		}
		memSize = uint64(fi.Size())
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	m, err := qemu.DialMonitor(dctx, o.attach)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("%w: nobody answers QMP on %s: %v", linux.ErrMachine, o.attach, err)
	}
	defer m.Close()
	resume, err := linux.Pause(ctx, m)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := resume(context.Background()); err != nil {
			fmt.Fprintf(stderr, "physmap-linux: could not let the guest run again: %v\n", err)
		}
	}()
	mc, err := linux.Probe(ctx, m)
	if err != nil {
		return nil, err
	}
	src, closeSrc, err := mc.Source(m.HumanMonitorCommand, o.memFile, memSize)
	if err != nil {
		if errors.Is(err, linux.ErrMemory) {
			// The file given does not fit this guest: bad input.
			return nil, fmt.Errorf("%w: %w", linux.ErrEnvironment, err)
		}
		return nil, err
	}
	defer closeSrc()
	a, err := linux.Analyze(linux.NewGuestMem(ctx, src), mc.Regs, nil, nil)
	if err != nil {
		return nil, err
	}
	return linux.NewReport(a, nil, linux.RunInfo{Attached: o.attach}), nil
}

// replay runs the comparison again on a file -record wrote.
func replay(o options) (*linux.Report, error) {
	f, err := os.Open(o.replay)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", linux.ErrEnvironment, err)
	}
	defer f.Close()
	rec, err := linux.ReadRecording(f)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", linux.ErrEnvironment, o.replay, err)
	}
	return rec.Replay()
}
