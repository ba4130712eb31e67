package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// flvURL is http://127.0.0.1:HTTP/ + path.
func flvURL(p *podium, path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d/%s", p.HTTP, path)
}

// flvCapture is what one HTTP-FLV player received.
type flvCapture struct {
	Status  int
	Header  http.Header
	Chunked bool
	File    string // the body, as an .flv file
	Bytes   int64
}

// captureFLV plays url for d (host: the Host header, "" for the URL's)
// and keeps the body in a file.
func captureFLV(t *testing.T, url, host string, d time.Duration) flvCapture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	if host != "" {
		req.Host = host
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	c := flvCapture{Status: res.StatusCode, Header: res.Header,
		File: filepath.Join(t.TempDir(), "play.flv")}
	for _, te := range res.TransferEncoding {
		c.Chunked = c.Chunked || te == "chunked"
	}
	f, err := os.Create(c.File)
	require.NoError(t, err)
	c.Bytes, _ = io.Copy(f, res.Body) // ends with the context
	require.NoError(t, f.Close())
	return c
}

// flvPacket is one packet as ffprobe reads it, in file order.
type flvPacket struct {
	CodecType string `json:"codec_type"`
	DTSTime   string `json:"dts_time"`
	Flags     string `json:"flags"`
}

func (p flvPacket) dts() float64 {
	v, _ := strconv.ParseFloat(p.DTSTime, 64)
	return v
}

// probePackets lists the packets of a file (or URL) in the order they come.
func probePackets(t *testing.T, input string, extra ...string) []flvPacket {
	t.Helper()
	args := append([]string{"-v", "error", "-of", "json", "-show_packets",
		"-show_entries", "packet=codec_type,dts_time,flags"}, extra...)
	out, err := exec.Command("ffprobe", append(args, input)...).Output()
	require.NoError(t, err, "ffprobe %s", input)
	var res struct {
		Packets []flvPacket `json:"packets"`
	}
	require.NoError(t, json.Unmarshal(out, &res))
	return res.Packets
}

// requireDTSOrder: DTS never goes back, across tracks (the transcoded twin
// interleaves its output).
func requireDTSOrder(t *testing.T, pk []flvPacket) {
	t.Helper()
	require.Greater(t, len(pk), 50)
	for i := 1; i < len(pk); i++ {
		require.GreaterOrEqual(t, pk[i].dts(), pk[i-1].dts(), "packet %d: %+v after %+v", i, pk[i], pk[i-1])
	}
}

// span is the DTS span of one kind's packets, in seconds.
func span(pk []flvPacket, kind string) float64 {
	first, last, seen := 0.0, 0.0, false
	for _, p := range pk {
		if p.CodecType != kind {
			continue
		}
		if !seen {
			first, seen = p.dts(), true
		}
		last = p.dts()
	}
	return last - first
}

// slowFLVReader plays url over a connection with a 4 KiB receive buffer
// and reads 1 KiB every 100 ms (10 KB/s): a student on a bad link.
func slowFLVReader(t *testing.T, port int, path string) {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	require.NoError(t, err)
	_, err = fmt.Fprintf(c, "GET /%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); c.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 1024)
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}()
}

// twinVhosts is the default config's pair: __defaultVhost__ transcoded
// (audio to AAC, video copied) into the vhost transcode.
const twinVhosts = `vhosts:
  - name: __defaultVhost__
    transcode:
      to: transcode
      audio: {codec: aac, bitrate: 64k, sample_rate: 44100}
      video: {codec: copy}
  - name: transcode
`

func TestHTTPFLV(t *testing.T) {
	h := newHookRecorder(t)
	u := func(path string) string { return fmt.Sprintf("%q", h.URL+path) }
	p := startPodium(t, fmt.Sprintf(`rtmp: {play_wait: 2s, queue_packets: 256}
auth: {admin_password: flvtest}
`+twinVhosts+`  - name: denied
    security: {play_deny: ["127.0.0.0/8", "::1"]}
  - name: hooked
    hooks: {on_play: [%s], on_stop: [%s]}
`, u("/play"), u("/notify")))
	file := speexFixture(t)
	publish(t, file, p.RTMPURL("live/cam1"))
	twin := flvURL(p, "live/cam1.flv?vhost=transcode")
	res := probeUntil(t, twin, 30*time.Second, "video", "audio")
	requireCodecs(t, res, "h264", "aac")

	t.Run("ffprobe sees h264 and aac for the right duration", func(t *testing.T) {
		c := captureFLV(t, twin, "", 5*time.Second)
		require.Equal(t, http.StatusOK, c.Status)
		require.Equal(t, "video/x-flv", c.Header.Get("Content-Type"))
		require.Equal(t, "*", c.Header.Get("Access-Control-Allow-Origin"))
		require.True(t, c.Chunked, "HTTP-FLV is chunked")
		b, err := os.ReadFile(c.File)
		require.NoError(t, err)
		require.GreaterOrEqual(t, len(b), 13+11)
		require.Equal(t, []byte{'F', 'L', 'V', 1, 5}, b[:5], "FLV header with audio and video")
		require.Equal(t, byte(18), b[13], "the first tag is onMetaData")
		require.Contains(t, string(b[13:200]), "onMetaData")

		probed, err := ffprobe(context.Background(), c.File)
		require.NoError(t, err)
		requireCodecs(t, probed, "h264", "aac")
		pk := probePackets(t, c.File)
		require.NotEmpty(t, pk)
		require.Equal(t, "video", pk[0].CodecType, "starts on video")
		require.True(t, strings.HasPrefix(pk[0].Flags, "K"), "starts on a keyframe: %+v", pk[0])
		// 5 s of wall time, plus up to a GOP (1 s) of cache at the start.
		v, a := span(pk, "video"), span(pk, "audio")
		t.Logf("5 s of HTTP-FLV: %d packets, video %.2fs, audio %.2fs, %d bytes", len(pk), v, a, c.Bytes)
		require.InDelta(t, 5.4, v, 1.2, "video duration")
		require.InDelta(t, 5.4, a, 1.2, "audio duration")
		requireDTSOrder(t, pk)
		// The same twin over RTMP.
		requireDTSOrder(t, probePackets(t, p.RTMPURL("live/cam1?vhost=transcode"), "-read_intervals", "%+3"))
	})

	t.Run("without vhost the default vhost's twin, by Host header the named one", func(t *testing.T) {
		res, err := ffprobe(context.Background(), flvURL(p, "live/cam1.flv"))
		require.NoError(t, err)
		requireCodecs(t, res, "h264", "aac")
		res, err = ffprobe(context.Background(), flvURL(p, "live/cam1.flv?vhost=__defaultVhost__"))
		require.NoError(t, err)
		requireCodecs(t, res, "h264", "speex")
		c := captureFLV(t, flvURL(p, "live/cam1.flv"), "transcode", 2*time.Second)
		require.Equal(t, http.StatusOK, c.Status)
		probed, err := ffprobe(context.Background(), c.File)
		require.NoError(t, err)
		requireCodecs(t, probed, "h264", "aac")
		c = captureFLV(t, flvURL(p, "live/cam1.flv"), "denied", 2*time.Second)
		require.Equal(t, http.StatusForbidden, c.Status, "the Host header named the vhost")
	})

	t.Run("two players and a slow one: the slow one loses GOPs, nobody else slows", func(t *testing.T) {
		// About 3 Mbit/s (noise does not compress): 40x what the slow
		// player takes, so its backlog outgrows the kernel's socket
		// buffers within seconds and reaches the hub's queue.
		big := fixture(t, "h264-3m-speex",
			"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25,noise=alls=30:allf=t",
			"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000",
			"-t", "10", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "3M", "-maxrate", "3M", "-bufsize", "1M",
			"-g", "25", "-pix_fmt", "yuv420p",
			"-c:a", "libspeex", "-ar", "16000", "-ac", "1")
		publish(t, big, p.RTMPURL("live/big"))
		const path = "live/big.flv?vhost=__defaultVhost__"
		probeUntil(t, flvURL(p, path), 30*time.Second, "video", "audio")
		slowFLVReader(t, p.HTTP, path)
		start := time.Now()
		caps := make(chan flvCapture, 2)
		for range 2 {
			go func() { caps <- captureFLV(t, flvURL(p, path), "", 10*time.Second) }()
		}
		for range 2 {
			c := <-caps
			require.Equal(t, http.StatusOK, c.Status)
			v := span(probePackets(t, c.File), "video")
			t.Logf("player: %.2fs of video in %s", v, time.Since(start).Round(time.Millisecond))
			require.Greater(t, v, 8.5, "a player fell behind real time next to the slow one")
		}
		waitLog(t, p.Logs, "reader=flv", 1, 30*time.Second)
		require.Contains(t, p.Logs.String(), "discarding packets")
	})

	t.Run("counted as players in the API", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, twin, nil)
		require.NoError(t, err)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		go func() { _, _ = io.Copy(io.Discard, res.Body) }()
		a := newAPI(t, p, "flvtest")
		require.Eventually(t, func() bool {
			st := a.stream("transcode/live/cam1")
			if st == nil {
				return false
			}
			var body struct {
				Clients []struct {
					Type string `json:"type"`
					Path string `json:"path"`
					Send uint64 `json:"send_bytes"`
				} `json:"clients"`
			}
			require.NoError(t, json.Unmarshal(a.get("/api/v1/clients"), &body))
			for _, c := range body.Clients {
				if c.Type == "flv-play" && c.Path == "transcode/live/cam1" && c.Send > 0 {
					return true
				}
			}
			return false
		}, 20*time.Second, 200*time.Millisecond, "no flv-play client in /api/v1/clients:\n%s", p.Logs)
		require.Eventually(t, func() bool {
			var body struct {
				Streams []struct {
					Path    string `json:"path"`
					Viewers int    `json:"viewers"`
				} `json:"streams"`
			}
			require.NoError(t, json.Unmarshal(a.get("/api/v1/streams"), &body))
			for _, s := range body.Streams {
				if s.Path == "transcode/live/cam1" {
					return s.Viewers == 1
				}
			}
			return false
		}, 20*time.Second, 200*time.Millisecond, "the HTTP-FLV player is the stream's one viewer")
	})

	t.Run("not found, bad vhost, denied, CORS preflight", func(t *testing.T) {
		start := time.Now()
		res, err := http.Get(flvURL(p, "live/nope.flv"))
		require.NoError(t, err)
		res.Body.Close()
		waited := time.Since(start)
		require.Equal(t, http.StatusNotFound, res.StatusCode)
		require.GreaterOrEqual(t, waited, 1900*time.Millisecond, "answered before play_wait")
		require.Less(t, waited, 6*time.Second)

		for _, path := range []string{"live/cam1.flv?vhost=nosuch", "live/../cam1.flv", "a/b/c.flv", "live/cam%201.flv"} {
			res, err := http.Get(flvURL(p, path))
			require.NoError(t, err)
			res.Body.Close()
			require.Equal(t, http.StatusNotFound, res.StatusCode, path)
		}

		res, err = http.Get(flvURL(p, "live/cam1.flv?vhost=denied"))
		require.NoError(t, err)
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		require.Contains(t, string(b), "play denied")
		require.Contains(t, p.Logs.String(), "flv access denied")

		req, err := http.NewRequest(http.MethodOptions, twin, nil)
		require.NoError(t, err)
		req.Header.Set("Origin", "http://example.com")
		req.Header.Set("Access-Control-Request-Method", "GET")
		res, err = http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusNoContent, res.StatusCode)
		require.Equal(t, "*", res.Header.Get("Access-Control-Allow-Origin"))
		require.Contains(t, res.Header.Get("Access-Control-Allow-Methods"), "GET")
	})

	t.Run("on_play and on_stop", func(t *testing.T) {
		publish(t, file, p.RTMPURL("live/h1?vhost=hooked"))
		probeUntil(t, p.RTMPURL("live/h1?vhost=hooked"), 20*time.Second, "video", "audio")
		url := flvURL(p, "live/h1.flv?vhost=hooked&token=abc")
		c := captureFLV(t, url, "", 3*time.Second)
		require.Equal(t, http.StatusOK, c.Status, "%s", p.Logs)
		require.Positive(t, c.Bytes)
		mine := func(action string) func(map[string]any) bool {
			return func(m map[string]any) bool {
				param, _ := m["param"].(string)
				return hookIs(action, "hooked", "h1")(m) && strings.Contains(param, "token=abc")
			}
		}
		play := h.wait(t, 5*time.Second, mine("on_play"))
		require.Equal(t, "127.0.0.1", play["ip"])
		require.Equal(t, "live", play["app"])
		require.NotEmpty(t, play["client_id"])
		require.Contains(t, play["param"], "vhost=hooked")
		require.Contains(t, play["param"], "token=abc")
		require.Contains(t, play["tcUrl"], fmt.Sprintf("http://127.0.0.1:%d/live", p.HTTP))
		stop := h.wait(t, 10*time.Second, mine("on_stop"))
		require.Equal(t, play["client_id"], stop["client_id"])
		require.Equal(t, "/notify", stop["path"])

		// on_play gates the play.
		h.play.Store(`{"code":1}`)
		defer h.play.Store("0")
		res, err := http.Get(url)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusForbidden, res.StatusCode)
	})
	p.Alive(t)
}
