package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	rtmpproto "github.com/podiumlive/podium/rtmp"
)

// TestRTMPPlayAsSRS: the play names and durations other servers' and
// players' RTMP clients send.
func TestRTMPPlayAsSRS(t *testing.T) {
	p := startPodium(t, "rtmp: {play_wait: 2s}\nvhosts: [{name: __defaultVhost__}]\n")
	publish(t, speexFixture(t), p.RTMPURL("live/cam1"))
	probeUntil(t, p.RTMPURL("live/cam1"), 20*time.Second, "video", "audio")

	t.Run("STREAM.flv, .m3u8 and .ts name STREAM", func(t *testing.T) {
		for _, name := range []string{"cam1.flv", "cam1.m3u8", "cam1.ts"} {
			// -rtmp_playpath is sent as it is (ffmpeg strips a .flv of the
			// URL's path itself, as an SRS edge does not).
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			res, err := ffprobe(ctx, p.RTMPURL("live/"+name), "-rtmp_playpath", name)
			cancel()
			require.NoError(t, err, name)
			requireCodecs(t, res, "h264", "speex")
		}
		out, err := exec.Command("ffmpeg", "-v", "error", "-rw_timeout", "15000000",
			"-i", p.RTMPURL("live/cam1.flv"), "-t", "2", "-f", "null", "-").CombinedOutput()
		require.NoError(t, err, "%s", out)
		// Only a trailing extension goes.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err = ffprobe(ctx, p.RTMPURL("live/cam1.mp4"), "-rtmp_playpath", "cam1.mp4")
		require.Error(t, err)
	})

	t.Run("a play duration ends the play when reached", func(t *testing.T) {
		// What librtmp sends for `rtmpdump -v -B 5`: play(name, start -1000
		// ms (live), duration 5000 ms).
		r := dialRaw(t, fmt.Sprintf("127.0.0.1:%d", p.RTMP))
		r.handshake()
		r.connect("live")
		require.NoError(t, r.command(amf("createStream", 2.0, nil)))
		start := time.Now()
		_, err := r.c.Write(rtmpproto.AppendMessage(nil, 8, 20, 0, 128, nil,
			amf("play", 3.0, nil, "cam1", -1000.0, 5000.0)))
		require.NoError(t, err)
		var got bytes.Buffer
		_ = r.c.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, err = io.Copy(&got, r.c)
		elapsed := time.Since(start)
		require.NoError(t, err, "the server closes the play (no read timeout)")
		t.Logf("play of 5 s: closed after %s, %d bytes", elapsed.Round(time.Millisecond), got.Len())
		// 5 s of media, the first up to a GOP (1 s) of it from the cache.
		require.Greater(t, elapsed, 3500*time.Millisecond)
		require.Less(t, elapsed, 7*time.Second)
		require.Contains(t, got.String(), "NetStream.Play.Stop")
		require.Greater(t, got.Len(), 50_000, "media was sent")
		waitLog(t, p.Logs, "play duration reached", 1, 5*time.Second)

		// The stream and other players go on.
		probeUntil(t, p.RTMPURL("live/cam1"), 20*time.Second, "video", "audio")
	})
	p.Alive(t)
}
