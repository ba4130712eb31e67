package httpflv

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/podiumlive/podium/flv"
	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/ingest/stream"
)

// tag is one FLV tag read back from a response.
type tag struct {
	typ  byte
	ts   uint32
	body []byte
}

// readTags reads the FLV header and n tags from r.
func readTags(t *testing.T, r io.Reader, n int) (flags byte, tags []tag) {
	t.Helper()
	hdr := make([]byte, 13)
	_, err := io.ReadFull(r, hdr)
	require.NoError(t, err)
	require.Equal(t, "FLV", string(hdr[:3]))
	for range n {
		h := make([]byte, 11)
		_, err := io.ReadFull(r, h)
		require.NoError(t, err)
		size := int(h[1])<<16 | int(h[2])<<8 | int(h[3])
		body := make([]byte, size+4)
		_, err = io.ReadFull(r, body)
		require.NoError(t, err)
		require.Equal(t, uint32(11+size), binary.BigEndian.Uint32(body[size:]))
		ts := uint32(h[7])<<24 | uint32(h[4])<<16 | uint32(h[5])<<8 | uint32(h[6])
		tags = append(tags, tag{typ: h[0], ts: ts, body: body[:size]})
	}
	return hdr[4], tags
}

func TestPlay(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	hub := stream.NewHub(stream.DefaultOptions(), nil)
	defer hub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	s := New(ctx, Config{PlayWait: 300 * time.Millisecond}, hub, nil)
	srv := httptest.NewServer(s)
	defer func() { srv.Close(); cancel(); s.Wait() }()

	key := stream.Key{Vhost: "__defaultVhost__", App: "live", Name: "cam1"}
	pub, err := hub.Publish(key, stream.ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	video := &media.Track{Kind: media.KindVideo, Codec: media.CodecH264, Config: []byte{1, 0x42, 0, 0x1e, 0xff, 0xe0, 0, 0}, Width: 320, Height: 240}
	audio := &media.Track{Kind: media.KindAudio, Codec: media.CodecAAC, Config: []byte{0x12, 0x10}, SampleRate: 44100, Channels: 2}
	pub.WritePacket(media.Packet{Track: video, DTS: 1000 * time.Millisecond, PTS: 1040 * time.Millisecond, Key: true, Data: []byte{0, 0, 0, 1, 0x65}})
	pub.WritePacket(media.Packet{Track: audio, DTS: 1010 * time.Millisecond, PTS: 1010 * time.Millisecond, Key: true, Data: []byte{0x21, 0x22}})

	res, err := http.Get(srv.URL + "/live/cam1.flv")
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "video/x-flv", res.Header.Get("Content-Type"))
	require.Equal(t, "*", res.Header.Get("Access-Control-Allow-Origin"))
	require.Len(t, hub.Get(key).Readers(), 1)
	require.Equal(t, Protocol, hub.Get(key).Readers()[0].Info().Protocol)

	flags, tags := readTags(t, res.Body, 5)
	require.Equal(t, byte(5), flags, "audio and video")
	require.Equal(t, byte(flv.TagScript), tags[0].typ)
	m, err := flv.ParseMetadata(tags[0].body)
	require.NoError(t, err, "onMetaData made from the tracks")
	w, _ := m.Get("width")
	require.Equal(t, 320.0, w)
	// Both sequence headers, then the GOP cache from its keyframe.
	vcfg, _ := flv.VideoConfig(video)
	acfg, _ := flv.AudioConfig(audio)
	require.Equal(t, tag{flv.TagVideo, 1000, vcfg}, tags[1])
	require.Equal(t, tag{flv.TagAudio, 1000, acfg}, tags[2])
	require.Equal(t, tag{flv.TagVideo, 1000, []byte{0x17, 1, 0, 0, 40, 0, 0, 0, 1, 0x65}}, tags[3], "keyframe, cts 40 ms")
	require.Equal(t, tag{flv.TagAudio, 1010, []byte{0xAF, 1, 0x21, 0x22}}, tags[4])

	// Live packets follow; the unpublish ends the response.
	pub.WritePacket(media.Packet{Track: video, DTS: 1040 * time.Millisecond, PTS: 1040 * time.Millisecond, Data: []byte{0, 0, 0, 1, 0x41}})
	_, more := readTagsAfter(t, res.Body, 1)
	require.Equal(t, uint32(1040), more[0].ts)
	pub.Close()
	rest, err := io.ReadAll(res.Body)
	require.NoError(t, err, "a clean end of the chunked body")
	require.Empty(t, rest)
}

// readTagsAfter reads n tags (no FLV header) from r.
func readTagsAfter(t *testing.T, r io.Reader, n int) (byte, []tag) {
	t.Helper()
	return readTags(t, io.MultiReader(bytes.NewReader([]byte("FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00")), r), n)
}

func TestRefusals(t *testing.T) {
	hub := stream.NewHub(stream.DefaultOptions(), nil)
	defer hub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	s := New(ctx, Config{PlayWait: 200 * time.Millisecond}, hub, nil)
	srv := httptest.NewServer(s)
	defer func() { srv.Close(); cancel(); s.Wait() }()
	for path, want := range map[string]int{
		"/live/none.flv":              http.StatusNotFound,
		"/live/cam1.flv?vhost=nosuch": http.StatusNotFound,
		"/live/cam1.m3u8":             http.StatusNotFound,
		"/cam1.flv":                   http.StatusNotFound,
		"/a/b/cam1.flv":               http.StatusNotFound,
		"/live/.flv":                  http.StatusNotFound,
	} {
		res, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, want, res.StatusCode, path)
	}
	res, err := http.Post(srv.URL+"/live/cam1.flv", "text/plain", strings.NewReader("x"))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)
}

// A play that names no vhost goes where Unnamed says; one that names it
// does not.
func TestUnnamed(t *testing.T) {
	hub := stream.NewHub(stream.DefaultOptions(), nil)
	defer hub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	s := New(ctx, Config{
		PlayWait: 100 * time.Millisecond,
		Vhost:    func(n string) bool { return n == "__defaultVhost__" || n == "twin" },
		Unnamed:  func(k stream.Key) stream.Key { return stream.Key{Vhost: "twin", App: k.App, Name: k.Name + "_t"} },
	}, hub, nil)
	srv := httptest.NewServer(s)
	defer func() { srv.Close(); cancel(); s.Wait() }()
	audio := &media.Track{Kind: media.KindAudio, Codec: media.CodecAAC, Config: []byte{0x12, 0x10}}
	for _, k := range []stream.Key{{Vhost: "twin", App: "live", Name: "a_t"}, {Vhost: "__defaultVhost__", App: "live", Name: "b"}} {
		pub, err := hub.Publish(k, stream.ClientInfo{})
		require.NoError(t, err)
		defer pub.Close()
		pub.WritePacket(media.Packet{Track: audio, Key: true, Data: []byte{1}})
	}
	for path, want := range map[string]int{
		"/live/a.flv":                        http.StatusOK,
		"/live/a.flv?vhost=twin":             http.StatusNotFound, // named: no mapping
		"/live/b.flv":                        http.StatusNotFound, // mapped to twin/live/b_t
		"/live/b.flv?vhost=__defaultVhost__": http.StatusOK,
	} {
		ctx, stop := context.WithTimeout(context.Background(), 3*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		stop()
		require.Equal(t, want, res.StatusCode, path)
	}
}

// FuzzParsePath: whatever the path, a name that parses is a safe name.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/live/cam1.flv", "/live/../x.flv", "/a/b/c.flv", "/live/.flv", "//x.flv", "/live/cam1.flv/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		app, name, ok := parsePath(p)
		if !ok {
			return
		}
		require.Equal(t, "/"+app+"/"+name+".flv", p)
		require.NotContains(t, app+name, "/")
		require.NotEqual(t, "..", app)
		require.NotEqual(t, "..", name)
	})
}

// A player that stops reading, its writes blocked, is ended at once by a
// kick and by shutdown, not after the write timeout; the publisher never
// waits for it.
func TestStalledPlayerKickAndShutdown(t *testing.T) {
	hub := stream.NewHub(stream.DefaultOptions(), nil)
	defer hub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	s := New(ctx, Config{PlayWait: time.Second, WriteTimeout: time.Minute}, hub, nil)
	srv := httptest.NewServer(s)
	defer srv.Close()

	key := stream.Key{Vhost: "__defaultVhost__", App: "live", Name: "big"}
	pub, err := hub.Publish(key, stream.ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	defer pub.Close()
	video := &media.Track{Kind: media.KindVideo, Codec: media.CodecH264, Config: []byte{1, 0x42, 0, 0x1e, 0xff, 0xe0, 0, 0}}
	audio := &media.Track{Kind: media.KindAudio, Codec: media.CodecAAC, Config: []byte{0x12, 0x10}}
	frame := make([]byte, 1<<20)
	stalled := func() *stream.Reader {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		_, err = io.WriteString(c, "GET /live/big.flv HTTP/1.1\r\nHost: x\r\n\r\n")
		require.NoError(t, err)
		var r *stream.Reader
		require.Eventually(t, func() bool {
			if rs := hub.Get(key).Readers(); len(rs) > 0 {
				r = rs[len(rs)-1]
			}
			return r != nil
		}, 5*time.Second, 10*time.Millisecond)
		// 64 MiB it never reads: far past the socket buffers.
		for i := range 64 {
			start := time.Now()
			ts := time.Duration(i) * 40 * time.Millisecond
			pub.WritePacket(media.Packet{Track: video, DTS: ts, Key: i%8 == 0, Data: frame})
			pub.WritePacket(media.Packet{Track: audio, DTS: ts, Key: true, Data: []byte{1}})
			require.Less(t, time.Since(start), 100*time.Millisecond, "the publisher waited for the player")
		}
		require.Eventually(t, func() bool { return r.Stats().Dropped > 0 }, 5*time.Second, 10*time.Millisecond,
			"the stalled player loses packets")
		time.Sleep(200 * time.Millisecond) // its goroutine is in a blocked write
		return r
	}

	r := stalled()
	start := time.Now()
	r.Info().Kick()
	require.Eventually(t, func() bool { return len(hub.Get(key).Readers()) == 0 }, 3*time.Second, 10*time.Millisecond,
		"a kicked player blocked in a write must go at once")
	t.Logf("kick: gone after %s", time.Since(start).Round(time.Millisecond))

	stalled()
	start = time.Now()
	cancel()
	done := make(chan struct{})
	go func() { s.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("shutdown waited for a stalled player's write")
	}
	t.Logf("shutdown: plays ended after %s", time.Since(start).Round(time.Millisecond))
}
