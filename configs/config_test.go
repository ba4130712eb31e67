package configs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// problemKeys flattens a Parse/Validate error into its keys, in order.
func problemKeys(t *testing.T, err error) []string {
	t.Helper()
	var keys []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var ve *ValidationError
		require.ErrorAs(t, e, &ve, "every problem is a *ValidationError: %v", e)
		keys = append(keys, ve.Key)
	}
	walk(err)
	return keys
}

func TestDefault(t *testing.T) {
	c := Default()
	require.NoError(t, c.Validate())
	require.Equal(t, ":1935", c.Listen.RTMP)
	require.Equal(t, ":8080", c.Listen.HTTP)
	require.Equal(t, "", c.Listen.RTSP)
	require.Equal(t, []string{"nvenc", "qsv", "vaapi"}, c.HWAccel.Prefer)
	require.Equal(t, 10*time.Second, c.RTMP.PlayWait.Std())
	require.True(t, c.RTMP.GOPCache)
	require.Empty(t, c.Sources)

	def := c.Vhost(DefaultVhost)
	require.NotNil(t, def)
	require.NotNil(t, def.Transcode)
	require.Nil(t, def.HLS)
	require.Nil(t, def.Forward)
	require.Equal(t, "transcode", def.Transcode.To)
	require.Equal(t, Audio{Codec: "aac", Bitrate: 64000, SampleRate: 44100}, def.Transcode.Audio)
	require.Equal(t, "copy", def.Transcode.Video.Codec)
	require.Equal(t, 1500000, def.Transcode.Video.Bitrate.BitsPerSecond())

	tr := c.Vhost("transcode")
	require.NotNil(t, tr)
	require.Nil(t, tr.Transcode)
	require.Nil(t, tr.Forward, "the default has no slaves")
	require.Equal(t, &HLS{Enabled: true, Fragment: Duration(2 * time.Second), Window: 6,
		Path: "./data/hls", Variant: "mpegts", Dispose: Duration(120 * time.Second)}, tr.HLS)

	require.Nil(t, c.Vhost("nope"))
	require.NotSame(t, Default(), c, "Default returns a fresh config each call")
}

func TestLoad(t *testing.T) {
	c, err := Load("")
	require.NoError(t, err)
	require.Equal(t, Default(), c)

	dir := t.TempDir()
	path := filepath.Join(dir, "podium.yaml")
	require.NoError(t, os.WriteFile(path, []byte("listen: {rtmp: \":1940\"}\n"), 0o600))
	c, err = Load(path)
	require.NoError(t, err)
	require.Equal(t, ":1940", c.Listen.RTMP)
	require.Equal(t, ":8080", c.Listen.HTTP)

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)

	require.NoError(t, os.WriteFile(path, []byte("vhosts:\n  - name: a\n"), 0o600))
	_, err = Load(path)
	require.ErrorContains(t, err, path)
	require.ErrorContains(t, err, "vhosts: no vhost named __defaultVhost__")
}

func TestParseEmptyIsDefault(t *testing.T) {
	for _, in := range []string{"", "\n", "# only a comment\n", "{}"} {
		c, err := Parse([]byte(in), nil)
		require.NoError(t, err, in)
		require.Equal(t, Default(), c, in)
	}
}

func TestParseSectionDefaults(t *testing.T) {
	c, err := Parse([]byte(`
data_dir: /var/lib/podium
vhosts:
  - name: __defaultVhost__
    transcode: {to: out, audio: {sample_rate: 48000}}
  - name: out
    hls: {enabled: false}
    forward: {destinations: ["10.0.0.2:1935"]}
    hooks: {on_publish: ["http://127.0.0.1:8085/api/v1/streams"]}
    security: {}
`), nil)
	require.NoError(t, err)
	tc := c.Vhost(DefaultVhost).Transcode
	require.Equal(t, Audio{Codec: "aac", Bitrate: 64000, SampleRate: 48000}, tc.Audio)
	require.Equal(t, Video{Codec: "copy", Bitrate: 1500000, GOP: Duration(2 * time.Second)}, tc.Video)

	out := c.Vhost("out")
	require.Nil(t, out.Transcode)
	require.Equal(t, &HLS{Enabled: false, Fragment: Duration(2 * time.Second), Window: 6,
		Path: "/var/lib/podium/hls", Variant: "mpegts", Dispose: Duration(120 * time.Second)}, out.HLS)
	require.Equal(t, &Forward{Destinations: []string{"10.0.0.2:1935"}, Backend: "", HopLimit: 1}, out.Forward)
	require.Equal(t, []string{"http://127.0.0.1:8085/api/v1/streams"}, out.Hooks.OnPublish)
	require.Equal(t, []string{}, out.Hooks.OnStop)
	require.Equal(t, &Security{PublishAllow: []string{}, PublishDeny: []string{}, PlayAllow: []string{}, PlayDeny: []string{}}, out.Security)
}

func TestParseListsReplace(t *testing.T) {
	c, err := Parse([]byte(`
hwaccel: {prefer: [none]}
sources:
  - {url: "rtsp://cam/1", publish: live/cam1}
`), nil)
	require.NoError(t, err)
	require.Equal(t, []string{"none"}, c.HWAccel.Prefer)
	require.Equal(t, []Source{{URL: "rtsp://cam/1", Publish: "live/cam1", Vhost: DefaultVhost, Transport: "auto"}}, c.Sources)
	require.Len(t, c.Vhosts, 2, "vhosts left out keep the default's")
}

func TestParseYAMLSyntaxErrorNamesLine(t *testing.T) {
	_, err := Parse([]byte("listen:\n  rtmp: \":1935\"\n  http: [\n"), nil)
	require.ErrorContains(t, err, "line ")
	_, err = Parse([]byte("log:\n  level: info\n bad indent: x\n"), nil)
	require.ErrorContains(t, err, "line 2")
	_, err = Parse([]byte("- a list\n- at the top\n"), nil)
	require.ErrorContains(t, err, "line 1")
}

func TestParseCaseInsensitiveKeys(t *testing.T) {
	c, err := Parse([]byte("Listen: {RTMP: \":1937\"}\n"), nil)
	require.NoError(t, err)
	require.Equal(t, ":1937", c.Listen.RTMP)
}

func TestYAMLRoundTrip(t *testing.T) {
	for name, in := range map[string]string{
		"default": "",
		"full": `
listen: {rtmp: "0.0.0.0:1935", http: "127.0.0.1:8080", rtsp: ":8554"}
log: {level: debug, format: json}
data_dir: /srv/podium
hwaccel: {prefer: [vaapi, software], device: /dev/dri/renderD128}
rtmp: {handshake_timeout: 1500ms, play_wait: 0s, queue_packets: 64, gop_cache: false}
auth: {admin_password: "12345"}
sources:
  - {url: "rtsp://u:p@10.0.0.9:554/s1", publish: cams/hall, vhost: transcode, transport: tcp, on_demand: true}
vhosts:
  - name: __defaultVhost__
    transcode:
      to: transcode
      suffix: _hd
      audio: {codec: copy, bitrate: 128000, sample_rate: 48000, channels: 2}
      video: {codec: h264, bitrate: 2M, width: 1280, height: 720, fps: 30, gop: 1m30s, profile: high, preset: veryfast}
  - name: transcode
    forward:
      destinations: ["192.168.1.6:1935", "rtmp://192.168.1.7:1936/live/[stream]?vhost=[vhost]"]
      backend: "http://127.0.0.1:8085/api/v1/forward"
      hop_limit: 3
    hls: {enabled: true, fragment: 4s, window: 10, path: /srv/hls, variant: fmp4, dispose: 0}
    hooks: {on_publish: ["https://hooks.example/p"], on_dvr: ["http://h/d"]}
    security: {publish_allow: [10.0.0.0/8, "::1"], play_deny: [192.168.5.5], publish_key: s3cret}
`,
	} {
		t.Run(name, func(t *testing.T) {
			c, err := Parse([]byte(in), nil)
			require.NoError(t, err)
			out, err := c.YAML()
			require.NoError(t, err)
			again, err := Parse(out, nil)
			require.NoError(t, err, string(out))
			require.Equal(t, c, again)
			out2, err := again.YAML()
			require.NoError(t, err)
			require.Equal(t, string(out), string(out2))
		})
	}
}

func TestYAMLPrintsUnitsAsWritten(t *testing.T) {
	out, err := Default().YAML()
	require.NoError(t, err)
	for _, want := range []string{"bitrate: 64k", "bitrate: 1500k", "fragment: 2s", "dispose: 120s", "play_wait: 10s", `rtmp: :1935`} {
		require.Contains(t, string(out), want)
	}
	require.NotContains(t, string(out), "forward:", "sections a vhost lacks are not printed")
}

func TestDefaultYAMLIsACopy(t *testing.T) {
	b := DefaultYAML()
	b[0] = 'X'
	require.NotEqual(t, b[0], DefaultYAML()[0])
	require.True(t, strings.HasPrefix(string(DefaultYAML()), "#"))
}

func TestValidationErrorFirstNamesKey(t *testing.T) {
	_, err := Parse([]byte("listen: {rtmp: nope}\nlog: {level: loud}\n"), nil)
	var ve *ValidationError
	require.True(t, errors.As(err, &ve))
	require.Equal(t, "listen.rtmp", ve.Key)
	require.True(t, strings.HasPrefix(err.Error(), "listen.rtmp: "), err.Error())
	require.Equal(t, []string{"listen.rtmp", "log.level"}, problemKeys(t, err))
}

func TestLoadAppliesEnvironment(t *testing.T) {
	t.Setenv("PODIUM_LISTEN_HTTP", ":9090")
	t.Setenv("PODIUM_VHOSTS_1_HLS_ENABLED", "false")
	c, err := Load("")
	require.NoError(t, err)
	require.Equal(t, ":9090", c.Listen.HTTP)
	require.False(t, c.Vhost("transcode").HLS.Enabled)

	t.Setenv("PODIUM_LISTEN_HTTP", "nope")
	_, err = Load("")
	require.ErrorContains(t, err, "listen.http: ")
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "listen.http", ve.Key)
}
