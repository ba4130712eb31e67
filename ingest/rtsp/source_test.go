package rtsp

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/internal/syncbuf"

	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/ingest/rtsp/rtsptest"
	"github.com/podiumlive/podium/ingest/stream"
)

// logBuffer collects slog output.
type logBuffer = syncbuf.Buffer

func fastOptions() SourcesOptions {
	return SourcesOptions{DialTimeout: time.Second, ReadTimeout: time.Second, Silence: time.Second,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond, CloseAfter: 500 * time.Millisecond}
}

func TestSourceRetriesGarbageCameras(t *testing.T) {
	garbage := rtsptest.FakeCamera(t, func(string, string) []byte {
		return []byte("\x00\x01HTTP/9 what\r\n\xff\xfe garbage \r\n\r\n")
	})
	truncated := rtsptest.FakeCamera(t, func(method, cseq string) []byte {
		if method == "OPTIONS" {
			return []byte("RTSP/1.0 200 OK\r\nCSeq: " + cseq + "\r\nPublic: DESCRIBE, SETUP, PLAY\r\n\r\n")
		}
		sdp := "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H26"
		return []byte("RTSP/1.0 200 OK\r\nCSeq: " + cseq + "\r\nContent-Type: application/sdp\r\nContent-Length: 400\r\n\r\n" + sdp)
	})
	badSDP := rtsptest.FakeCamera(t, func(method, cseq string) []byte {
		if method == "OPTIONS" {
			return []byte("RTSP/1.0 200 OK\r\nCSeq: " + cseq + "\r\n\r\n")
		}
		sdp := "v=0\r\nm=video 99999999999 RTP/AVP 96 97\r\na=rtpmap:96\r\n"
		return []byte(fmt.Sprintf("RTSP/1.0 200 OK\r\nCSeq: %s\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", cseq, len(sdp), sdp))
	})

	hub := stream.NewHub(stream.DefaultOptions(), nil)
	defer hub.Close()
	other, err := hub.Publish(stream.Key{Vhost: "__defaultVhost__", App: "live", Name: "other"}, stream.ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	defer other.Close()

	var logs logBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	cfgs := []SourceConfig{
		{URL: "rtsp://admin:hunter2@" + garbage + "/s", Key: stream.Key{Vhost: "__defaultVhost__", App: "cam", Name: "g"}, Transport: "tcp"},
		{URL: "rtsp://admin:hunter2@" + truncated + "/s", Key: stream.Key{Vhost: "__defaultVhost__", App: "cam", Name: "t"}, Transport: "tcp"},
		{URL: "rtsp://" + badSDP + "/s?token=hunter2", Key: stream.Key{Vhost: "__defaultVhost__", App: "cam", Name: "b"}},
	}
	m := NewSources(cfgs, hub, fastOptions(), log)
	ctx, cancel := context.WithCancel(context.Background())
	m.Start(ctx)
	require.Eventually(t, func() bool {
		for _, st := range m.Stats() {
			if st.Reconnects < 3 {
				return false
			}
		}
		return true
	}, 15*time.Second, 20*time.Millisecond)
	cancel()
	m.Wait()

	for _, st := range m.Stats() {
		t.Logf("%s: %d reconnects, last error %q", st.URL, st.Reconnects, st.LastError)
		require.NotEmpty(t, st.LastError)
		require.Equal(t, StateStopped, st.State)
		require.NotContains(t, st.URL+st.LastError, "hunter2")
		require.NotContains(t, st.URL+st.LastError, "admin")
	}
	out := logs.String()
	require.NotContains(t, out, "hunter2")
	require.NotContains(t, out, "panic")
	require.Contains(t, out, "rtsp source failed")
	require.Nil(t, hub.Get(cfgs[0].Key), "nothing was published")
	require.NotNil(t, hub.Get(stream.Key{Vhost: "__defaultVhost__", App: "live", Name: "other"}), "other streams unaffected")
}

// testPublisher writes a synthetic H.264 + G.711 stream into a hub until
// stopped.
func testPublisher(t *testing.T, hub *stream.Hub, key stream.Key) {
	t.Helper()
	pub, err := hub.Publish(key, stream.ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	cfg, err := avcConfig(testSPS, testPPS)
	require.NoError(t, err)
	video := &media.Track{Kind: media.KindVideo, Codec: media.CodecH264, Config: cfg}
	audio := &media.Track{Kind: media.KindAudio, Codec: media.CodecG711A, SampleRate: 8000, Channels: 1}
	idr, slice := avcc(t, testIDR), avcc(t, testSlice[0])
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer pub.Close()
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			ts := time.Duration(i) * 40 * time.Millisecond
			data := slice
			if i%25 == 0 {
				data = idr
			}
			pub.WritePacket(media.Packet{Track: video, PTS: ts, DTS: ts, Key: i%25 == 0, Data: data})
			pub.WritePacket(media.Packet{Track: audio, PTS: ts, DTS: ts, Key: true, Data: bytes.Repeat([]byte{0xd5}, 320)})
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}

// An on-demand source pulls only while someone reads: a waiting player
// starts it, and it stops once the player left.
func TestOnDemandSourceThroughServer(t *testing.T) {
	hubA := stream.NewHub(stream.DefaultOptions(), nil)
	defer hubA.Close()
	keyA := stream.Key{Vhost: "__defaultVhost__", App: "live", Name: "cam1"}
	testPublisher(t, hubA, keyA)

	var logs logBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := NewServer(ServerConfig{Addr: "127.0.0.1:0", IdleClose: 300 * time.Millisecond}, hubA, log)
	require.NoError(t, srv.Listen())
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	defer func() { cancel(); require.NoError(t, <-served) }()

	hubB := stream.NewHub(stream.DefaultOptions(), nil)
	defer hubB.Close()
	keyB := stream.Key{Vhost: "__defaultVhost__", App: "cams", Name: "one"}
	m := NewSources([]SourceConfig{{URL: "rtsp://" + srv.Addr().String() + "/live/cam1", Key: keyB, Transport: "tcp", OnDemand: true}},
		hubB, fastOptions(), log)
	sctx, scancel := context.WithCancel(context.Background())
	m.Start(sctx)
	defer func() { scancel(); m.Wait() }()

	time.Sleep(200 * time.Millisecond)
	require.Equal(t, StateIdle, m.Stats()[0].State, "nobody reads: no pull")
	require.Nil(t, hubB.Get(keyB))

	r, err := hubB.Subscribe(context.Background(), keyB, stream.ClientInfo{Protocol: "rtmp"}, 10*time.Second)
	require.NoError(t, err)
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	var kinds = map[media.Kind]bool{}
	var prev = map[media.Kind]time.Duration{}
	for len(kinds) < 2 {
		p, err := r.Read(rctx)
		require.NoError(t, err)
		if kinds[p.Track.Kind] {
			require.GreaterOrEqual(t, p.DTS, prev[p.Track.Kind], "monotonic")
		}
		kinds[p.Track.Kind], prev[p.Track.Kind] = true, p.DTS
		if p.Track.Kind == media.KindVideo {
			require.Equal(t, media.CodecH264, p.Track.Codec)
			require.NotEmpty(t, p.Track.Config)
		} else {
			require.Equal(t, media.CodecG711A, p.Track.Codec)
		}
	}
	st := m.Stats()[0]
	require.Equal(t, StatePlaying, st.State)
	require.Positive(t, st.Bytes)
	r.Close()
	require.Eventually(t, func() bool { return m.Stats()[0].State == StateIdle }, 10*time.Second, 20*time.Millisecond)
	require.Nil(t, hubB.Get(keyB), "unpublished once nobody reads")
	require.Contains(t, logs.String(), "rtsp source stopped")
	require.Zero(t, m.Stats()[0].Reconnects, "a stop for want of readers is no failure")
}
