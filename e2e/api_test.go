package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// adminPasswordRE finds the generated password podium prints once.
var adminPasswordRE = regexp.MustCompile(`password: (\S+)`)

// adminPassword waits for podium's one-time password notice.
func adminPassword(t *testing.T, p *podium) string {
	t.Helper()
	var m []string
	require.Eventually(t, func() bool {
		m = adminPasswordRE.FindStringSubmatch(p.Logs.String())
		return m != nil
	}, 10*time.Second, 20*time.Millisecond, "no generated password in the log:\n%s", p.Logs)
	return m[1]
}

// api is a client of one podium's HTTP API.
type api struct {
	t        *testing.T
	base     string
	password string // "" = anonymous
	cookie   string // a dashboard session instead of Basic
}

func newAPI(t *testing.T, p *podium, password string) *api {
	return &api{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", p.HTTP), password: password}
}

func (a *api) do(method, path string, body []byte, hdr ...string) (int, []byte, http.Header) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader(body))
	require.NoError(a.t, err)
	if a.password != "" {
		req.SetBasicAuth("admin", a.password)
	}
	if a.cookie != "" {
		req.Header.Set("Cookie", a.cookie)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	client := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	require.NoError(a.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(a.t, err)
	return res.StatusCode, b, res.Header
}

func (a *api) get(path string) []byte {
	a.t.Helper()
	code, b, _ := a.do(http.MethodGet, path, nil)
	require.Equal(a.t, http.StatusOK, code, "GET %s: %s", path, b)
	return b
}

// apiStream is the part of /api/v1/streams the tests read.
type apiStream struct {
	ID      string  `json:"id"`
	Name    string  `json:"name"`
	Vhost   string  `json:"vhost"`
	App     string  `json:"app"`
	Path    string  `json:"path"`
	Bitrate float64 `json:"bitrate"`
	FPS     float64 `json:"fps"`
	Recv    uint64  `json:"recv_bytes"`
	Publish struct {
		IP       string `json:"ip"`
		Protocol string `json:"protocol"`
		Params   string `json:"params"`
		Kickable bool   `json:"kickable"`
	} `json:"publish"`
	Video *struct {
		Codec  string `json:"codec"`
		Width  int    `json:"width"`
		Height int    `json:"height"`
	} `json:"video"`
	Audio *struct {
		Codec      string `json:"codec"`
		SampleRate int    `json:"sample_rate"`
		Channels   int    `json:"channel"`
	} `json:"audio"`
	Output *struct {
		Stream string `json:"stream"`
		Video  *struct {
			Codec string `json:"codec"`
		} `json:"video"`
		Audio *struct {
			Codec      string `json:"codec"`
			SampleRate int    `json:"sample_rate"`
		} `json:"audio"`
	} `json:"output"`
	Source    string `json:"source"`
	Transcode *struct {
		State       string  `json:"state"`
		Encoder     string  `json:"encoder"`
		Hardware    bool    `json:"hardware"`
		Speed       float64 `json:"speed"`
		OutputAudio string  `json:"output_audio"`
	} `json:"transcode"`
	Forwards []struct {
		Destination string `json:"destination"`
		State       string `json:"state"`
		LastError   string `json:"last_error"`
		Reconnects  uint64 `json:"reconnects"`
		Bytes       uint64 `json:"bytes"`
	} `json:"forwards"`
	HLS *struct {
		URL      string `json:"url"`
		Segments uint64 `json:"segments"`
	} `json:"hls"`
}

func (a *api) streams() []apiStream {
	a.t.Helper()
	var body struct {
		Code    int         `json:"code"`
		Streams []apiStream `json:"streams"`
	}
	b := a.get("/api/v1/streams")
	require.NoError(a.t, json.Unmarshal(b, &body), "%s", b)
	require.Equal(a.t, 0, body.Code)
	return body.Streams
}

// stream returns the live stream at vhost/app/name, or nil.
func (a *api) stream(path string) *apiStream {
	for _, s := range a.streams() {
		if s.Path == path {
			return &s
		}
	}
	return nil
}

// metrics returns /metrics' samples by "name{labels}".
func (a *api) metrics() map[string]float64 {
	a.t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(a.get("/metrics")))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		require.Positive(a.t, i, line)
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(a.t, err, line)
		out[line[:i]] = v
	}
	return out
}

// publisher is an ffmpeg publish whose exit the test watches.
type publisher struct {
	cmd  *exec.Cmd
	done chan struct{}
	out  *lockedBuffer
}

func startPublisher(t *testing.T, file, url string) *publisher {
	t.Helper()
	return runPublisher(t, exec.Command("ffmpeg", "-v", "error", "-re", "-stream_loop", "-1", "-i", file, "-c", "copy", "-f", "flv", url))
}

// runPublisher starts cmd (an ffmpeg publish) and stops it when the test
// ends.
func runPublisher(t *testing.T, cmd *exec.Cmd) *publisher {
	t.Helper()
	p := &publisher{cmd: cmd, done: make(chan struct{}), out: &lockedBuffer{}}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	require.NoError(t, p.cmd.Start())
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *publisher) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// TestAPIDefaultConfig drives the API of the real binary on the embedded
// default config (transcode into vhost "transcode", HLS on), with the
// generated admin password: 401 without it, a live H.264 + Speex publish
// with its codecs in and out, metrics with real numbers, DELETE kicks
// the ffmpeg publisher, bad input gets 4xx without touching the stream,
// and a restart keeps the password without printing it again.
func TestAPIDefaultConfig(t *testing.T) {
	p := startPodium(t, "")
	password := adminPassword(t, p)
	admin := newAPI(t, p, password)
	anon := newAPI(t, p, "")

	// The hash, never the password, is on disk, readable by podium only.
	fi, err := os.Stat(filepath.Join(p.Dir, "admin.hash"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	h, err := os.ReadFile(filepath.Join(p.Dir, "admin.hash"))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(h), "$2a$") || strings.HasPrefix(string(h), "$2b$"), "%s", h)
	require.NotContains(t, string(h), password)

	// Anonymous: 401 everywhere but /healthz and HLS.
	for _, path := range []string{"/api/v1/streams", "/api/v1/summaries", "/api/v1/versions", "/api/v1/clients",
		"/api/v1/forwards", "/api/v1/hw", "/metrics"} {
		code, b, hdr := anon.do(http.MethodGet, path, nil)
		require.Equal(t, http.StatusUnauthorized, code, "%s: %s", path, b)
		require.Contains(t, hdr.Get("WWW-Authenticate"), "Basic", path)
	}
	code, _, hdr := anon.do(http.MethodGet, "/", nil)
	require.Equal(t, http.StatusSeeOther, code)
	require.Equal(t, "/login", hdr.Get("Location"))
	code, b, _ := anon.do(http.MethodGet, "/healthz", nil)
	require.Equal(t, http.StatusOK, code, "%s", b)

	// A publish shows up with its codecs in and out.
	pub := startPublisher(t, speexFixture(t), p.RTMPURL("live/cam1?key=topsecret42"))
	var in, out *apiStream
	require.Eventually(t, func() bool {
		in, out = admin.stream("__defaultVhost__/live/cam1"), admin.stream("transcode/live/cam1")
		return in != nil && out != nil && in.Output != nil && in.Output.Audio != nil && in.Bitrate > 0 && out.HLS != nil && out.HLS.Segments > 0
	}, 20*time.Second, 200*time.Millisecond, "stream did not show up:\n%s", p.Logs)
	require.Equal(t, "cam1", in.Name)
	require.Equal(t, "live", in.App)
	require.Equal(t, "127.0.0.1", in.Publish.IP)
	require.Equal(t, "rtmp", in.Publish.Protocol)
	require.Equal(t, "key=xxx", in.Publish.Params)
	require.True(t, in.Publish.Kickable)
	require.Equal(t, "h264", in.Video.Codec)
	require.Equal(t, 320, in.Video.Width)
	require.Equal(t, 240, in.Video.Height)
	require.Equal(t, "speex", in.Audio.Codec)
	require.Equal(t, 16000, in.Audio.SampleRate)
	require.Equal(t, "transcode/live/cam1", in.Output.Stream)
	require.Equal(t, "h264", in.Output.Video.Codec)
	require.Equal(t, "aac", in.Output.Audio.Codec)
	require.Equal(t, 44100, in.Output.Audio.SampleRate)
	require.NotNil(t, in.Transcode)
	require.Equal(t, "running", in.Transcode.State)
	require.Equal(t, "copy", in.Transcode.Encoder)
	require.False(t, in.Transcode.Hardware)
	require.Contains(t, in.Transcode.OutputAudio, "aac")
	require.InDelta(t, 25, in.FPS, 5)
	require.Greater(t, in.Bitrate, 20_000.0)
	require.Equal(t, "aac", out.Audio.Codec)
	require.Equal(t, "__defaultVhost__/live/cam1", out.Source)
	require.False(t, out.Publish.Kickable)
	require.Equal(t, "/live/cam1.m3u8", out.HLS.URL)
	require.Nil(t, in.HLS, "only vhost transcode has HLS")

	one := admin.get("/api/v1/streams/" + in.ID)
	require.Contains(t, string(one), `"name":"cam1"`)

	// Metrics: real numbers.
	m := admin.metrics()
	require.Equal(t, 1.0, m[`podium_streams{vhost="__defaultVhost__"}`])
	require.Equal(t, 1.0, m[`podium_streams{vhost="transcode"}`])
	require.Greater(t, m[`podium_bytes_in_total`], 10_000.0)
	require.Greater(t, m[`podium_bytes_out_total`], 10_000.0)
	require.Greater(t, m[`podium_stream_bytes_in_total{vhost="__defaultVhost__",app="live",stream="cam1"}`], 10_000.0)
	require.Greater(t, m[`podium_stream_bitrate_bps{vhost="__defaultVhost__",app="live",stream="cam1"}`], 20_000.0)
	tr := `stream="__defaultVhost__/live/cam1",output="transcode/live/cam1",encoder="copy"`
	require.InDelta(t, 1.0, m[`podium_transcode_speed{`+tr+`}`], 0.5)
	require.Contains(t, m, `podium_transcode_errors_total{`+tr+`}`)
	require.Equal(t, 1.0, m[`podium_transcodes{state="running"}`])
	require.GreaterOrEqual(t, m[`podium_hls_segments_total`], 1.0)
	require.Equal(t, 1.0, m[`podium_hw_encoder_usable{backend="software",encoder="libx264"}`])
	require.Greater(t, m[`podium_process_resident_memory_bytes`], 1e6)
	require.Greater(t, m[`podium_host_memory_total_bytes`], 1e8)

	// Secrets stay out of every answer and the log.
	for _, path := range []string{"/api/v1/streams", "/api/v1/clients", "/api/v1/summaries", "/metrics"} {
		require.NotContains(t, string(admin.get(path)), "topsecret42", path)
	}
	require.NotContains(t, p.Logs.String(), "topsecret42")

	// Bad input: 4xx, quickly, and the stream plays on.
	badInput(t, p, admin)

	// DELETE kicks: ffmpeg's connection is closed, the streams go.
	code, b, _ = admin.do(http.MethodDelete, "/api/v1/streams/"+out.ID, nil)
	require.Equal(t, http.StatusConflict, code, "the transcode output has no outside publisher: %s", b)
	require.False(t, pub.exited(), "ffmpeg exited before the kick:\n%s", pub.out)
	code, b, _ = admin.do(http.MethodDelete, "/api/v1/streams/"+in.ID, nil)
	require.Equal(t, http.StatusOK, code, "%s", b)
	require.Contains(t, string(b), `"code":0`)
	select {
	case <-pub.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("ffmpeg still publishing 10 s after the kick")
	}
	require.Eventually(t, func() bool { return len(admin.streams()) == 0 }, 5*time.Second, 100*time.Millisecond)
	code, b, _ = admin.do(http.MethodGet, "/api/v1/streams/"+in.ID, nil)
	require.Equal(t, http.StatusNotFound, code, "%s", b)
	require.Contains(t, string(b), `"code":2048`)

	// Login attempts are rate-limited per address; a dashboard session
	// already open still works.
	code, b, hdr = anon.do(http.MethodPost, "/login", []byte(`{"password":"`+password+`"}`), "Content-Type", "application/json")
	require.Equal(t, http.StatusOK, code, "%s", b)
	session := &api{t: t, base: admin.base, cookie: strings.Split(hdr.Get("Set-Cookie"), ";")[0]}
	require.Contains(t, hdr.Get("Set-Cookie"), "HttpOnly")
	require.Contains(t, hdr.Get("Set-Cookie"), "SameSite=Strict")
	wrong := newAPI(t, p, "not-the-password")
	limited := 0
	began := time.Now()
	for range 15 {
		code, _, _ := wrong.do(http.MethodGet, "/api/v1/versions", nil)
		require.Contains(t, []int{http.StatusUnauthorized, http.StatusTooManyRequests}, code)
		if code == http.StatusTooManyRequests {
			limited++
		}
	}
	// A burst of 10, then one more every 6 s: on a loaded machine the 15
	// tries can take long enough to earn some back (one run beside a soak:
	// 3 limited).
	earned := int(time.Since(began) / (6 * time.Second))
	require.GreaterOrEqual(t, limited, max(1, 15-11-earned), "15 wrong passwords in a row were not rate-limited (%s)", time.Since(began))
	code, _, hdr = admin.do(http.MethodGet, "/api/v1/versions", nil)
	require.Equal(t, http.StatusTooManyRequests, code, "the right password is not even checked while limited")
	require.NotEmpty(t, hdr.Get("Retry-After"))
	session.get("/api/v1/versions")
	require.Contains(t, string(session.get("/")), "<title>Podium</title>")

	// A restart reuses the hash and prints no password.
	p.Stop(t)
	p.cmd = exec.Command(podiumBin, "serve", "--config", filepath.Join(p.Dir, "podium.yaml"))
	p.Logs = &lockedBuffer{}
	p.cmd.Stdout, p.cmd.Stderr = p.Logs, p.Logs
	require.NoError(t, p.cmd.Start())
	require.Eventually(t, func() bool {
		code, _, _ := admin.doQuiet(http.MethodGet, "/api/v1/versions")
		return code == http.StatusOK
	}, 10*time.Second, 50*time.Millisecond, "podium did not come back:\n%s", p.Logs)
	require.NotContains(t, p.Logs.String(), "password:")
	require.NotContains(t, p.Logs.String(), password)
}

// doQuiet is do for polling: a refused connection is a 0, not a failure.
func (a *api) doQuiet(method, path string) (int, []byte, error) {
	req, err := http.NewRequest(method, a.base+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.SetBasicAuth("admin", a.password)
	res, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// badInput throws what a scanner or a broken client sends at the HTTP
// listener and checks each gets a 4xx (or a closed connection) in bounded
// time, and that the live stream does not notice.
func badInput(t *testing.T, p *podium, admin *api) {
	addr := fmt.Sprintf("127.0.0.1:%d", p.HTTP)
	before := admin.stream("__defaultVhost__/live/cam1")
	require.NotNil(t, before)

	// Slowloris: headers a byte at a time never finish; the server hangs
	// up after ReadHeaderTimeout (5 s). Runs while the rest goes on.
	slow := make(chan time.Duration, 1)
	go func() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			slow <- -1
			return
		}
		defer c.Close()
		start := time.Now()
		_, _ = io.WriteString(c, "GET /api/v1/streams HTTP/1.1\r\nHost: x\r\n")
		for time.Since(start) < 20*time.Second {
			if _, err := io.WriteString(c, "X"); err != nil {
				break
			}
			_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
				break // closed by the server
			}
		}
		slow <- time.Since(start)
	}()

	// Oversized headers: 431, not a 64 KiB allocation per header line.
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	require.NoError(t, err)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = fmt.Fprintf(c, "GET /api/v1/streams HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 64<<10))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	res.Body.Close()
	c.Close()
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, res.StatusCode)

	// Malformed JSON, oversized bodies, unknown and absurd stream ids.
	json := []string{"Content-Type", "application/json"}
	for _, c := range []struct {
		method, path string
		body         []byte
		want         int
	}{
		{http.MethodPost, "/login", []byte(`{"password":`), http.StatusBadRequest},
		{http.MethodPost, "/login", []byte(`{"password":"x"}` + strings.Repeat(" ", 8<<10)), http.StatusRequestEntityTooLarge},
		{http.MethodPost, "/login", []byte("\x00\xff\xfe"), http.StatusBadRequest},
		{http.MethodGet, "/api/v1/streams/424242", nil, http.StatusNotFound},
		{http.MethodDelete, "/api/v1/streams/424242", nil, http.StatusNotFound},
		{http.MethodGet, "/api/v1/streams/" + strings.Repeat("9", 2000), nil, http.StatusBadRequest},
		{http.MethodDelete, "/api/v1/streams/-5", nil, http.StatusBadRequest},
		{http.MethodGet, "/api/v1/streams?count=abc", nil, http.StatusBadRequest},
		{http.MethodPut, "/api/v1/streams/1", []byte(`{}`), http.StatusMethodNotAllowed},
		{http.MethodGet, "/api/v1/../../etc/passwd", nil, http.StatusNotFound},
	} {
		start := time.Now()
		code, b, _ := admin.do(c.method, c.path, c.body, json...)
		require.Equal(t, c.want, code, "%s %.60s: %s", c.method, c.path, b)
		require.Less(t, time.Since(start), 2*time.Second, "%s %.60s", c.method, c.path)
	}

	took := <-slow
	require.Positive(t, took, "slowloris could not connect")
	require.Less(t, took, 12*time.Second, "a slowloris connection was held %s", took)
	p.Alive(t)

	after := admin.stream("__defaultVhost__/live/cam1")
	require.NotNil(t, after, "the stream went away")
	require.Equal(t, before.ID, after.ID, "the publisher reconnected")
	require.Greater(t, after.Recv, before.Recv)
	require.Greater(t, after.Bitrate, 20_000.0)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
