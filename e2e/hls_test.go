package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/grafov/m3u8"
	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/internal/browsertest"
)

// hlsSlaveYAML: the slave cuts HLS of everything it receives, in 1 s
// fragments (the 2 s, halved to see more window turnovers in CI
// time), 4 in the playlist.
const hlsSlaveYAML = `vhosts:
  - name: __defaultVhost__
    hls: {enabled: true, fragment: 1s, window: 4, variant: mpegts, dispose: 0s}
`

const (
	hlsWindow   = 4
	hlsFragment = 1.0 // seconds
	hlsGOP      = 1.0 // the fixtures' keyframe interval, seconds
)

// hlsPlaylist fetches and parses a live media playlist.
func hlsPlaylist(url string) (*m3u8.MediaPlaylist, []byte, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, b, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p, typ, err := m3u8.Decode(*bytes.NewBuffer(b), true)
	if err != nil {
		return nil, b, fmt.Errorf("parse %s: %w\n%s", url, err, b)
	}
	if typ != m3u8.MEDIA {
		return nil, b, fmt.Errorf("%s is not a media playlist", url)
	}
	return p.(*m3u8.MediaPlaylist), b, nil
}

func listed(p *m3u8.MediaPlaylist) []*m3u8.MediaSegment {
	var out []*m3u8.MediaSegment
	for _, s := range p.Segments {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// segTracker follows a live playlist: every segment seen (by media
// sequence number) with its duration and discontinuity flag, and checks
// that the media sequence never goes back.
type segTracker struct {
	t        *testing.T
	url      string
	durs     map[uint64]float64
	disc     map[uint64]bool
	lastSeq  uint64 // EXT-X-MEDIA-SEQUENCE of the last fetch
	maxSeq   uint64
	fetches  int
	lastBody []byte
}

func newSegTracker(t *testing.T, url string) *segTracker {
	return &segTracker{t: t, url: url, durs: map[uint64]float64{}, disc: map[uint64]bool{}}
}

// poll fetches once; it returns false when the playlist is not there.
func (s *segTracker) poll() bool {
	s.t.Helper()
	p, body, err := hlsPlaylist(s.url)
	if err != nil {
		return false
	}
	s.lastBody = body
	require.GreaterOrEqual(s.t, p.SeqNo, s.lastSeq, "EXT-X-MEDIA-SEQUENCE went back:\n%s", body)
	s.lastSeq = p.SeqNo
	s.fetches++
	segs := listed(p)
	require.LessOrEqual(s.t, len(segs), hlsWindow, "%s", body)
	require.NotZero(s.t, p.TargetDuration)
	for i, seg := range segs {
		seq := p.SeqNo + uint64(i)
		require.Equal(s.t, fmt.Sprintf("s1/%d.ts", seq), seg.URI, "%s", body)
		require.False(s.t, seg.ProgramDateTime.IsZero(), "EXT-X-PROGRAM-DATE-TIME missing:\n%s", body)
		require.LessOrEqual(s.t, seg.Duration, p.TargetDuration+0.5, "%s", body)
		if d, ok := s.durs[seq]; ok {
			require.InDelta(s.t, d, seg.Duration, 0.0005, "segment %d changed:\n%s", seq, body)
		}
		s.durs[seq] = seg.Duration
		s.disc[seq] = s.disc[seq] || seg.Discontinuity
		s.maxSeq = max(s.maxSeq, seq)
	}
	return true
}

// waitFor polls until cond holds.
func (s *segTracker) waitFor(d time.Duration, what string, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if s.poll() && cond() {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.t.Fatalf("%s: not within %s; last playlist:\n%s", what, d, s.lastBody)
}

func countTS(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.ts"))
	require.NoError(t, err)
	return len(m)
}

// TestHLSMasterToSlave: an H.264 + Speex publish on a master (transcode +
// forward) comes out of a Podium slave as HLS that ffprobe reads as
// H.264 + AAC; segments are cut within a GOP of the fragment; the slave's
// directory stays within window + 3 segments over many window turnovers;
// a republish and a slave restart continue the same playlist after an
// EXT-X-DISCONTINUITY without the media sequence going back; traversal
// attempts get 404.
func TestHLSMasterToSlave(t *testing.T) {
	slave := startPodium(t, hlsSlaveYAML)
	master := startPodium(t, fmt.Sprintf(`hwaccel: {prefer: [none]}
vhosts:
  - name: __defaultVhost__
    transcode: {to: transcode, audio: {codec: aac, bitrate: 64k, sample_rate: 44100}, video: {codec: copy}}
  - name: transcode
    forward: {destinations: ["127.0.0.1:%d"]}
`, slave.RTMP))
	pub := publish(t, speexFixture(t), master.RTMPURL("live/s1"))
	url := fmt.Sprintf("http://127.0.0.1:%d/live/s1.m3u8", slave.HTTP)
	segDir := filepath.Join(slave.Dir, "hls", "live", "s1")

	res := probeUntil(t, url, 60*time.Second, "video", "audio")
	v, _ := res.stream("video")
	a, _ := res.stream("audio")
	require.Equal(t, "h264", v)
	require.Equal(t, "aac", a)

	// The long run: 45 s of 1 s segments, about 11 turnovers of the
	// window. The directory never holds more than window + 3 segments.
	tr := newSegTracker(t, url)
	start := time.Now()
	maxFiles := 0
	for time.Since(start) < 45*time.Second {
		tr.poll()
		n := countTS(t, segDir)
		maxFiles = max(maxFiles, n)
		require.LessOrEqual(t, n, hlsWindow+3, "segments on disk")
		time.Sleep(500 * time.Millisecond)
	}
	require.True(t, pub.ProcessState == nil, "publisher died")
	require.GreaterOrEqual(t, len(tr.durs), 30, "segments seen in 45 s of 1 s fragments")
	require.GreaterOrEqual(t, maxFiles, hlsWindow, "segments on disk")
	// Durations: at the first keyframe at or after the fragment, so
	// within one GOP of it. Segments before a discontinuity (the stream
	// ended) and the newest may be shorter.
	for seq, d := range tr.durs {
		if tr.disc[seq+1] || seq == tr.maxSeq {
			continue
		}
		require.GreaterOrEqual(t, d, hlsFragment-0.01, "segment %d", seq)
		require.LessOrEqual(t, d, hlsFragment+hlsGOP+0.05, "segment %d", seq)
	}

	// Traversal and bad names: 404, nothing outside the HLS directory.
	require.NoError(t, os.WriteFile(filepath.Join(slave.Dir, "secret.m3u8"), []byte("#EXTM3U secret"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(slave.Dir, "secret.ts"), []byte("secret"), 0o644))
	for _, bad := range []string{
		"/../secret.m3u8", "/live/../../secret.m3u8", "/live/s1/../../../secret.ts",
		"/%2e%2e/secret.m3u8", "/live/%2e%2e/%2e%2e/secret.m3u8", "/%2E%2E/%2e%2e/secret.ts",
		"/%252e%252e/secret.m3u8", "/live/%252e%252e/%252e%252e/secret.m3u8",
		"/live/..%2f..%2fsecret.m3u8", "/live/..%252f..%252fsecret.m3u8", "/..%5csecret.m3u8",
		"/live/s1%00.m3u8", "/live/s1.m3u8%00.ts", "/live%00/s1.m3u8", "/live/s1/%00.ts",
		"/live/s1/.state.json%00.ts", "//secret.m3u8", "/live//s1.m3u8",
	} {
		status, body := rawGet(t, slave.HTTP, bad)
		require.Equal(t, 404, status, "%s: %s", bad, body)
		require.NotContains(t, body, "secret", bad)
	}
	resp, err := http.Get(url)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, "application/vnd.apple.mpegurl", resp.Header.Get("Content-Type"))
	require.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
	require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
	segURL := fmt.Sprintf("http://127.0.0.1:%d/live/s1/%d.ts", slave.HTTP, tr.maxSeq)
	resp, err = http.Get(segURL)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, segURL)
	require.Equal(t, "video/mp2t", resp.Header.Get("Content-Type"))
	require.Contains(t, resp.Header.Get("Cache-Control"), "max-age")

	// Kill and republish the publisher: the same playlist continues after
	// an EXT-X-DISCONTINUITY, with the media sequence going on.
	before := tr.maxSeq
	_ = pub.Process.Kill()
	_ = pub.Wait()
	time.Sleep(3 * time.Second)
	publish(t, speexFixture(t), master.RTMPURL("live/s1"))
	var firstNew uint64
	tr.waitFor(60*time.Second, "republished segments after a discontinuity", func() bool {
		for seq := before + 1; seq <= tr.maxSeq; seq++ {
			if tr.disc[seq] && tr.maxSeq >= seq+1 {
				firstNew = seq
				return true
			}
		}
		return false
	})
	require.Greater(t, firstNew, before)

	// Restart the slave: the playlist is served at once, and the sequence
	// continues (again after a discontinuity) once the master's forward
	// is back.
	beforeRestart := tr.maxSeq
	slave.Stop(t)
	slave.restart(t)
	tr.waitFor(60*time.Second, "segments after the slave's restart", func() bool {
		for seq := beforeRestart + 1; seq <= tr.maxSeq; seq++ {
			if tr.disc[seq] && tr.maxSeq >= seq+1 {
				return true
			}
		}
		return false
	})
	_, body, err := hlsPlaylist(url)
	require.NoError(t, err)
	require.Contains(t, string(body), "#EXT-X-TARGETDURATION:")
	require.Contains(t, string(body), "#EXT-X-MEDIA-SEQUENCE:")
	require.Contains(t, string(body), "#EXT-X-PROGRAM-DATE-TIME:")
	require.LessOrEqual(t, countTS(t, segDir), hlsWindow+3)
	master.Alive(t)
	slave.Alive(t)
}

// rawGet sends path exactly as given (no client-side cleaning or
// escaping) and returns the status and body.
func rawGet(t *testing.T, port int, path string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err, path)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHLSPlaysInBrowser: hls.js in headless Chromium plays Podium's HLS,
// MPEG-TS and fMP4 (on two vhosts, so with ?vhost=), from another origin
// (CORS): currentTime advances at least 5 s with no fatal hls.js error.
func TestHLSPlaysInBrowser(t *testing.T) {
	p := startPodium(t, `vhosts:
  - name: __defaultVhost__
    hls: {enabled: true, fragment: 1s, window: 6, variant: mpegts}
  - name: f
    hls: {enabled: true, fragment: 1s, window: 6, variant: fmp4}
`)
	file := fixture(t, "h264-aac", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", "10", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
		"-profile:v", "baseline", "-c:a", "aac", "-ar", "44100", "-ac", "2")
	publish(t, file, p.RTMPURL("live/ts1"))
	publish(t, file, p.RTMPURL("live/mp1?vhost=f"))

	pages := browsertest.Pages(t)
	browser := browsertest.New(t)
	for _, c := range []struct{ name, src string }{
		{"mpegts", fmt.Sprintf("http://127.0.0.1:%d/live/ts1.m3u8", p.HTTP)},
		{"fmp4", fmt.Sprintf("http://127.0.0.1:%d/live/mp1.m3u8?vhost=f", p.HTTP)},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Wait for three segments, so the player starts live.
			require.Eventually(t, func() bool {
				pl, _, err := hlsPlaylist(c.src)
				return err == nil && len(listed(pl)) >= 3
			}, 30*time.Second, 200*time.Millisecond)
			res := browser.Play(pages, "hls", c.src, 5)
			require.GreaterOrEqual(t, res["advanced"], 5.0, "%v", res)
			require.Nil(t, res["fatal"], "%v", res)
		})
	}
}
