package ui

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/forward"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/internal/avstat"
)

var (
	inKey  = stream.Key{Vhost: "__defaultVhost__", App: "live", Name: "cam1"}
	outKey = stream.Key{Vhost: "transcode", App: "live", Name: "cam1"}
)

type streamsBody struct {
	Code    int          `json:"code"`
	Server  string       `json:"server"`
	Streams []StreamView `json:"streams"`
}

type streamBody struct {
	Code   int        `json:"code"`
	Stream StreamView `json:"stream"`
	Error  string     `json:"error"`
}

// classroom publishes the default chain: cam1 (H.264 + Speex, from an
// encoder) transcoded into transcode/live/cam1 (H.264 + AAC) which a
// player watches and which forwards to one slave, in backoff.
func classroom(t *testing.T, f *fixture) (in, out *livePub) {
	in = f.publish(inKey, stream.ClientInfo{Protocol: "rtmp", Remote: "10.1.2.3:50000", Params: "key=s3cr3t-leak&class=5b"}, speexTrack)
	out = f.publish(outKey, stream.ClientInfo{Protocol: "transcode", Remote: inKey.String()}, aacTrack)
	_, err := f.hub.Subscribe(context.Background(), inKey, stream.ClientInfo{Protocol: "transcode", Remote: outKey.String()}, 0)
	require.NoError(t, err)
	player, err := f.hub.Subscribe(context.Background(), outKey, stream.ClientInfo{Protocol: "rtmp", Remote: "10.9.9.9:40000"}, 0)
	require.NoError(t, err)
	_, err = f.hub.Subscribe(context.Background(), outKey, stream.ClientInfo{Protocol: "forward", Remote: "rtmp://192.168.1.6:1935/live/cam1"}, 0)
	require.NoError(t, err)
	f.setTranscodes(avstat.Transcode{
		Input: inKey, Output: outKey, State: avstat.StateRunning,
		InputVideo: "h264 320x240", InputAudio: "speex 16000 Hz mono",
		OutputVideo: "h264 320x240 (copy)", OutputAudio: "aac 44100 Hz mono 64k",
		Encoder: "copy", Speed: 1.02, FramesDecoded: 500, FramesEncoded: 480, Errors: 2,
		LastError: "decode: bad packet from rtmp://u:hunter2@10.1.2.3/live?token=t0ken-leak", Since: time.Now(),
	})
	f.setForwards(forward.Stats{
		Stream: outKey.String(), Destination: "rtmp://192.168.1.6:1935/live/cam1?key=fwd-leak", State: forward.StateBackoff,
		LastError: "dial tcp 192.168.1.6:1935: connect: connection refused", Reconnects: 3, Bytes: 12345, Member: "m1", Moves: 2,
		Bitrate: 0, Dropped: 7, Since: time.Now().Add(-2 * time.Second),
	})
	// Two samples a second apart give rates; feed between them.
	now := time.Now()
	f.hub.Sample(now)
	feed(in.pub, speexTrack, 25)
	feed(out.pub, aacTrack, 25)
	// The player takes 10 packets (bytes count as sent when read).
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for range 10 {
		_, err := player.Read(ctx)
		require.NoError(t, err)
	}
	f.hub.Sample(now.Add(time.Second))
	f.ui.sample(now.Add(time.Second))
	return in, out
}

func TestAuthRequired(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{"/api/v1/streams", "/api/v1/streams/1", "/api/v1/versions", "/api/v1/summaries",
		"/api/v1/clients", "/api/v1/forwards", "/api/v1/hw", "/api/v1/events", "/api/v1/nope"} {
		res, b := f.request(http.MethodGet, path, false, nil)
		require.Equal(t, http.StatusUnauthorized, res.StatusCode, path)
		require.Equal(t, "application/json; charset=utf-8", res.Header.Get("Content-Type"), path)
		require.Contains(t, res.Header.Get("WWW-Authenticate"), `Basic realm="Podium"`, path)
		require.Equal(t, 401, decode[streamBody](t, b).Code, path)
	}
	// Anonymous DELETE kicks nobody.
	res, _ := f.request(http.MethodDelete, "/api/v1/streams/1", false, nil)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)

	res, b := f.request(http.MethodGet, "/metrics", false, nil)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	require.NotContains(t, string(b), "podium_")

	// The dashboard sends anonymous users to the login page, which is public.
	res, _ = f.request(http.MethodGet, "/", false, nil)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/login", res.Header.Get("Location"))
	res, b = f.request(http.MethodGet, "/login", false, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, string(b), `type="password"`)
	res, _ = f.request(http.MethodGet, "/assets/app.css", false, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)

	// The dashboard's own requests get no browser dialog.
	res, _ = f.request(http.MethodGet, "/api/v1/streams", false, nil, uiHeader, "1")
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	require.Empty(t, res.Header.Get("WWW-Authenticate"))

	// Another site's page cannot kick, even with the admin's session.
	res, b = f.request(http.MethodDelete, "/api/v1/streams/1", true, nil, "Origin", "http://evil.example")
	require.Equal(t, http.StatusForbidden, res.StatusCode, "%s", b)

	// Wrong user or password: 401; right: 200.
	req := func(user, pass, path string) int {
		r, err := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
		require.NoError(t, err)
		r.SetBasicAuth(user, pass)
		resp, err := http.DefaultClient.Do(r)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusUnauthorized, req(AdminUser, "wrong", "/api/v1/streams"))
	require.Equal(t, http.StatusUnauthorized, req("root", testPassword, "/api/v1/streams"))
	require.Equal(t, http.StatusOK, req(AdminUser, testPassword, "/api/v1/streams"))
	require.Equal(t, http.StatusOK, req(AdminUser, testPassword, "/metrics"))
	require.Equal(t, uint64(2), f.ui.auth.failed.Load())
}

func TestStreamsShowCodecsTranscodeForwards(t *testing.T) {
	f := newFixture(t)
	classroom(t, f)

	b := f.get("/api/v1/streams")
	for _, leak := range []string{"s3cr3t-leak", "hunter2", "t0ken-leak", "fwd-leak", testPassword} {
		require.NotContains(t, string(b), leak, "a secret reached the API")
	}
	body := decode[streamsBody](t, b)
	require.Equal(t, 0, body.Code)
	require.Equal(t, f.ui.server, body.Server)
	require.Len(t, body.Streams, 2)

	in := body.Streams[0]
	require.Equal(t, "cam1", in.Name)
	require.Equal(t, "__defaultVhost__", in.Vhost)
	require.Equal(t, "live", in.App)
	require.Equal(t, "/live/cam1", in.URL)
	require.Equal(t, "10.1.2.3", in.Publish.IP)
	require.Equal(t, "rtmp", in.Publish.Protocol)
	require.True(t, in.Publish.Kickable)
	require.Equal(t, "key=xxx&class=5b", in.Publish.Params)
	require.Equal(t, &VideoView{Codec: "h264", Width: 320, Height: 240}, in.Video)
	require.Equal(t, &AudioView{Codec: "speex", SampleRate: 16000, Channels: 1}, in.Audio)
	require.NotNil(t, in.Output)
	require.Equal(t, outKey.String(), in.Output.Stream)
	require.Equal(t, "aac", in.Output.Audio.Codec)
	require.Equal(t, 44100, in.Output.Audio.SampleRate)
	require.Equal(t, "h264", in.Output.Video.Codec)
	require.NotNil(t, in.Trans)
	require.Equal(t, "copy", in.Trans.Encoder)
	require.False(t, in.Trans.Hardware)
	require.Equal(t, 1.02, in.Trans.Speed)
	require.Equal(t, uint64(2), in.Trans.Errors)
	require.Equal(t, "running", in.Trans.State)
	require.Contains(t, in.Trans.LastError, "rtmp://xxx@10.1.2.3/live?token=xxx")
	require.Equal(t, 0, in.Viewers, "the transcoder is not a viewer")
	require.Equal(t, 1, in.Clients)
	require.Empty(t, in.Fwd)
	require.Nil(t, in.HLS, "the input vhost has no HLS")
	// 25 frames of 1000 B + 25 of 100 B in the second between samples.
	require.InDelta(t, 25*1100*8, in.Bitrate, 1)
	require.InDelta(t, 25, in.FPS, 0.01)
	require.Equal(t, uint64(2*25*1100), in.RecvBytes)
	require.InDelta(t, 220, in.Kbps.Recv, 0.01)
	require.Less(t, in.Uptime, 10.0)
	require.InDelta(t, time.Now().UnixMilli(), in.LiveMs, 10_000)

	out := body.Streams[1]
	require.Equal(t, "transcode", out.Vhost)
	require.Equal(t, inKey.String(), out.Source)
	require.False(t, out.Publish.Kickable)
	require.Equal(t, "aac", out.Audio.Codec)
	require.Equal(t, 1, out.Viewers)
	require.Equal(t, 2, out.Clients)
	require.Len(t, out.Fwd, 1)
	fw := out.Fwd[0]
	require.Equal(t, "backoff", fw.State)
	require.Equal(t, uint64(3), fw.Reconnects)
	require.Equal(t, uint64(2), fw.Moves)
	require.Equal(t, "m1", fw.Member)
	require.Equal(t, uint64(7), fw.Dropped)
	require.Equal(t, "rtmp://192.168.1.6:1935/live/cam1?key=xxx", fw.Destination)
	require.Contains(t, fw.LastError, "connection refused")
	require.InDelta(t, 2, fw.For, 1)
	require.NotNil(t, out.HLS)
	require.Equal(t, "/live/cam1.m3u8", out.HLS.URL)
	// The player read 5 video and 5 audio packets.
	require.Equal(t, uint64(5*1000+5*100), out.SendBytes)
	require.Equal(t, uint64(5500), out.Readers[0].Bytes)

	// One stream by id: the same view.
	one := decode[streamBody](t, f.get("/api/v1/streams/"+in.ID))
	require.Equal(t, 0, one.Code)
	require.Equal(t, in.Path, one.Stream.Path)
	require.Equal(t, "aac", one.Stream.Output.Audio.Codec)

	// SRS paging, and SRS's trailing slash.
	paged := decode[streamsBody](t, f.get("/api/v1/streams/?start=1&count=10"))
	require.Len(t, paged.Streams, 1)
	require.Equal(t, "transcode", paged.Streams[0].Vhost)
	res, _ := f.request(http.MethodGet, "/api/v1/streams?count=-1", true, nil)
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
}

func TestUnknownStreamIDs(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		method, id string
		status     int
		code       int
	}{
		{http.MethodGet, "999", http.StatusNotFound, codeStreamNotFound},
		{http.MethodDelete, "999", http.StatusNotFound, codeStreamNotFound},
		{http.MethodGet, "abc", http.StatusBadRequest, codeBadRequest},
		{http.MethodDelete, "-1", http.StatusBadRequest, codeBadRequest},
		{http.MethodGet, strings.Repeat("9", 400), http.StatusBadRequest, codeBadRequest},
		{http.MethodGet, "18446744073709551616", http.StatusBadRequest, codeBadRequest},
	} {
		res, b := f.request(c.method, "/api/v1/streams/"+c.id, true, nil)
		require.Equal(t, c.status, res.StatusCode, "%s %s: %s", c.method, c.id, b)
		body := decode[streamBody](t, b)
		require.Equal(t, c.code, body.Code)
		require.NotEmpty(t, body.Error)
	}
	res, b := f.request(http.MethodPost, "/api/v1/streams/1", true, nil)
	require.Equal(t, http.StatusMethodNotAllowed, res.StatusCode, "%s", b)
	res, _ = f.request(http.MethodGet, "/api/v2/streams", true, nil)
	require.Equal(t, http.StatusNotFound, res.StatusCode)
}

func TestKick(t *testing.T) {
	f := newFixture(t)
	in, _ := classroom(t, f)
	body := decode[streamsBody](t, f.get("/api/v1/streams"))
	inID, outID := body.Streams[0].ID, body.Streams[1].ID

	// The transcode's output has no outside publisher to kick.
	res, b := f.request(http.MethodDelete, "/api/v1/streams/"+outID, true, nil)
	require.Equal(t, http.StatusConflict, res.StatusCode, "%s", b)

	res, b = f.request(http.MethodDelete, "/api/v1/streams/"+inID, true, nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", b)
	require.Equal(t, 0, decode[streamBody](t, b).Code)
	select {
	case <-in.kicked:
	case <-time.After(time.Second):
		t.Fatal("the publisher's Kick was not called")
	}
	in.pub.Close() // what the RTMP connection does when kicked
	res, _ = f.request(http.MethodGet, "/api/v1/streams/"+inID, true, nil)
	require.Equal(t, http.StatusNotFound, res.StatusCode)
}

func TestClientsForwardsHWVersionsSummaries(t *testing.T) {
	f := newFixture(t)
	classroom(t, f)

	clients := decode[struct {
		Code    int          `json:"code"`
		Clients []ClientView `json:"clients"`
	}](t, f.get("/api/v1/clients"))
	require.Len(t, clients.Clients, 5) // 2 publishers, transcode, player, forward
	types := map[string]int{}
	for _, c := range clients.Clients {
		types[c.Type]++
	}
	require.Equal(t, map[string]int{"rtmp-publish": 1, "transcode-publish": 1, "transcode": 1, "rtmp-play": 1, "forward": 1}, types)
	require.Equal(t, "10.1.2.3", clients.Clients[0].IP)
	require.True(t, clients.Clients[0].Publish)

	fw := decode[struct {
		Forwards []FwdView `json:"forwards"`
	}](t, f.get("/api/v1/forwards"))
	require.Len(t, fw.Forwards, 1)
	require.Equal(t, "backoff", fw.Forwards[0].State)

	hw := decode[struct {
		HW    []HWView `json:"hw"`
		Table string   `json:"table"`
	}](t, f.get("/api/v1/hw"))
	require.Len(t, hw.HW, 2)
	require.False(t, hw.HW[0].Usable)
	require.Equal(t, "libcuda.so.1 not found", hw.HW[0].Reason)
	require.True(t, hw.HW[1].Usable)
	require.Contains(t, hw.Table, "BACKEND")
	require.Contains(t, hw.Table, "libx264")

	v := decode[struct {
		Code int `json:"code"`
		Data struct {
			Major, Minor, Revision int
			Version                string
		} `json:"data"`
	}](t, f.get("/api/v1/versions"))
	require.Equal(t, 0, v.Code)
	require.Equal(t, 1, v.Data.Major)
	require.Equal(t, 2, v.Data.Minor)
	require.Equal(t, 3, v.Data.Revision)
	require.Equal(t, "v1.2.3-test", v.Data.Version)

	s := decode[struct {
		Data SummaryView `json:"data"`
	}](t, f.get("/api/v1/summaries"))
	require.True(t, s.Data.OK)
	require.Equal(t, 2, s.Data.Podium.Streams)
	require.Equal(t, 1, s.Data.Podium.Publishers)
	require.Equal(t, 1, s.Data.Podium.Viewers)
	require.Equal(t, map[string]int{"backoff": 1}, s.Data.Podium.Forwards)
	require.Equal(t, map[string]int{"running": 1}, s.Data.Podium.Transcodes)
	require.Equal(t, uint64(4*25*1100), s.Data.Podium.RecvBytes)
	require.Positive(t, s.Data.System.CPUs)
	require.Positive(t, s.Data.System.MemTotalKB)
	require.Positive(t, s.Data.Self.MemKbyte)
	require.NotEmpty(t, s.Data.System.Interfaces)
}

func TestMetrics(t *testing.T) {
	f := newFixture(t)
	classroom(t, f)
	// A name that needs escaping in a label.
	f.publish(stream.Key{Vhost: "__defaultVhost__", App: "live", Name: `we"ird\name`}, stream.ClientInfo{Protocol: "rtmp", Remote: "10.0.0.1:1"}, nil)
	f.ui.sample(time.Now())

	res, b := f.request(http.MethodGet, "/metrics", true, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "text/plain; version=0.0.4; charset=utf-8", res.Header.Get("Content-Type"))
	samples := parseExposition(t, string(b))

	require.Equal(t, 2.0, samples[`podium_streams{vhost="__defaultVhost__"}`])
	require.Equal(t, 1.0, samples[`podium_streams{vhost="transcode"}`])
	require.Equal(t, float64(4*25*1100+25*1000), samples[`podium_bytes_in_total`])
	require.Equal(t, 5500.0, samples[`podium_bytes_out_total`])
	fwd := `stream="transcode/live/cam1",destination="rtmp://192.168.1.6:1935/live/cam1?key=xxx"`
	require.Equal(t, 3.0, samples[`podium_forward_reconnects_total{`+fwd+`}`])
	require.Equal(t, 2.0, samples[`podium_forward_moves_total{`+fwd+`}`])
	require.Equal(t, 1.0, samples[`podium_forward_state{`+fwd+`,state="backoff"}`])
	require.Equal(t, 0.0, samples[`podium_forward_state{`+fwd+`,state="forwarding"}`])
	require.Equal(t, 1.0, samples[`podium_forwards{state="backoff"}`])
	require.Equal(t, 7.0, samples[`podium_forward_dropped_packets_total{`+fwd+`}`])
	tr := `stream="__defaultVhost__/live/cam1",output="transcode/live/cam1",encoder="copy"`
	require.Equal(t, 1.02, samples[`podium_transcode_speed{`+tr+`}`])
	require.Equal(t, 2.0, samples[`podium_transcode_errors_total{`+tr+`}`])
	require.Equal(t, 1.0, samples[`podium_transcodes{state="running"}`])
	require.Equal(t, 220000.0, samples[`podium_stream_bitrate_bps{vhost="__defaultVhost__",app="live",stream="cam1"}`])
	require.Equal(t, 1.0, samples[`podium_stream_viewers{vhost="transcode",app="live",stream="cam1"}`])
	require.Contains(t, samples, `podium_stream_readers{vhost="__defaultVhost__",app="live",stream="we\"ird\\name"}`)
	require.Equal(t, 0.0, samples[`podium_hw_encoder_usable{backend="nvenc",encoder="h264_nvenc"}`])
	require.Equal(t, 1.0, samples[`podium_hw_encoder_usable{backend="software",encoder="libx264"}`])
	require.Positive(t, samples[`podium_host_memory_total_bytes`])
	require.Equal(t, float64(30<<20), samples[`podium_c_heap_bytes{state="in_use"}`])
	require.Equal(t, float64(12<<20), samples[`podium_c_heap_bytes{state="free"}`])
	require.Equal(t, float64(40<<20), samples[`podium_c_heap_bytes{state="arena"}`])
	require.Equal(t, float64(2<<20), samples[`podium_c_heap_bytes{state="mmap"}`])
	require.Equal(t, 345.0, samples[`podium_c_heap_free_chunks`])
	require.Positive(t, samples[`podium_process_resident_memory_bytes`])
	// The client's standard collectors, under their standard names.
	require.Positive(t, samples[`go_goroutines`])
	require.Positive(t, samples[`process_open_fds`])
	require.Positive(t, samples[`process_resident_memory_bytes`])
	require.Contains(t, string(b), "# TYPE go_goroutines gauge\n")
	require.Contains(t, string(b), "# TYPE process_open_fds gauge\n")
	require.NotContains(t, string(b), "fwd-leak")
	require.NotContains(t, string(b), "s3cr3t")
}

// parseExposition checks the text format line by line (HELP and TYPE
// before a family's samples, valid names, numbers) and returns samples
// by "name{labels}".
func parseExposition(t *testing.T, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	typed := map[string]string{}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "# HELP "):
			continue
		case strings.HasPrefix(line, "# TYPE "):
			f := strings.Fields(line)
			require.Len(t, f, 4, "line %d: %s", i, line)
			require.Contains(t, []string{"counter", "gauge", "summary", "histogram", "untyped"}, f[3])
			_, dup := typed[f[2]]
			require.False(t, dup, "family %s typed twice", f[2])
			typed[f[2]] = f[3]
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		require.Positive(t, sp, "line %d: %q", i, line)
		series, val := line[:sp], line[sp+1:]
		name := series
		if j := strings.IndexByte(series, '{'); j >= 0 {
			name = series[:j]
			require.True(t, strings.HasSuffix(series, "}"), "line %d: %q", i, line)
		}
		require.Regexp(t, `^(podium|go|process)_[a-z0-9_]+$`, name)
		if _, ok := typed[name]; !ok { // a summary's or histogram's _sum, _count, _bucket
			for _, suf := range []string{"_sum", "_count", "_bucket"} {
				if base := strings.TrimSuffix(name, suf); base != name && (typed[base] == "summary" || typed[base] == "histogram") {
					name = base
				}
			}
		}
		require.Contains(t, typed, name, "sample before its TYPE: %q", line)
		if typed[name] == "counter" {
			require.True(t, strings.HasSuffix(name, "_total"), "counter %s must end in _total", name)
		}
		v, err := strconv.ParseFloat(val, 64)
		require.NoError(t, err, "line %d: %q", i, line)
		_, dup := out[series]
		require.False(t, dup, "duplicate series %s", series)
		out[series] = v
	}
	return out
}

func TestDebugProfiles(t *testing.T) {
	f := newFixture(t)
	res, _ := f.request(http.MethodGet, "/debug/pprof/heap", false, nil)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode, "profiles need the admin login")
	res, b := f.request(http.MethodGet, "/debug/pprof/heap?gc=1", true, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.True(t, len(b) > 2 && b[0] == 0x1f && b[1] == 0x8b, "a gzipped pprof profile")
	res, b = f.request(http.MethodGet, "/debug/pprof/goroutine?debug=1", true, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, string(b), "goroutine profile: total")
	res, _ = f.request(http.MethodGet, "/debug/pprof/cmdline", true, nil)
	require.Equal(t, http.StatusNotFound, res.StatusCode)
}
