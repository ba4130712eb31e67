package configs

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseClusterDefaults(t *testing.T) {
	c, err := Parse([]byte(`
vhosts:
  - name: __defaultVhost__
    cluster:
      mode: remote
      origin: ["10.0.0.1:1935", "rtmp://10.0.0.2:1936/[app]/[stream]?vhost=[vhost]"]
      vhost: transcode
`), nil)
	require.NoError(t, err)
	cl := c.Vhosts[0].Cluster
	require.NotNil(t, cl)
	require.True(t, c.Vhosts[0].Edge())
	require.Equal(t, "transcode", cl.Vhost)
	require.Equal(t, 2*time.Second, cl.ConnectTimeout.Std())
	require.Equal(t, 3*time.Second, cl.IdleTimeout.Std())
	require.Equal(t, 10*time.Second, cl.IdleClose.Std())
	require.Equal(t, 10*time.Second, cl.OriginBackoff.Std())

	y, err := c.YAML()
	require.NoError(t, err)
	require.Contains(t, string(y), "connect_timeout: 2s")
	require.Contains(t, string(y), "origin_backoff: 10s")

	local, err := Parse([]byte("vhosts:\n  - name: __defaultVhost__\n    cluster: {}\n"), nil)
	require.NoError(t, err)
	require.False(t, local.Vhosts[0].Edge(), "mode local is the default")
	require.False(t, Default().Vhosts[0].Edge())
}

func TestValidateCluster(t *testing.T) {
	remote := func(mut func(*VhostCluster)) func(*Config) {
		return func(c *Config) {
			cl := &VhostCluster{Mode: ClusterRemote, Origin: []string{"127.0.0.1:1935"},
				ConnectTimeout: Duration(2 * time.Second), IdleTimeout: Duration(3 * time.Second),
				IdleClose: Duration(10 * time.Second), OriginBackoff: Duration(10 * time.Second)}
			mut(cl)
			c.Vhosts[0].Cluster = cl
		}
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		key    string
		msg    string
	}{
		{"mode", remote(func(c *VhostCluster) { c.Mode = "edge" }), "vhosts[0].cluster.mode", "not one of local|remote"},
		{"no origin", remote(func(c *VhostCluster) { c.Origin = nil }), "vhosts[0].cluster.origin", "required when mode is remote"},
		{"bad origin", remote(func(c *VhostCluster) { c.Origin = append(c.Origin, "http://x/") }), "vhosts[0].cluster.origin[1]", "not host:port or rtmp://"},
		{"port-only origin", remote(func(c *VhostCluster) { c.Origin = []string{":1935"} }), "vhosts[0].cluster.origin[0]", "not host:port"},
		{"vhost", remote(func(c *VhostCluster) { c.Vhost = "a/b" }), "vhosts[0].cluster.vhost", "letters"},
		{"connect timeout", remote(func(c *VhostCluster) { c.ConnectTimeout = 0 }), "vhosts[0].cluster.connect_timeout", "between 100ms and 60s"},
		{"idle timeout", remote(func(c *VhostCluster) { c.IdleTimeout = Duration(time.Hour) }), "vhosts[0].cluster.idle_timeout", "between"},
		{"idle close", remote(func(c *VhostCluster) { c.IdleClose = -1 }), "vhosts[0].cluster.idle_close", "between"},
		{"origin backoff", remote(func(c *VhostCluster) { c.OriginBackoff = -1 }), "vhosts[0].cluster.origin_backoff", "between"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(c)
			err := c.Validate()
			require.Error(t, err)
			var ve *ValidationError
			require.True(t, errors.As(err, &ve))
			require.Equal(t, tt.key, ve.Key, err.Error())
			require.Contains(t, ve.Msg, tt.msg)
		})
	}
	c := Default()
	remote(func(*VhostCluster) {})(c)
	require.NoError(t, c.Validate())
}
