package forward

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/configs"
	"github.com/podiumlive/podium/hooks"
	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/ingest/stream"
)

var (
	avcC      = []byte{1, 0x42, 0, 0x1e, 0xff, 0xe1, 0, 4, 0x67, 0x42, 0, 0x1e, 1, 0, 4, 0x68, 0xce, 0x3c, 0x80}
	testVideo = &media.Track{Kind: media.KindVideo, Codec: media.CodecH264, Config: avcC}
)

// slave is an in-process Podium RTMP server with its own hub.
type slave struct {
	hub  *stream.Hub
	addr string
}

func startSlave(t *testing.T) *slave { return startMember(t, "").slave }

// publishLoop writes a 25 fps video stream (keyframe every 25) until the
// test ends; it returns the publisher's stream.
func publishLoop(t *testing.T, hub *stream.Hub, key stream.Key, info stream.ClientInfo) *stream.Stream {
	t.Helper()
	pub, err := hub.Publish(key, info)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer pub.Close()
		tk := time.NewTicker(40 * time.Millisecond)
		defer tk.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			d := time.Duration(i) * 40 * time.Millisecond
			key := i%25 == 0
			nal := byte(0x41)
			if key {
				nal = 0x65
			}
			pub.WritePacket(media.Packet{Track: testVideo, DTS: d, PTS: d, Key: key,
				Data: append([]byte{0, 0, 0, 200, nal}, make([]byte, 199)...)})
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return pub.Stream()
}

func testOpts() Options {
	return Options{ConnectTimeout: 500 * time.Millisecond, WriteTimeout: time.Second,
		BackoffMin: 100 * time.Millisecond, BackoffMax: 400 * time.Millisecond, HookTimeout: 300 * time.Millisecond}
}

func startManager(t *testing.T, hub *stream.Hub, vhosts map[string]Settings) *Manager {
	t.Helper()
	m := NewManager(hub, vhosts, testOpts(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	m.Start(ctx)
	t.Cleanup(func() { cancel(); m.Wait() })
	return m
}

func statsFor(m *Manager, dest string) (Stats, bool) {
	for _, s := range m.Stats() {
		if strings.Contains(s.Destination, dest) {
			return s, true
		}
	}
	return Stats{}, false
}

var key = stream.Key{Vhost: "transcode", App: "live", Name: "s1"}

func TestExpand(t *testing.T) {
	k := stream.Key{Vhost: "transcode", App: "live", Name: "cam1"}
	for _, tc := range []struct{ dest, param, want string }{
		{"10.0.0.6:1935", "", "rtmp://10.0.0.6:1935/live/cam1?podium_hops=1"},
		{"rtmp://h:1936/live", "", "rtmp://h:1936/live/cam1?podium_hops=1"},
		{"rtmp://h", "", "rtmp://h:1935/live/cam1?podium_hops=1"},
		{"rtmp://h:1/[vhost]/[app]_[stream]", "", "rtmp://h:1/transcode/live_cam1?podium_hops=1"},
		{"rtmp://h:1/[app]/[stream][param]", "a=b", "rtmp://h:1/live/cam1?a=b&podium_hops=1"},
		{"rtmp://h:1/x/y?vhost=v", "", "rtmp://h:1/x/y?podium_hops=1&vhost=v"},
	} {
		got, err := Expand(tc.dest, k, tc.param, 1)
		require.NoError(t, err, tc.dest)
		require.Equal(t, tc.want, got, tc.dest)
	}
	_, err := Expand("http://h/x", k, "", 1)
	require.Error(t, err)
	require.Equal(t, "rtmp://xxx@h/a/b?key=xxx", hooks.Redact("rtmp://u:p@h/a/b?key=s3cret"))
}

func TestParseHookAnswer(t *testing.T) {
	urls, err := ParseHookAnswer([]byte(`{"code":0,"data":{"urls":["rtmp://a/b/c"]}}`))
	require.NoError(t, err)
	require.Equal(t, []string{"rtmp://a/b/c"}, urls)
	for _, ok := range []string{`0`, `{"code":0}`, `{"code":0,"data":{"urls":[]}}`} {
		urls, err := ParseHookAnswer([]byte(ok))
		require.NoError(t, err, ok)
		require.Empty(t, urls)
	}
	for _, bad := range []string{``, `garbage`, `{"code":1}`, `{}`, `{"code":0,"data":{"urls":["http://x"]}}`, `[1]`} {
		_, err := ParseHookAnswer([]byte(bad))
		require.Error(t, err, bad)
	}
}

func FuzzParseHookAnswer(f *testing.F) {
	f.Add([]byte(`{"code":0,"data":{"urls":["rtmp://a/b/c"]}}`))
	f.Add([]byte(`0`))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = ParseHookAnswer(b) })
}

// TestForwardAndBadSlaves forwards one stream to a good slave and to three
// bad ones at once: the good one gets the stream (marked as forwarded),
// each bad one backs off with a last error, and nothing else is affected.
func TestForwardAndBadSlaves(t *testing.T) {
	good := startSlave(t)
	refused := closedPort(t)
	silent := silentListener(t)
	busy := startSlave(t) // rejects the publish: the name is taken there
	publishLoop(t, busy.hub, stream.Key{Vhost: "__defaultVhost__", App: "live", Name: "s1"}, stream.ClientInfo{})

	hub := stream.NewHub(stream.DefaultOptions(), nil)
	defer hub.Close()
	m := startManager(t, hub, map[string]Settings{"transcode": {
		Destinations: []string{good.addr, refused, silent, busy.addr}, HopLimit: 1}})
	publishLoop(t, hub, key, stream.ClientInfo{Protocol: "test"})

	require.Eventually(t, func() bool {
		st := good.hub.Get(stream.Key{Vhost: "__defaultVhost__", App: "live", Name: "s1"})
		return st != nil && st.Publisher().Forwarded == 1 && st.Stats().In.Packets > 10
	}, 5*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool {
		for _, d := range []string{refused, silent, busy.addr} {
			s, ok := statsFor(m, d)
			if !ok || s.LastError == "" || s.Reconnects < 1 {
				return false
			}
		}
		return true
	}, 5*time.Second, 50*time.Millisecond)
	s, ok := statsFor(m, good.addr)
	require.True(t, ok)
	require.Equal(t, StateForwarding, s.State)
	require.Zero(t, s.Reconnects)
	require.Greater(t, s.Bytes, uint64(10*200), "more than the 10 packets the slave has")
	for _, d := range []string{refused, silent, busy.addr} {
		s, _ := statsFor(m, d)
		t.Logf("%s: %s %q", d, s.State, s.LastError)
	}
}

func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// silentListener accepts TCP and never answers.
func silentListener(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func TestHopLimit(t *testing.T) {
	good := startSlave(t)
	hub := stream.NewHub(stream.DefaultOptions(), nil)
	defer hub.Close()
	m := startManager(t, hub, map[string]Settings{"transcode": {Destinations: []string{good.addr}, HopLimit: 1}})
	publishLoop(t, hub, key, stream.ClientInfo{Forwarded: 1})
	time.Sleep(300 * time.Millisecond)
	require.Empty(t, m.Stats())
	require.Empty(t, good.hub.Streams())
}

func TestBackendHook(t *testing.T) {
	good := startSlave(t)
	static := closedPort(t)
	var calls atomic.Int32
	var answer atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		switch a := answer.Load().(string); a {
		case "hang":
			// The server notices the client leave only once the body is read.
			_, _ = io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
		case "huge":
			_, _ = w.Write([]byte(strings.Repeat(" ", 3<<20)))
		default:
			_, _ = w.Write([]byte(a))
		}
	}))
	defer srv.Close()
	run := func(t *testing.T, ans string, check func(m *Manager)) {
		calls.Store(0)
		answer.Store(ans)
		hub := stream.NewHub(stream.DefaultOptions(), nil)
		defer hub.Close()
		m := startManager(t, hub, map[string]Settings{"transcode": {
			Destinations: []string{static}, Backend: srv.URL, HopLimit: 1}})
		publishLoop(t, hub, key, stream.ClientInfo{Remote: "1.2.3.4:5"})
		check(m)
	}
	t.Run("urls", func(t *testing.T) {
		run(t, fmt.Sprintf(`{"code":0,"data":{"urls":["rtmp://%s/other/x"]}}`, good.addr), func(m *Manager) {
			require.Eventually(t, func() bool {
				st := good.hub.Get(stream.Key{Vhost: "__defaultVhost__", App: "other", Name: "x"})
				return st != nil && len(m.Stats()) == 1
			}, 5*time.Second, 50*time.Millisecond)
		})
	})
	t.Run("empty", func(t *testing.T) {
		run(t, `{"code":0,"data":{"urls":[]}}`, func(m *Manager) {
			require.Eventually(t, func() bool { return calls.Load() == 1 && len(m.Stats()) == 0 },
				5*time.Second, 50*time.Millisecond)
		})
	})
	for _, bad := range []string{"garbage", "huge", "hang"} {
		t.Run(bad, func(t *testing.T) {
			run(t, bad, func(m *Manager) {
				require.Eventually(t, func() bool { return calls.Load() >= 2 }, 5*time.Second, 50*time.Millisecond)
				_, ok := statsFor(m, static) // the static list runs meanwhile
				require.True(t, ok)
			})
		})
	}
}

func TestReloadRestartsOnlyChanged(t *testing.T) {
	a, b := startSlave(t), startSlave(t)
	hub := stream.NewHub(stream.DefaultOptions(), nil)
	defer hub.Close()
	m := startManager(t, hub, map[string]Settings{"transcode": {Destinations: []string{a.addr}, HopLimit: 1}})
	publishLoop(t, hub, key, stream.ClientInfo{})
	require.Eventually(t, func() bool { s, ok := statsFor(m, a.addr); return ok && s.State == StateForwarding },
		5*time.Second, 20*time.Millisecond)
	before, _ := statsFor(m, a.addr)
	m.Reload(map[string]Settings{"transcode": {Destinations: []string{a.addr, b.addr}, HopLimit: 1}})
	require.Eventually(t, func() bool { s, ok := statsFor(m, b.addr); return ok && s.State == StateForwarding },
		5*time.Second, 20*time.Millisecond)
	after, _ := statsFor(m, a.addr)
	require.Equal(t, before.Since, after.Since, "unchanged destination was restarted")
	m.Reload(map[string]Settings{"transcode": {Destinations: []string{b.addr}, HopLimit: 1}})
	_, ok := statsFor(m, a.addr)
	require.False(t, ok)
	m.Reload(map[string]Settings{})
	require.Empty(t, m.Stats())
}

// TestNoDelayFromVhost: the vhost's tcp_nodelay reaches every push of its
// streams (rtmp's TestPushNoDelay checks the socket option itself).
func TestNoDelayFromVhost(t *testing.T) {
	cfg := configs.Default()
	tr := cfg.Vhost("transcode")
	tr.Forward = &configs.Forward{Destinations: []string{"127.0.0.1:1"}, HopLimit: 1}
	require.False(t, SettingsFrom(cfg)["transcode"].NoDelay, "off by default")
	tr.TCPNoDelay = true
	require.True(t, SettingsFrom(cfg)["transcode"].NoDelay)

	slave := startSlave(t)
	hub := stream.NewHub(stream.DefaultOptions(), nil)
	defer hub.Close()
	m := startManager(t, hub, map[string]Settings{"transcode": {Destinations: []string{slave.addr}, HopLimit: 1, NoDelay: true}})
	publishLoop(t, hub, key, stream.ClientInfo{Protocol: "test"})
	require.Eventually(t, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, fs := range m.streams {
			for _, h := range fs.handlers {
				return h.noDelay
			}
		}
		return false
	}, 5*time.Second, 20*time.Millisecond, "the handler's push options carry NoDelay")
}
