package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/internal/redistest"
)

// clusterYAML is a cluster section for a box in the test cluster.
func clusterYAML(redisURL, node, line string, httpPort int, heartbeat string) string {
	return fmt.Sprintf(`cluster:
  redis: %s
  node: %s
  line: %q
  public_url: http://127.0.0.1:%d
  heartbeat: %s
`, redisURL, node, line, httpPort, heartbeat)
}

// playAnswer is the allocator's JSON.
type playAnswer struct {
	Code  int    `json:"code"`
	Error string `json:"error"`
	Data  struct {
		Session    string `json:"session"`
		Node       string `json:"node"`
		Line       string `json:"line"`
		URL        string `json:"url"`
		Stale      bool   `json:"stale"`
		OnlyLine   bool   `json:"only_line"`
		Alternates []struct {
			Node string `json:"node"`
			Line string `json:"line"`
			URL  string `json:"url"`
		} `json:"alternates"`
	} `json:"data"`
}

var allocClient = &http.Client{Timeout: 10 * time.Second}

// allocate asks box p's allocator for app/stream with extra query.
func allocate(t *testing.T, p *podium, app, stream, extra string) (int, playAnswer) {
	t.Helper()
	u := fmt.Sprintf("http://127.0.0.1:%d/api/v1/play?app=%s&stream=%s%s", p.HTTP, url.QueryEscape(app), url.QueryEscape(stream), extra)
	res, err := allocClient.Get(u)
	require.NoError(t, err)
	defer res.Body.Close()
	return decodeAnswer(t, res)
}

// switchLine asks box p to move session.
func switchLine(t *testing.T, p *podium, session string) (int, playAnswer) {
	t.Helper()
	body := fmt.Sprintf(`{"session":%q,"reason":"manual"}`, session)
	res, err := allocClient.Post(fmt.Sprintf("http://127.0.0.1:%d/api/v1/play/switch", p.HTTP), "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer res.Body.Close()
	return decodeAnswer(t, res)
}

func decodeAnswer(t *testing.T, res *http.Response) (int, playAnswer) {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	var a playAnswer
	require.NoError(t, json.Unmarshal(b, &a), "%s", b)
	return res.StatusCode, a
}

// clusterNodes lists the node ids box p's registry view holds.
func clusterNodes(t *testing.T, a *api) (ids []string, stale bool) {
	t.Helper()
	var r struct {
		Data struct {
			Nodes []struct {
				ID string `json:"id"`
			} `json:"nodes"`
			Stale bool `json:"stale"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(a.get("/api/v1/cluster/nodes"), &r))
	for _, n := range r.Data.Nodes {
		ids = append(ids, n.ID)
	}
	return ids, r.Data.Stale
}

// testCluster is a master forwarding to Podium slaves that share one
// Redis, with a stream published on the master.
type testCluster struct {
	redis  *redistest.Server
	master *podium
	slaves []*podium
}

// startCluster runs it with n slaves and heartbeat hb (a YAML duration)
// and publishes live/STREAM on the master.
func startCluster(t *testing.T, n int, hb, stream string) *testCluster {
	t.Helper()
	c := &testCluster{redis: redistest.Start(t)}
	var dests []string
	for i := 1; i <= n; i++ {
		rtmp, httpPort := freePort(t), freePort(t)
		s := startPodiumPorts(t, rtmp, httpPort, 0, clusterYAML(c.redis.URL(), fmt.Sprintf("s%d", i), fmt.Sprintf("Line %d", i), httpPort, hb))
		c.slaves = append(c.slaves, s)
		dests = append(dests, fmt.Sprintf("127.0.0.1:%d", rtmp))
	}
	mhttp := freePort(t)
	c.master = startPodiumPorts(t, freePort(t), mhttp, 0, masterYAML(dests...)+clusterYAML(c.redis.URL(), "master", "Master", mhttp, hb))
	publish(t, speexFixture(t), c.master.RTMPURL("live/"+stream))
	return c
}

// waitAllReady waits until the master's view has every slave ready to
// serve stream's HLS. It reads the admin API rather than allocating: an
// allocation reserves a viewer on its node for 30 s, and reservations
// made while only some slaves were ready would expire in the middle of a
// later spread check and skew it (CI once saw 3/23/4 of 30).
func (c *testCluster) waitAllReady(t *testing.T, stream string) {
	t.Helper()
	admin := newAPI(t, c.master, adminPassword(t, c.master))
	var last []byte
	require.Eventually(t, func() bool {
		code, b, _ := admin.do(http.MethodGet, "/api/v1/cluster/streams", nil)
		last = b
		if code != http.StatusOK {
			return false
		}
		var body struct {
			Streams []struct {
				App    string `json:"app"`
				Stream string `json:"stream"`
				Nodes  []struct {
					Node  string `json:"node"`
					Ready bool   `json:"ready"`
					HLS   string `json:"hls"`
				} `json:"nodes"`
			} `json:"streams"`
		}
		if json.Unmarshal(b, &body) != nil {
			return false
		}
		ready := 0
		for _, s := range body.Streams {
			if s.App != "live" || s.Stream != stream {
				continue
			}
			for _, n := range s.Nodes {
				if n.Node != "master" && n.Ready && n.HLS != "" {
					ready++
				}
			}
		}
		return ready == len(c.slaves)
	}, 40*time.Second, 250*time.Millisecond, "the slaves never all became ready: %s", &last)
}

// logTime is the time= of box's first log line containing msg.
func logTime(t *testing.T, p *podium, msg string) time.Time {
	t.Helper()
	for _, l := range strings.Split(p.Logs.String(), "\n") {
		if !strings.Contains(l, msg) {
			continue
		}
		f := strings.Fields(l)
		require.NotEmpty(t, f)
		at, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(f[0], "time="))
		require.NoError(t, err, l)
		return at
	}
	t.Fatalf("no %q in the log:\n%s", msg, p.Logs)
	return time.Time{}
}

// nodeOf is the cluster.node in p's config.
func nodeOf(p *podium) string {
	b, err := os.ReadFile(filepath.Join(p.Dir, "podium.yaml"))
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "node: "); ok {
			return v
		}
	}
	return "?"
}
