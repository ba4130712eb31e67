package e2e

import (
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/ingest/rtsp/rtsptest"
)

// alawFixture is H.264 320x240 25 fps (GOP 1 s) + G.711 A-law 8 kHz mono.
func alawFixture(t testing.TB) string {
	return fixture(t, "h264-alaw",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000",
		"-t", "10", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
		"-c:a", "pcm_alaw", "-ar", "8000", "-ac", "1")
}

// aacFixture is H.264 + AAC 44.1 kHz mono.
func aacFixture(t testing.TB) string {
	return fixture(t, "h264-aac",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", "10", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-ar", "44100", "-ac", "1")
}

// publishRTSP loops file to an RTSP url in real time.
func publishRTSP(t testing.TB, file, url, transport string) *exec.Cmd {
	t.Helper()
	return publishFormat(t, file, "rtsp", url, "-rtsp_transport", transport)
}

func stopCmd(cmd *exec.Cmd) {
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

func requireCodecs(t testing.TB, res probeResult, video, audio string) {
	t.Helper()
	v, _ := res.stream("video")
	a, _ := res.stream("audio")
	require.Equal(t, video, v, "video codec: %+v", res.Streams)
	require.Equal(t, audio, a, "audio codec: %+v", res.Streams)
}

// waitLog waits until logs holds n lines containing s, returning when.
func waitLog(t testing.TB, logs *lockedBuffer, s string, n int, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Count(logs.String(), s) >= n {
			return time.Now()
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %d lines with %q within %s:\n%s", n, s, timeout, logs)
	return time.Time{}
}

// resumeMargin is what the resume check allows over the 3 s requirement:
// after A returns, ffmpeg must publish to it again (a process start and an
// RTSP handshake), and B's next attempt comes within BackoffMin (1 s,
// +20% jitter) during the first six failures and 2 s (+20%) after; on
// this shared 2-core machine with -race binaries, a process start and a
// handshake each cost up to about a second under load.
const resumeMargin = 2 * time.Second

// TestRTSPPullSurvivesCameraRestart: Podium A takes an RTSP publish,
// Podium B pulls it as a source into the transcoding vhost; A stops for
// 5 s and comes back on the same ports; B resumes by itself.
func TestRTSPPullSurvivesCameraRestart(t *testing.T) {
	for _, transport := range []string{"tcp", "udp"} {
		t.Run(transport, func(t *testing.T) {
			file := alawFixture(t)
			aRTMP, aHTTP, aRTSP := freePort(t), freePort(t), rtsptest.Port(t)
			aCfg := "hwaccel: {prefer: [none]}\nvhosts: [{name: __defaultVhost__}]\n"
			a := startPodiumPorts(t, aRTMP, aHTTP, aRTSP, aCfg)
			url := fmt.Sprintf("rtsp://127.0.0.1:%d/live/cam1", aRTSP)
			pub := publishRTSP(t, file, url, transport)
			res := probeUntil(t, url, 20*time.Second, "video", "audio")
			requireCodecs(t, res, "h264", "pcm_alaw")

			src := fmt.Sprintf("sources:\n  - {url: \"rtsp://cam:s3cr3t@127.0.0.1:%d/live/cam1\", publish: live/cam1, transport: %s}\n", aRTSP, transport)
			b := startPodiumPorts(t, freePort(t), freePort(t), 0, transcodeVhosts+src)
			bURL := b.RTMPURL("live/cam1?vhost=transcode")
			res = probeUntil(t, bURL, 20*time.Second, "video", "audio")
			requireCodecs(t, res, "h264", "aac")
			waitLog(t, b.Logs, "rtsp source playing", 1, 5*time.Second)

			// A goes away for 5 s, then comes back on the same ports.
			a.Stop(t)
			stopCmd(pub)
			waitLog(t, b.Logs, "rtsp source ", 2, 10*time.Second) // B noticed: "ended" or "failed"
			time.Sleep(5 * time.Second)
			a2 := startPodiumPorts(t, aRTMP, aHTTP, aRTSP, aCfg)
			back := time.Now()
			publishRTSP(t, file, url, transport)
			resumed := waitLog(t, b.Logs, "rtsp source playing", 2, 3*time.Second+resumeMargin+5*time.Second)
			took := resumed.Sub(back)
			t.Logf("%s: B resumed %.2fs after A returned (requirement 3s, margin %s)", transport, took.Seconds(), resumeMargin)
			require.LessOrEqual(t, took, 3*time.Second+resumeMargin)
			res = probeUntil(t, bURL, 20*time.Second, "video", "audio")
			requireCodecs(t, res, "h264", "aac")

			b.Stop(t)
			a2.Stop(t)
			logs := b.Logs.String()
			require.NotContains(t, logs, "s3cr3t", "camera credentials never logged")
			require.NotContains(t, logs, "panic")
		})
	}
}

// An RTSP publish plays over RTMP; an RTMP publish plays over RTSP.
func TestRTSPAndRTMPCrossPlay(t *testing.T) {
	rtsp := rtsptest.Port(t)
	p := startPodiumPorts(t, freePort(t), freePort(t), rtsp, "hwaccel: {prefer: [none]}\nrtmp: {play_wait: 15s}\nvhosts: [{name: __defaultVhost__}, {name: other}]\n")
	publishRTSP(t, alawFixture(t), fmt.Sprintf("rtsp://127.0.0.1:%d/live/in", rtsp), "tcp")
	res := probeUntil(t, p.RTMPURL("live/in"), 20*time.Second, "video", "audio")
	requireCodecs(t, res, "h264", "pcm_alaw")

	publish(t, aacFixture(t), p.RTMPURL("live/out?vhost=other"))
	res = probeUntil(t, fmt.Sprintf("rtsp://127.0.0.1:%d/live/out?vhost=other", rtsp), 20*time.Second, "video", "audio")
	requireCodecs(t, res, "h264", "aac")
}

// Garbage against the server and from cameras: each bad session is closed
// with one log line and counted (pulls retried); the live stream, its
// player and the good pull are never disturbed.
func TestRTSPGarbage(t *testing.T) {
	garbage := rtsptest.FakeCamera(t, func(string, string) []byte {
		b := make([]byte, 4096)
		_, _ = rand.Read(b)
		return b
	})
	truncated := rtsptest.FakeCamera(t, func(method, cseq string) []byte {
		if method == "OPTIONS" {
			return []byte("RTSP/1.0 200 OK\r\nCSeq: " + cseq + "\r\n\r\n")
		}
		return []byte("RTSP/1.0 200 OK\r\nCSeq: " + cseq + "\r\nContent-Type: application/sdp\r\nContent-Length: 300\r\n\r\n" +
			"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H2")
	})
	rtsp := rtsptest.Port(t)
	srcs := fmt.Sprintf(`sources:
  - {url: "rtsp://u:topsecret@%s/x", publish: cams/garbage, transport: tcp}
  - {url: "rtsp://u:topsecret@%s/x", publish: cams/truncated, transport: tcp}
  - {url: "rtsp://127.0.0.1:%d/live/keep", publish: cams/good, transport: tcp}
`, garbage, truncated, rtsp)
	p := startPodiumPorts(t, freePort(t), freePort(t), rtsp, "hwaccel: {prefer: [none]}\nvhosts: [{name: __defaultVhost__}]\n"+srcs)
	addr := fmt.Sprintf("127.0.0.1:%d", rtsp)
	pub := publishRTSP(t, alawFixture(t), "rtsp://"+addr+"/live/keep", "tcp")
	probeUntil(t, "rtsp://"+addr+"/live/keep", 20*time.Second, "video", "audio")
	player := exec.Command("ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-i", "rtsp://"+addr+"/live/keep", "-c", "copy", "-f", "null", "-")
	require.NoError(t, player.Start())
	t.Cleanup(func() { stopCmd(player) })

	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a stalled, truncated request: cut by the 10 s request timeout
		defer wg.Done()
		c := dial()
		_, _ = c.Write([]byte("DESCRIBE rtsp://" + addr + "/live/keep RTSP/1.0\r\nCSeq: 1\r\nAcc"))
		require.True(t, connClosedWithin(c, 15*time.Second), "truncated request")
	}()
	t.Run("random bytes", func(t *testing.T) {
		c := dial()
		junk := make([]byte, 64<<10)
		_, _ = rand.Read(junk)
		_, _ = c.Write(junk)
		require.True(t, connClosedWithin(c, 5*time.Second))
	})
	t.Run("truncated request then EOF", func(t *testing.T) {
		c := dial()
		_, _ = c.Write([]byte("SETUP rtsp://" + addr + "/live/keep/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransp"))
		_ = c.(*net.TCPConn).CloseWrite()
		require.True(t, connClosedWithin(c, 5*time.Second))
	})
	t.Run("setup flood", func(t *testing.T) {
		for range 20 {
			c := dial()
			var b strings.Builder
			for i := range 100 {
				fmt.Fprintf(&b, "SETUP rtsp://%s/live/keep/trackID=%d RTSP/1.0\r\nCSeq: %d\r\nTransport: RTP/AVP/TCP;unicast;interleaved=%d-%d\r\n\r\n",
					addr, i%2, i+1, 2*i, 2*i+1)
			}
			_, _ = c.Write([]byte(b.String()))
			require.True(t, connClosedWithin(c, 5*time.Second))
		}
	})
	wg.Wait()

	// The pulls of the bad cameras were retried and counted; the good one plays.
	waitLog(t, p.Logs, "cams/garbage reason=", 2, 20*time.Second)
	waitLog(t, p.Logs, "cams/truncated reason=", 2, 20*time.Second)
	waitLog(t, p.Logs, "stream=__defaultVhost__/cams/good tracks=2", 1, 10*time.Second)
	res := probeUntil(t, p.RTMPURL("cams/good"), 20*time.Second, "video", "audio")
	requireCodecs(t, res, "h264", "pcm_alaw")

	p.Alive(t)
	require.NoError(t, pub.Process.Signal(syscallZero), "the publisher was never disturbed")
	require.NoError(t, player.Process.Signal(syscallZero), "the player was never disturbed")
	res = probeUntil(t, "rtsp://"+addr+"/live/keep", 20*time.Second, "video", "audio")
	requireCodecs(t, res, "h264", "pcm_alaw")
	logs := p.Logs.String()
	require.NotContains(t, logs, "panic")
	require.NotContains(t, logs, "topsecret")
	require.GreaterOrEqual(t, strings.Count(logs, "rtsp connection rejected")+strings.Count(logs, "rtsp session rejected")+
		strings.Count(logs, "rtsp play ended"), 22)
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "rejected") || strings.Contains(line, "rtsp source failed") {
			t.Log(line)
		}
	}
}

// connClosedWithin reports whether the server closes c within d, reading
// (and discarding) whatever it sends meanwhile.
func connClosedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return true
}
