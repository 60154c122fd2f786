// Package fakeqmp is a scripted QMP server for the harness's tests: it
// speaks enough of the protocol (greeting, qmp_capabilities, commands,
// asynchronous events) to stand in for QEMU on a unix socket.
package fakeqmp

import (
	"encoding/json"
	"net"
	"sync"
)

// Server serves one QMP client at a time.
type Server struct {
	// Handle answers a command: the return value, or an error description.
	// Nil answers every command with an empty return.
	Handle func(name string, args json.RawMessage) (ret any, errDesc string)

	ln net.Listener

	mu    sync.Mutex
	conn  net.Conn
	ready chan struct{} // closed once a client finished the handshake
	quit  chan struct{} // closed when a client ran "quit"
	log   []string      // commands received, in order
}

// Listen starts a server on the unix socket path.
func Listen(path string) (*Server, error) {
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, ready: make(chan struct{}), quit: make(chan struct{})}
	go s.serve()
	return s, nil
}

// Ready is closed once a client has negotiated capabilities.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Quit is closed once a client has sent "quit".
func (s *Server) Quit() <-chan struct{} { return s.quit }

// Commands returns the commands received so far.
func (s *Server) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

// Event sends an event to the client, if one is connected.
func (s *Server) Event(name string, data map[string]any) {
	s.send(map[string]any{
		"event":     name,
		"data":      data,
		"timestamp": map[string]int64{"seconds": 1, "microseconds": 2},
	})
}

// Close stops the server and drops the client.
func (s *Server) Close() {
	s.ln.Close()
	s.mu.Lock()
	if s.conn != nil {
		s.conn.Close()
	}
	s.mu.Unlock()
}

func (s *Server) send(v any) {
	b, _ := json.Marshal(v)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		s.conn.Write(append(b, '\r', '\n'))
	}
}

func (s *Server) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conn = c
		s.mu.Unlock()
		s.session(c)
	}
}

func (s *Server) session(c net.Conn) {
	s.send(map[string]any{"QMP": map[string]any{
		"version":      map[string]any{"qemu": map[string]int{"major": 7, "minor": 2, "micro": 22}, "package": "fake"},
		"capabilities": []string{"oob"},
	}})
	// Like QEMU, read a stream of JSON objects: clients need not end a
	// command with a newline.
	dec := json.NewDecoder(c)
	for {
		var cmd struct {
			Execute   string          `json:"execute"`
			Arguments json.RawMessage `json:"arguments"`
		}
		if dec.Decode(&cmd) != nil {
			return
		}
		s.mu.Lock()
		s.log = append(s.log, cmd.Execute)
		s.mu.Unlock()
		switch cmd.Execute {
		case "qmp_capabilities":
			s.send(map[string]any{"return": map[string]any{}})
			closeOnce(s.ready)
			continue
		case "quit":
			s.send(map[string]any{"return": map[string]any{}})
			s.Event("SHUTDOWN", map[string]any{"guest": false, "reason": "host-qmp-quit"})
			closeOnce(s.quit)
			continue
		}
		var ret any = map[string]any{}
		var errDesc string
		if s.Handle != nil {
			ret, errDesc = s.Handle(cmd.Execute, cmd.Arguments)
		}
		if errDesc != "" {
			s.send(map[string]any{"error": map[string]string{"class": "GenericError", "desc": errDesc}})
		} else {
			s.send(map[string]any{"return": ret})
		}
	}
}

func closeOnce(c chan struct{}) {
	select {
	case <-c:
	default:
		close(c)
	}
}
