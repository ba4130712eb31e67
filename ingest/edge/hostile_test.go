package edge

import (
	"context"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/flv"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/internal/syncbuf"
	"github.com/podiumlive/podium/rtmp"
)

// fakeOrigin accepts connections and runs serve on each until the test
// ends.
func fakeOrigin(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// handshake answers a client's simple handshake.
func handshake(c net.Conn) bool {
	c0c1 := make([]byte, 1537)
	if _, err := io.ReadFull(c, c0c1); err != nil {
		return false
	}
	s := make([]byte, 1+2*1536)
	s[0] = 3
	copy(s[1537:], c0c1[1:])
	if _, err := c.Write(s); err != nil {
		return false
	}
	_, err := io.ReadFull(c, make([]byte, 1536))
	return err == nil
}

// command is an AMF0 command message on chunk stream 3.
func command(name string, tx float64, args ...any) []byte {
	return rtmp.AppendMessage(nil, 3, 20, 0, 128, nil, flv.CommandBody(name, tx, args...))
}

// TestHostileOrigins: origins that refuse, reset, hang after connect,
// send garbage, or redirect in a loop each fail fast with one log line
// and go into backoff; a player gets not-found within connect_timeout
// per origin, not a hang; the rest of the hub is untouched.
func TestHostileOrigins(t *testing.T) {
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}()
	reset := fakeOrigin(t, func(c net.Conn) {
		_ = c.(*net.TCPConn).SetLinger(0)
		_ = c.Close()
	})
	hang := fakeOrigin(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	garbage := fakeOrigin(t, func(c net.Conn) {
		if handshake(c) {
			// A chunk header declaring a 16 MiB command message.
			_, _ = c.Write([]byte{3, 0, 0, 0, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0})
			_, _ = io.Copy(io.Discard, c)
		}
	})
	var loop string
	loop = fakeOrigin(t, func(c net.Conn) {
		if !handshake(c) {
			return
		}
		_, _ = c.Read(make([]byte, 4096)) // connect
		_, _ = c.Write(command("_error", 1, nil, map[string]any{
			"level": "error", "code": "NetConnection.Connect.Rejected", "description": "RTMP 302 Redirect",
			"ex": map[string]any{"code": float64(302), "redirect": "rtmp://" + loop + "/live"},
		}))
		_, _ = io.Copy(io.Discard, c)
	})
	hostile := []string{closed, reset, hang, garbage, loop}

	logs := &syncbuf.Buffer{}
	hub := stream.NewHub(stream.Options{}, nil)
	defer hub.Close()
	e := New([]Config{{Vhost: "__defaultVhost__", Origins: hostile, ConnectTimeout: 500 * time.Millisecond,
		IdleTimeout: 500 * time.Millisecond, IdleClose: time.Second}},
		hub, Options{OriginBackoff: 30 * time.Second, Tick: 20 * time.Millisecond},
		slog.New(slog.NewTextHandler(logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); e.Wait() }()
	e.Start(ctx)

	// Something else on the box keeps going.
	other, err := hub.Publish(stream.Key{Vhost: "transcode", App: "live", Name: "x"}, stream.ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	defer other.Close()

	key := stream.Key{Vhost: "__defaultVhost__", App: "live", Name: "class"}
	start := time.Now()
	_, err = hub.Subscribe(ctx, key, stream.ClientInfo{Protocol: "rtmp"}, 20*time.Second)
	took := time.Since(start)
	require.ErrorIs(t, err, stream.ErrNotFound)
	require.Contains(t, err.Error(), "no origin has")
	require.Less(t, took, 3*time.Second, "one connect_timeout (the hang) plus instant failures")
	out := logs.String()
	for _, o := range hostile {
		lines := regexp.MustCompile(`msg="edge origin failed".* origin=`+regexp.QuoteMeta(o)+` `).FindAllString(out, -1)
		require.Len(t, lines, 1, "one line for %s\n%s", o, out)
	}
	for _, want := range []string{"connection refused", "connection reset", "no answer within 500ms",
		"rtmp guard", "too many redirects"} {
		require.Contains(t, out, want)
	}
	require.Equal(t, 1, strings.Count(out, `msg="edge stream not found on any origin"`), out)
	require.NotNil(t, hub.Get(stream.Key{Vhost: "transcode", App: "live", Name: "x"}))

	// Every origin is now in backoff for every stream: a play of another
	// stream tries the one whose backoff ends first, once.
	for _, st := range e.Origins() {
		require.False(t, st.Healthy, "%+v", st)
	}
	start = time.Now()
	_, err = hub.Subscribe(ctx, stream.Key{Vhost: "__defaultVhost__", App: "live", Name: "other"}, stream.ClientInfo{}, 20*time.Second)
	require.ErrorIs(t, err, stream.ErrNotFound)
	require.Less(t, time.Since(start), 2*time.Second)
	c := e.Counters()
	require.Equal(t, uint64(2), c.Pulls)
	require.Equal(t, uint64(0), c.Failovers)
	require.Equal(t, uint64(6), c.UpstreamErrors)
}
