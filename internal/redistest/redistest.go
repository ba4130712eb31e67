// Package redistest runs a real redis-server (Debian's package) for tests
// and benchmarks: on a free 127.0.0.1 port, no persistence, stopped when
// the test ends. Stop and Start again give an empty server on the same
// port (a Redis restart that lost its data).
package redistest

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Server is one redis-server process.
type Server struct {
	Port int
	cmd  *exec.Cmd
}

// URL is redis://127.0.0.1:PORT/0.
func (s *Server) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.Port) }

// Start runs a server on a free port and stops it when tb ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := Run()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// Run runs a server on a free port (a benchmark's; the caller stops it).
func Run() (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("free port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &Server{Port: port}
	if err := s.Start(); err != nil {
		return nil, err
	}
	return s, nil
}

// Start runs the server (again, empty) on its port and waits until it
// accepts connections.
func (s *Server) Start() error {
	s.cmd = exec.Command("redis-server", "--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--loglevel", "warning")
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.Port), 100*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("redis-server did not listen on %d: %w", s.Port, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop kills the server; its data is gone.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}
