package rtmp

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFFmpegPublishPasses publishes 4 s of real encoder output through the
// guard into lal: nothing may be rejected and every frame must arrive.
func TestFFmpegPublishPasses(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	cases := []struct {
		name  string
		args  []string
		minTS uint32
	}{
		{"speex", []string{"-c:a", "libspeex", "-ar", "16000"}, 0},
		// Timestamps from 16,780 s cross 0xFFFFFF ms: extended timestamps.
		{"speex extended timestamps", []string{"-c:a", "libspeex", "-ar", "16000", "-output_ts_offset", "16780"}, 0xFFFFFF},
		{"aac", []string{"-c:a", "aac", "-ar", "44100"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, Limits{}, false)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			t.Cleanup(cancel)
			args := []string{"-hide_banner", "-loglevel", "error", "-re",
				"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
				"-f", "lavfi", "-i", "sine=f=440:sample_rate=16000",
				"-t", "4", "-c:v", "libx264", "-g", "25"}
			args = append(args, tc.args...)
			args = append(args, "-f", "flv", "rtmp://"+srv.addr()+"/live/s1")
			cmd := exec.CommandContext(ctx, "ffmpeg", args...)
			cmd.WaitDelay = 5 * time.Second
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "ffmpeg: %s", out)

			end := srv.nextEnd(t, 15*time.Second)
			require.NoError(t, end.violation)
			require.GreaterOrEqual(t, srv.video.Load(), int64(90))
			require.GreaterOrEqual(t, srv.audio.Load(), int64(150))
			require.Greater(t, srv.maxTS.Load(), tc.minTS)
			t.Logf("video %d, audio %d, last timestamp %d ms, session end: %v",
				srv.video.Load(), srv.audio.Load(), srv.maxTS.Load(), end.err)
		})
	}
}
