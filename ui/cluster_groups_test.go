package ui

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/cluster"
)

// TestClusterGroupsAPI: two masters of group "masters" on the registry;
// /api/v1/cluster/groups (and /cluster/nodes) list the group, its members
// least loaded first with their load inputs, and the owner of each class.
func TestClusterGroupsAPI(t *testing.T) {
	reg := cluster.NewMemory(nil)
	c := cluster.New(reg, cluster.Config{Node: "relay", PublicURL: "http://relay:8080", Heartbeat: time.Second}, func() cluster.Local { return cluster.Local{} }, nil)
	f := newFixture(t, func(d *Deps, _ *Options) { d.Cluster = c })
	ctx := context.Background()
	for _, m := range []struct {
		id      string
		classes []string
		cpu     float64
	}{{"m1", []string{"room1", "room2"}, 0.3}, {"m2", []string{"room3"}, 0.5}} {
		var streams []cluster.Stream
		for _, n := range m.classes {
			streams = append(streams, cluster.Stream{Vhost: "__defaultVhost__", App: "live", Name: n, LastFrameMs: 10})
		}
		box := cluster.New(reg, cluster.Config{Node: m.id, PublicURL: "http://" + m.id + ":8080", Heartbeat: time.Second, Group: "masters", RTMP: m.id + ":1935"},
			func() cluster.Local { return cluster.Local{CPU: m.cpu, Streams: streams} }, nil)
		require.NoError(t, box.Beat(ctx))
	}
	require.NoError(t, c.Beat(ctx))
	var got struct {
		Code   int                 `json:"code"`
		Groups []cluster.GroupInfo `json:"groups"`
		Moves  []cluster.Move      `json:"moves"`
		Data   struct {
			Groups []cluster.GroupInfo `json:"groups"`
			Stale  bool                `json:"stale"`
		} `json:"data"`
	}
	resp, body := f.request(http.MethodGet, "/api/v1/cluster/groups", true, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.NoError(t, json.Unmarshal(body, &got))
	require.Len(t, got.Groups, 1)
	require.Equal(t, got.Groups, got.Data.Groups)
	require.False(t, got.Data.Stale)
	require.NotNil(t, got.Moves)
	g := got.Groups[0]
	require.Equal(t, "masters", g.Name)
	require.Equal(t, []cluster.MemberInfo{
		{Node: "m2", RTMP: "m2:1935", Load: 1.5, Streams: 1, CPU: 0.5},
		{Node: "m1", RTMP: "m1:1935", Load: 2.3, Streams: 2, CPU: 0.3},
	}, g.Members)
	require.Equal(t, map[string]string{
		"__defaultVhost__/live/room1": "m1", "__defaultVhost__/live/room2": "m1", "__defaultVhost__/live/room3": "m2",
	}, g.Owners)
	require.Contains(t, string(body), `"members":[{"node":"m2","rtmp":"m2:1935","load":1.5,"streams":1,"transcodes":0,"cpu":0.5}`)

	_, body = f.request(http.MethodGet, "/api/v1/cluster/nodes", true, nil)
	require.NoError(t, json.Unmarshal(body, &got))
	require.Equal(t, "masters", got.Groups[0].Name)
	require.Equal(t, got.Groups, got.Data.Groups)
}
