package rtmp

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/q191201771/lal/pkg/base"
	lalrtmp "github.com/q191201771/lal/pkg/rtmp"
	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/ingest/stream"
)

// TestPlayNoDelay: a player gets TCP_NODELAY only on a vhost whose
// tcp_nodelay is on; elsewhere Nagle stays on (Go's default is off).
func TestPlayNoDelay(t *testing.T) {
	hub := stream.NewHub(stream.DefaultOptions(), nil)
	defer hub.Close()
	srv := New(Config{
		Addr:    "127.0.0.1:0",
		Vhost:   func(string) bool { return true },
		NoDelay: func(vhost string) bool { return vhost == "fast" },
	}, hub, slog.New(slog.DiscardHandler))
	require.NoError(t, srv.Listen())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()

	for _, tc := range []struct {
		vhost string
		want  int
	}{{"__defaultVhost__", 0}, {"fast", 1}} {
		pub, err := hub.Publish(stream.Key{Vhost: tc.vhost, App: "live", Name: "s1"}, stream.ClientInfo{Protocol: "test"})
		require.NoError(t, err)
		ps := lalrtmp.NewPullSession().WithOnReadRtmpAvMsg(func(base.RtmpMsg) {})
		require.NoError(t, ps.Pull(fmt.Sprintf("rtmp://%s/live/s1?vhost=%s", srv.Addr(), tc.vhost)))
		got := playerNoDelay(t, srv)
		require.Equal(t, tc.want, got, "TCP_NODELAY of a player on vhost %s", tc.vhost)
		_ = ps.Dispose()
		pub.Close()
		require.Eventually(t, func() bool {
			srv.mu.Lock()
			defer srv.mu.Unlock()
			return len(srv.conns) == 0
		}, 5*time.Second, 10*time.Millisecond, "the player's connection did not end")
	}
}

// playerNoDelay waits for the server's one playing connection to have
// its sink (set up after TCP_NODELAY) and returns its TCP_NODELAY.
func playerNoDelay(t *testing.T, srv *Server) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		srv.mu.Lock()
		var nc net.Conn
		for c := range srv.conns {
			if c.gate.sink.Load() != nil {
				nc = c.nc
			}
		}
		srv.mu.Unlock()
		if nc != nil {
			rc, err := nc.(*net.TCPConn).SyscallConn()
			require.NoError(t, err)
			v, verr := -1, error(nil)
			require.NoError(t, rc.Control(func(fd uintptr) {
				v, verr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
			}))
			require.NoError(t, verr)
			return min(v, 1)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no player connection")
	return -1
}
