package e2e

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/internal/redistest"
	"github.com/podiumlive/podium/rtmp"
)

// groupMember is a box of group "masters" on the test registry (a plain
// __defaultVhost__ with an optional forward; redirect sets
// cluster.redirect).
func groupMember(t *testing.T, redisURL, node string, redirect bool, forwardTo ...string) *podium {
	t.Helper()
	httpPort := freePort(t)
	y := plainYAML(forwardTo...) + clusterYAML(redisURL, node, node, httpPort, "500ms") +
		fmt.Sprintf("  group: masters\n  redirect: %t\n", redirect)
	return startPodiumPorts(t, freePort(t), httpPort, 0, y)
}

// TestClusterGroupEdge: an edge with origin group:masters pulls a class
// from the member that owns it in the registry; when that master is
// killed (-9) the edge goes to the other member at once (its RTMP player
// stalls ≤ 3 s and never reconnects); a member that does not have a class
// pulls it from the owner for an HTTP-FLV player, and with
// cluster.redirect sends an RTMP player to the owner with an RTMP 302.
func TestClusterGroupEdge(t *testing.T) {
	redis := redistest.Start(t)
	m1 := groupMember(t, redis.URL(), "m1", false)
	m2 := groupMember(t, redis.URL(), "m2", false)
	m3 := groupMember(t, redis.URL(), "m3", true)
	relay := startPodium(t, plainYAML(m1.addr(), m2.addr()))
	httpEdge := freePort(t)
	edge := startPodiumPorts(t, freePort(t), httpEdge, 0,
		edgeYAML([]string{"group:masters"}, "")+clusterYAML(redis.URL(), "edge", "edge", httpEdge, "500ms"))

	publish(t, aacFixture(t), relay.RTMPURL("live/class"))
	for _, m := range []*podium{m1, m2} {
		probeUntil(t, m.RTMPURL("live/class"), 30*time.Second, "video", "audio")
	}
	// Both have it; one claimed it first: the edge pulls from that one.
	time.Sleep(1500 * time.Millisecond) // a registry read on every box

	pl := startPlayer(t, edge.RTMPURL("live/class"))
	require.Eventually(t, func() bool { s, _ := pl.grown(); return s > 100<<10 }, 20*time.Second, 50*time.Millisecond,
		"the player gets the class through the edge\n%s", edge.Logs)
	pulled := edgePulling(edge)
	require.Contains(t, []string{m1.addr(), m2.addr()}, pulled, edge.Logs.String())

	// m3 has no such class: RTMP gets a 302 to the owner; HTTP-FLV there
	// pulls it from the owner.
	p, err := rtmp.DialPull(context.Background(), m3.RTMPURL("live/class"), rtmp.PullOptions{ConnectTimeout: 5 * time.Second})
	require.NoError(t, err)
	require.Equal(t, 1, p.Redirects, "an RTMP 302 followed")
	videos := 0
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err = p.Run(ctx, 5*time.Second, func(m rtmp.Message) error {
		if m.Type == rtmp.TypeVideo {
			if videos++; videos >= 20 {
				return errStopPlay
			}
		}
		return nil
	})
	cancel()
	p.Close()
	require.ErrorIs(t, err, errStopPlay)
	require.Contains(t, m3.Logs.String(), `msg="rtmp play redirected"`)

	// (a copy pulled here is played here: no 302 while it lasts)
	flv := probeUntil(t, fmt.Sprintf("http://127.0.0.1:%d/live/class.flv", m3.HTTP), 20*time.Second, "video", "audio")
	codec, _ := flv.stream("audio")
	require.Equal(t, "aac", codec)
	require.Regexp(t, `msg="edge pulling".*origin=`+regexp.QuoteMeta(pulled), m3.Logs.String(),
		"m3 pulled from the owner, the same member the edge chose")

	// kill -9 the owner: the edge moves to the other member at once.
	victim, survivor := m1, m2
	if pulled == m2.addr() {
		victim, survivor = m2, m1
	}
	time.Sleep(2 * time.Second)
	pl.resetStalls()
	killed := time.Now()
	victim.kill()
	require.Eventually(t, func() bool { return edgePulling(edge) == survivor.addr() }, 5*time.Second, 20*time.Millisecond,
		"the edge moves to the other member\n%s", edge.Logs)
	time.Sleep(5 * time.Second)
	stall := pl.longestStallSince(killed)
	t.Logf("longest stall after kill -9 of the owner: %v", stall)
	require.LessOrEqual(t, stall, 3*time.Second)
	require.True(t, pl.running(), "the player never lost its connection:\n%s", pl.logs)
	require.NotContains(t, edge.Logs.String(), `msg="rtmp play ended"`)
	pl.quit()
	require.Empty(t, nonMonotonic.FindAllString(pl.logs.String(), -1), "player log:\n%s", pl.logs)
	edge.Alive(t)
	survivor.Alive(t)
	m3.Alive(t)
}

var errStopPlay = errors.New("enough")
