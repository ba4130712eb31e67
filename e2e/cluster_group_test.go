package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/podiumlive/podium/configs"
)

// TestClusterGroupCampus is issue 18's campus on 127.0.0.1: a relay
// forwarding to group:masters, two masters (transcoding, forwarding to a
// slave), two edges pulling from group:masters, one Redis, heartbeat
// 500 ms. Ten classes published to the relay at once spread over both
// masters (at least 3 each). kill -9 the master of class0: each of its
// classes plays again on the other master within 3 s; an RTMP player on
// an edge for a moved class never reconnects and stalls at most 3 s; the
// teachers' encoders are never dropped (same publish session on the
// relay); the slave gets the moved classes again, its HLS marking the
// republish with a discontinuity. The killed master,
// restarted, gets new classes again; the moved classes do not move back.
func TestClusterGroupCampus(t *testing.T) {
	c := startCampus(t, 2, 2, "500ms")
	fix := campusFixture(t)

	var classes []string
	var teachers []*publisher
	for i := range 10 {
		cl := fmt.Sprintf("class%d", i)
		classes = append(classes, cl)
		teachers = append(teachers, startPublisher(t, fix, c.relay.RTMPURL("live/"+cl)))
	}
	placed := c.waitPlaced(t, classes, 30*time.Second)
	spread := c.count(placed)
	t.Logf("10 classes over the masters: %v", spread)
	for node, n := range spread {
		require.GreaterOrEqual(t, n, 3, "master %s has %d of 10 classes: %v", node, n, spread)
	}
	sessions := c.liveSince(t, c.relay)
	require.Len(t, sessions, 10, "the relay has every teacher")
	require.Eventually(t, func() bool { return len(c.liveSince(t, c.slave)) == 10 }, 20*time.Second, 200*time.Millisecond,
		"each master forwards the classes it has to the slave\n%s", c.slave.Logs)

	// The registry agrees: each class is claimed by the master that has
	// it, as the relay reads it.
	require.Eventually(t, func() bool {
		owners, _, _ := c.groupView(t, c.relay)
		for cl, m := range placed {
			if owners[cl] != c.node[m] {
				return false
			}
		}
		return true
	}, 5*time.Second, 100*time.Millisecond, "the relay's /api/v1/cluster/groups names each class's master")

	victim := placed["class0"]
	survivor := c.masters[0]
	if survivor == victim {
		survivor = c.masters[1]
	}
	var moved, stayed []string
	for _, cl := range classes {
		if placed[cl] == victim {
			moved = append(moved, cl)
		} else {
			stayed = append(stayed, cl)
		}
	}

	// A student on edge 1 watches a class of the victim, one on edge 2 a
	// class of the survivor. The edge pulls from the class's master.
	watchMoved := startPlayer(t, c.edges[0].RTMPURL("live/"+moved[0]))
	watchStayed := startPlayer(t, c.edges[1].RTMPURL("live/"+stayed[0]))
	for _, pl := range []*player{watchMoved, watchStayed} {
		require.Eventually(t, func() bool { s, _ := pl.grown(); return s > 30<<10 }, 30*time.Second, 50*time.Millisecond,
			"the player gets the class through the edge\n%s\n%s", pl.logs, c.edges[0].Logs)
	}
	require.Equal(t, victim.addr(), edgePulling(c.edges[0]), "edge 1 pulls %s from its master", moved[0])
	require.Equal(t, survivor.addr(), edgePulling(c.edges[1]), "edge 2 pulls %s from its master", stayed[0])
	time.Sleep(2 * time.Second)
	require.Less(t, watchMoved.longestStallSince(time.Now().Add(-2*time.Second)), 1500*time.Millisecond, "steady before the kill")

	// kill -9 the victim; time each of its classes until it receives media
	// on the survivor.
	arr := watchArrivals(t, c, survivor, moved)
	watchMoved.resetStalls()
	watchStayed.resetStalls()
	killed := time.Now()
	victim.kill()
	got := arr.waitAll(moved, 15*time.Second)
	arr.end()
	var took []time.Duration
	for _, cl := range moved {
		require.False(t, got[cl].IsZero(), "%s never reached %s\nrelay:\n%s\nsurvivor:\n%s", cl, c.node[survivor], c.relay.Logs, survivor.Logs)
		took = append(took, got[cl].Sub(killed))
	}
	// With fewer than 100 classes, p99 is the slowest one.
	t.Logf("%d classes moved from %s to %s after kill -9: %v (max %v)", len(moved), c.node[victim], c.node[survivor],
		took, slices.Max(took))
	require.LessOrEqual(t, slices.Max(took), 3*time.Second, "each class plays again on the other master within 3 s")

	// The moved class plays on the survivor: H.264 + AAC.
	res := probeUntil(t, survivor.RTMPURL("live/"+moved[0]+"?vhost=transcode"), 20*time.Second, "video", "audio")
	requireCodecs(t, res, "h264", "aac")

	// The edge's player: no reconnect, stall at most 3 s.
	require.Eventually(t, func() bool { return edgePulling(c.edges[0]) == survivor.addr() }, 10*time.Second, 50*time.Millisecond,
		"edge 1 follows the class to %s\n%s", c.node[survivor], c.edges[0].Logs)
	time.Sleep(time.Until(killed.Add(6 * time.Second)))
	stall := watchMoved.longestStallSince(killed)
	t.Logf("player of the moved class on an edge: longest stall %v after kill -9", stall)
	require.LessOrEqual(t, stall, 3*time.Second, "the edge's player stalls at most 3 s")
	_, grewAt := watchMoved.grown()
	require.WithinDuration(t, time.Now(), grewAt, time.Second, "the player still receives")
	require.True(t, watchMoved.running(), "the player never lost its connection:\n%s", watchMoved.logs)
	require.NotContains(t, c.edges[0].Logs.String(), `msg="rtmp play ended"`, "the play never ended (no reconnect)")
	stallStayed := watchStayed.longestStallSince(killed)
	t.Logf("player of a class that stayed: longest stall %v", stallStayed)
	require.LessOrEqual(t, stallStayed, 3*time.Second, "a class on the survivor is not disturbed")
	require.True(t, watchStayed.running())

	// The relay's groups view: the victim is gone, the survivor owns the
	// moved classes, and a move was logged for each (with its reason).
	require.Eventually(t, func() bool {
		owners, members, moves := c.groupView(t, c.relay)
		if !slices.Equal(members, []string{c.node[survivor]}) {
			return false
		}
		for _, cl := range moved {
			if owners[cl] != c.node[survivor] || !slices.Contains(moves, fmt.Sprintf("%s %s>%s", cl, c.node[victim], c.node[survivor])) {
				return false
			}
		}
		return true
	}, 10*time.Second, 200*time.Millisecond, "the relay's /api/v1/cluster/groups shows the moves")

	// The teachers' encoders: still running, still the same publish on
	// the relay.
	requireTeachersKept(t, c, teachers, sessions)
	// The slave has every class again (the moved ones republished by the
	// survivor).
	require.Eventually(t, func() bool { return len(c.liveSince(t, c.slave)) == 10 }, 15*time.Second, 200*time.Millisecond,
		"the slave gets the moved classes from the new master\n%s", c.slave.Logs)
	res = probeUntil(t, c.slave.RTMPURL("live/"+moved[0]), 20*time.Second, "video", "audio")
	requireCodecs(t, res, "h264", "aac")
	// Its HLS on the slave marks the republish with a discontinuity and
	// goes on (no gap of minutes).
	playlist := fmt.Sprintf("http://127.0.0.1:%d/live/%s.m3u8", c.slave.HTTP, moved[0])
	var seqAfter uint64
	require.Eventually(t, func() bool {
		p, body, err := hlsPlaylist(playlist)
		if err != nil || !regexp.MustCompile(`#EXT-X-DISCONTINUITY\n|#EXT-X-DISCONTINUITY-SEQUENCE:[1-9]`).Match(body) {
			return false
		}
		seqAfter = p.SeqNo + uint64(len(listed(p)))
		return true
	}, 15*time.Second, 200*time.Millisecond, "the slave's HLS of %s marks the move", moved[0])
	require.Eventually(t, func() bool {
		p, _, err := hlsPlaylist(playlist)
		return err == nil && p.SeqNo+uint64(len(listed(p))) >= seqAfter+2
	}, 10*time.Second, 200*time.Millisecond, "the slave's HLS of %s goes on after the move", moved[0])

	// Restart the victim: once the relay sees it, four new classes go to
	// it (it has none, the survivor has ten); the moved classes stay.
	victim.restart(t)
	c.waitNodes(t, c.relay, victim)
	time.Sleep(time.Second) // two heartbeats: the relay's groups have it again
	var fresh []string
	for i := 10; i < 14; i++ {
		cl := fmt.Sprintf("class%d", i)
		fresh = append(fresh, cl)
		teachers = append(teachers, startPublisher(t, fix, c.relay.RTMPURL("live/"+cl)))
	}
	placedNew := c.waitPlaced(t, fresh, 30*time.Second)
	onVictim := 0
	for _, m := range placedNew {
		if m == victim {
			onVictim++
		}
	}
	t.Logf("4 new classes after the restart: %v", c.count(placedNew))
	require.GreaterOrEqual(t, onVictim, 3, "the restarted master gets new classes again: %v", c.count(placedNew))
	for range 3 {
		time.Sleep(time.Second)
		o := c.owners(t)
		for _, cl := range moved {
			require.Equal(t, []*podium{survivor}, o[cl], "%s stays on %s: %s", cl, c.node[survivor], c.describe(o))
		}
	}
	requireTeachersKept(t, c, teachers[:10], sessions)
	require.True(t, watchMoved.running())

	// What the edge's player got across the move is one clean stream.
	watchMoved.quit()
	require.Empty(t, nonMonotonic.FindAllString(watchMoved.logs.String(), -1), "player log:\n%s", watchMoved.logs)
	packets := requireMonotonicFile(t, watchMoved.out)
	require.Greater(t, packets["video"], 100)
	require.Greater(t, packets["audio"], 100)
	for _, p := range append([]*podium{c.relay, survivor, victim, c.slave}, c.edges...) {
		p.Alive(t)
	}
}

// requireTeachersKept: every encoder still runs and its publish on the
// relay is the one of before (the relay never dropped it).
func requireTeachersKept(t *testing.T, c *campus, teachers []*publisher, sessions map[string]int64) {
	t.Helper()
	for i, p := range teachers {
		require.False(t, p.exited(), "teacher %d's encoder was dropped: %s", i, p.out)
	}
	now := c.liveSince(t, c.relay)
	for cl, since := range sessions {
		require.Equal(t, since, now[cl], "%s: the relay kept the teacher's publish (no reconnect)", cl)
	}
	require.NotContains(t, c.relay.Logs.String(), `msg="rtmp publish ended"`)
}

// regexpRedis finds cluster.redis in a per-box file: password, host.
var regexpRedis = regexp.MustCompile(`(?m)^  redis: redis://:([^@]+)@([0-9.]+):6379/0$`)

// campusCompose is the part of configs/campus/compose.yaml the test reads
// (every key it has, so a misspelt one fails).
type campusCompose struct {
	Name     string         `yaml:"name"`
	XPodium  map[string]any `yaml:"x-podium"`
	Services map[string]struct {
		Image string `yaml:"image"`
		Build struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
		Restart   string   `yaml:"restart"`
		DependsOn []string `yaml:"depends_on"`
		Hostname  string   `yaml:"hostname"`
		Command   []string `yaml:"command"`
		Ports     []string `yaml:"ports"`
		Volumes   []string `yaml:"volumes"`
		Networks  map[string]struct {
			IPv4 string `yaml:"ipv4_address"`
		} `yaml:"networks"`
	} `yaml:"services"`
	Networks map[string]struct {
		IPAM struct {
			Config []struct {
				Subnet string `yaml:"subnet"`
			} `yaml:"config"`
		} `yaml:"ipam"`
	} `yaml:"networks"`
	Volumes map[string]any `yaml:"volumes"`
}

// TestCampusConfigs runs the real `podium check` on every per-box file of
// configs/campus and checks that they make the campus of issue 18 (a relay
// to group:masters, masters in the group forwarding to the slaves and the
// recorder, edges pulling from group:masters, one Redis) and that the
// compose file runs each box on its file, at the address the others use.
func TestCampusConfigs(t *testing.T) {
	dir := "../configs/campus"
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	require.NoError(t, err)
	eff := map[string]*configs.Config{}
	raw := map[string]string{}
	for _, f := range files {
		name := filepath.Base(f)
		if name == "compose.yaml" {
			continue
		}
		out, errOut, code := runPodium(t, "check", "--config", f)
		require.Equal(t, 0, code, "podium check --config %s:\n%s", f, errOut)
		cfg, err := configs.Parse([]byte(out), nil)
		require.NoError(t, err, "%s: the effective config parses back", name)
		eff[name] = cfg
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		raw[name] = string(b)
	}
	roles := []string{"relay.yaml", "master1.yaml", "master2.yaml", "edge1.yaml", "edge2.yaml", "slave-a.yaml", "slave-b.yaml", "recorder.yaml"}
	require.ElementsMatch(t, roles, slices.Collect(func(yield func(string) bool) {
		for n := range eff {
			if !yield(n) {
				return
			}
		}
	}))

	// compose.yaml: each box runs the image Dockerfile.nvidia builds, on
	// its own file, at a fixed address of the campus network.
	var cf campusCompose
	b, err := os.ReadFile(filepath.Join(dir, "compose.yaml"))
	require.NoError(t, err)
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&cf))
	ip := map[string]string{} // per-box file (or "redis") -> address
	for name, s := range cf.Services {
		addr := s.Networks["campus"].IPv4
		require.NotEmpty(t, addr, "%s has a fixed address", name)
		require.NotContains(t, ip, addr)
		if name == "redis" {
			require.Contains(t, s.Image, "redis")
			ip["redis"] = addr
			continue
		}
		require.Equal(t, "podium:nvidia", s.Image, name)
		require.Equal(t, "Dockerfile.nvidia", s.Build.Dockerfile, name)
		_, err := os.Stat(filepath.Join(dir, s.Build.Context, s.Build.Dockerfile))
		require.NoError(t, err, "%s: the build context is the repository root", name)
		require.Equal(t, "always", s.Restart, name)
		require.Equal(t, []string{"redis"}, s.DependsOn, name)
		var file string
		for _, v := range s.Volumes {
			if f, ok := strings.CutSuffix(v, ":/etc/podium/podium.yaml:ro"); ok {
				file = strings.TrimPrefix(f, "./")
			}
		}
		require.Contains(t, roles, file, "%s mounts a per-box file", name)
		require.NotContains(t, ip, file, "one service per file")
		ip[file] = addr
		require.Contains(t, s.Volumes, name+"-data:/var/lib/podium", name)
		require.Contains(t, cf.Volumes, name+"-data")
		require.Equal(t, name, s.Hostname)
	}
	for _, r := range roles {
		require.Contains(t, ip, r, "compose runs %s", r)
	}
	require.Len(t, cf.Networks["campus"].IPAM.Config, 1)
	_, subnet, err := net.ParseCIDR(cf.Networks["campus"].IPAM.Config[0].Subnet)
	require.NoError(t, err)
	for f, a := range ip {
		require.True(t, subnet.Contains(net.ParseIP(a)), "%s at %s", f, a)
	}
	require.Contains(t, cf.Services["relay"].Ports, "1935:1935", "teachers reach the relay from outside")
	redisCmd := strings.Join(cf.Services["redis"].Command, " ")
	require.Contains(t, redisCmd, `--save  --appendonly no`, "the registry keeps nothing on disk")

	// Every box shares the one Redis (the file's URL: check prints it
	// masked), with the password compose gives it; node ids differ.
	nodes := map[string]bool{}
	for _, r := range roles {
		c := eff[r]
		require.NotNil(t, c.Cluster, "%s has the cluster section", r)
		require.Equal(t, "/var/lib/podium", c.DataDir, r)
		require.Equal(t, ":1935", c.Listen.RTMP, r)
		m := regexpRedis.FindStringSubmatch(raw[r])
		require.NotNil(t, m, "%s: cluster.redis", r)
		require.Equal(t, ip["redis"], m[2], "%s: the compose Redis' address", r)
		require.Contains(t, redisCmd, "--requirepass "+m[1], "%s: the compose Redis' password", r)
		require.NotEmpty(t, c.Cluster.Node, r)
		require.False(t, nodes[c.Cluster.Node], "%s: node %s is unique", r, c.Cluster.Node)
		nodes[c.Cluster.Node] = true
	}

	// The relay: every class to group:masters, untouched.
	relay := eff["relay.yaml"]
	rv := relay.Vhost(configs.DefaultVhost)
	require.Equal(t, []string{"group:masters"}, rv.Forward.Destinations)
	require.Nil(t, rv.Transcode)
	require.Empty(t, relay.Cluster.Group, "the relay is in no group")

	// The masters: group masters, reachable at their compose address,
	// transcoding into a vhost forwarded to both slaves and the recorder.
	var feeds []string
	for _, r := range []string{"slave-a.yaml", "slave-b.yaml", "recorder.yaml"} {
		feeds = append(feeds, ip[r]+":1935")
	}
	for _, r := range []string{"master1.yaml", "master2.yaml"} {
		m := eff[r]
		require.Equal(t, "masters", m.Cluster.Group, r)
		require.Equal(t, ip[r]+":1935", m.Cluster.RTMP, "%s: cluster.rtmp is the box's address", r)
		in := m.Vhost(configs.DefaultVhost)
		require.NotNil(t, in.Transcode, r)
		require.Equal(t, "aac", in.Transcode.Audio.Codec, r)
		out := m.Vhost(in.Transcode.To)
		require.NotNil(t, out, r)
		require.ElementsMatch(t, feeds, out.Forward.Destinations, r)
		require.Equal(t, 2, out.Forward.HopLimit, "%s: classes come through the relay", r)
		require.Nil(t, in.Forward, "%s: only the converted copy is forwarded", r)
	}
	// The two masters differ only in cluster.node and cluster.rtmp.
	m1, m2 := *eff["master1.yaml"], *eff["master2.yaml"]
	c1, c2 := *m1.Cluster, *m2.Cluster
	c2.Node, c2.RTMP = c1.Node, c1.RTMP
	m1.Cluster, m2.Cluster = &c1, &c2
	require.Equal(t, m1, m2)

	// The edges: pull from group:masters, the masters' converted vhost;
	// students reach them at their compose address.
	for _, r := range []string{"edge1.yaml", "edge2.yaml"} {
		e := eff[r]
		v := e.Vhost(configs.DefaultVhost)
		require.True(t, v.Edge(), r)
		require.Equal(t, []string{"group:masters"}, v.Cluster.Origin, r)
		require.Equal(t, "transcode", v.Cluster.Vhost, r)
		require.Equal(t, "http://"+ip[r]+":8080", e.Cluster.PublicURL, r)
		require.True(t, v.HLS.Enabled, r)
	}
	// The slaves serve HLS; the recorder records and is never handed out.
	for _, r := range []string{"slave-a.yaml", "slave-b.yaml"} {
		require.True(t, eff[r].Vhost(configs.DefaultVhost).HLS.Enabled, r)
		require.Equal(t, "http://"+ip[r]+":8080", eff[r].Cluster.PublicURL, r)
	}
	rec := eff["recorder.yaml"]
	require.True(t, rec.Vhost(configs.DefaultVhost).DVR.Enabled)
	require.NotNil(t, rec.Cluster.Serve)
	require.False(t, *rec.Cluster.Serve)

	// A typo an IT person makes names its key (exit 2).
	tmp := t.TempDir()
	broken := func(name, from, to, key string) {
		t.Helper()
		body := strings.Replace(raw[name], from, to, 1)
		require.NotEqual(t, raw[name], body, "%s has %q", name, from)
		p := filepath.Join(tmp, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		_, errOut, code := runPodium(t, "check", "--config", p)
		require.Equal(t, 2, code, "%s: %s", name, errOut)
		require.Contains(t, errOut, key, name)
	}
	broken("master1.yaml", "group: masters", "group: \"masters 1\"", "cluster.group")
	broken("master2.yaml", `rtmp: "10.20.0.10:1935"`, `rtmp: "10.20.0.10"`, "cluster.rtmp")
	broken("relay.yaml", `["group:masters"]`, `["group:"]`, "vhosts[0].forward.destinations[0]")
	broken("edge1.yaml", `["group:masters"]`, `["group:masters", "group:!"]`, "vhosts[0].cluster.origin[1]")
}
