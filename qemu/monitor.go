package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

// Monitor is a QMP connection to a running QEMU. It records the events QEMU
// sends (the library delivers them on one unbuffered channel that must be
// drained) and runs commands with a context.
type Monitor struct {
	mon *qmp.SocketMonitor

	mu     sync.Mutex
	events []qmp.Event
	closed chan struct{} // closed when QEMU's event stream ends
}

// qmpRetry is how often DialMonitor retries while QEMU creates its socket.
const qmpRetry = 20 * time.Millisecond

// DialMonitor connects to the QMP unix socket at path, retrying until QEMU
// has created it or ctx ends, and performs the capabilities handshake.
func DialMonitor(ctx context.Context, path string) (*Monitor, error) {
	for {
		sm, err := qmp.NewSocketMonitor("unix", path, time.Second)
		if err == nil {
			return connect(ctx, sm)
		}
		select {
		case <-ctx.Done():
			return nil, &Error{Op: "qmp", Err: ErrQMP, Detail: fmt.Sprintf("connect %s: %v (last error: %v)", path, ctx.Err(), err)}
		case <-time.After(qmpRetry):
		}
	}
}

// connect does the handshake on sm, giving up when ctx ends.
func connect(ctx context.Context, sm *qmp.SocketMonitor) (*Monitor, error) {
	// The library drops events that arrive while nobody listens, and
	// counts a listener only from the first Events call; calling it before
	// Connect (which returns no channel yet) closes that window, so a
	// SHUTDOWN right after the handshake is not lost.
	sm.Events(ctx)
	done := make(chan error, 1)
	go func() { done <- sm.Connect() }()
	select {
	case err := <-done:
		if err != nil {
			sm.Disconnect()
			return nil, &Error{Op: "qmp", Err: ErrQMP, Detail: fmt.Sprintf("handshake: %v", err)}
		}
	case <-ctx.Done():
		sm.Disconnect() // unblocks Connect
		<-done
		return nil, &Error{Op: "qmp", Err: ErrQMP, Detail: fmt.Sprintf("handshake: %v", ctx.Err())}
	}
	ch, err := sm.Events(ctx)
	if err != nil {
		sm.Disconnect()
		return nil, &Error{Op: "qmp", Err: ErrQMP, Detail: fmt.Sprintf("events: %v", err)}
	}
	m := &Monitor{mon: sm, closed: make(chan struct{})}
	go func() {
		defer close(m.closed)
		for ev := range ch {
			m.mu.Lock()
			m.events = append(m.events, ev)
			m.mu.Unlock()
		}
	}()
	return m, nil
}

// Version is the QEMU version from the QMP greeting.
func (m *Monitor) Version() string {
	if m.mon.Version == nil {
		return ""
	}
	return m.mon.Version.String()
}

// Events returns the events received so far.
func (m *Monitor) Events() []qmp.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]qmp.Event(nil), m.events...)
}

// Closed is closed when QEMU closes the QMP connection (it quit).
func (m *Monitor) Closed() <-chan struct{} { return m.closed }

// StopReason describes why QEMU stopped, from the last SHUTDOWN event (its
// reason, e.g. "guest-reset" for a triple fault under -no-reboot) or a RESET
// event; it is empty when QEMU announced neither.
func (m *Monitor) StopReason() string {
	events := m.Events()
	for i := len(events) - 1; i >= 0; i-- {
		ev := events[i]
		switch ev.Event {
		case "SHUTDOWN", "RESET":
			reason, _ := ev.Data["reason"].(string)
			if reason == "" {
				return ev.Event
			}
			return ev.Event + " " + reason
		}
	}
	return ""
}

// Execute runs QMP command name with args (nil for none) and decodes its
// "return" value into out (nil to discard it).
func (m *Monitor) Execute(ctx context.Context, name string, args, out any) error {
	cmd, err := json.Marshal(qmp.Command{Execute: name, Args: args})
	if err != nil {
		return fmt.Errorf("qmp %s: %w", name, err)
	}
	type reply struct {
		raw []byte
		err error
	}
	done := make(chan reply, 1)
	go func() {
		raw, err := m.mon.Run(cmd)
		done <- reply{raw, err}
	}()
	var r reply
	select {
	case r = <-done:
	case <-ctx.Done():
		return &Error{Op: "qmp", Err: ErrQMP, Detail: fmt.Sprintf("%s: %v", name, ctx.Err())}
	}
	if r.err != nil {
		return &Error{Op: "qmp", Err: ErrQMP, Detail: fmt.Sprintf("%s: %v", name, r.err)}
	}
	if out == nil {
		return nil
	}
	var resp struct {
		Return json.RawMessage `json:"return"`
	}
	if err := json.Unmarshal(r.raw, &resp); err != nil {
		return &Error{Op: "qmp", Err: ErrQMP, Detail: fmt.Sprintf("%s: reply %q: %v", name, r.raw, err)}
	}
	if err := json.Unmarshal(resp.Return, out); err != nil {
		return &Error{Op: "qmp", Err: ErrQMP, Detail: fmt.Sprintf("%s: return %s: %v", name, resp.Return, err)}
	}
	return nil
}

// HumanMonitorCommand runs a human monitor command (e.g. "info tlb",
// "gva2gpa 0xffffffff80000000") and returns its text output.
func (m *Monitor) HumanMonitorCommand(ctx context.Context, line string) (string, error) {
	var out string
	err := m.Execute(ctx, "human-monitor-command", map[string]string{"command-line": line}, &out)
	return out, err
}

// KVMStatus is QMP query-kvm's answer.
type KVMStatus struct {
	Enabled bool `json:"enabled"`
	Present bool `json:"present"`
}

// QueryKVM asks whether KVM is present and in use.
func (m *Monitor) QueryKVM(ctx context.Context) (KVMStatus, error) {
	var s KVMStatus
	err := m.Execute(ctx, "query-kvm", nil, &s)
	return s, err
}

// Quit asks QEMU to quit and waits until it closes the connection or ctx
// ends. A connection closed before the reply counts as success.
func (m *Monitor) Quit(ctx context.Context) error {
	err := m.Execute(ctx, "quit", nil, nil)
	select {
	case <-m.closed:
		return nil
	case <-ctx.Done():
		if err != nil {
			return err
		}
		return &Error{Op: "qmp", Err: ErrQMP, Detail: "quit: QEMU did not close the connection"}
	}
}

// Close drops the connection.
func (m *Monitor) Close() error {
	err := m.mon.Disconnect()
	<-m.closed
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
