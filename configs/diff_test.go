package configs

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestChanged(t *testing.T) {
	parse := func(y string) *Config {
		t.Helper()
		c, err := Parse([]byte(y), nil)
		require.NoError(t, err)
		return c
	}
	base := `
listen: {rtmp: "127.0.0.1:1935"}
vhosts:
  - name: __defaultVhost__
    transcode: {to: transcode}
  - name: transcode
    hls: {enabled: true, fragment: 2s}
    forward: {destinations: ["10.0.0.1:1935"]}
`
	require.Empty(t, Changed(parse(base), parse(base)))

	// The same vhosts in another order, written another way: no change.
	same := `
listen: {rtmp: "127.0.0.1:1935"}
vhosts:
  - name: transcode
    forward: {destinations: ["10.0.0.1:1935"]}
    hls: {fragment: 2000ms, enabled: true}
  - {name: __defaultVhost__, transcode: {to: transcode}}
`
	require.Empty(t, Changed(parse(base), parse(same)))

	next := `
listen: {rtmp: "127.0.0.1:1936"}
log: {level: debug}
sources: [{url: "rtsp://cam/x", publish: cams/x}]
vhosts:
  - name: __defaultVhost__
    transcode: {to: transcode, audio: {bitrate: 96k}}
  - name: transcode
    hls: {enabled: true, fragment: 4s}
    forward: {destinations: ["10.0.0.2:1935"]}
    tcp_nodelay: true
  - name: extra
`
	require.Equal(t, []string{
		"listen.rtmp",
		"log.level",
		"sources",
		"vhosts[__defaultVhost__].transcode.audio.bitrate",
		"vhosts[extra]",
		"vhosts[transcode].forward.destinations",
		"vhosts[transcode].hls.fragment",
		"vhosts[transcode].tcp_nodelay",
	}, Changed(parse(base), parse(next)))
}
