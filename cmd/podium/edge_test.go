package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/configs"
	"github.com/podiumlive/podium/ingest/stream"
	rtmpproto "github.com/podiumlive/podium/rtmp"
)

// TestEdgeWiring: a group member's local vhosts pull from the group (a
// transcoding one only redirects), its HLS playlists are demand; an edge
// vhost's group:NAME origins are split from its host:port ones; a box in
// no group keeps its origins as they are.
func TestEdgeWiring(t *testing.T) {
	master := &configs.Config{
		Cluster: &configs.Cluster{Group: "masters", Redirect: true},
		Vhosts: []configs.Vhost{
			{Name: "__defaultVhost__", Transcode: &configs.Transcode{To: "transcode"}},
			{Name: "transcode"},
		},
	}
	onDemand := edgeVhost(master)
	require.False(t, onDemand("__defaultVhost__"), "transcodes: redirects only, never pulls")
	require.True(t, onDemand("transcode"))
	require.False(t, onDemand("nope"))
	c := groupPull(master, master.Vhost("transcode"))
	require.NotNil(t, c)
	require.Equal(t, []string{"masters"}, c.Groups)
	require.True(t, c.OwnerOnly)
	require.True(t, c.Redirect)
	require.True(t, groupPull(master, master.Vhost("__defaultVhost__")).RedirectOnly)
	e := newEdge(master, stream.NewHub(stream.Options{}, nil), rtmpproto.DefaultLimits(), nil, nil)
	require.True(t, e.Serves("transcode"))

	edgeBox := &configs.Config{
		Cluster: &configs.Cluster{},
		Vhosts: []configs.Vhost{{Name: "__defaultVhost__", Cluster: &configs.VhostCluster{
			Mode: configs.ClusterRemote, Origin: []string{"group:masters", "10.0.0.5:1935"}, Vhost: "transcode"}}},
	}
	require.Nil(t, groupPull(edgeBox, &edgeBox.Vhosts[0]), "in no group")
	require.True(t, edgeVhost(edgeBox)("__defaultVhost__"))
	e = newEdge(edgeBox, stream.NewHub(stream.Options{}, nil), rtmpproto.DefaultLimits(), nil, nil)
	st := e.Origins()
	require.Len(t, st, 1, "the static origin; the group is resolved per pull")
	require.Equal(t, "10.0.0.5:1935", st[0].Origin)
}
