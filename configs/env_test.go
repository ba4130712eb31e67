package configs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestEnvOverrides(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		env   []string
		check func(t *testing.T, c *Config)
	}{
		{"scalar", "", []string{"PODIUM_LISTEN_RTMP=:1936"}, func(t *testing.T, c *Config) {
			require.Equal(t, ":1936", c.Listen.RTMP)
		}},
		{"overrides the file", "listen: {rtmp: \":1940\"}\n", []string{"PODIUM_LISTEN_RTMP=:1941"}, func(t *testing.T, c *Config) {
			require.Equal(t, ":1941", c.Listen.RTMP)
		}},
		{"underscore key at top", "", []string{"PODIUM_DATA_DIR=/srv/p"}, func(t *testing.T, c *Config) {
			require.Equal(t, "/srv/p", c.DataDir)
			require.Equal(t, "/srv/p/hls", c.Vhost("transcode").HLS.Path, "hls path follows data_dir")
		}},
		{"underscore keys nested", "", []string{"PODIUM_AUTH_ADMIN_PASSWORD=pw_with_underscores", "PODIUM_RTMP_GOP_CACHE=false", "PODIUM_RTMP_QUEUE_PACKETS=64"},
			func(t *testing.T, c *Config) {
				require.Equal(t, "pw_with_underscores", c.Auth.AdminPassword)
				require.False(t, c.RTMP.GOPCache)
				require.Equal(t, 64, c.RTMP.QueuePackets)
			}},
		{"list index bool", "", []string{"PODIUM_VHOSTS_1_HLS_ENABLED=false"}, func(t *testing.T, c *Config) {
			require.False(t, c.Vhosts[1].HLS.Enabled)
			require.Equal(t, 6, c.Vhosts[1].HLS.Window)
		}},
		{"vhost tcp_nodelay", "", []string{"PODIUM_VHOSTS_1_TCP_NODELAY=true"}, func(t *testing.T, c *Config) {
			require.True(t, c.Vhosts[1].TCPNoDelay)
			require.False(t, c.Vhosts[0].TCPNoDelay, "default off, as in SRS")
		}},
		{"list index underscore leaf", "", []string{"PODIUM_VHOSTS_0_TRANSCODE_AUDIO_SAMPLE_RATE=48000"}, func(t *testing.T, c *Config) {
			require.Equal(t, 48000, c.Vhosts[0].Transcode.Audio.SampleRate)
		}},
		{"bitrate and duration", "", []string{"PODIUM_VHOSTS_0_TRANSCODE_VIDEO_BITRATE=2M", "PODIUM_VHOSTS_1_HLS_FRAGMENT=4s", "PODIUM_RTMP_PLAY_WAIT=1m"},
			func(t *testing.T, c *Config) {
				require.Equal(t, Bitrate(2_000_000), c.Vhosts[0].Transcode.Video.Bitrate)
				require.Equal(t, 4*time.Second, c.Vhosts[1].HLS.Fragment.Std())
				require.Equal(t, time.Minute, c.RTMP.PlayWait.Std())
			}},
		{"string list comma separated", "", []string{"PODIUM_HWACCEL_PREFER=none"}, func(t *testing.T, c *Config) {
			require.Equal(t, []string{"none"}, c.HWAccel.Prefer)
		}},
		{"new section from env", "", []string{"PODIUM_VHOSTS_1_FORWARD_DESTINATIONS=10.0.0.2:1935, rtmp://10.0.0.3/live"}, func(t *testing.T, c *Config) {
			require.Equal(t, &Forward{Destinations: []string{"10.0.0.2:1935", "rtmp://10.0.0.3/live"}, HopLimit: 1}, c.Vhosts[1].Forward)
		}},
		{"string list item", "", []string{"PODIUM_HWACCEL_PREFER_1=software", "PODIUM_HWACCEL_PREFER_3=qsv"}, func(t *testing.T, c *Config) {
			require.Equal(t, []string{"nvenc", "software", "vaapi", "qsv"}, c.HWAccel.Prefer)
		}},
		{"whole list then item", "", []string{"PODIUM_VHOSTS_1_FORWARD_DESTINATIONS_0=b:2", "PODIUM_VHOSTS_1_FORWARD_DESTINATIONS=a:1"}, func(t *testing.T, c *Config) {
			require.Equal(t, []string{"b:2"}, c.Vhosts[1].Forward.Destinations)
		}},
		{"append vhost in index order", "", []string{"PODIUM_VHOSTS_3_NAME=d", "PODIUM_VHOSTS_2_NAME=c", "PODIUM_VHOSTS_3_HLS_WINDOW=3"}, func(t *testing.T, c *Config) {
			require.Len(t, c.Vhosts, 4)
			require.Equal(t, "c", c.Vhosts[2].Name)
			require.Equal(t, 3, c.Vhost("d").HLS.Window)
		}},
		{"source", "", []string{"PODIUM_SOURCES_0_URL=rtsp://cam/1", "PODIUM_SOURCES_0_PUBLISH=live/cam", "PODIUM_SOURCES_0_ON_DEMAND=true"}, func(t *testing.T, c *Config) {
			require.Equal(t, []Source{{URL: "rtsp://cam/1", Publish: "live/cam", Vhost: DefaultVhost, Transport: "auto", OnDemand: true}}, c.Sources)
		}},
		{"ignores others", "", []string{"HOME=/root", "PODIUM_CONFIG=/etc/podium.yaml", "NOEQUALS", "podium_listen_rtmp=:1"}, func(t *testing.T, c *Config) {
			require.Equal(t, Default(), c)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), tt.env)
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}

func TestEnvRejects(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		key  string
		msg  string
	}{
		{"unknown variable", []string{"PODIUM_LISTEN_RTPM=:1"}, "PODIUM_LISTEN_RTPM", "names no config key"},
		{"section not leaf", []string{"PODIUM_LISTEN=:1"}, "PODIUM_LISTEN", "names no config key"},
		{"index not number", []string{"PODIUM_VHOSTS_X_NAME=a"}, "PODIUM_VHOSTS_X_NAME", "names no config key"},
		{"index with sign", []string{"PODIUM_VHOSTS_+1_NAME=a"}, "PODIUM_VHOSTS_+1_NAME", "names no config key"},
		{"index past end", []string{"PODIUM_VHOSTS_5_NAME=a"}, "vhosts[5].name", "index 5: the list has 2 items"},
		{"bad bool", []string{"PODIUM_RTMP_GOP_CACHE=perhaps"}, "rtmp.gop_cache", `PODIUM_RTMP_GOP_CACHE="perhaps": not true or false`},
		{"bad int", []string{"PODIUM_VHOSTS_1_HLS_WINDOW=six"}, "vhosts[1].hls.window", "not a whole number"},
		{"bad bitrate", []string{"PODIUM_VHOSTS_0_TRANSCODE_AUDIO_BITRATE=lots"}, "vhosts[0].transcode.audio.bitrate", "not a bitrate"},
		{"validated", []string{"PODIUM_VHOSTS_0_TRANSCODE_AUDIO_SAMPLE_RATE=44000"}, "vhosts[0].transcode.audio.sample_rate", "(got 44000)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(nil, tt.env)
			require.Error(t, err)
			require.Equal(t, []string{tt.key}, problemKeys(t, err))
			require.ErrorContains(t, err, tt.key+": ")
			require.ErrorContains(t, err, tt.msg)
		})
	}
}

func TestEnvIntoWrongShape(t *testing.T) {
	// The file has a scalar where the env var needs a mapping or list: an
	// error naming the key, never a panic.
	for _, tc := range []struct{ yaml, env string }{
		{"listen: [a]\n", "PODIUM_LISTEN_RTMP=:1"},
		{"listen: 5\n", "PODIUM_LISTEN_RTMP=:1"},
		{"vhosts: 5\n", "PODIUM_VHOSTS_0_NAME=a"},
		{"vhosts: [5]\n", "PODIUM_VHOSTS_0_NAME=a"},
		{"vhosts: {a: 1}\n", "PODIUM_VHOSTS_0_NAME=a"},
		{"hwaccel: {prefer: x}\n", "PODIUM_HWACCEL_PREFER_0=none"},
	} {
		_, err := Parse([]byte(tc.yaml), []string{tc.env})
		require.Error(t, err, tc)
		require.NotEmpty(t, problemKeys(t, err), tc)
	}
}
