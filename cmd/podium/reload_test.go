package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/configs"
)

// A reload names what it did not apply; forward, security and hooks it
// applies, so they are not named.
func TestNeedRestart(t *testing.T) {
	parse := func(y string) *configs.Config {
		t.Helper()
		c, err := configs.Parse([]byte(y), nil)
		require.NoError(t, err)
		return c
	}
	running := parse(`
vhosts:
  - name: __defaultVhost__
    transcode: {to: transcode}
    security: {publish_key: a}
  - name: transcode
    hls: {enabled: true}
    forward: {destinations: ["10.0.0.1:1935"]}
`)
	applied := parse(`
vhosts:
  - name: __defaultVhost__
    transcode: {to: transcode}
    security: {publish_key: b, play_deny: ["10.0.0.0/8"]}
    hooks: {on_publish: ["http://127.0.0.1:9/hook"]}
  - name: transcode
    hls: {enabled: true}
    forward: {destinations: ["10.0.0.2:1935"], backend: "http://127.0.0.1:9/fw"}
`)
	require.Empty(t, needRestart(running, applied))

	restart := parse(`
hwaccel: {prefer: [none]}
vhosts:
  - name: __defaultVhost__
    transcode: {to: transcode, video: {codec: h264}}
  - name: transcode
    hls: {enabled: true, window: 10}
    forward: {destinations: ["10.0.0.2:1935"]}
`)
	require.Equal(t, []string{
		"hwaccel.prefer",
		"vhosts[__defaultVhost__].transcode.video.codec",
		"vhosts[transcode].hls.window",
	}, needRestart(running, restart))
}
