package configs

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestClusterSection(t *testing.T) {
	c, err := Parse([]byte(""), nil)
	require.NoError(t, err)
	require.Nil(t, c.Cluster, "absent: a box alone")

	c, err = Parse([]byte("cluster: {node: slave-a}\n"), nil)
	require.NoError(t, err)
	require.NotNil(t, c.Cluster)
	require.Equal(t, "slave-a", c.Cluster.Node)
	require.Equal(t, 2*time.Second, c.Cluster.Heartbeat.Std(), "default heartbeat")
	require.Nil(t, c.Cluster.Serve, "serve: decided from the vhosts")
	require.Equal(t, 0, c.Cluster.MaxViewers)

	c, err = Parse([]byte(`cluster:
  redis: redis://:pw@127.0.0.1:6379/0
  node: slave-a
  line: "Campus A 校区"
  public_url: http://10.0.0.6:8080
  serve: false
  max_viewers: 800
  heartbeat: 500ms
  play_secret: 0123456789abcdef0123
`), []string{"PODIUM_CLUSTER_MAX_VIEWERS=900"})
	require.NoError(t, err)
	require.Equal(t, 900, c.Cluster.MaxViewers)
	require.False(t, *c.Cluster.Serve)
	out, err := c.YAML()
	require.NoError(t, err)
	back, err := Parse(out, nil)
	require.NoError(t, err)
	require.Equal(t, c.Cluster, back.Cluster)

	bad := map[string]string{
		"cluster: {redis: http://127.0.0.1:6379}\n":      "cluster.redis",
		"cluster: {redis: \"redis://:secret@:6379\"}\n":  "cluster.redis",
		"cluster: {redis: redis://127.0.0.1:99999/0}\n":  "cluster.redis",
		"cluster: {redis: redis://127.0.0.1:6379/x}\n":   "cluster.redis",
		"cluster: {node: \"a/b\"}\n":                     "cluster.node",
		"cluster: {public_url: 10.0.0.6:8080}\n":         "cluster.public_url",
		"cluster: {public_url: \"http://h:8080/x?y\"}\n": "cluster.public_url",
		"cluster: {max_viewers: -1}\n":                   "cluster.max_viewers",
		"cluster: {heartbeat: 10ms}\n":                   "cluster.heartbeat",
		"cluster: {heartbeat: 2}\n":                      "cluster.heartbeat",
		"cluster: {play_secret: short}\n":                "cluster.play_secret",
		"cluster: {serve: maybe}\n":                      "cluster.serve",
		"cluster: {bogus: 1}\n":                          "cluster.bogus",
		"cluster: {line: \"a\\u0007b\"}\n":               "cluster.line",
		"cluster: [1]\n":                                 "cluster",
	}
	for y, key := range bad {
		_, err := Parse([]byte(y), nil)
		require.Error(t, err, y)
		require.True(t, strings.HasPrefix(err.Error(), key), "%s: %v", y, err)
		require.NotContains(t, err.Error(), "secret@", "the password is not echoed")
	}
}

// TestClusterGroups: cluster.group, cluster.rtmp and cluster.redirect, and
// "group:NAME" as a forward destination and an edge origin (which need the
// registry, the top-level cluster section).
func TestClusterGroups(t *testing.T) {
	c, err := Parse([]byte(`cluster: {redis: "redis://127.0.0.1:6379/0", group: masters, rtmp: "10.0.0.11:1935", redirect: true}
vhosts:
  - name: __defaultVhost__
    forward: {destinations: ["group:masters", "10.0.0.9:1935"]}
  - name: transcode
    cluster: {mode: remote, origin: ["group:masters"]}
`), nil)
	require.NoError(t, err)
	require.Equal(t, "masters", c.Cluster.Group)
	require.Equal(t, "10.0.0.11:1935", c.Cluster.RTMP)
	require.True(t, c.Cluster.Redirect)
	g, ok := GroupName(c.Vhosts[0].Forward.Destinations[0])
	require.True(t, ok)
	require.Equal(t, "masters", g)
	_, ok = GroupName(c.Vhosts[0].Forward.Destinations[1])
	require.False(t, ok)

	c, err = Parse([]byte("cluster: {node: a}\n"), nil)
	require.NoError(t, err)
	require.Equal(t, "", c.Cluster.Group)
	require.False(t, c.Cluster.Redirect)

	bad := map[string]string{
		"cluster: {group: \"a b\"}\n":   "cluster.group",
		"cluster: {rtmp: \"nohost\"}\n": "cluster.rtmp",
		"cluster: {redirect: maybe}\n":  "cluster.redirect",
		"vhosts:\n  - name: __defaultVhost__\n    forward: {destinations: [\"group:masters\"]}\n":               "vhosts[0].forward.destinations[0]: group:masters needs the top-level cluster section",
		"cluster: {}\nvhosts:\n  - name: __defaultVhost__\n    forward: {destinations: [\"group:a/b\"]}\n":      "vhosts[0].forward.destinations[0]: not a group name",
		"vhosts:\n  - name: __defaultVhost__\n    cluster: {mode: remote, origin: [\"group:masters\"]}\n":       "vhosts[0].cluster.origin[0]: group:masters needs",
		"cluster: {}\nvhosts:\n  - name: __defaultVhost__\n    cluster: {mode: remote, origin: [\"group:\"]}\n": "vhosts[0].cluster.origin[0]: not a group name",
	}
	for y, want := range bad {
		_, err := Parse([]byte(y), nil)
		require.ErrorContains(t, err, want, y)
	}
}
