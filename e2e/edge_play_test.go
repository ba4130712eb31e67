package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/internal/browsertest"
)

// TestEdgeHLS: the first playlist request on an edge starts the pull and
// is answered once a segment is listed (within 10 s); ffprobe sees h264 +
// aac; hls.js in Chromium plays it.
func TestEdgeHLS(t *testing.T) {
	o := startPodium(t, plainYAML())
	publish(t, aacFixture(t), o.RTMPURL("live/lecture"))
	probeUntil(t, o.RTMPURL("live/lecture"), 30*time.Second, "video", "audio")
	edge := startPodium(t, edgeYAML([]string{o.addr()}, ""))

	url := fmt.Sprintf("http://127.0.0.1:%d/live/lecture.m3u8", edge.HTTP)
	start := time.Now()
	res, err := (&http.Client{Timeout: 15 * time.Second}).Get(url)
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	took := time.Since(start)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s\n%s", body, edge.Logs)
	require.Contains(t, string(body), "#EXTINF")
	require.Less(t, took, 10*time.Second, "the first playlist within 10 s")
	t.Logf("first edge playlist after %v", took)

	probe := probeUntil(t, url, 30*time.Second, "video", "audio")
	v, _ := probe.stream("video")
	a, _ := probe.stream("audio")
	require.Equal(t, "h264", v)
	require.Equal(t, "aac", a)

	// A stream no origin has: 404, not a hang.
	start = time.Now()
	res, err = (&http.Client{Timeout: 15 * time.Second}).Get(fmt.Sprintf("http://127.0.0.1:%d/live/absent.m3u8", edge.HTTP))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	require.Less(t, time.Since(start), 11*time.Second)

	browser := browsertest.New(t)
	pages := browsertest.Pages(t)
	r := browser.Play(pages, "hls", url, 5)
	t.Logf("hls.js on the edge: %v", r)
}

// TestEdgeHTTPFLV: an HTTP-FLV play on an edge starts the pull; ffprobe
// sees h264 + aac, and mpegts.js in Chromium plays it.
func TestEdgeHTTPFLV(t *testing.T) {
	o := startPodium(t, plainYAML())
	publish(t, aacFixture(t), o.RTMPURL("live/flvclass"))
	probeUntil(t, o.RTMPURL("live/flvclass"), 30*time.Second, "video", "audio")
	edge := startPodium(t, edgeYAML([]string{o.addr()}, ""))

	url := fmt.Sprintf("http://127.0.0.1:%d/live/flvclass.flv", edge.HTTP)
	probe := probeUntil(t, url, 30*time.Second, "video", "audio")
	v, _ := probe.stream("video")
	a, _ := probe.stream("audio")
	require.Equal(t, "h264", v)
	require.Equal(t, "aac", a)
	require.Equal(t, o.addr(), edgePulling(edge))

	browser := browsertest.New(t)
	r := browser.Play(browsertest.Pages(t), "flv", url, 3)
	t.Logf("mpegts.js on the edge: %v", r)
}

// TestEdgeFailoverKill9HTTPFLV is TestEdgeFailoverKill9 with an HTTP-FLV
// player: it stalls at most 3 s, keeps its one connection, and its
// timestamps stay monotonic.
func TestEdgeFailoverKill9HTTPFLV(t *testing.T) {
	o1, o2 := twoOrigins(t, "flvkill")
	edge := startPodium(t, edgeYAML([]string{o1.addr(), o2.addr()}, ""))

	pl := startPlayer(t, fmt.Sprintf("http://127.0.0.1:%d/live/flvkill.flv", edge.HTTP))
	require.Eventually(t, func() bool { s, _ := pl.grown(); return s > 100<<10 }, 20*time.Second, 50*time.Millisecond,
		"the player gets the stream through the edge\n%s\n%s", pl.logs, edge.Logs)
	victim, survivor := o1, o2
	if edgePulling(edge) == o2.addr() {
		victim, survivor = o2, o1
	}
	time.Sleep(2 * time.Second)
	pl.resetStalls()
	killed := time.Now()
	victim.kill()
	require.Eventually(t, func() bool { return edgePulling(edge) == survivor.addr() }, 5*time.Second, 20*time.Millisecond,
		"the edge moves to the other origin\n%s", edge.Logs)
	time.Sleep(6 * time.Second)
	stall := pl.longestStallSince(killed)
	t.Logf("longest HTTP-FLV stall after kill -9: %v", stall)
	require.LessOrEqual(t, stall, 3*time.Second)
	require.True(t, pl.running(), "the player never lost its connection:\n%s", pl.logs)
	require.False(t, strings.Contains(edge.Logs.String(), `msg="flv play ended"`), "the play never ended\n%s", edge.Logs)
	pl.quit()
	require.Empty(t, nonMonotonic.FindAllString(pl.logs.String(), -1), "player log:\n%s", pl.logs)
	packets := requireMonotonicFile(t, pl.out)
	require.Greater(t, packets["video"], 200)
	require.Greater(t, packets["audio"], 200)
}
