package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/internal/browsertest"
	"github.com/podiumlive/podium/internal/redistest"
)

// groupsAnswer is GET /api/v1/cluster/groups.
type groupsAnswer struct {
	Groups []struct {
		Name    string `json:"name"`
		Members []struct {
			Node    string  `json:"node"`
			RTMP    string  `json:"rtmp"`
			Load    float64 `json:"load"`
			Streams int     `json:"streams"`
		} `json:"members"`
		Owners map[string]string `json:"owners"`
	} `json:"groups"`
	Moves []struct {
		Stream string `json:"stream"`
		From   string `json:"from"`
		To     string `json:"to"`
		Reason string `json:"reason"`
	} `json:"moves"`
}

// TestClusterClaims: two masters in group "masters" on one Redis. Each
// claims the classes published to it; a class published to both has one
// owner (the first); when that owner's publisher stops, the claim is
// released at once and the other master takes it (a move, reason
// released); the API and the Cluster page show members, owners, moves.
func TestClusterClaims(t *testing.T) {
	srv := redistest.Start(t)
	var boxes []*podium
	for _, id := range []string{"m1", "m2"} {
		rtmp, http := freePort(t), freePort(t)
		boxes = append(boxes, startPodiumPorts(t, rtmp, http, 0, clusterYAML(srv.URL(), id, id, http, "1s")+"  group: masters\n"))
	}
	m1, m2 := boxes[0], boxes[1]
	file := speexFixture(t)
	publish(t, file, m1.RTMPURL("live/room1"))
	publish(t, file, m2.RTMPURL("live/room2"))
	first := publish(t, file, m1.RTMPURL("live/room3"))
	admin := newAPI(t, m1, adminPassword(t, m1))
	read := func(a *api) groupsAnswer {
		var g groupsAnswer
		require.NoError(t, json.Unmarshal(a.get("/api/v1/cluster/groups"), &g))
		return g
	}
	const k1, k2, k3 = "__defaultVhost__/live/room1", "__defaultVhost__/live/room2", "__defaultVhost__/live/room3"
	owners := func(a *api) map[string]string {
		g := read(a)
		if len(g.Groups) != 1 {
			return nil
		}
		return g.Groups[0].Owners
	}
	require.Eventually(t, func() bool {
		o := owners(admin)
		return o[k1] == "m1" && o[k2] == "m2" && o[k3] == "m1"
	}, 15*time.Second, 100*time.Millisecond, "%v", owners(admin))
	g := read(admin)
	require.Equal(t, "masters", g.Groups[0].Name)
	require.Len(t, g.Groups[0].Members, 2)
	rtmpOf := map[string]string{}
	for _, m := range g.Groups[0].Members {
		rtmpOf[m.Node] = m.RTMP
	}
	require.Equal(t, map[string]string{"m1": fmt.Sprintf("127.0.0.1:%d", m1.RTMP), "m2": fmt.Sprintf("127.0.0.1:%d", m2.RTMP)}, rtmpOf)
	// The order by load is the unit tests' (cluster.TestDirectory): here
	// both boxes share a busy host's CPU, which dominates above 80%.
	for _, m := range g.Groups[0].Members {
		require.Equal(t, map[string]int{"m1": 2, "m2": 1}[m.Node], m.Streams, m.Node)
		require.GreaterOrEqual(t, m.Load, float64(m.Streams))
	}
	t.Logf("members by load: %+v", g.Groups[0].Members)

	// The same class on m2 too: m1 keeps it.
	publish(t, file, m2.RTMPURL("live/room3"))
	time.Sleep(2500 * time.Millisecond)
	require.Equal(t, "m1", owners(admin)[k3])

	// m1's publisher of room3 stops: m1 releases it on the unpublish, m2
	// claims it within its next heartbeat (1 s).
	require.NoError(t, first.Process.Kill())
	stopped := time.Now()
	require.Eventually(t, func() bool { return owners(admin)[k3] == "m2" }, 5*time.Second, 50*time.Millisecond)
	t.Logf("room3 moved to m2 %v after its publisher on m1 stopped", time.Since(stopped).Round(10*time.Millisecond))
	require.Less(t, time.Since(stopped), 3*time.Second)
	g = read(admin)
	require.NotEmpty(t, g.Moves)
	require.Equal(t, k3, g.Moves[0].Stream)
	require.Equal(t, "m1", g.Moves[0].From)
	require.Equal(t, "m2", g.Moves[0].To)
	require.Equal(t, "released", g.Moves[0].Reason)
	require.Contains(t, m1.Logs.String(), `msg="class moved" component=cluster group=masters stream=__defaultVhost__/live/room3 from=m1 to=m2 reason=released`)

	// podium cluster lists the group too.
	out, errOut, code := runPodium(t, "cluster", "--config", filepath.Join(m1.Dir, "podium.yaml"))
	require.Equal(t, 0, code, "%s", errOut)
	require.Contains(t, out, "group masters (2 live members)")
	require.Regexp(t, `(?m)^m2\s+127\.0\.0\.1:\d+\s+[\d.]+\s+2\s+2\s+\d+%\s+`+k2+` `+k3, out)
	out, errOut, code = runPodium(t, "cluster", "--json", "--config", filepath.Join(m1.Dir, "podium.yaml"))
	require.Equal(t, 0, code, "%s", errOut)
	var cli groupsAnswer
	require.NoError(t, json.Unmarshal([]byte(out), &cli))
	require.Len(t, cli.Groups, 1)
	require.Equal(t, "m2", cli.Groups[0].Owners[k3])

	// The Cluster page shows the group, each member's classes, the move.
	base := fmt.Sprintf("http://127.0.0.1:%d", m1.HTTP)
	tab := browsertest.New(t).Tab()
	tab.Go(base + "/cluster")
	tab.Type("#password", admin.password)
	tab.Click("#submit")
	tab.Wait(fmt.Sprintf(`location.href === %q`, base+"/"), 15*time.Second)
	tab.Go(base + "/cluster")
	tab.Wait(`document.querySelectorAll('#groups .group[data-group="masters"] tbody tr').length === 2`, 15*time.Second)
	require.Contains(t, tab.Text("#groups"), "group:masters")
	rows := func(sel string) string {
		return browsertest.Eval[string](tab, `[...document.querySelectorAll('`+sel+` tbody tr')].map(r => [...r.cells].map(c => c.textContent).join('|')).join('\n')`)
	}
	members := rows("#groups .group")
	// Member | RTMP | Load | Classes | Transcodes | CPU | Owns (the
	// default config transcodes each class).
	require.Regexp(t, `(?m)^m1\|127\.0\.0\.1:\d+\|[\d.]+\|1\|1\|\d+%\|`+k1+`, transcode/live/room1$`, members)
	require.Regexp(t, `(?m)^m2\|127\.0\.0\.1:\d+\|[\d.]+\|2\|2\|\d+%\|`+k2+`, `+k3+`, `, members)
	tab.Wait(`document.querySelectorAll('#moves tbody tr').length >= 1`, 10*time.Second)
	require.Contains(t, rows("#moves"), "|masters|"+k3+"|m1|m2|released")
	require.Empty(t, tab.Errors())
}
