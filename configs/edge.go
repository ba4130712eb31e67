package configs

// VhostCluster is SRS's vhost cluster section. Mode local (the default)
// makes the vhost an origin: streams are published to it. Mode remote
// makes it an edge: a play of a stream it does not have pulls the stream
// from one of Origin ("host:port", same app and stream, or an rtmp:// URL
// with forward's [app] [stream] [vhost] [param] placeholders) for as long
// as someone watches, failing over between them.
type VhostCluster struct {
	Mode   string   `mapstructure:"mode" yaml:"mode"`
	Origin []string `mapstructure:"origin" yaml:"origin"`
	// Vhost is the origin vhost to pull from (SRS's key); "" = the
	// edge vhost's own name.
	Vhost string `mapstructure:"vhost" yaml:"vhost"`
	// ConnectTimeout bounds dial, handshake, connect and play of one
	// origin; IdleTimeout is how long without media makes the edge try the
	// next origin (it also catches an origin that accepted the play but has
	// no stream).
	ConnectTimeout Duration `mapstructure:"connect_timeout" yaml:"connect_timeout"`
	IdleTimeout    Duration `mapstructure:"idle_timeout" yaml:"idle_timeout"`
	// IdleClose is how long after the last viewer left the pull stops.
	IdleClose Duration `mapstructure:"idle_close" yaml:"idle_close"`
	// OriginBackoff is how long an origin that failed is skipped by every
	// stream of the box.
	OriginBackoff Duration `mapstructure:"origin_backoff" yaml:"origin_backoff"`
}

// Cluster modes.
const (
	ClusterLocal  = "local"
	ClusterRemote = "remote"
)

// Edge reports whether the vhost pulls its streams from origins.
func (v *Vhost) Edge() bool { return v.Cluster != nil && v.Cluster.Mode == ClusterRemote }

func vhostClusterDefaults() map[string]any {
	return map[string]any{
		"mode": ClusterLocal, "origin": []any{}, "vhost": "",
		"connect_timeout": "2s", "idle_timeout": "3s", "idle_close": "10s", "origin_backoff": "10s",
	}
}
