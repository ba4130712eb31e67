package configs

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// withSlave is the default plus a forward section on vhosts[1].
func withSlave() *Config {
	c := Default()
	c.Vhosts[1].Forward = &Forward{Destinations: []string{"192.168.1.6:1935"}, HopLimit: 1}
	return c
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		key    string
		msg    string
	}{
		{"rtmp listen required", func(c *Config) { c.Listen.RTMP = "" }, "listen.rtmp", "required"},
		{"rtmp listen not host:port", func(c *Config) { c.Listen.RTMP = "1935" }, "listen.rtmp", "not host:port"},
		{"rtmp listen bad port", func(c *Config) { c.Listen.RTMP = ":99999" }, "listen.rtmp", "not host:port"},
		{"http listen required", func(c *Config) { c.Listen.HTTP = "" }, "listen.http", "required"},
		{"rtsp listen bad", func(c *Config) { c.Listen.RTSP = "localhost" }, "listen.rtsp", "not host:port"},
		{"log level", func(c *Config) { c.Log.Level = "loud" }, "log.level", `not one of debug|info|warn|error (got "loud")`},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, "log.format", "not one of text|json"},
		{"data dir", func(c *Config) { c.DataDir = "" }, "data_dir", "required"},
		{"hwaccel unknown", func(c *Config) { c.HWAccel.Prefer = []string{"nvenc", "cuda"} }, "hwaccel.prefer[1]", "not one of"},
		{"hwaccel empty", func(c *Config) { c.HWAccel.Prefer = nil }, "hwaccel.prefer", "at least one"},
		{"hwaccel none with others", func(c *Config) { c.HWAccel.Prefer = []string{"qsv", "none"} }, "hwaccel.prefer[1]", "only entry"},
		{"handshake timeout", func(c *Config) { c.RTMP.HandshakeTimeout = 0 }, "rtmp.handshake_timeout", "more than 0s"},
		{"play wait", func(c *Config) { c.RTMP.PlayWait = -1 }, "rtmp.play_wait", "negative"},
		{"queue packets", func(c *Config) { c.RTMP.QueuePackets = 0 }, "rtmp.queue_packets", "at least 1"},
		{"vhost name empty", func(c *Config) { c.Vhosts = append(c.Vhosts, Vhost{}) }, "vhosts[2].name", "required"},
		{"vhost name chars", func(c *Config) { c.Vhosts = append(c.Vhosts, Vhost{Name: "a b"}) }, "vhosts[2].name", "letters, digits"},
		{"vhost name duplicate", func(c *Config) { c.Vhosts = append(c.Vhosts, Vhost{Name: "transcode"}) }, "vhosts[2].name", "duplicate name"},
		{"default vhost missing", func(c *Config) { c.Vhosts[0].Name = "main" }, "vhosts", "no vhost named __defaultVhost__"},
		{"transcode to missing", func(c *Config) { c.Vhosts[0].Transcode.To = "nowhere" }, "vhosts[0].transcode.to", `no vhost named "nowhere"`},
		{"transcode to empty", func(c *Config) { c.Vhosts[0].Transcode.To = "" }, "vhosts[0].transcode.to", "required"},
		{"transcode to itself", func(c *Config) { c.Vhosts[0].Transcode.To = DefaultVhost }, "vhosts[0].transcode.to", "itself"},
		{"transcode cycle", func(c *Config) {
			c.Vhosts[1].Transcode = &Transcode{To: DefaultVhost, Audio: c.Vhosts[0].Transcode.Audio, Video: c.Vhosts[0].Transcode.Video}
		}, "vhosts[0].transcode.to", "transcode loop: __defaultVhost__ -> transcode -> __defaultVhost__"},
		{"transcode suffix", func(c *Config) { c.Vhosts[0].Transcode.Suffix = "/x" }, "vhosts[0].transcode.suffix", "letters"},
		{"audio codec", func(c *Config) { c.Vhosts[0].Transcode.Audio.Codec = "mp3" }, "vhosts[0].transcode.audio.codec", "not one of aac|copy"},
		{"audio bitrate", func(c *Config) { c.Vhosts[0].Transcode.Audio.Bitrate = 0 }, "vhosts[0].transcode.audio.bitrate", "more than 0"},
		{"sample rate", func(c *Config) { c.Vhosts[0].Transcode.Audio.SampleRate = 44000 }, "vhosts[0].transcode.audio.sample_rate", "(got 44000)"},
		{"channels", func(c *Config) { c.Vhosts[0].Transcode.Audio.Channels = 6 }, "vhosts[0].transcode.audio.channels", "(got 6)"},
		{"channels negative", func(c *Config) { c.Vhosts[0].Transcode.Audio.Channels = -1 }, "vhosts[0].transcode.audio.channels", "(got -1)"},
		{"video codec", func(c *Config) { c.Vhosts[0].Transcode.Video.Codec = "hevc" }, "vhosts[0].transcode.video.codec", "not one of copy|h264"},
		{"video bitrate", func(c *Config) { c.Vhosts[0].Transcode.Video.Bitrate = -5 }, "vhosts[0].transcode.video.bitrate", "more than 0"},
		{"width odd", func(c *Config) { c.Vhosts[0].Transcode.Video.Width = 1281 }, "vhosts[0].transcode.video.width", "even"},
		{"height negative", func(c *Config) { c.Vhosts[0].Transcode.Video.Height = -2 }, "vhosts[0].transcode.video.height", "even"},
		{"fps", func(c *Config) { c.Vhosts[0].Transcode.Video.FPS = -1 }, "vhosts[0].transcode.video.fps", "(got -1)"},
		{"gop", func(c *Config) { c.Vhosts[0].Transcode.Video.GOP = -1 }, "vhosts[0].transcode.video.gop", "negative"},
		{"profile", func(c *Config) { c.Vhosts[0].Transcode.Video.Profile = "high10" }, "vhosts[0].transcode.video.profile", "baseline"},
		{"preset", func(c *Config) { c.Vhosts[0].Transcode.Video.Preset = "a b" }, "vhosts[0].transcode.video.preset", "preset"},
		{"destination garbage", func(c *Config) { c.Vhosts[1].Forward.Destinations[0] = "not a host" }, "vhosts[1].forward.destinations[0]", "not host:port or rtmp:// URL"},
		{"destination no port", func(c *Config) { c.Vhosts[1].Forward.Destinations[0] = "192.168.1.6" }, "vhosts[1].forward.destinations[0]", "not host:port or rtmp:// URL"},
		{"destination no host", func(c *Config) { c.Vhosts[1].Forward.Destinations[0] = ":1935" }, "vhosts[1].forward.destinations[0]", "not host:port or rtmp:// URL"},
		{"destination http", func(c *Config) {
			c.Vhosts[1].Forward.Destinations = append(c.Vhosts[1].Forward.Destinations, "http://x/live")
		}, "vhosts[1].forward.destinations[1]", "not host:port or rtmp:// URL"},
		{"destination rtmp no host", func(c *Config) { c.Vhosts[1].Forward.Destinations[0] = "rtmp:///live" }, "vhosts[1].forward.destinations[0]", "not host:port"},
		{"backend", func(c *Config) { c.Vhosts[1].Forward.Backend = "ftp://x" }, "vhosts[1].forward.backend", "http"},
		{"hop limit", func(c *Config) { c.Vhosts[1].Forward.HopLimit = 0 }, "vhosts[1].forward.hop_limit", "at least 1"},
		{"hls fragment", func(c *Config) { c.Vhosts[1].HLS.Fragment = Duration(500e6) }, "vhosts[1].hls.fragment", "at least 1s (got 500ms)"},
		{"hls window", func(c *Config) { c.Vhosts[1].HLS.Window = 1 }, "vhosts[1].hls.window", "at least 2"},
		{"hls variant", func(c *Config) { c.Vhosts[1].HLS.Variant = "ts" }, "vhosts[1].hls.variant", "mpegts|fmp4"},
		{"hls path", func(c *Config) { c.Vhosts[1].HLS.Path = " " }, "vhosts[1].hls.path", "required"},
		{"hls dispose", func(c *Config) { c.Vhosts[1].HLS.Dispose = -1 }, "vhosts[1].hls.dispose", "negative"},
		{"hook url", func(c *Config) { c.Vhosts[1].Hooks.OnPlay = []string{"http://ok/x", "/relative"} }, "vhosts[1].hooks.on_play[1]", "http"},
		{"hook dvr", func(c *Config) { c.Vhosts[1].Hooks.OnDVR = []string{"https://"} }, "vhosts[1].hooks.on_dvr[0]", "http"},
		{"security cidr", func(c *Config) { c.Vhosts[1].Security.PlayDeny = []string{"10.0.0.0/33"} }, "vhosts[1].security.play_deny[0]", "CIDR"},
		{"security ip", func(c *Config) { c.Vhosts[1].Security.PublishAllow = []string{"::1", "host.lan"} }, "vhosts[1].security.publish_allow[1]", "IP"},
		{"source url", func(c *Config) {
			c.Sources = []Source{{URL: "http://cam/x", Publish: "live/a", Vhost: DefaultVhost, Transport: "auto"}}
		}, "sources[0].url", "rtsp://"},
		{"source publish", func(c *Config) {
			c.Sources = []Source{{URL: "rtsp://cam/x", Publish: "live", Vhost: DefaultVhost, Transport: "auto"}}
		}, "sources[0].publish", "APP/STREAM"},
		{"source publish dots", func(c *Config) {
			c.Sources = []Source{{URL: "rtsp://cam/x", Publish: "../x", Vhost: DefaultVhost, Transport: "auto"}}
		}, "sources[0].publish", "APP/STREAM"},
		{"source publish three", func(c *Config) {
			c.Sources = []Source{{URL: "rtsp://cam/x", Publish: "a/b/c", Vhost: DefaultVhost, Transport: "auto"}}
		}, "sources[0].publish", "APP/STREAM"},
		{"source vhost", func(c *Config) {
			c.Sources = []Source{{URL: "rtsp://cam/x", Publish: "a/b", Vhost: "nope", Transport: "auto"}}
		}, "sources[0].vhost", `no vhost named "nope"`},
		{"source long name", func(c *Config) {
			c.Sources = []Source{{URL: "rtsp://cam/x", Publish: "live/" + strings.Repeat("x", 129), Vhost: DefaultVhost, Transport: "auto"}}
		}, "sources[0].publish", "APP/STREAM"},
		{"source transport", func(c *Config) {
			c.Sources = []Source{{URL: "rtsp://cam/x", Publish: "a/b", Vhost: DefaultVhost, Transport: "sctp"}}
		}, "sources[0].transport", "auto|tcp|udp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := withSlave()
			require.NoError(t, c.Validate())
			tt.mutate(c)
			err := c.Validate()
			require.Error(t, err)
			require.Equal(t, []string{tt.key}, problemKeys(t, err))
			require.ErrorContains(t, err, tt.key+": ")
			require.ErrorContains(t, err, tt.msg)
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	c := withSlave()
	c.Listen.RTSP = "[::1]:8554"
	c.Vhosts[1].Forward.Destinations = []string{
		"slave-a.lan:1935",
		"[fe80::1]:1935",
		"rtmp://192.168.1.7/live",
		"rtmp://192.168.1.7:1936/[app]/[stream]?vhost=[vhost]&[param]",
	}
	c.Vhosts[1].Forward.Backend = "https://master.lan/api/v1/forward"
	c.Vhosts[1].Security.PublishAllow = []string{"10.0.0.0/8", "192.168.1.20", "fd00::/8"}
	c.HWAccel.Prefer = []string{"none"}
	c.Sources = []Source{{URL: "rtsps://u:p@cam:322/x", Publish: "cams/hall-1.hd", Vhost: "transcode", Transport: "udp"}}
	require.NoError(t, c.Validate())
}

func TestValidateReportsAll(t *testing.T) {
	c := withSlave()
	c.Listen.HTTP = "nope"
	c.Vhosts[1].Forward.Destinations = []string{"ok:1", "bad"}
	c.Vhosts[1].HLS.Window = 0
	require.Equal(t, []string{"listen.http", "vhosts[1].forward.destinations[1]", "vhosts[1].hls.window"},
		problemKeys(t, c.Validate()))
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		keys []string
		msg  string
	}{
		{"unknown top level", "bogus: 1\n", []string{"bogus"}, "bogus: unknown key"},
		{"unknown in section", "listen: {rtmp: \":1935\", rtmpp: \":1\"}\n", []string{"listen.rtmpp"}, "listen.rtmpp: unknown key"},
		{"unknown in vhost", "vhosts:\n  - name: __defaultVhost__\n    bogus: true\n", []string{"vhosts[0].bogus"}, "vhosts[0].bogus: unknown key"},
		{"unknown nested", "vhosts:\n  - name: __defaultVhost__\n  - name: b\n    hls: {enabled: true, segment: 2s}\n",
			[]string{"vhosts[1].hls.segment"}, "vhosts[1].hls.segment: unknown key"},
		{"unknown deep", "vhosts:\n  - name: __defaultVhost__\n    transcode: {to: b, audio: {rate: 1}}\n  - name: b\n",
			[]string{"vhosts[0].transcode.audio.rate"}, "unknown key"},
		{"unknown in source", "sources: [{url: \"rtsp://c/x\", publish: a/b, ondemand: true}]\n", []string{"sources[0].ondemand"}, "unknown key"},
		{"several unknown", "zzz: 1\naaa: 2\n", []string{"aaa", "zzz"}, "unknown key"},
		{"int for string list", "hwaccel: {prefer: none}\n", []string{"hwaccel.prefer"}, "hwaccel.prefer: "},
		{"string for int", "vhosts:\n  - name: __defaultVhost__\n    hls: {window: many}\n", []string{"vhosts[0].hls.window"}, `expected a whole number, got "many"`},
		{"string for bool", "rtmp: {gop_cache: maybe}\n", []string{"rtmp.gop_cache"}, "expected true or false"},
		{"bad bitrate", "vhosts:\n  - name: __defaultVhost__\n    transcode: {to: t, audio: {bitrate: fast}}\n  - name: t\n",
			[]string{"vhosts[0].transcode.audio.bitrate"}, "not a bitrate"},
		{"bad duration", "rtmp: {play_wait: 10}\n", []string{"rtmp.play_wait"}, "a number needs a unit (got 10)"},
		{"bad duration string", "rtmp: {play_wait: soon}\n", []string{"rtmp.play_wait"}, "not a duration"},
		{"map for list", "vhosts: {a: 1}\n", []string{"vhosts"}, "vhosts: "},
		{"scalar for section", "listen: 1935\n", []string{"listen"}, "expected a mapping of keys"},
		{"number listen", "listen: {rtmp: 1935}\n", []string{"listen.rtmp"}, `not host:port, e.g. ":1935"`},
		{"forward example", "vhosts:\n  - name: __defaultVhost__\n  - name: transcode\n    forward: {destinations: [\"rtmp:/x\"]}\n",
			[]string{"vhosts[1].forward.destinations[0]"}, "vhosts[1].forward.destinations[0]: not host:port or rtmp:// URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), nil)
			require.Error(t, err)
			require.Nil(t, c)
			require.Equal(t, tt.keys, problemKeys(t, err))
			require.ErrorContains(t, err, tt.msg)
		})
	}
}

func TestParseNullSectionIsAbsent(t *testing.T) {
	c, err := Parse([]byte("vhosts:\n  - name: __defaultVhost__\n    hls:\n    transcode: ~\n"), nil)
	require.NoError(t, err)
	require.Nil(t, c.Vhosts[0].HLS)
	require.Nil(t, c.Vhosts[0].Transcode)
}

func TestValidateTranscodeLoops(t *testing.T) {
	tc := func(to string) *Transcode {
		return &Transcode{To: to, Audio: Audio{Codec: "aac", Bitrate: 64000, SampleRate: 44100}, Video: Video{Codec: "copy", Bitrate: 1}}
	}
	c := Default()
	// __defaultVhost__ -> transcode (no loop), then c -> a -> b -> c, and
	// d leads into that loop without being part of it.
	c.Vhosts = append(c.Vhosts,
		Vhost{Name: "d", Transcode: tc("a")},
		Vhost{Name: "c", Transcode: tc("a")},
		Vhost{Name: "b", Transcode: tc("c")},
		Vhost{Name: "a", Transcode: tc("b")},
	)
	err := c.Validate()
	require.Equal(t, []string{"vhosts[3].transcode.to"}, problemKeys(t, err))
	require.ErrorContains(t, err, "vhosts[3].transcode.to: transcode loop: c -> a -> b -> c")
}

func TestValidateLargeConfigIsFast(t *testing.T) {
	// A long transcode chain and many sources validate in linear time.
	c := Default()
	const n = 20000
	for i := range n {
		v := Vhost{Name: fmt.Sprintf("v%d", i)}
		if i+1 < n {
			v.Transcode = &Transcode{To: fmt.Sprintf("v%d", i+1), Audio: Audio{Codec: "aac", Bitrate: 1, SampleRate: 8000}, Video: Video{Codec: "copy", Bitrate: 1}}
		}
		c.Vhosts = append(c.Vhosts, v)
		c.Sources = append(c.Sources, Source{URL: "rtsp://cam/x", Publish: "a/b", Vhost: v.Name, Transport: "tcp"})
	}
	start := time.Now()
	require.NoError(t, c.Validate())
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestValidateSourceURLHidesCredentials(t *testing.T) {
	c := Default()
	c.Sources = []Source{{URL: "http://admin:hunter2@cam/x", Publish: "live/a", Vhost: DefaultVhost, Transport: "auto"}}
	err := c.Validate()
	require.ErrorContains(t, err, "sources[0].url")
	require.NotContains(t, err.Error(), "hunter2")
	require.NotContains(t, err.Error(), "admin")
}
