package configs

import "strings"

// Cluster is the top-level cluster section: the registry every box writes
// each heartbeat and the play-URL allocator reads. Absent (nil) = a box
// alone with an in-memory registry.
type Cluster struct {
	// Redis is redis://[:password@]host:port/db; "" = in-memory, this box
	// only.
	Redis string `mapstructure:"redis" yaml:"redis"`
	// Node is this box's id in the cluster ("" = the host name).
	Node string `mapstructure:"node" yaml:"node"`
	// Line is the name students see ("" = Node).
	Line string `mapstructure:"line" yaml:"line"`
	// PublicURL is the base URL players reach this box at ("" =
	// http://<first non-loopback IP>:<http port>).
	PublicURL string `mapstructure:"public_url" yaml:"public_url"`
	// Serve hands this box out to players (nil = true when a vhost has HLS
	// or is an edge).
	Serve *bool `mapstructure:"serve" yaml:"serve,omitempty"`
	// MaxViewers caps the viewers allocated to this box (0 = no limit).
	MaxViewers int `mapstructure:"max_viewers" yaml:"max_viewers"`
	// Heartbeat is how often the box writes its state; entries expire
	// after three heartbeats.
	Heartbeat Duration `mapstructure:"heartbeat" yaml:"heartbeat"`
	// PlaySecret, when set, makes /api/v1/play require ?token= (HMAC of
	// app/stream/expiry) and signs the URLs it hands out.
	PlaySecret string `mapstructure:"play_secret" yaml:"play_secret"`
	// Group puts this box in a named group of origins ("masters"): its
	// streams are claimed in the registry, a forward destination or edge
	// origin "group:NAME" reaches the group's members ("" = in no group).
	Group string `mapstructure:"group" yaml:"group"`
	// RTMP is the host:port other boxes reach this box's RTMP at (forward
	// to it, pull from it; "" = <first non-loopback IP>:<rtmp port>).
	RTMP string `mapstructure:"rtmp" yaml:"rtmp"`
	// Redirect answers a play of a class another member of the group has
	// with an SRS-style RTMP 302 to that member instead of pulling it
	// from the member (false, the default).
	Redirect bool `mapstructure:"redirect" yaml:"redirect"`
}

// GroupPrefix starts a forward destination or an edge origin that names a
// group of the registry instead of a box: "group:masters".
const GroupPrefix = "group:"

// GroupName returns the group a destination or origin names ("group:NAME"
// → "NAME", true).
func GroupName(dest string) (string, bool) {
	name, ok := strings.CutPrefix(dest, GroupPrefix)
	return name, ok
}

// clusterDefaults are the values a present cluster section starts from.
func clusterDefaults() map[string]any {
	return map[string]any{
		"redis": "", "node": "", "line": "", "public_url": "",
		"max_viewers": 0, "heartbeat": "2s", "play_secret": "",
		"group": "", "rtmp": "", "redirect": false,
	}
}

// fillClusterDefaults merges the defaults under a present cluster section.
func fillClusterDefaults(raw map[string]any) {
	if sec, ok := raw["cluster"].(map[string]any); ok {
		raw["cluster"] = mergeMaps(clusterDefaults(), sec)
	}
}
