package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/internal/browsertest"
)

// TestHTTPFLVPlaysInBrowser: mpegts.js (vendored) in Chromium plays the
// transcoded twin of an H.264 + Speex publish over HTTP-FLV, from a page on
// another origin (so CORS is checked too), close to the live edge.
func TestHTTPFLVPlaysInBrowser(t *testing.T) {
	p := startPodium(t, twinVhosts)
	publish(t, speexFixture(t), p.RTMPURL("live/cam1"))
	src := fmt.Sprintf("http://127.0.0.1:%d/live/cam1.flv?vhost=transcode", p.HTTP)
	probeUntil(t, src, 30*time.Second, "video", "audio")

	res := browsertest.New(t).Play(browsertest.Pages(t), "flv", src, 6)
	t.Logf("mpegts.js: %v", res)
	require.Nil(t, res["fatal"], "%v", res)
	require.GreaterOrEqual(t, res["advanced"], 6.0, "%v", res)
	mi, ok := res["mediaInfo"].(map[string]any)
	require.True(t, ok, "no media info: %v", res)
	vc, _ := mi["videoCodec"].(string)
	ac, _ := mi["audioCodec"].(string)
	require.True(t, strings.HasPrefix(vc, "avc1"), "video codec %q", vc)
	require.True(t, strings.HasPrefix(ac, "mp4a"), "audio codec %q", ac)
	require.EqualValues(t, 320, mi["width"])
	lat, ok := res["liveLatency"].(float64)
	require.True(t, ok, "%v", res)
	require.Less(t, lat, 2.0, "buffered ahead of the playhead (HLS is 6-10 s)")
	stall, _ := res["stallMs"].(float64)
	require.Less(t, stall, 3000.0, "playback stalled (the box may be loaded: the bar has margin)")
}
