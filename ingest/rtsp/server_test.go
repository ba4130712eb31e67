package rtsp

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/ingest/rtsp/rtsptest"
	"github.com/podiumlive/podium/ingest/stream"
)

type testServer struct {
	srv  *Server
	hub  *stream.Hub
	logs *logBuffer
	addr string
}

func startServer(t *testing.T, cfg ServerConfig) *testServer {
	t.Helper()
	hub := stream.NewHub(stream.DefaultOptions(), nil)
	t.Cleanup(hub.Close)
	logs := &logBuffer{}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	srv := NewServer(cfg, hub, slog.New(slog.NewTextHandler(logs, nil)))
	require.NoError(t, srv.Listen())
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-served) })
	return &testServer{srv: srv, hub: hub, logs: logs, addr: srv.Addr().String()}
}

// closedWithin reports whether the server closes c within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return true
}

// playOnce plays url with gortsplib's client until it got a packet of
// every media.
func playOnce(t *testing.T, url string) {
	t.Helper()
	u, err := base.ParseURL(url)
	require.NoError(t, err)
	tcp := gortsplib.TransportTCP
	c := gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &tcp, ReadTimeout: 5 * time.Second}
	require.NoError(t, c.Start2())
	defer c.Close()
	desc, _, err := c.Describe(u)
	require.NoError(t, err)
	require.Len(t, desc.Medias, 2)
	require.NoError(t, c.SetupAll(desc.BaseURL, desc.Medias))
	got := make(chan *description.Media, 100)
	c.OnPacketRTPAny(func(m *description.Media, _ format.Format, _ *rtp.Packet) {
		select {
		case got <- m:
		default:
		}
	})
	_, err = c.Play(nil)
	require.NoError(t, err)
	seen := map[*description.Media]bool{}
	timeout := time.After(5 * time.Second)
	for len(seen) < 2 {
		select {
		case m := <-got:
			seen[m] = true
		case <-timeout:
			t.Fatal("no packets of every media")
		}
	}
}

// Players over UDP and TCP that SETUP the same stream at once: gortsplib
// (v4.16.2 and its newest source) reads every reader's transport and
// medias in a UDP SETUP while another session writes its own in its
// next SETUP, without a lock; the server orders SETUPs (setupMu). Under
// -race this test fails without that.
func TestServerConcurrentSetups(t *testing.T) {
	ts := startServer(t, ServerConfig{Addr: fmt.Sprintf("127.0.0.1:%d", rtsptest.Port(t))})
	require.True(t, ts.srv.udp, "rtp over udp offered")
	key := stream.Key{Vhost: "__defaultVhost__", App: "live", Name: "keep"}
	testPublisher(t, ts.hub, key)
	u, err := base.ParseURL("rtsp://" + ts.addr + "/live/keep")
	require.NoError(t, err)
	setup := func(tr gortsplib.Transport) error {
		c := gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &tr, ReadTimeout: 5 * time.Second}
		if err := c.Start2(); err != nil {
			return err
		}
		defer c.Close()
		desc, _, err := c.Describe(u)
		if err != nil {
			return err
		}
		if len(desc.Medias) != 2 {
			return fmt.Errorf("%d medias", len(desc.Medias))
		}
		return c.SetupAll(desc.BaseURL, desc.Medias)
	}
	for range 10 {
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for _, tr := range []gortsplib.Transport{gortsplib.TransportUDP, gortsplib.TransportTCP, gortsplib.TransportUDP, gortsplib.TransportTCP} {
			wg.Add(1)
			go func() { defer wg.Done(); errs <- setup(tr) }()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
	}
}

func TestServerGarbage(t *testing.T) {
	ts := startServer(t, ServerConfig{RequestTimeout: 500 * time.Millisecond, MaxSetups: 8, PlayWait: 100 * time.Millisecond})
	key := stream.Key{Vhost: "__defaultVhost__", App: "live", Name: "keep"}
	testPublisher(t, ts.hub, key)
	url := "rtsp://" + ts.addr + "/live/keep"
	playOnce(t, url)

	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", ts.addr, 2*time.Second)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	t.Run("random bytes", func(t *testing.T) {
		c := dial()
		junk := make([]byte, 64<<10)
		_, _ = rand.Read(junk)
		_, _ = c.Write(junk)
		require.True(t, closedWithin(c, 3*time.Second))
	})
	t.Run("truncated request", func(t *testing.T) {
		c := dial()
		_, _ = c.Write([]byte("DESCRIBE rtsp://" + ts.addr + "/live/keep RTSP/1.0\r\nCSeq: 1\r\nAcc"))
		start := time.Now()
		require.True(t, closedWithin(c, 3*time.Second))
		require.Less(t, time.Since(start), 2*time.Second)
	})
	t.Run("huge header", func(t *testing.T) {
		c := dial()
		_, _ = c.Write([]byte("OPTIONS rtsp://x/ RTSP/1.0\r\nCSeq: 1\r\nX: " + strings.Repeat("a", 100<<10) + "\r\n\r\n"))
		require.True(t, closedWithin(c, 3*time.Second))
	})
	t.Run("setup flood", func(t *testing.T) {
		// SETUPs of a stream that is not there are answered 404 and keep
		// the connection: until the limit.
		c := dial()
		var b strings.Builder
		for i := range 200 {
			fmt.Fprintf(&b, "SETUP rtsp://%s/live/nope/trackID=0 RTSP/1.0\r\nCSeq: %d\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n",
				ts.addr, i+1)
		}
		_, _ = c.Write([]byte(b.String()))
		require.True(t, closedWithin(c, 5*time.Second))
	})
	t.Run("setup flood on a live stream", func(t *testing.T) {
		c := dial()
		var b strings.Builder
		for i := range 200 {
			fmt.Fprintf(&b, "SETUP rtsp://%s/live/keep/trackID=%d RTSP/1.0\r\nCSeq: %d\r\nTransport: RTP/AVP/TCP;unicast;interleaved=%d-%d\r\n\r\n",
				ts.addr, i%2, i+1, 2*i, 2*i+1)
		}
		_, _ = c.Write([]byte(b.String()))
		require.True(t, closedWithin(c, 3*time.Second))
	})
	t.Run("bogus rtp from a publisher", func(t *testing.T) {
		u, err := base.ParseURL("rtsp://" + ts.addr + "/live/bogus")
		require.NoError(t, err)
		tcp := gortsplib.TransportTCP
		c := gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &tcp}
		forma := &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: testSPS, PPS: testPPS}
		desc := &description.Session{Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}}}
		require.NoError(t, c.StartRecording(u.String(), desc))
		defer c.Close()
		for i := range 2000 {
			payload := make([]byte, 1+i%1000)
			_, _ = rand.Read(payload)
			err := c.WritePacketRTP(desc.Medias[0], &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96,
				SequenceNumber: uint16(i * 7919), Timestamp: uint32(i * 3000)}, Payload: payload})
			if err != nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
		require.Eventually(t, func() bool { return strings.Contains(ts.logs.String(), "rtsp publish ended") },
			5*time.Second, 20*time.Millisecond)
		require.Nil(t, ts.hub.Get(stream.Key{Vhost: "__defaultVhost__", App: "live", Name: "bogus"}))
	})

	playOnce(t, url) // the live stream and its players were never disturbed
	require.NotNil(t, ts.hub.Get(key))
	logs := ts.logs.String()
	t.Log(logs)
	require.NotContains(t, logs, "panic")
	require.Contains(t, logs, "setup flood")
	require.Contains(t, logs, "bad rtp packets")
	require.GreaterOrEqual(t, ts.srv.Stats().Rejected, uint64(5))
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "rejected") || strings.Contains(line, "publish ended") {
			require.NotContains(t, line, "level=ERROR")
		}
	}
}

// Publish over RTSP, read from the hub: H.264 access units with their
// configuration, G.711 audio, monotonic timestamps.
func TestServerPublishIntoHub(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	u, err := base.ParseURL("rtsp://" + ts.addr + "/live/cam1?vhost=__defaultVhost__&key=s3cret")
	require.NoError(t, err)
	tcp := gortsplib.TransportTCP
	c := gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &tcp}
	vf := &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: testSPS, PPS: testPPS}
	af := &format.G711{PayloadTyp: 8, SampleRate: 8000, ChannelCount: 1}
	desc := &description.Session{Medias: []*description.Media{
		{Type: description.MediaTypeVideo, Formats: []format.Format{vf}},
		{Type: description.MediaTypeAudio, Formats: []format.Format{af}},
	}}
	require.NoError(t, c.StartRecording(u.String(), desc))
	defer c.Close()
	key := stream.Key{Vhost: "__defaultVhost__", App: "live", Name: "cam1"}
	require.Eventually(t, func() bool { return ts.hub.Get(key) != nil }, 2*time.Second, 10*time.Millisecond)
	st := ts.hub.Get(key)
	require.Equal(t, "key=xxx&vhost=__defaultVhost__", st.Publisher().Params, "secrets redacted")
	r, err := ts.hub.Subscribe(context.Background(), key, stream.ClientInfo{Protocol: "test"}, 0)
	require.NoError(t, err)
	defer r.Close()

	venc, err := vf.CreateEncoder()
	require.NoError(t, err)
	aenc, err := af.CreateEncoder()
	require.NoError(t, err)
	go func() {
		for i := range 50 {
			au := [][]byte{testSlice[0]}
			if i%10 == 0 {
				au = [][]byte{testIDR}
			}
			pkts, _ := venc.Encode(au)
			for _, p := range pkts {
				p.Timestamp = uint32(i * 3600)
				_ = c.WritePacketRTP(desc.Medias[0], p)
			}
			apkts, _ := aenc.Encode(make([]byte, 320))
			for _, p := range apkts {
				p.Timestamp = uint32(i * 320)
				_ = c.WritePacketRTP(desc.Medias[1], p)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var video, audio int
	last := map[media.Kind]time.Duration{}
	for video < 20 || audio < 20 {
		p, err := r.Read(ctx)
		require.NoError(t, err)
		require.GreaterOrEqual(t, p.DTS, last[p.Kind()])
		last[p.Kind()] = p.DTS
		switch p.Kind() {
		case media.KindVideo:
			if video == 0 {
				require.True(t, p.Key, "starts at a keyframe")
				require.NotEmpty(t, p.Track.Config)
			}
			video++
		case media.KindAudio:
			require.Equal(t, media.CodecG711A, p.Track.Codec)
			audio++
		}
	}
}
