// Command fakeqemu stands in for qemu-system-x86_64 in the harness's tests.
// It serves QMP on each -qmp socket it is given (the first is the harness's)
// and plays the script in $FAKEQEMU_SCRIPT, one command a line:
//
//	print TEXT        a console line on stdout
//	prompt TEXT       TEXT on stdout without a newline (a trailing space kept)
//	flood N           N bytes of numbered console lines of 64 bytes each
//	                  (the last one shorter), as fast as they can go
//	bulk TEXT         a line on the bulk channel (the file of -chardev
//	                  file,id=physmap.bulk,path=...)
//	nonblock          make stdin O_NONBLOCK, as QEMU's -serial stdio does
//	readline WANT     read a line from stdin and echo it; another line is a
//	                  "fakeqemu: typed ..." stderr line and exit status 99
//	stderr TEXT       a line on stderr
//	waitqmp           wait until a QMP client has negotiated capabilities
//	event NAME JSON   send a QMP event with data JSON
//	sleep DURATION    pause
//	hold              wait (QMP quit or SIGTERM always exit 0, as in QEMU)
//	exit N            exit with status N
//	abort             die of a signal
//
// A KVM probe run (-accel kvm with -S) behaves as $FAKEQEMU_KVM says: "ok"
// (query-kvm enabled), "off" (present but not enabled) or "abort" (die
// while resetting the vCPU, as QEMU 7.2 does on a paravirtual host).
// $FAKEQEMU_ARGV, if set, names a file that receives the argv, one per line.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/physmap/physmap/qemu/internal/fakeqmp"
)

func main() {
	args := os.Args[1:]
	if f := os.Getenv("FAKEQEMU_ARGV"); f != "" {
		os.WriteFile(f, []byte(strings.Join(os.Args, "\n")+"\n"), 0o644)
	}
	var qmpPaths []string
	var accel, bulkPath string
	paused := false
	for i, a := range args {
		switch {
		case a == "-qmp" && i+1 < len(args):
			qmpPaths = append(qmpPaths, strings.TrimPrefix(strings.SplitN(args[i+1], ",", 2)[0], "unix:"))
		case a == "-chardev" && i+1 < len(args) && strings.HasPrefix(args[i+1], "file,id=physmap.bulk,path="):
			bulkPath = strings.TrimPrefix(args[i+1], "file,id=physmap.bulk,path=")
		case a == "-accel" && i+1 < len(args):
			accel = args[i+1]
		case a == "-S":
			paused = true
		}
	}
	kvm := os.Getenv("FAKEQEMU_KVM")
	if len(qmpPaths) > 0 && accel == "kvm" && paused && kvm == "abort" {
		abort()
	}
	// srvs[0] is the harness's monitor; every one answers and hears events.
	var srvs []*fakeqmp.Server
	quit := make(chan struct{})
	for _, path := range qmpPaths {
		srv, err := fakeqmp.Listen(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fakeqemu:", err)
			os.Exit(1)
		}
		srv.Handle = func(name string, _ json.RawMessage) (any, string) {
			if name == "query-kvm" {
				return map[string]bool{"enabled": accel == "kvm" && kvm == "ok", "present": true}, ""
			}
			if name == "human-monitor-command" {
				return "fake monitor output\r\n", ""
			}
			return nil, "The command " + name + " has not been found"
		}
		go func() { <-srv.Quit(); closeOnce(quit) }()
		srvs = append(srvs, srv)
	}
	var srv *fakeqmp.Server
	if len(srvs) > 0 {
		srv = srvs[0]
	}
	closeAll := func() {
		for _, s := range srvs {
			s.Close()
		}
	}
	defer closeAll()
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	hold := func() {
		select {
		case <-quit:
			time.Sleep(10 * time.Millisecond) // let the reply and event go out
		case <-term:
		}
		closeAll()
		os.Exit(0)
	}
	if accel == "kvm" && paused {
		hold()
	}
	go hold() // like QEMU, quit on QMP quit or SIGTERM at any time
	stdin := bufio.NewReader(os.Stdin)
	for _, line := range strings.Split(os.Getenv("FAKEQEMU_SCRIPT"), "\n") {
		verb, rest, _ := strings.Cut(strings.TrimLeft(line, " \t"), " ")
		if verb != "prompt" {
			rest = strings.TrimSpace(rest)
		}
		switch verb {
		case "":
		case "print":
			fmt.Println(rest)
		case "prompt":
			fmt.Print(rest)
		case "flood":
			n, err := strconv.Atoi(rest)
			if err != nil {
				fail(err.Error())
			}
			flood(n)
		case "bulk":
			if bulkPath == "" {
				fail("bulk without -chardev file,id=physmap.bulk")
			}
			f, err := os.OpenFile(bulkPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			if err == nil {
				_, err = fmt.Fprintln(f, rest)
				f.Close()
			}
			if err != nil {
				fail(err.Error())
			}
		case "nonblock":
			if err := syscall.SetNonblock(0, true); err != nil {
				fail(err.Error())
			}
		case "readline":
			got, err := stdin.ReadString('\n')
			got = strings.TrimSuffix(got, "\n")
			if err != nil || got != rest {
				fmt.Fprintf(os.Stderr, "fakeqemu: typed %q (%v), want %q\n", got, err, rest)
				os.Exit(99)
			}
			fmt.Println(got)
		case "stderr":
			fmt.Fprintln(os.Stderr, rest)
		case "waitqmp":
			if srv == nil {
				fail("waitqmp without -qmp")
			}
			select {
			case <-srv.Ready():
				// go-qemu's handshake reads through a buffered decoder
				// that can swallow an event sent right behind its reply;
				// real QEMU's guest is not that quick, so pause.
				time.Sleep(50 * time.Millisecond)
			case <-time.After(5 * time.Second):
				fail("no QMP client")
			}
		case "event":
			name, data, _ := strings.Cut(rest, " ")
			var m map[string]any
			if data != "" && json.Unmarshal([]byte(data), &m) != nil {
				fail("bad event data " + data)
			}
			for _, s := range srvs {
				s.Event(name, m)
			}
			time.Sleep(10 * time.Millisecond)
		case "sleep":
			d, err := time.ParseDuration(rest)
			if err != nil {
				fail(err.Error())
			}
			time.Sleep(d)
		case "hold":
			select {}
		case "exit":
			n, err := strconv.Atoi(rest)
			if err != nil {
				fail(err.Error())
			}
			closeAll()
			os.Exit(n)
		case "abort":
			abort()
		default:
			fail("unknown script verb " + verb)
		}
	}
}

// floodLine is the length of flood's lines, newline included.
const floodLine = 64

// flood writes n bytes of numbered lines to stdout in large writes: line i
// is "flood %08d " padded with dots to 63 bytes, then a newline.
func flood(n int) {
	var buf []byte
	for i := 0; len(buf) < n; i++ {
		line := fmt.Sprintf("flood %08d ", i)
		line += strings.Repeat(".", floodLine-1-len(line)) + "\n"
		buf = append(buf, line...)
	}
	os.Stdout.Write(buf[:n])
}

func closeOnce(c chan struct{}) {
	select {
	case <-c:
	default:
		close(c)
	}
}

func abort() {
	fmt.Fprintln(os.Stderr, "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69")
	// The Go runtime turns SIGABRT into exit status 2; SIGKILL still shows
	// the harness a death by signal, which is what matters.
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	time.Sleep(time.Second)
	os.Exit(134)
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "fakeqemu:", msg)
	os.Exit(99)
}
