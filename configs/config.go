// Package configs holds Podium's typed configuration: the embedded default
// (podium.yaml), loading a YAML file with PODIUM_* environment overrides,
// validation that names the offending key, and printing the effective config.
package configs

import (
	"bytes"
	_ "embed"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// DefaultVhost is the vhost that receives every stream that names no other.
const DefaultVhost = "__defaultVhost__"

//go:embed podium.yaml
var defaultYAML []byte

// DefaultYAML returns a copy of the embedded default config file.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Config is Podium's whole configuration.
type Config struct {
	Listen  Listen   `mapstructure:"listen" yaml:"listen"`
	Log     Log      `mapstructure:"log" yaml:"log"`
	DataDir string   `mapstructure:"data_dir" yaml:"data_dir"`
	HWAccel HWAccel  `mapstructure:"hwaccel" yaml:"hwaccel"`
	RTMP    RTMP     `mapstructure:"rtmp" yaml:"rtmp"`
	Auth    Auth     `mapstructure:"auth" yaml:"auth"`
	Sources []Source `mapstructure:"sources" yaml:"sources"`
	Vhosts  []Vhost  `mapstructure:"vhosts" yaml:"vhosts"`
	// Cluster is the registry and play-URL allocator (nil: a box alone).
	Cluster *Cluster `mapstructure:"cluster" yaml:"cluster,omitempty"`
}

// Listen holds the listen addresses (host:port; RTSP "" = off).
type Listen struct {
	RTMP string `mapstructure:"rtmp" yaml:"rtmp"`
	HTTP string `mapstructure:"http" yaml:"http"`
	RTSP string `mapstructure:"rtsp" yaml:"rtsp"`
}

// Log configures log/slog: Level debug|info|warn|error, Format text|json.
type Log struct {
	Level  string `mapstructure:"level" yaml:"level"`
	Format string `mapstructure:"format" yaml:"format"`
}

// HWAccel picks the encoder backends to try, in order: entries from
// nvenc|qsv|vaapi|software; ["none"] forces CPU. Device is e.g. a VAAPI
// render node ("" = auto).
type HWAccel struct {
	Prefer []string `mapstructure:"prefer" yaml:"prefer"`
	Device string   `mapstructure:"device" yaml:"device"`
}

// RTMP tunes the RTMP server. PlayWait is how long a player waits for a
// publisher; QueuePackets bounds each reader's queue.
type RTMP struct {
	HandshakeTimeout Duration `mapstructure:"handshake_timeout" yaml:"handshake_timeout"`
	PlayWait         Duration `mapstructure:"play_wait" yaml:"play_wait"`
	QueuePackets     int      `mapstructure:"queue_packets" yaml:"queue_packets"`
	GOPCache         bool     `mapstructure:"gop_cache" yaml:"gop_cache"`
}

// Auth protects the dashboard and API ("" = generated into data_dir).
type Auth struct {
	AdminPassword string `mapstructure:"admin_password" yaml:"admin_password"`
}

// Source is an RTSP camera pulled into the registry as APP/STREAM of Vhost.
// Transport is auto|tcp|udp; OnDemand pulls only while someone watches.
type Source struct {
	URL       string `mapstructure:"url" yaml:"url"`
	Publish   string `mapstructure:"publish" yaml:"publish"`
	Vhost     string `mapstructure:"vhost" yaml:"vhost"`
	Transport string `mapstructure:"transport" yaml:"transport"`
	OnDemand  bool   `mapstructure:"on_demand" yaml:"on_demand"`
}

// Vhost is one virtual host. A section the vhost does not have is nil.
type Vhost struct {
	Name      string     `mapstructure:"name" yaml:"name"`
	Transcode *Transcode `mapstructure:"transcode" yaml:"transcode,omitempty"`
	Forward   *Forward   `mapstructure:"forward" yaml:"forward,omitempty"`
	HLS       *HLS       `mapstructure:"hls" yaml:"hls,omitempty"`
	Hooks     *Hooks     `mapstructure:"hooks" yaml:"hooks,omitempty"`
	Security  *Security  `mapstructure:"security" yaml:"security,omitempty"`
	DVR       *DVR       `mapstructure:"dvr" yaml:"dvr,omitempty"`
	// Cluster makes the vhost an edge (mode remote); nil or mode local: an
	// origin. See VhostCluster.
	Cluster *VhostCluster `mapstructure:"cluster" yaml:"cluster,omitempty"`
	// TCPNoDelay is SRS's vhost tcp_nodelay: on sends each message to
	// players and slaves at once (TCP_NODELAY); off (the default, as in SRS
	// and nginx-rtmp) lets the kernel coalesce small writes (Nagle), which
	// wakes players and slaves several times less often, for a delay of
	// usually well under a millisecond (rarely a delayed ACK, ~40 ms).
	TCPNoDelay bool `mapstructure:"tcp_nodelay" yaml:"tcp_nodelay"`
}

// Transcode republishes every stream of its vhost into vhost To, as
// STREAM+Suffix, with audio and video normalized.
type Transcode struct {
	To     string `mapstructure:"to" yaml:"to"`
	Suffix string `mapstructure:"suffix" yaml:"suffix"`
	Audio  Audio  `mapstructure:"audio" yaml:"audio"`
	Video  Video  `mapstructure:"video" yaml:"video"`
}

// Audio is the transcode's audio output. Codec aac|copy; Channels 0 = keep.
type Audio struct {
	Codec      string  `mapstructure:"codec" yaml:"codec"`
	Bitrate    Bitrate `mapstructure:"bitrate" yaml:"bitrate"`
	SampleRate int     `mapstructure:"sample_rate" yaml:"sample_rate"`
	Channels   int     `mapstructure:"channels" yaml:"channels"`
}

// Video is the transcode's video output. Codec copy|h264; zero Width,
// Height and FPS keep the input's; GOP is the keyframe interval.
type Video struct {
	Codec   string   `mapstructure:"codec" yaml:"codec"`
	Bitrate Bitrate  `mapstructure:"bitrate" yaml:"bitrate"`
	Width   int      `mapstructure:"width" yaml:"width"`
	Height  int      `mapstructure:"height" yaml:"height"`
	FPS     int      `mapstructure:"fps" yaml:"fps"`
	GOP     Duration `mapstructure:"gop" yaml:"gop"`
	Profile string   `mapstructure:"profile" yaml:"profile"`
	Preset  string   `mapstructure:"preset" yaml:"preset"`
}

// Forward pushes every stream of its vhost to each destination
// ("host:port" or an rtmp:// URL with [app] [stream] [vhost] [param]
// placeholders) and to the URLs the optional Backend hook returns.
type Forward struct {
	Destinations []string `mapstructure:"destinations" yaml:"destinations"`
	Backend      string   `mapstructure:"backend" yaml:"backend"`
	HopLimit     int      `mapstructure:"hop_limit" yaml:"hop_limit"`
}

// HLS cuts the vhost's streams into HLS under Path. Variant mpegts|fmp4;
// Window is the number of segments in the playlist; Dispose removes the
// files this long after the publisher left.
type HLS struct {
	Enabled  bool     `mapstructure:"enabled" yaml:"enabled"`
	Fragment Duration `mapstructure:"fragment" yaml:"fragment"`
	Window   int      `mapstructure:"window" yaml:"window"`
	Path     string   `mapstructure:"path" yaml:"path"`
	Variant  string   `mapstructure:"variant" yaml:"variant"`
	Dispose  Duration `mapstructure:"dispose" yaml:"dispose"`
}

// Hooks are SRS-style HTTP callbacks (http:// or https:// URLs).
type Hooks struct {
	OnPublish   []string `mapstructure:"on_publish" yaml:"on_publish"`
	OnUnpublish []string `mapstructure:"on_unpublish" yaml:"on_unpublish"`
	OnPlay      []string `mapstructure:"on_play" yaml:"on_play"`
	OnStop      []string `mapstructure:"on_stop" yaml:"on_stop"`
	OnHLS       []string `mapstructure:"on_hls" yaml:"on_hls"`
	OnDVR       []string `mapstructure:"on_dvr" yaml:"on_dvr"`
}

// Security restricts who may publish and play: lists of IPs or CIDRs
// (an empty allow list allows everyone), and an optional publish key.
type Security struct {
	PublishAllow []string `mapstructure:"publish_allow" yaml:"publish_allow"`
	PublishDeny  []string `mapstructure:"publish_deny" yaml:"publish_deny"`
	PlayAllow    []string `mapstructure:"play_allow" yaml:"play_allow"`
	PlayDeny     []string `mapstructure:"play_deny" yaml:"play_deny"`
	PublishKey   string   `mapstructure:"publish_key" yaml:"publish_key"`
}

// Default returns the embedded default config (configs/podium.yaml),
// without environment overrides. It panics only if the embedded file is
// broken, which the package's tests rule out.
func Default() *Config {
	c, err := Parse(defaultYAML, nil)
	if err != nil {
		panic(fmt.Sprintf("configs: embedded podium.yaml: %v", err))
	}
	return c
}

// Vhost returns the vhost called name, or nil if none is configured.
func (c *Config) Vhost(name string) *Vhost {
	for i := range c.Vhosts {
		if c.Vhosts[i].Name == name {
			return &c.Vhosts[i]
		}
	}
	return nil
}

// YAML prints the effective config; Parse of the result gives c back.
func (c *Config) YAML() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("encode config yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode config yaml: %w", err)
	}
	return buf.Bytes(), nil
}
