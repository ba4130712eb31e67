package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	lalrtmp "github.com/q191201771/lal/pkg/rtmp"
	"github.com/stretchr/testify/require"

	rtmpproto "github.com/podiumlive/podium/rtmp"
)

// rawClient speaks just enough RTMP to send what no real client would.
type rawClient struct {
	t testing.TB
	c net.Conn
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, c: c}
}

// handshake does the simple (digest-less) RTMP handshake.
func (r *rawClient) handshake() {
	r.t.Helper()
	c01 := make([]byte, 1537)
	c01[0] = 3
	_, _ = rand.Read(c01[9:])
	_, err := r.c.Write(c01)
	require.NoError(r.t, err)
	s012 := make([]byte, 1+1536*2)
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadFull(r.c, s012)
	require.NoError(r.t, err)
	_, err = r.c.Write(s012[1 : 1+1536]) // C2 echoes S1
	require.NoError(r.t, err)
}

func amf(values ...any) []byte {
	var b bytes.Buffer
	for _, v := range values {
		switch x := v.(type) {
		case string:
			_ = lalrtmp.Amf0.WriteString(&b, x)
		case float64:
			_ = lalrtmp.Amf0.WriteNumber(&b, x)
		case nil:
			_ = lalrtmp.Amf0.WriteNull(&b)
		case lalrtmp.ObjectPairArray:
			_ = lalrtmp.Amf0.WriteObject(&b, x)
		case []byte:
			b.Write(x)
		}
	}
	return b.Bytes()
}

// command sends an AMF0 command message in 128-byte chunks (the default
// chunk size, since we never announce another).
func (r *rawClient) command(body []byte) error {
	_, err := r.c.Write(rtmpproto.AppendMessage(nil, 3, 20, 0, 128, nil, body))
	return err
}

func (r *rawClient) connect(app string) {
	r.t.Helper()
	require.NoError(r.t, r.command(amf("connect", 1.0, lalrtmp.ObjectPairArray{
		{Key: "app", Value: app},
		{Key: "tcUrl", Value: "rtmp://127.0.0.1/" + app},
	})))
}

// closedWithin reports whether the server closes the connection within d,
// reading (and discarding) whatever it sends meanwhile.
func (r *rawClient) closedWithin(d time.Duration) bool {
	_ = r.c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, r.c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return true
}

// A live stream and its publisher must survive everything below untouched.
func TestGarbageLeavesLiveStreamPlayable(t *testing.T) {
	// handshake_timeout is shortened for the slowloris case.
	p := startPodium(t, "rtmp: {handshake_timeout: 2s, play_wait: 3s}\nvhosts: [{name: __defaultVhost__}]\n")
	addr := fmt.Sprintf("127.0.0.1:%d", p.RTMP)
	pub := publish(t, speexFixture(t), p.RTMPURL("live/keep"))
	probeUntil(t, p.RTMPURL("live/keep"), 15*time.Second, "video", "audio")
	rssBefore := p.RSS(t)

	t.Run("random bytes", func(t *testing.T) {
		r := dialRaw(t, addr)
		junk := make([]byte, 64<<10)
		_, _ = rand.Read(junk)
		junk[0] = 0x42 // not version 3
		_, _ = r.c.Write(junk)
		require.True(t, r.closedWithin(5*time.Second))
	})
	t.Run("garbage after handshake", func(t *testing.T) {
		r := dialRaw(t, addr)
		r.handshake()
		junk := make([]byte, 64<<10)
		_, _ = rand.Read(junk)
		_, _ = r.c.Write(junk)
		require.True(t, r.closedWithin(5*time.Second))
	})
	t.Run("truncated handshake", func(t *testing.T) {
		r := dialRaw(t, addr)
		_, _ = r.c.Write(append([]byte{3}, make([]byte, 100)...))
		start := time.Now()
		require.True(t, r.closedWithin(8*time.Second), "a stalled handshake is cut by handshake_timeout")
		require.Less(t, time.Since(start), 6*time.Second)
	})
	t.Run("absurd chunk sizes", func(t *testing.T) {
		for _, size := range []uint32{0, 0x7fffffff, 0xffffffff} {
			r := dialRaw(t, addr)
			r.handshake()
			body := binary.BigEndian.AppendUint32(nil, size)
			_, _ = r.c.Write(rtmpproto.AppendMessage(nil, 2, 1, 0, 128, nil, body))
			r.connect("live")
			require.True(t, r.closedWithin(5*time.Second), "chunk size %#x", size)
		}
	})
	t.Run("deeply nested AMF connect (2,500,000 levels, 10 MB)", func(t *testing.T) {
		r := dialRaw(t, addr)
		r.handshake()
		const depth = 2_500_000
		nest := bytes.Repeat([]byte{0x03, 0x00, 0x01, 'a'}, depth)
		_ = r.command(amf("connect", 1.0, nest))
		require.True(t, r.closedWithin(5*time.Second))
	})
	t.Run("nested AMF under the size cap", func(t *testing.T) {
		r := dialRaw(t, addr)
		r.handshake()
		nest := bytes.Repeat([]byte{0x03, 0x00, 0x01, 'a'}, 15000)
		_ = r.command(amf("connect", 1.0, nest))
		require.True(t, r.closedWithin(5*time.Second))
	})
	t.Run("200 connections declaring 16 MiB messages", func(t *testing.T) {
		var wg sync.WaitGroup
		closed := make(chan bool, 200)
		for i := range 200 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := dialRaw(t, addr)
				r.handshake()
				typ := byte(20) // command
				if i%2 == 1 {
					typ = 9 // video, before any publish
				}
				hdr := []byte{0x03, 0, 0, 0, 0xff, 0xff, 0xff, typ, 0, 0, 0, 0}
				_, _ = r.c.Write(append(hdr, make([]byte, 100)...))
				closed <- r.closedWithin(10 * time.Second)
			}()
		}
		wg.Wait()
		close(closed)
		n := 0
		for c := range closed {
			if c {
				n++
			}
		}
		require.Equal(t, 200, n, "every connection is closed")
		rss := p.RSS(t)
		require.Less(t, rss-rssBefore, int64(150<<20), "memory does not grow with declared sizes (before %d, after %d)", rssBefore, rss)
	})
	t.Run("100,000 chunk stream ids", func(t *testing.T) {
		r := dialRaw(t, addr)
		r.handshake()
		var b []byte
		for csid := 64; csid < 64+100_000 && csid < 65599; csid++ {
			b = append(b, 0x01, byte((csid-64)&0xff), byte((csid-64)>>8), 0, 0, 0, 0, 0, 1, 20, 0, 0, 0, 0, 0x05)
		}
		_, _ = r.c.Write(b)
		require.True(t, r.closedWithin(5*time.Second))
	})
	t.Run("short user control", func(t *testing.T) {
		r := dialRaw(t, addr)
		r.handshake()
		_, _ = r.c.Write(rtmpproto.AppendMessage(nil, 2, 4, 0, 128, nil, []byte{0}))
		require.True(t, r.closedWithin(5*time.Second))
	})
	t.Run("bad stream names", func(t *testing.T) {
		for _, name := range []string{"..", "../../etc/passwd", "a/b", "s\x001", "%2e%2e", strings.Repeat("x", 300)} {
			r := dialRaw(t, addr)
			r.handshake()
			r.connect("live")
			require.NoError(t, r.command(amf("createStream", 2.0, nil)))
			require.NoError(t, r.command(amf("publish", 3.0, nil, name, "live")))
			require.True(t, r.closedWithin(5*time.Second), "name %q", name)
		}
		// and in the app
		r := dialRaw(t, addr)
		r.handshake()
		r.connect("../live")
		require.NoError(t, r.command(amf("createStream", 2.0, nil)))
		require.NoError(t, r.command(amf("publish", 3.0, nil, "s1", "live")))
		require.True(t, r.closedWithin(5*time.Second))
	})

	p.Alive(t)
	require.NoError(t, pub.Process.Signal(syscallZero), "the publisher was never disturbed")
	res := probeUntil(t, p.RTMPURL("live/keep"), 15*time.Second, "video", "audio")
	require.Len(t, res.Streams, 2)
	logs := p.Logs.String()
	require.NotContains(t, logs, "panic")
	require.Contains(t, logs, "rtmp connection rejected")
	require.NotContains(t, logs, "NAZA", "lal/naza's own logging is silenced")
	t.Logf("rejections logged: %d", strings.Count(logs, "rtmp connection rejected"))
	reasons := map[string]bool{}
	for _, line := range strings.Split(logs, "\n") {
		if _, r, ok := strings.Cut(line, "reason="); ok && strings.Contains(line, "rejected") && !reasons[r] {
			reasons[r] = true
			t.Log("rejected:", r)
		}
	}
}
