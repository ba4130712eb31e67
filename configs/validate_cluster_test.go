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
