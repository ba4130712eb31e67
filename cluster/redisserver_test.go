package cluster

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// redisServer is a real redis-server on a free port, no persistence,
// stopped when the test ends.
type redisServer struct {
	Port int
	cmd  *exec.Cmd
}

func (r *redisServer) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.Port) }

func startRedis(t testing.TB) *redisServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &redisServer{Port: port}
	r.Start(t)
	t.Cleanup(r.Stop)
	return r
}

// Start runs the server (again, empty) on its port.
func (r *redisServer) Start(t testing.TB) {
	t.Helper()
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--loglevel", "warning")
	require.NoError(t, r.cmd.Start())
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", r.Port), 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 5*time.Second, 20*time.Millisecond)
}

// Stop kills the server (its data is gone).
func (r *redisServer) Stop() {
	if r.cmd != nil && r.cmd.ProcessState == nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
	}
}
