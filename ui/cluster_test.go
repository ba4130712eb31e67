package ui

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/cluster"
)

// clusterFixture is a UI whose allocator runs on an in-memory registry
// holding two slaves with live/room101 ready.
func clusterFixture(t *testing.T, edit ...func(*Deps, *Options)) (*fixture, *cluster.Cluster) {
	t.Helper()
	reg := cluster.NewMemory(nil)
	c := cluster.New(reg, cluster.Config{Node: "self", PublicURL: "http://self:8080", Heartbeat: time.Second}, func() cluster.Local { return cluster.Local{} }, nil)
	for _, id := range []string{"s1", "s2"} {
		b, err := json.Marshal(cluster.Node{V: 1, ID: id, Kind: cluster.KindPodium, Line: "Line " + id, URL: "http://" + id + ":8080",
			Serve: true, State: cluster.StateServing, HeartbeatMs: 1000,
			Streams: []cluster.Stream{{Vhost: "transcode", App: "live", Name: "room101", HLS: "/live/room101.m3u8"}}})
		require.NoError(t, err)
		require.NoError(t, reg.Announce(context.Background(), id, id, b, time.Minute, 0))
	}
	require.NoError(t, c.Beat(context.Background()))
	all := append([]func(*Deps, *Options){func(d *Deps, _ *Options) { d.Cluster = c }}, edit...)
	return newFixture(t, all...), c
}

func TestPlayAPI(t *testing.T) {
	f, _ := clusterFixture(t)
	resp, body := f.request(http.MethodGet, "/api/v1/play?app=live&stream=room101", false, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
	var a struct {
		Code int            `json:"code"`
		Data cluster.Answer `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &a))
	require.Equal(t, 0, a.Code)
	require.Contains(t, []string{"s1", "s2"}, a.Data.Node)
	require.Equal(t, "http://"+a.Data.Node+":8080/live/room101.m3u8", a.Data.URL)
	require.Len(t, a.Data.Alternates, 1)
	require.Equal(t, "Line "+a.Data.Node, a.Data.Line)

	resp, body = f.request(http.MethodPost, "/api/v1/play/switch", false, []byte(`{"session":"`+a.Data.Session+`"}`), "Content-Type", "application/json")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	var b struct {
		Data cluster.Answer `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &b))
	require.NotEqual(t, a.Data.Node, b.Data.Node)
	require.Equal(t, a.Data.Session, b.Data.Session)

	for path, want := range map[string]int{
		"/api/v1/play?app=live&stream=nosuch":          404,
		"/api/v1/play?app=live":                        400,
		"/api/v1/play?app=..&stream=room101":           400,
		"/api/v1/play?app=live&stream=a%2F..%2Fb":      400,
		"/api/v1/play?app=live&stream=room101&proto=x": 400,
	} {
		resp, body := f.request(http.MethodGet, path, false, nil)
		require.Equal(t, want, resp.StatusCode, "%s: %s", path, body)
		require.Contains(t, string(body), `"code":`+strconv.Itoa(want), path)
	}
	for _, body := range []string{`{"session":"ps_00aa"}`, `{"session":"nope"}`} {
		resp, b := f.request(http.MethodPost, "/api/v1/play/switch", false, []byte(body), "Content-Type", "application/json")
		require.Equal(t, http.StatusNotFound, resp.StatusCode, "%s", b)
		require.Contains(t, string(b), `"code":404`)
	}
	resp, _ = f.request(http.MethodPost, "/api/v1/play/switch", false, []byte(`not json`))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	// A form post or the query string carry the session too.
	resp, body = f.request(http.MethodPost, "/api/v1/play/switch", false, []byte("session="+a.Data.Session), "Content-Type", "application/x-www-form-urlencoded")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	resp, body = f.request(http.MethodPost, "/api/v1/play/switch?session="+a.Data.Session, false, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	// A line by its name or its node id.
	for _, line := range []string{"Line%20s2", "s2"} {
		resp, body = f.request(http.MethodGet, "/api/v1/play?app=live&stream=room101&line="+line, false, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, string(body), `"node":"s2"`)
	}

	// The admin API is not public.
	resp, _ = f.request(http.MethodGet, "/api/v1/cluster/nodes", false, nil)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	var nodes struct {
		Nodes []map[string]any `json:"nodes"`
		Data  struct {
			Nodes []cluster.NodeInfo `json:"nodes"`
			Stale bool               `json:"stale"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(f.get("/api/v1/cluster/nodes"), &nodes))
	require.Len(t, nodes.Data.Nodes, 3)
	require.Len(t, nodes.Nodes, 3, "the list at the top level too")
	for _, n := range nodes.Nodes {
		require.Equal(t, n["id"], n["node"])
		for _, k := range []string{"line", "state", "viewers", "egress_bps", "cpu", "streams", "heartbeat_age_ms", "url"} {
			require.Contains(t, n, k)
		}
	}
	var streams struct {
		Data struct {
			Streams []cluster.StreamInfo `json:"streams"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(f.get("/api/v1/cluster/streams"), &streams))
	require.Len(t, streams.Data.Streams, 1)
	require.Len(t, streams.Data.Streams[0].Nodes, 2)
}

func TestPlayRateLimit(t *testing.T) {
	f, _ := clusterFixture(t, func(_ *Deps, o *Options) { o.PlayBurst, o.PlayRefill = 5, time.Hour })
	for range 5 {
		resp, body := f.request(http.MethodGet, "/api/v1/play?app=live&stream=room101", false, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	}
	resp, body := f.request(http.MethodGet, "/api/v1/play?app=live&stream=room101", false, nil)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Contains(t, string(body), `"code":429`)
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
}

func TestSRSRegisterAndWatchPage(t *testing.T) {
	f, _ := clusterFixture(t)
	body := `{"device_id":"edge1","ip":"192.168.1.30","server":"vid-1","service":"abc","pid":"99","rtmp":["1935"],"http":["8081"],"api":["1985"]}`
	resp, b := f.request(http.MethodPost, "/api/v1/srs/register", false, []byte(body), "Content-Type", "application/json")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	require.Contains(t, string(b), `"code":0`)
	resp, b = f.request(http.MethodPost, "/api/v1/srs/register", false, []byte(`{"ip":"x"}`))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s", b)

	var nodes struct {
		Data struct {
			Nodes []cluster.NodeInfo `json:"nodes"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(f.get("/api/v1/cluster/nodes"), &nodes))
	var srs *cluster.NodeInfo
	for i := range nodes.Data.Nodes {
		if nodes.Data.Nodes[i].ID == "srs-edge1" {
			srs = &nodes.Data.Nodes[i]
		}
	}
	require.NotNil(t, srs, "%+v", nodes)
	require.Equal(t, "http://192.168.1.30:8081", srs.URL)
	require.Equal(t, cluster.KindSRS, srs.Kind)

	resp, b = f.request(http.MethodGet, "/watch/live/room101", false, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(b), `id="switch"`)
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "connect-src *")
	require.Empty(t, resp.Header.Get("X-Frame-Options"), "an LMS may frame it")
	resp, _ = f.request(http.MethodGet, "/watch/live/..", false, nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, _ = f.request(http.MethodGet, "/assets/watch.js", false, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
