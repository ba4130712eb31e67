package ui

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/forward"
	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/transcode"
)

// scaleFixture publishes n encoder streams the way the default config
// runs them: each transcoded into vhost "transcode" (so 2n streams in the
// hub), each output with a player and two forwards. A feeder writes
// 25 fps of video and audio to all of them until the test ends.
func scaleFixture(tb testing.TB, n int) (*UI, *stream.Hub) {
	tb.Helper()
	hub := stream.NewHub(stream.DefaultOptions(), nil)
	var trans []transcode.Stats
	var fwds []forward.Stats
	var pubs []*stream.Publisher
	ctx, cancel := context.WithCancel(context.Background())
	var readers sync.WaitGroup
	drain := func(r *stream.Reader) {
		readers.Add(1)
		go func() {
			defer readers.Done()
			var batch []media.Packet
			for {
				var err error
				if batch, err = r.ReadBatch(ctx, batch[:0]); err != nil {
					return
				}
			}
		}()
	}
	for i := range n {
		in := stream.Key{Vhost: "__defaultVhost__", App: "live", Name: fmt.Sprintf("class%03d", i)}
		out := stream.Key{Vhost: "transcode", App: "live", Name: in.Name}
		p, err := hub.Publish(in, stream.ClientInfo{Protocol: "rtmp", Remote: fmt.Sprintf("10.0.%d.%d:50000", i/250, i%250+1), Kick: func() {}})
		require.NoError(tb, err)
		q, err := hub.Publish(out, stream.ClientInfo{Protocol: "transcode", Remote: in.String()})
		require.NoError(tb, err)
		pubs = append(pubs, p, q)
		r, err := hub.Subscribe(ctx, in, stream.ClientInfo{Protocol: "transcode", Remote: out.String()}, 0)
		require.NoError(tb, err)
		drain(r)
		r, err = hub.Subscribe(ctx, out, stream.ClientInfo{Protocol: "rtmp", Remote: "10.9.0.1:40000"}, 0)
		require.NoError(tb, err)
		drain(r)
		trans = append(trans, transcode.Stats{
			Input: in, Output: out, State: transcode.StateRunning, InputVideo: "h264 1280x720", InputAudio: "speex 16000 Hz mono",
			OutputVideo: "h264 1280x720 (copy)", OutputAudio: "aac 44100 Hz mono 64k", Encoder: "copy", Speed: 1, Since: time.Now(),
		})
		for _, d := range []string{"192.168.1.6:1935", "192.168.1.7:1935"} {
			fwds = append(fwds, forward.Stats{Stream: out.String(), Destination: "rtmp://" + d + "/live/" + out.Name,
				State: forward.StateForwarding, Bytes: 1 << 20, Bitrate: 1_500_000, Since: time.Now()})
		}
	}
	video := &media.Track{Kind: media.KindVideo, Codec: media.CodecH264, Config: []byte{1}, Width: 1280, Height: 720}
	var feeder sync.WaitGroup
	feeder.Add(1)
	go func() {
		defer feeder.Done()
		t := time.NewTicker(40 * time.Millisecond)
		defer t.Stop()
		payload := make([]byte, 4000)
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			d := time.Duration(i) * 40 * time.Millisecond
			for j, p := range pubs {
				a := speexTrack
				if j%2 == 1 {
					a = aacTrack
				}
				p.WritePacket(media.Packet{Track: video, DTS: d, PTS: d, Key: i%50 == 0, Data: payload})
				p.WritePacket(media.Packet{Track: a, DTS: d, PTS: d, Key: true, Data: payload[:100]})
			}
		}
	}()
	u, err := New(Deps{
		Hub:        hub,
		Transcodes: func() []transcode.Stats { return slices.Clone(trans) },
		Forwards:   func() []forward.Stats { return slices.Clone(fwds) },
		HLSURL:     func(k stream.Key) string { return "/" + k.App + "/" + k.Name + ".m3u8" },
	}, Options{AdminPassword: testPassword, DataDir: tb.TempDir(), Notice: io.Discard}, nil)
	require.NoError(tb, err)
	tb.Cleanup(func() {
		cancel()
		feeder.Wait()
		hub.Close()
		readers.Wait()
	})
	hub.Sample(time.Now())
	time.Sleep(200 * time.Millisecond)
	hub.Sample(time.Now())
	u.sample(time.Now())
	return u, hub
}

// timeGet returns how long h takes to answer GET path, n times.
func timeGet(tb testing.TB, h http.Handler, path string, n int) []time.Duration {
	tb.Helper()
	var out []time.Duration
	for range n {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.SetBasicAuth(AdminUser, testPassword)
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, req)
		out = append(out, time.Since(start))
		require.Equal(tb, http.StatusOK, rec.Code)
	}
	slices.Sort(out)
	return out
}

// TestStreams200 measures GET /api/v1/streams with 200 encoder streams
// live (400 in the hub with their transcoded twins) and checks the
// target: under 200 ms. Run without -race for the product's figure
// (go test -run Streams200 -v ./ui/); -race makes it several times slower.
func TestStreams200(t *testing.T) {
	u, _ := scaleFixture(t, 200)
	h := u.Handler()
	times := timeGet(t, h, "/api/v1/streams", 15)
	req := httptest.NewRequest(http.MethodGet, "/api/v1/streams", nil)
	req.SetBasicAuth(AdminUser, testPassword)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body := decode[streamsBody](t, rec.Body.Bytes())
	require.Len(t, body.Streams, 400)
	require.Len(t, body.Streams[0].Fwd, 0)
	require.Len(t, body.Streams[1].Fwd, 2)
	require.Equal(t, "aac", body.Streams[0].Output.Audio.Codec)
	metrics := timeGet(t, h, "/metrics", 5)
	snap := time.Now()
	msg := u.snapshotJSON()
	snapTook := time.Since(snap)
	t.Logf("200 publishes (400 hub streams, 400 forwards): GET /api/v1/streams %d bytes: median %s, max %s; /metrics median %s; SSE snapshot %d bytes in %s",
		rec.Body.Len(), times[len(times)/2], times[len(times)-1], metrics[len(metrics)/2], len(msg), snapTook)
	require.Less(t, times[len(times)/2], 200*time.Millisecond*raceSlowdown, "target: 200 ms")
}

func BenchmarkStreams200(b *testing.B) {
	u, _ := scaleFixture(b, 200)
	h := u.Handler()
	b.ResetTimer()
	for range b.N {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/streams", nil)
		req.SetBasicAuth(AdminUser, testPassword)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
	}
}
