package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/internal/redistest"
)

// TestClusterEdgeLine: an edge box (a vhost with cluster mode remote) that
// does not have the class yet is a line for HTTP-FLV: the allocator hands
// it out and the URL plays, pulled from the origin on demand. For HLS
// nothing would pull: no node, until the edge has the class live (then
// its HLS is a line too).
func TestClusterEdgeLine(t *testing.T) {
	rd := redistest.Start(t)
	oHTTP, eHTTP := freePort(t), freePort(t)
	origin := startPodiumPorts(t, freePort(t), oHTTP, 0, plainYAML()+clusterYAML(rd.URL(), "origin", "Origin", oHTTP, "1s"))
	edge := startPodiumPorts(t, freePort(t), eHTTP, 0, edgeYAML([]string{origin.addr()}, "")+clusterYAML(rd.URL(), "edge", "Edge", eHTTP, "1s"))
	publish(t, speexFixture(t), origin.RTMPURL("live/room5"))

	// Known (the origin reports it), but no line for HLS yet.
	require.Eventually(t, func() bool {
		code, _ := allocate(t, origin, "live", "room5", "&proto=hls")
		return code == http.StatusServiceUnavailable
	}, 20*time.Second, 300*time.Millisecond, "the class never became known")

	var a playAnswer
	require.Eventually(t, func() bool {
		code, x := allocate(t, origin, "live", "room5", "&proto=flv")
		a = x
		return code == http.StatusOK
	}, 20*time.Second, 300*time.Millisecond, "no allocation: %+v", a)
	require.Equal(t, "edge", a.Data.Node, "the origin serves no players (no HLS, not an edge)")
	require.Equal(t, fmt.Sprintf("http://127.0.0.1:%d/live/room5.flv", eHTTP), a.Data.URL)
	res := probeUntil(t, a.Data.URL, 20*time.Second, "video")
	v, _ := res.stream("video")
	require.Equal(t, "h264", v)
	require.Equal(t, origin.addr(), edgePulling(edge))

	// While the edge pulls, its HLS is ready: a line for HLS too.
	require.Eventually(t, func() bool {
		code, x := allocate(t, origin, "live", "room5", "&proto=hls")
		return code == http.StatusOK && x.Data.Node == "edge"
	}, 20*time.Second, 300*time.Millisecond)
}
