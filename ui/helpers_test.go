package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/forward"
	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/internal/avstat"
)

const testPassword = "correct-horse-battery"

var (
	h264Track  = &media.Track{Kind: media.KindVideo, Codec: media.CodecH264, Config: []byte{1, 2, 3}, Width: 320, Height: 240}
	speexTrack = &media.Track{Kind: media.KindAudio, Codec: media.CodecSpeex, SampleRate: 16000, Channels: 1, SampleBits: 16}
	aacTrack   = &media.Track{Kind: media.KindAudio, Codec: media.CodecAAC, SampleRate: 44100, Channels: 1, SampleBits: 16}
)

// fixture is a UI on an in-process hub, served by httptest, with
// transcode and forward stats the test sets.
type fixture struct {
	t   *testing.T
	hub *stream.Hub
	ui  *UI
	srv *httptest.Server

	mu    sync.Mutex
	trans []avstat.Transcode
	fwds  []forward.Stats
	hls   []HLSStats
}

func newFixture(t *testing.T, edit ...func(*Deps, *Options)) *fixture {
	t.Helper()
	f := &fixture{t: t, hub: stream.NewHub(stream.DefaultOptions(), nil)}
	t.Cleanup(f.hub.Close)
	deps := Deps{
		Hub: f.hub,
		Transcodes: func() []avstat.Transcode {
			f.mu.Lock()
			defer f.mu.Unlock()
			return append([]avstat.Transcode(nil), f.trans...)
		},
		Forwards: func() []forward.Stats {
			f.mu.Lock()
			defer f.mu.Unlock()
			return append([]forward.Stats(nil), f.fwds...)
		},
		HW: func() []avstat.Encoder {
			return []avstat.Encoder{
				{Backend: "nvenc", Encoder: "h264_nvenc", Device: "cuda", Reason: "libcuda.so.1 not found"},
				{Backend: "software", Encoder: "libx264", Device: "cpu", Usable: true},
			}
		},
		CHeap: func() avstat.CHeap {
			return avstat.CHeap{Arena: 40 << 20, Mmap: 2 << 20, InUse: 30 << 20, Free: 12 << 20, Chunks: 345}
		},
		HLSURL: func(k stream.Key) string {
			if k.Vhost != "transcode" {
				return ""
			}
			return "/" + k.App + "/" + k.Name + ".m3u8"
		},
	}
	opts := Options{Version: "v1.2.3-test", AdminPassword: testPassword, DataDir: t.TempDir(), Notice: io.Discard, Tick: 200 * time.Millisecond}
	for _, e := range edit {
		e(&deps, &opts)
	}
	u, err := New(deps, opts, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	f.ui = u
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); u.Run(ctx) }()
	f.srv = httptest.NewServer(u.Handler())
	t.Cleanup(func() {
		cancel()
		<-done
		f.srv.CloseClientConnections()
		f.srv.Close()
	})
	return f
}

func (f *fixture) setTranscodes(ts ...avstat.Transcode) {
	f.mu.Lock()
	f.trans = ts
	f.mu.Unlock()
}

func (f *fixture) setForwards(fs ...forward.Stats) {
	f.mu.Lock()
	f.fwds = fs
	f.mu.Unlock()
}

// request sends method path with the admin's Basic credentials when auth.
func (f *fixture) request(method, path string, auth bool, body []byte, hdr ...string) (*http.Response, []byte) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, bytes.NewReader(body))
	require.NoError(f.t, err)
	if auth {
		req.SetBasicAuth(AdminUser, testPassword)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	client := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	res, err := client.Do(req)
	require.NoError(f.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(f.t, err)
	return res, b
}

func (f *fixture) get(path string) []byte {
	f.t.Helper()
	res, b := f.request(http.MethodGet, path, true, nil)
	require.Equal(f.t, http.StatusOK, res.StatusCode, "%s", b)
	return b
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(b, &v), "%s", b)
	return v
}

// livePub publishes key and feeds it one second of H.264 + audio.
type livePub struct {
	pub    *stream.Publisher
	kicked chan struct{}
}

func (f *fixture) publish(key stream.Key, info stream.ClientInfo, audio *media.Track) *livePub {
	f.t.Helper()
	lp := &livePub{kicked: make(chan struct{})}
	var once sync.Once
	if info.Kick == nil && info.Protocol != "transcode" {
		info.Kick = func() { once.Do(func() { close(lp.kicked) }) }
	}
	pub, err := f.hub.Publish(key, info)
	require.NoError(f.t, err)
	lp.pub = pub
	feed(pub, audio, 25)
	return lp
}

// feed writes n video frames (the first a keyframe) with audio.
func feed(pub *stream.Publisher, audio *media.Track, n int) {
	for i := range n {
		d := time.Duration(i) * 40 * time.Millisecond
		pub.WritePacket(media.Packet{Track: h264Track, DTS: d, PTS: d, Key: i == 0, Data: make([]byte, 1000)})
		if audio != nil {
			pub.WritePacket(media.Packet{Track: audio, DTS: d, PTS: d, Key: true, Data: make([]byte, 100)})
		}
	}
}
