package e2e

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const twoVhosts = `
rtmp: {play_wait: 3s}
vhosts:
  - name: __defaultVhost__
  - name: transcode
`

func TestPublishH264SpeexPlayRTMP(t *testing.T) {
	p := startPodium(t, twoVhosts)
	publish(t, speexFixture(t), p.RTMPURL("live/s1"))
	res := probeUntil(t, p.RTMPURL("live/s1"), 15*time.Second, "video", "audio")
	for _, s := range res.Streams {
		switch s.CodecType {
		case "video":
			require.Equal(t, "h264", s.CodecName)
			require.Equal(t, 320, s.Width)
			require.Equal(t, 240, s.Height)
		case "audio":
			require.Equal(t, "speex", s.CodecName)
			require.Equal(t, "16000", s.SampleRate)
			require.Equal(t, 1, s.Channels)
		}
	}
	require.Contains(t, p.Logs.String(), `msg="rtmp publish"`)
}

// Every FLV audio format an encoder sends goes through the hub unchanged.
func TestAudioFormatsCarriedUnchanged(t *testing.T) {
	cases := []struct {
		codec, rate string
		args        []string
	}{
		{"speex", "16000", []string{"-c:a", "libspeex", "-ar", "16000"}},
		{"mp3", "44100", []string{"-c:a", "libmp3lame", "-ar", "44100"}},
		{"aac", "44100", []string{"-c:a", "aac", "-ar", "44100"}},
		{"pcm_alaw", "8000", []string{"-c:a", "pcm_alaw", "-ar", "8000"}},
		{"pcm_mulaw", "8000", []string{"-c:a", "pcm_mulaw", "-ar", "8000"}},
		{"nellymoser", "22050", []string{"-c:a", "nellymoser", "-ar", "22050"}},
		{"adpcm_swf", "22050", []string{"-c:a", "adpcm_swf", "-ar", "22050"}},
		{"pcm_s16le", "44100", []string{"-c:a", "pcm_s16le", "-ar", "44100"}},
	}
	p := startPodium(t, twoVhosts)
	for i, c := range cases {
		t.Run(c.codec, func(t *testing.T) {
			args := []string{"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=15",
				"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=" + c.rate,
				"-t", "4", "-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-pix_fmt", "yuv420p", "-ac", "1"}
			file := fixture(t, "audio-"+c.codec, append(args, c.args...)...)
			name := fmt.Sprintf("live/a%d", i)
			pub := publish(t, file, p.RTMPURL(name))
			res := probeUntil(t, p.RTMPURL(name), 15*time.Second, "video", "audio")
			codec, _ := res.stream("audio")
			require.Equal(t, c.codec, codec)
			for _, s := range res.Streams {
				if s.CodecType == "audio" {
					require.Equal(t, c.rate, s.SampleRate)
					require.Equal(t, 1, s.Channels)
				}
			}
			_ = pub.Process.Kill()
		})
	}
}

func TestTwentyPublishersTwoPlayersEach(t *testing.T) {
	const publishers, players = 20, 2
	// A loaded CI machine may take a while to start 20 ffmpegs: players wait.
	p := startPodium(t, "rtmp: {play_wait: 20s}\n")
	file := speexFixture(t)
	for i := range publishers {
		publish(t, file, p.RTMPURL("live/m"+strconv.Itoa(i)))
	}
	time.Sleep(2 * time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, publishers*players)
	for i := range publishers {
		for range players {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				url := p.RTMPURL("live/m" + strconv.Itoa(i))
				res, err := ffprobe(ctx, url, "-count_packets", "-read_intervals", "%+3")
				if err != nil {
					errs <- err
					return
				}
				if len(res.Streams) != 2 {
					errs <- fmt.Errorf("%s: %d streams", url, len(res.Streams))
					return
				}
				for _, s := range res.Streams {
					n, _ := strconv.Atoi(s.NbReadPackets)
					// 3 s of 25 fps video or 16 kHz Speex (50 packets/s)
					if n < 40 {
						errs <- fmt.Errorf("%s: %s read %d packets", url, s.CodecName, n)
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	p.Alive(t)
}

func TestSecondPublisherRejected(t *testing.T) {
	p := startPodium(t, twoVhosts)
	file := speexFixture(t)
	first := publish(t, file, p.RTMPURL("live/dup"))
	probeUntil(t, p.RTMPURL("live/dup"), 15*time.Second, "video")

	second := publish(t, file, p.RTMPURL("live/dup"))
	done := make(chan error, 1)
	go func() { done <- second.Wait() }()
	select {
	case err := <-done:
		require.Error(t, err, "the second publisher is refused")
	case <-time.After(10 * time.Second):
		t.Fatal("second publisher still running after 10 s")
	}
	require.NoError(t, first.Process.Signal(syscallZero), "the first publisher keeps publishing")
	probeUntil(t, p.RTMPURL("live/dup"), 10*time.Second, "video", "audio")
	require.Contains(t, p.Logs.String(), "already being published")
}

func TestPlayerWaitsForPublisher(t *testing.T) {
	p := startPodium(t, "rtmp: {play_wait: 8s}\n")
	res := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		r, err := ffprobe(ctx, p.RTMPURL("live/later"))
		if err == nil && len(r.Streams) != 2 {
			err = fmt.Errorf("streams: %+v", r.Streams)
		}
		res <- err
	}()
	time.Sleep(1500 * time.Millisecond)
	publish(t, speexFixture(t), p.RTMPURL("live/later"))
	require.NoError(t, <-res)
}

func TestVhostSelection(t *testing.T) {
	p := startPodium(t, twoVhosts)
	file := speexFixture(t)
	// SRS style: ?vhost= on the stream...
	publish(t, file, p.RTMPURL("live/v1?vhost=transcode"))
	probeUntil(t, p.RTMPURL("live/v1?vhost=transcode"), 15*time.Second, "video", "audio")
	// ...or on the app.
	probeUntil(t, p.RTMPURL("live?vhost=transcode/v1"), 15*time.Second, "video", "audio")
	// The default vhost has no v1: a player there waits play_wait, then fails.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := ffprobe(ctx, p.RTMPURL("live/v1"))
	require.Error(t, err)

	// An unknown explicit vhost is rejected with a clear reason.
	bad := publish(t, file, p.RTMPURL("live/v2?vhost=nope"))
	done := make(chan error, 1)
	go func() { done <- bad.Wait() }()
	select {
	case err := <-done:
		require.Error(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("publisher to an unknown vhost still running")
	}
	require.Contains(t, p.Logs.String(), `unknown vhost`)
}

func TestAudioOnlyAndVideoOnly(t *testing.T) {
	p := startPodium(t, twoVhosts)
	audio := fixture(t, "audio-only", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000",
		"-t", "5", "-c:a", "libspeex", "-ar", "16000", "-ac", "1")
	video := fixture(t, "video-only", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
		"-t", "5", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p")
	publish(t, audio, p.RTMPURL("live/ao"))
	publish(t, video, p.RTMPURL("live/vo"))
	ra := probeUntil(t, p.RTMPURL("live/ao"), 15*time.Second, "audio")
	rv := probeUntil(t, p.RTMPURL("live/vo"), 15*time.Second, "video")
	codec, _ := ra.stream("audio")
	require.Equal(t, "speex", codec)
	codec, _ = rv.stream("video")
	require.Equal(t, "h264", codec)
}
