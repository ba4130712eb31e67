package rtmp

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
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

// TestPushBoundsStaleMedia: a push holds at most UnsentLimit unsent bytes
// in the kernel (TCP_NOTSENT_LOWAT) and caps its retransmission backoff at
// 1 s (TCP_RTO_MAX_MS, on kernels that have it), so a link that comes back
// carries fresh media within about a second (e2e TestNetFaultNamespaces).
func TestPushBoundsStaleMedia(t *testing.T) {
	srv := startServer(t, DefaultLimits(), false)
	p, err := DialPush(context.Background(), fmt.Sprintf("rtmp://%s/live/s", srv.addr()), PushOptions{UnsentLimit: 16 << 10})
	require.NoError(t, err)
	defer p.Close(time.Second)
	require.Equal(t, 16<<10, tcpOpt(t, p, unix.TCP_NOTSENT_LOWAT))
	if rto, ok := tcpOptIf(p, tcpRTOMaxMS); ok {
		require.Equal(t, 1000, rto, "TCP_RTO_MAX_MS")
	} else {
		t.Log("this kernel has no TCP_RTO_MAX_MS (before 6.15): the default backoff applies")
	}
}

// tcpOptIf reads an IPPROTO_TCP socket option the kernel may not have.
func tcpOptIf(p *Push, opt int) (int, bool) {
	rc, err := p.conn.SyscallConn()
	if err != nil {
		return 0, false
	}
	got, gerr := 0, error(nil)
	if err := rc.Control(func(fd uintptr) { got, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, opt) }); err != nil || gerr != nil {
		return 0, false
	}
	return got, true
}
