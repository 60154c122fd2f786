package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/physmap/physmap/qemu/internal/fakeqmp"
)

func TestMonitor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "qmp.sock")
	srv, err := fakeqmp.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.Handle = func(name string, args json.RawMessage) (any, string) {
		switch name {
		case "query-kvm":
			return map[string]bool{"enabled": false, "present": true}, ""
		case "human-monitor-command":
			var a struct {
				Line string `json:"command-line"`
			}
			json.Unmarshal(args, &a)
			return "ran " + a.Line, ""
		}
		return nil, "unknown command"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	m, err := DialMonitor(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Version() != "7.2.22" {
		t.Errorf("Version() = %q", m.Version())
	}
	if s, err := m.QueryKVM(ctx); err != nil || s != (KVMStatus{Enabled: false, Present: true}) {
		t.Errorf("QueryKVM = %+v, %v", s, err)
	}
	if out, err := m.HumanMonitorCommand(ctx, "info tlb"); err != nil || out != "ran info tlb" {
		t.Errorf("HumanMonitorCommand = %q, %v", out, err)
	}
	if err := m.Execute(ctx, "nonsense", nil, nil); !errors.Is(err, ErrQMP) {
		t.Errorf("Execute(nonsense) err = %v, want ErrQMP", err)
	}

	if r := m.StopReason(); r != "" {
		t.Errorf("StopReason before events = %q", r)
	}
	srv.Event("STOP", nil)
	srv.Event("SHUTDOWN", map[string]any{"guest": true, "reason": "guest-reset"})
	waitFor(t, func() bool { return m.StopReason() == "SHUTDOWN guest-reset" })
	srv.Event("RESET", map[string]any{"guest": true})
	waitFor(t, func() bool { return m.StopReason() == "RESET" })
	if n := len(m.Events()); n != 3 {
		t.Errorf("%d events recorded, want 3", n)
	}

	go func() { <-srv.Quit(); srv.Close() }()
	if err := m.Quit(ctx); err != nil {
		t.Errorf("Quit: %v", err)
	}
	select {
	case <-m.Closed():
	default:
		t.Error("Quit returned before the connection closed")
	}
}

func TestDialMonitorGivesUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := DialMonitor(ctx, filepath.Join(t.TempDir(), "none.sock")); !errors.Is(err, ErrQMP) {
		t.Errorf("DialMonitor on a missing socket: %v, want ErrQMP", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
