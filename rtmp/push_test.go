package rtmp

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPushNoDelay: a push leaves Nagle on (as SRS and nginx-rtmp do)
// unless NoDelay asks for TCP_NODELAY.
func TestPushNoDelay(t *testing.T) {
	srv := startServer(t, DefaultLimits(), false)
	for i, noDelay := range []bool{false, true} {
		p, err := DialPush(context.Background(), fmt.Sprintf("rtmp://%s/live/s%d", srv.addr(), i), PushOptions{NoDelay: noDelay})
		require.NoError(t, err)
		got := tcpOpt(t, p, syscall.TCP_NODELAY)
		want := 0
		if noDelay {
			want = 1
		}
		require.Equal(t, want, min(got, 1), "TCP_NODELAY with NoDelay=%v", noDelay)
		p.Close(time.Second)
	}
}

// tcpOpt reads an IPPROTO_TCP socket option of p's connection.
func tcpOpt(t *testing.T, p *Push, opt int) int {
	t.Helper()
	rc, err := p.conn.SyscallConn()
	require.NoError(t, err)
	got, gerr := -1, error(nil)
	require.NoError(t, rc.Control(func(fd uintptr) {
		got, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, opt)
	}))
	require.NoError(t, gerr)
	return got
}
