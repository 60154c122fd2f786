package qemu

// The cross-check's transport: attached to a Runner, it takes the dump
// from the bulk channel or the console and talks to the held machine's QMP
// monitor, through a relay for answers too long for the QMP library.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/physmap/physmap/kernel/dump"
)

// CrossCheck runs the cross-check from a Runner: Attach it, run, then read
// Report. It reads the kernel's dump from the runner's bulk channel (or, as
// a fallback, from the console it also captures), relays QMP so that
// answers longer than the QMP library's 64 KiB line limit arrive whole, and
// compares in the hold hook.
type CrossCheck struct {
	mu      sync.Mutex
	runner  *Runner  // the runner attached to, for its bulk channel
	partial []byte   // console bytes after the last newline
	lines   []string // the dump section being captured, BeginLine first
	section []string // the last complete dump section
	relay   *qmpRelay
	report  *CrossReport
	err     error
	ran     bool
}

// Attach makes r cross-check its boot: the hold hook compares the dump on
// r's bulk channel, the console is also copied to c for a kernel that
// printed its dump there, and QMP goes through c's relay. The boot's kernel
// command line must hold the machine (see WithHold).
func (c *CrossCheck) Attach(r *Runner) {
	c.mu.Lock()
	c.runner = r
	c.mu.Unlock()
	r.taps = append(r.taps, c)
	r.DialQMP = c.Dial
	r.OnHold = c.OnHold
}

// Write takes console output, in any chunks, and keeps the last dump
// section (dump.BeginLine to dump.EndLine).
func (c *CrossCheck) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(c.partial[:i]), "\r")
		c.partial = c.partial[i+1:]
		switch {
		case line == dump.BeginLine:
			c.lines = []string{line}
		case c.lines != nil:
			c.lines = append(c.lines, line)
			if line == dump.EndLine {
				c.section, c.lines = c.lines, nil
			}
		}
	}
	return len(p), nil
}

// Dump parses the kernel's dump: from the attached runner's bulk channel,
// else from the console.
func (c *CrossCheck) Dump() (*dump.Dump, error) {
	c.mu.Lock()
	text := strings.Join(c.section, "\n")
	r := c.runner
	c.mu.Unlock()
	if r != nil {
		bulk, err := r.BulkSoFar()
		if err == nil && len(bulk) > 0 {
			d, err := dump.Extract(bytes.NewReader(bulk))
			if err != nil {
				return nil, &Error{Op: "crosscheck", Err: ErrCrossCheck, Detail: fmt.Sprintf("the kernel's dump on the bulk channel: %v", err)}
			}
			return d, nil
		}
	}
	d, err := dump.Extract(strings.NewReader(text))
	if err != nil {
		return nil, &Error{Op: "crosscheck", Err: ErrCrossCheck, Detail: fmt.Sprintf("the kernel's dump (neither on the bulk channel nor on the console): %v", err)}
	}
	return d, nil
}

// OnHold is the Runner hook: it compares the captured dump with QEMU's view
// through m and returns the report's error.
func (c *CrossCheck) OnHold(ctx context.Context, m *Monitor) error {
	start := time.Now()
	rep, err := c.compare(ctx, m)
	if rep != nil {
		rep.Took = time.Since(start)
		if err == nil {
			err = rep.Err()
		}
	}
	c.mu.Lock()
	c.report, c.err, c.ran = rep, err, true
	c.mu.Unlock()
	return err
}

func (c *CrossCheck) compare(ctx context.Context, m *Monitor) (*CrossReport, error) {
	d, err := c.Dump()
	if err != nil {
		return nil, err
	}
	return CompareWithQEMU(ctx, d, func(ctx context.Context, line string) (string, error) {
		out, err := m.HumanMonitorCommand(ctx, line)
		if err != nil {
			return "", err
		}
		c.mu.Lock()
		relay := c.relay
		c.mu.Unlock()
		return relay.resolve(out)
	})
}

// Report returns what the cross-check found: the report (nil if it could
// not compare) and its verdict. A boot that never held did not cross-check,
// which is an error too.
func (c *CrossCheck) Report() (*CrossReport, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ran {
		return nil, &Error{Op: "crosscheck", Err: ErrCrossCheck, Detail: fmt.Sprintf("the machine never held (no %q line), so QEMU was not asked", "physmap: holding")}
	}
	return c.report, c.err
}

// Dial connects a Monitor to QEMU's QMP socket at path through a relay. The
// QMP library reads each message as one line of at most 64 KiB
// (bufio.Scanner's default; go-qemu issue 159), and info tlb's answer is
// larger: the relay passes every line through but such a long answer, which
// it keeps and replaces with a short reference that resolve turns back into
// the answer.
func (c *CrossCheck) Dial(ctx context.Context, path string) (*Monitor, error) {
	up, err := dialUnix(ctx, path)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "physmap-relay")
	if err != nil {
		up.Close()
		return nil, &Error{Op: "qmp", Err: ErrQMP, Detail: err.Error()}
	}
	ln, err := net.Listen("unix", filepath.Join(dir, "qmp.sock"))
	if err != nil {
		up.Close()
		os.RemoveAll(dir)
		return nil, &Error{Op: "qmp", Err: ErrQMP, Detail: err.Error()}
	}
	relay := &qmpRelay{}
	c.mu.Lock()
	c.relay = relay
	c.mu.Unlock()
	go func() {
		down, err := ln.Accept()
		ln.Close()
		os.RemoveAll(dir)
		if err != nil {
			up.Close()
			return
		}
		relay.pump(down, up)
	}()
	m, err := DialMonitor(ctx, ln.Addr().String())
	if err != nil {
		ln.Close()
		up.Close()
		return nil, err
	}
	return m, nil
}

// dialUnix connects to QEMU's socket, retrying while QEMU creates it.
func dialUnix(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "unix", path)
		if err == nil {
			return conn, nil
		}
		select {
		case <-ctx.Done():
			return nil, &Error{Op: "qmp", Err: ErrQMP, Detail: fmt.Sprintf("connect %s: %v (last error: %v)", path, ctx.Err(), err)}
		case <-time.After(qmpRetry):
		}
	}
}

// relayLineMax is the longest QMP line the relay passes through: half the
// library's limit, bufio.MaxScanTokenSize.
const relayLineMax = bufio.MaxScanTokenSize / 2

// relayRef starts the reference that stands for a kept answer; a NUL never
// starts a monitor command's text.
const relayRef = "\x00physmap-relay "

// qmpRelay copies QMP between the library (down) and QEMU (up), keeping
// the answers too long for the library.
type qmpRelay struct {
	mu   sync.Mutex
	kept map[int]json.RawMessage
	next int
}

func (r *qmpRelay) pump(down, up net.Conn) {
	go func() {
		io.Copy(up, down)
		up.Close()
	}()
	defer down.Close()
	br := bufio.NewReader(up)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if _, werr := down.Write(r.shorten(line)); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// shorten returns line, or for a reply too long for the library a reply
// with a reference to it.
func (r *qmpRelay) shorten(line []byte) []byte {
	if len(line) <= relayLineMax {
		return line
	}
	var reply struct {
		Return json.RawMessage `json:"return"`
		ID     json.RawMessage `json:"id,omitempty"`
	}
	if json.Unmarshal(line, &reply) != nil || reply.Return == nil {
		return line // not a reply: the library will fail on it
	}
	r.mu.Lock()
	if r.kept == nil {
		r.kept = map[int]json.RawMessage{}
	}
	n := r.next
	r.next++
	r.kept[n] = reply.Return
	r.mu.Unlock()
	short, _ := json.Marshal(struct {
		Return string          `json:"return"`
		ID     json.RawMessage `json:"id,omitempty"`
	}{relayRef + strconv.Itoa(n), reply.ID})
	return append(short, '\r', '\n')
}

// resolve turns a reference back into the kept answer; other text is
// returned as it is. A nil relay resolves nothing.
func (r *qmpRelay) resolve(out string) (string, error) {
	ref, ok := strings.CutPrefix(out, relayRef)
	if !ok || r == nil {
		return out, nil
	}
	n, err := strconv.Atoi(ref)
	r.mu.Lock()
	raw, found := r.kept[n]
	delete(r.kept, n)
	r.mu.Unlock()
	var s string
	if err != nil || !found || json.Unmarshal(raw, &s) != nil {
		return "", &Error{Op: "qmp", Err: ErrQMP, Detail: fmt.Sprintf("relay: no kept answer %q", ref)}
	}
	return s, nil
}
