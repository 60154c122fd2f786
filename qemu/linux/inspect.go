package linux

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/physmap/physmap/qemu"
)

// ErrMachine wraps what QEMU's monitor answered wrongly or not at all.
var ErrMachine = errors.New("machine")

// Machine is what the monitor says about a running guest, enough to read
// its memory.
type Machine struct {
	Regs    Registers
	Spans   []Span
	Memdevs []Memdev
	Version string
}

// Monitor is the part of qemu.Monitor Inspect needs.
type Monitor interface {
	HumanMonitorCommand(ctx context.Context, line string) (string, error)
	Execute(ctx context.Context, name string, args, out any) error
}

// Probe asks QEMU for the registers of its first CPU, its flat view of
// guest physical memory and its memory backends.
func Probe(ctx context.Context, m Monitor) (*Machine, error) {
	regs, err := m.HumanMonitorCommand(ctx, "info registers")
	if err != nil {
		return nil, fmt.Errorf("%w: info registers: %v", ErrMachine, err)
	}
	mc := &Machine{}
	if mc.Regs, err = ParseRegisters(regs); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMachine, err)
	}
	mtree, err := m.HumanMonitorCommand(ctx, "info mtree -f")
	if err != nil {
		return nil, fmt.Errorf("%w: info mtree -f: %v", ErrMachine, err)
	}
	if mc.Spans, err = ParseFlatView(mtree); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMachine, err)
	}
	if err := m.Execute(ctx, "query-memdev", nil, &mc.Memdevs); err != nil {
		return nil, fmt.Errorf("%w: query-memdev: %v", ErrMachine, err)
	}
	return mc, nil
}

// Backend picks the memory backend whose file is size bytes long: it must
// exist, be shared (a private mapping does not show the guest's writes)
// and back some of the guest's RAM.
func (mc *Machine) Backend(size uint64) (Memdev, error) {
	var sizes []string
	for _, d := range mc.Memdevs {
		sizes = append(sizes, fmt.Sprintf("%s %d bytes (share=%v)", d.ID, d.Size, d.Share))
		if d.Size != size {
			continue
		}
		if len(RAMRanges(mc.Spans, d.ID)) == 0 {
			continue
		}
		if !d.Share {
			return d, fmt.Errorf("%w: memory backend %q matches the file's size but is not share=on: the file does not show the guest's writes (drop -mem to read through xp)", ErrMemory, d.ID)
		}
		return d, nil
	}
	if len(sizes) == 0 {
		sizes = []string{"none"}
	}
	return Memdev{}, fmt.Errorf("%w: the file is %d bytes, but no memory backend of this guest has that size (backends: %s)", ErrMemory, size, strings.Join(sizes, "; "))
}

// Source opens guest memory: the file at memPath (empty: none) shared
// with backend size checks, else the monitor's xp.
func (mc *Machine) Source(hmp qemu.HMP, memPath string, memSize uint64) (PageSource, func() error, error) {
	xp := &XPSource{HMP: hmp, Spans: mc.Spans}
	if memPath == "" {
		return xp, func() error { return nil }, nil
	}
	d, err := mc.Backend(memSize)
	if err != nil {
		return nil, nil, err
	}
	fs, err := OpenFileSource(memPath, d.Size, d.ID, mc.Spans, xp)
	if err != nil {
		return nil, nil, err
	}
	return fs, fs.Close, nil
}

// Pause stops the guest's CPUs so the tables hold still while they are
// read, and returns a function that lets them run again if they ran
// before.
func Pause(ctx context.Context, m Monitor) (resume func(context.Context) error, err error) {
	var st struct {
		Running bool `json:"running"`
	}
	if err := m.Execute(ctx, "query-status", nil, &st); err != nil {
		return nil, fmt.Errorf("%w: query-status: %v", ErrMachine, err)
	}
	if !st.Running {
		return func(context.Context) error { return nil }, nil
	}
	if err := m.Execute(ctx, "stop", nil, nil); err != nil {
		return nil, fmt.Errorf("%w: stop: %v", ErrMachine, err)
	}
	return func(ctx context.Context) error { return m.Execute(ctx, "cont", nil, nil) }, nil
}

// Symbolic names of the memdevs, for notes.
func (mc *Machine) memdevIDs() []string {
	var ids []string
	for _, d := range mc.Memdevs {
		ids = append(ids, d.ID)
	}
	slices.Sort(ids)
	return ids
}
