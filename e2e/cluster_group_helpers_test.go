package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/internal/redistest"
)

// campusPassword is every campus box's auth.admin_password: the test
// reads each box's /api/v1/streams without waiting for a generated one.
const campusPassword = "campus-e2e-admin"

// campusFixture is a tiny class (to save CPU with ten of them): H.264
// 320x180 10 fps (GOP 1 s) + Speex 16 kHz mono, what a classroom encoder
// sends; the masters transcode the audio to AAC and copy the video.
func campusFixture(t testing.TB) string {
	return fixture(t, "campus-h264-speex-180p",
		"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=10",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000",
		"-t", "10", "-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-pix_fmt", "yuv420p",
		"-c:a", "libspeex", "-ar", "16000", "-ac", "1")
}

// groupClusterYAML is the top-level auth and cluster sections of a campus
// box; group "" = in no group (then rtmpPort is not written).
func groupClusterYAML(redisURL, node, group string, rtmpPort int, hb string) string {
	y := fmt.Sprintf("auth: {admin_password: %s}\ncluster:\n  redis: %s\n  node: %s\n  heartbeat: %s\n",
		campusPassword, redisURL, node, hb)
	if group != "" {
		y += fmt.Sprintf("  group: %s\n  rtmp: \"127.0.0.1:%d\"\n", group, rtmpPort)
	}
	return y
}

// groupMasterYAML is a master's vhosts: __defaultVhost__ transcoded into
// "transcode" (audio to AAC, video copied), which is forwarded to dests.
func groupMasterYAML(dests ...string) string {
	y := `vhosts:
  - name: __defaultVhost__
    transcode:
      to: transcode
      audio: {codec: aac, bitrate: 32k, sample_rate: 44100, channels: 1}
      video: {codec: copy}
  - name: transcode
`
	if len(dests) > 0 {
		y += fmt.Sprintf("    forward: {destinations: [\"%s\"], hop_limit: 2}\n", strings.Join(dests, `", "`))
	}
	return y
}

// campus is the test's origin cluster: a relay forwarding to
// group:masters, the masters (transcoding, forwarding to one slave), the
// edges pulling from group:masters, and one Redis.
type campus struct {
	redis   *redistest.Server
	relay   *podium
	masters []*podium
	edges   []*podium
	slave   *podium
	node    map[*podium]string // cluster.node
}

// startCampus runs it with n masters and e edges on heartbeat hb (YAML),
// and waits until the relay's registry view holds every master.
func startCampus(t *testing.T, n, e int, hb string) *campus {
	t.Helper()
	c := &campus{redis: redistest.Start(t), node: map[*podium]string{}}
	url := c.redis.URL()
	c.slave = startPodium(t, fmt.Sprintf("auth: {admin_password: %s}\nvhosts:\n  - name: __defaultVhost__\n    hls: {enabled: true, fragment: 1s, window: 10}\n", campusPassword))
	for i := 1; i <= n; i++ {
		rtmp := freePort(t)
		node := fmt.Sprintf("m%d", i)
		m := startPodiumPorts(t, rtmp, freePort(t), 0, groupClusterYAML(url, node, "masters", rtmp, hb)+groupMasterYAML(c.slave.addr()))
		c.masters = append(c.masters, m)
		c.node[m] = node
	}
	c.relay = startPodium(t, groupClusterYAML(url, "relay", "", 0, hb)+plainYAML("group:masters"))
	c.node[c.relay] = "relay"
	for i := 1; i <= e; i++ {
		node := fmt.Sprintf("e%d", i)
		edge := startPodium(t, groupClusterYAML(url, node, "", 0, hb)+`vhosts:
  - name: __defaultVhost__
    cluster: {mode: remote, origin: ["group:masters"], vhost: transcode}
`)
		c.edges = append(c.edges, edge)
		c.node[edge] = node
	}
	c.waitNodes(t, c.relay, c.masters...)
	// The relay's groups come from its own registry read, once a
	// heartbeat: two more, and both masters are members there.
	hbd, err := time.ParseDuration(hb)
	require.NoError(t, err)
	time.Sleep(2 * hbd)
	return c
}

// api is an admin client of box p.
func (c *campus) api(t *testing.T, p *podium) *api { return newAPI(t, p, campusPassword) }

// waitNodes waits until box's registry view lists every one of want.
func (c *campus) waitNodes(t *testing.T, box *podium, want ...*podium) {
	t.Helper()
	a := c.api(t, box)
	require.Eventually(t, func() bool {
		ids, _ := clusterNodes(t, a)
		for _, p := range want {
			if !slices.Contains(ids, c.node[p]) {
				return false
			}
		}
		return true
	}, 20*time.Second, 100*time.Millisecond, "%s never saw the masters in the registry\n%s", c.node[box], box.Logs)
}

// liveSince is, for every stream of box p's vhost __defaultVhost__ that
// receives media, when its publish started (Unix ms): a stream a master
// has, the relay's teachers' sessions.
func (c *campus) liveSince(t *testing.T, p *podium) map[string]int64 {
	t.Helper()
	var body struct {
		Streams []struct {
			Path   string `json:"path"`
			LiveMs int64  `json:"live_ms"`
			Recv   uint64 `json:"recv_bytes"`
			Video  *struct {
				Codec string `json:"codec"`
			} `json:"video"`
		} `json:"streams"`
	}
	require.NoError(t, json.Unmarshal(c.api(t, p).get("/api/v1/streams"), &body))
	out := map[string]int64{}
	for _, s := range body.Streams {
		name, ok := strings.CutPrefix(s.Path, "__defaultVhost__/live/")
		if ok && s.Recv > 0 && s.Video != nil {
			out[name] = s.LiveMs
		}
	}
	return out
}

// owners maps each class to the masters that have it published.
func (c *campus) owners(t *testing.T) map[string][]*podium {
	t.Helper()
	out := map[string][]*podium{}
	for _, m := range c.masters {
		if m.cmd.ProcessState != nil { // killed
			continue
		}
		for name := range c.liveSince(t, m) {
			out[name] = append(out[name], m)
		}
	}
	return out
}

// waitPlaced waits until each of classes is on exactly one master and
// returns the master of each.
func (c *campus) waitPlaced(t *testing.T, classes []string, within time.Duration) map[string]*podium {
	t.Helper()
	var last map[string][]*podium
	deadline := time.Now().Add(within)
	for {
		last = c.owners(t)
		placed := map[string]*podium{}
		for _, cl := range classes {
			if len(last[cl]) == 1 {
				placed[cl] = last[cl][0]
			}
		}
		if len(placed) == len(classes) {
			return placed
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("classes not each on one master within %v: %s\nrelay:\n%s", within, c.describe(last), c.relay.Logs)
	return nil
}

// describe prints an owners map as "class0:m1 class1:m1,m2 ...".
func (c *campus) describe(o map[string][]*podium) string {
	var parts []string
	for _, cl := range slices.Sorted(maps.Keys(o)) {
		var ns []string
		for _, m := range o[cl] {
			ns = append(ns, c.node[m])
		}
		parts = append(parts, cl+":"+strings.Join(ns, ","))
	}
	return strings.Join(parts, " ")
}

// count is how many of placed's classes each master has.
func (c *campus) count(placed map[string]*podium) map[string]int {
	out := map[string]int{}
	for _, m := range c.masters {
		out[c.node[m]] = 0
	}
	for _, m := range placed {
		out[c.node[m]]++
	}
	return out
}

// arrivals polls box p every 50 ms and records when each of classes
// first receives media there; stop returns the times.
type arrivals struct {
	mu   sync.Mutex
	at   map[string]time.Time
	stop chan struct{}
	done chan struct{}
}

func watchArrivals(t *testing.T, c *campus, p *podium, classes []string) *arrivals {
	a := &arrivals{at: map[string]time.Time{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-a.stop:
				return
			case <-tick.C:
			}
			now := time.Now()
			live := c.liveSinceQuiet(p)
			a.mu.Lock()
			for _, cl := range classes {
				if _, ok := live[cl]; ok && a.at[cl].IsZero() {
					a.at[cl] = now
				}
			}
			a.mu.Unlock()
		}
	}()
	t.Cleanup(a.end)
	return a
}

// liveSinceQuiet is liveSince for a goroutine: errors read as "nothing".
func (c *campus) liveSinceQuiet(p *podium) map[string]int64 {
	out := map[string]int64{}
	q := &api{t: nil, base: fmt.Sprintf("http://127.0.0.1:%d", p.HTTP), password: campusPassword}
	code, b, err := q.doQuiet("GET", "/api/v1/streams")
	if err != nil || code != 200 {
		return out
	}
	var body struct {
		Streams []struct {
			Path  string `json:"path"`
			Recv  uint64 `json:"recv_bytes"`
			Video *struct {
				Codec string `json:"codec"`
			} `json:"video"`
		} `json:"streams"`
	}
	if json.Unmarshal(b, &body) != nil {
		return out
	}
	for _, s := range body.Streams {
		if name, ok := strings.CutPrefix(s.Path, "__defaultVhost__/live/"); ok && s.Recv > 0 && s.Video != nil {
			out[name] = 1
		}
	}
	return out
}

func (a *arrivals) end() {
	select {
	case <-a.stop:
	default:
		close(a.stop)
	}
	<-a.done
}

// waitAll waits until every one of classes arrived (or within passes).
func (a *arrivals) waitAll(classes []string, within time.Duration) map[string]time.Time {
	deadline := time.Now().Add(within)
	for {
		a.mu.Lock()
		n := 0
		for _, cl := range classes {
			if !a.at[cl].IsZero() {
				n++
			}
		}
		out := maps.Clone(a.at)
		a.mu.Unlock()
		if n == len(classes) || time.Now().After(deadline) {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// campusGroups is the part of /api/v1/cluster/groups the test reads.
type campusGroups struct {
	Data struct {
		Groups []struct {
			Name    string `json:"name"`
			Members []struct {
				Node string  `json:"node"`
				Load float64 `json:"load"`
			} `json:"members"`
			Owners map[string]string `json:"owners"`
		} `json:"groups"`
		Moves []struct {
			Group, Stream, From, To, Reason string
		} `json:"moves"`
	} `json:"data"`
}

// groupView is box p's view of group "masters": class → owner node,
// members (least loaded first), and the moves it logged.
func (c *campus) groupView(t *testing.T, p *podium) (owners map[string]string, members []string, moves []string) {
	t.Helper()
	var g campusGroups
	require.NoError(t, json.Unmarshal(c.api(t, p).get("/api/v1/cluster/groups"), &g))
	owners = map[string]string{}
	for _, gr := range g.Data.Groups {
		if gr.Name != "masters" {
			continue
		}
		for k, n := range gr.Owners {
			if cl, ok := strings.CutPrefix(k, "__defaultVhost__/live/"); ok {
				owners[cl] = n
			}
		}
		for _, m := range gr.Members {
			members = append(members, m.Node)
		}
	}
	for _, m := range g.Data.Moves {
		if m.Group == "masters" && m.Reason != "" {
			moves = append(moves, fmt.Sprintf("%s %s>%s", strings.TrimPrefix(m.Stream, "__defaultVhost__/live/"), m.From, m.To))
		}
	}
	return owners, members, moves
}
