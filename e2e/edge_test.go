package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// twoOrigins is the campus topology in small: a publisher sends one
// stream to a relay that forwards it to two origins, so both carry it on
// the same timeline.
func twoOrigins(t *testing.T, name string) (o1, o2 *podium) {
	t.Helper()
	o1 = startPodium(t, plainYAML())
	o2 = startPodium(t, plainYAML())
	relay := startPodium(t, plainYAML(o1.addr(), o2.addr()))
	publish(t, aacFixture(t), relay.RTMPURL("live/"+name))
	for _, o := range []*podium{o1, o2} {
		probeUntil(t, o.RTMPURL("live/"+name), 30*time.Second, "video", "audio")
	}
	return o1, o2
}

// TestEdgeFailoverKill9: the origin an edge pulls from is killed; the
// edge's RTMP player stalls at most 3 s, never reconnects, and what it
// got has monotonic timestamps on every track.
func TestEdgeFailoverKill9(t *testing.T) {
	o1, o2 := twoOrigins(t, "class")
	edge := startPodium(t, edgeYAML([]string{o1.addr(), o2.addr()}, ""))

	pl := startPlayer(t, edge.RTMPURL("live/class"))
	require.Eventually(t, func() bool { s, _ := pl.grown(); return s > 100<<10 }, 20*time.Second, 50*time.Millisecond,
		"the player gets the stream through the edge\n%s\n%s", pl.logs, edge.Logs)
	pulled := edgePulling(edge)
	require.NotEmpty(t, pulled)
	victim, survivor := o1, o2
	if pulled == o2.addr() {
		victim, survivor = o2, o1
	}
	time.Sleep(2 * time.Second)
	require.Less(t, pl.longestStallSince(time.Now().Add(-2*time.Second)), time.Second, "steady before the kill")

	pl.resetStalls()
	killed := time.Now()
	victim.kill()
	require.Eventually(t, func() bool { return edgePulling(edge) == survivor.addr() }, 5*time.Second, 20*time.Millisecond,
		"the edge moves to the other origin\n%s", edge.Logs)
	time.Sleep(6 * time.Second)
	stall := pl.longestStallSince(killed)
	t.Logf("longest stall after kill -9: %v", stall)
	require.LessOrEqual(t, stall, 3*time.Second, "the player's output stalls at most 3 s")
	_, grewAt := pl.grown()
	require.WithinDuration(t, time.Now(), grewAt, time.Second, "the player still receives")
	require.True(t, pl.running(), "the player never lost its connection:\n%s", pl.logs)
	require.NotContains(t, edge.Logs.String(), `msg="rtmp play ended"`, "the play never ended (no reconnect)")

	// The API shows the switch; /metrics counts it.
	admin := newAPI(t, edge, adminPassword(t, edge))
	var res struct {
		Streams []struct {
			Name     string `json:"name"`
			Upstream *struct {
				Origin    string    `json:"origin"`
				State     string    `json:"state"`
				Since     time.Time `json:"since"`
				Switches  uint64    `json:"switches"`
				LastError string    `json:"last_error"`
			} `json:"upstream"`
		} `json:"streams"`
	}
	require.NoError(t, json.Unmarshal(admin.get("/api/v1/streams"), &res))
	require.Len(t, res.Streams, 1)
	up := res.Streams[0].Upstream
	require.NotNil(t, up)
	require.Equal(t, survivor.addr(), up.Origin)
	require.Equal(t, "playing", up.State)
	require.Equal(t, uint64(1), up.Switches)
	require.WithinDuration(t, killed, up.Since, 3*time.Second)
	require.Contains(t, up.LastError, victim.addr())
	metrics := string(admin.get("/metrics"))
	require.Contains(t, metrics, "podium_edge_pulls_total 1\n")
	require.Contains(t, metrics, "podium_edge_failovers_total 1\n")
	require.Contains(t, metrics, "podium_edge_upstream_errors_total 1\n")

	// The edge's own HLS marks the switch.
	_, playlist, _ := admin.do(http.MethodGet, "/live/class.m3u8", nil)
	require.Contains(t, string(playlist), "#EXT-X-DISCONTINUITY\n", "%s", playlist)

	pl.quit()
	require.Empty(t, nonMonotonic.FindAllString(pl.logs.String(), -1), "player log:\n%s", pl.logs)
	packets := requireMonotonicFile(t, pl.out)
	require.Greater(t, packets["video"], 200)
	require.Greater(t, packets["audio"], 200)
	require.Contains(t, edge.Logs.String(), "edge origin failed")
	edge.Alive(t)
	survivor.Alive(t)
}

// nameStartingAt returns a stream name (prefix + n) that the edge tries
// at origin index want first among n origins: it starts at the FNV-1a
// hash of vhost/app/stream (and then the least busy).
func nameStartingAt(prefix string, want, n int) string {
	for i := 0; ; i++ {
		name := fmt.Sprintf("%s%d", prefix, i)
		h := fnv.New32a()
		_, _ = h.Write([]byte("__defaultVhost__/live/" + name))
		if int(h.Sum32()%uint32(n)) == want {
			return name
		}
	}
}

// TestEdgeFirstOriginLacksStream: the origin the edge tries first accepts
// the play but has no such stream (srs#464); after idle_timeout the edge
// plays it from the second.
func TestEdgeFirstOriginLacksStream(t *testing.T) {
	empty := startPodium(t, plainYAML())
	full := startPodium(t, plainYAML())
	name := nameStartingAt("s", 0, 2)
	publish(t, aacFixture(t), full.RTMPURL("live/"+name))
	probeUntil(t, full.RTMPURL("live/"+name), 30*time.Second, "video", "audio")

	edge := startPodium(t, edgeYAML([]string{empty.addr(), full.addr()}, "      idle_timeout: 2s"))
	start := time.Now()
	res := probeUntil(t, edge.RTMPURL("live/"+name), 20*time.Second, "video", "audio")
	took := time.Since(start)
	v, _ := res.stream("video")
	a, _ := res.stream("audio")
	require.Equal(t, "h264", v)
	require.Equal(t, "aac", a)
	logs := edge.Logs.String()
	require.Regexp(t, `msg="edge origin failed".* origin=`+regexp.QuoteMeta(empty.addr())+`.*no media for 2s`, logs)
	require.Equal(t, full.addr(), edgePulling(edge))
	require.Less(t, took, 10*time.Second, "within idle_timeout of the first origin, plus probing")
}

// TestEdgeNginxOrigin: an edge pulls from nginx-rtmp, a third-party
// origin.
func TestEdgeNginxOrigin(t *testing.T) {
	addr, _ := startNginxHLS(t)
	publish(t, aacFixture(t), "rtmp://"+addr+"/live/cam")
	edge := startPodium(t, edgeYAML([]string{addr}, ""))
	res := probeUntil(t, edge.RTMPURL("live/cam"), 30*time.Second, "video", "audio")
	v, _ := res.stream("video")
	a, _ := res.stream("audio")
	require.Equal(t, "h264", v)
	require.Equal(t, "aac", a)
	require.Equal(t, addr, edgePulling(edge))
}

// TestEdgeStopsAfterLastViewer: the pull stops within idle_close + 5 s of
// the last viewer leaving, and the origin sees its play end.
func TestEdgeStopsAfterLastViewer(t *testing.T) {
	o := startPodium(t, plainYAML())
	publish(t, aacFixture(t), o.RTMPURL("live/lesson"))
	probeUntil(t, o.RTMPURL("live/lesson"), 30*time.Second, "video", "audio")
	edge := startPodium(t, edgeYAML([]string{o.addr()}, "      idle_close: 3s"))

	probeUntil(t, edge.RTMPURL("live/lesson"), 30*time.Second, "video", "audio")
	left := time.Now()
	require.Eventually(t, func() bool { return strings.Contains(edge.Logs.String(), `msg="edge pull stopped"`) },
		3*time.Second+5*time.Second, 50*time.Millisecond, "the pull stops\n%s", edge.Logs)
	t.Logf("pull stopped %v after the last viewer left", time.Since(left))
	require.Contains(t, edge.Logs.String(), "no viewer left")
	require.Eventually(t, func() bool {
		return strings.Count(o.Logs.String(), `msg="rtmp play ended"`) >= 2 // the probe's and the edge's
	}, 5*time.Second, 50*time.Millisecond, "%s", o.Logs)
}

// TestEdgeNotFoundAndStorm: a stream no origin has gets a clear not-found
// within connect_timeout + idle_timeout per origin; a storm of players
// on a cold stream makes one pull.
func TestEdgeNotFoundAndStorm(t *testing.T) {
	o1 := startPodium(t, plainYAML())
	o2 := startPodium(t, plainYAML())
	publish(t, aacFixture(t), o2.RTMPURL("live/hot"))
	probeUntil(t, o2.RTMPURL("live/hot"), 30*time.Second, "video", "audio")
	edge := startPodium(t, edgeYAML([]string{o1.addr(), o2.addr()}, "      idle_timeout: 2s\n      connect_timeout: 1s"))

	// Not found: 2 origins x (1 s + 2 s) = 6 s at most.
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	_, err := ffprobe(ctx, edge.RTMPURL("live/nosuch"))
	cancel()
	took := time.Since(start)
	require.Error(t, err)
	require.Less(t, took, 6*time.Second+time.Second, "not-found within connect_timeout+idle_timeout per origin")
	require.Regexp(t, `msg="edge stream not found on any origin".* stream=__defaultVhost__/live/nosuch`, edge.Logs.String())

	// Storm: 10 players at once on the cold stream "hot".
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := ffprobe(ctx, edge.RTMPURL("live/hot"))
			if err == nil {
				if _, ok := res.stream("video"); !ok {
					err = fmt.Errorf("no video: %+v", res)
				}
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, regexp.MustCompile(`msg="edge pulling".* stream=__defaultVhost__/live/hot`).FindAllString(edge.Logs.String(), -1), 1,
		"one pull for every player\n%s", edge.Logs)
	edge.Alive(t)
}
