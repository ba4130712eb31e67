package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// transcodeVhosts is the embedded default's transcode, with a short
// play_wait and the CPU forced (no GPU here).
const transcodeVhosts = `
hwaccel: {prefer: [none]}
rtmp: {play_wait: 15s}
vhosts:
  - name: __defaultVhost__
    transcode: {to: transcode, audio: {codec: aac, bitrate: 64k, sample_rate: 44100}, video: {codec: copy}}
  - name: transcode
`

func TestTranscodeEveryAudioToAAC(t *testing.T) {
	cases := []struct {
		codec string
		args  []string
	}{
		{"speex", []string{"-c:a", "libspeex", "-ar", "16000"}},
		{"mp3", []string{"-c:a", "libmp3lame", "-ar", "44100"}},
		{"pcm_alaw", []string{"-c:a", "pcm_alaw", "-ar", "8000"}},
		{"pcm_mulaw", []string{"-c:a", "pcm_mulaw", "-ar", "8000"}},
		{"nellymoser", []string{"-c:a", "nellymoser", "-ar", "22050"}},
		{"adpcm_swf", []string{"-c:a", "adpcm_swf", "-ar", "22050"}},
		{"pcm_s16le", []string{"-c:a", "pcm_s16le", "-ar", "44100"}},
		{"aac", []string{"-c:a", "aac", "-ar", "44100"}},
	}
	p := startPodium(t, transcodeVhosts)
	for i, c := range cases {
		t.Run(c.codec, func(t *testing.T) {
			args := []string{"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=15",
				"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
				"-t", "4", "-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-pix_fmt", "yuv420p", "-ac", "1"}
			file := fixture(t, "audio-"+c.codec, append(args, c.args...)...)
			name := fmt.Sprintf("live/t%d", i)
			pub := publish(t, file, p.RTMPURL(name))
			res := probeUntil(t, p.RTMPURL(name+"?vhost=transcode"), 20*time.Second, "video", "audio")
			v, _ := res.stream("video")
			a, _ := res.stream("audio")
			require.Equal(t, "h264", v)
			require.Equal(t, "aac", a)
			for _, s := range res.Streams {
				if s.CodecType == "audio" {
					require.Equal(t, "44100", s.SampleRate)
					require.Equal(t, 1, s.Channels)
				}
			}
			_ = pub.Process.Kill()
		})
	}
}

// record plays url into an FLV file until the stream ends.
func record(t *testing.T, url, out string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-v", "error", "-y", "-rw_timeout", "30000000", "-i", url, "-c", "copy", "-f", "flv", out)
	var buf lockedBuffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

type packetInfo struct {
	CodecType string `json:"codec_type"`
	PTSTime   string `json:"pts_time"`
	DataHash  string `json:"data_hash"`
	Flags     string `json:"flags"`
	Size      string `json:"size"`
}

func packets(t *testing.T, file, stream string) []packetInfo {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-of", "json", "-show_packets", "-show_data_hash", "MD5",
		"-select_streams", stream, "-show_entries", "packet=codec_type,pts_time,data_hash,flags,size", file).Output()
	require.NoError(t, err)
	var res struct {
		Packets []packetInfo `json:"packets"`
	}
	require.NoError(t, json.Unmarshal(out, &res))
	return res.Packets
}

func duration(t *testing.T, file, stream string) float64 {
	t.Helper()
	ps := packets(t, file, stream)
	require.NotEmpty(t, ps)
	first, _ := strconv.ParseFloat(ps[0].PTSTime, 64)
	last, _ := strconv.ParseFloat(ps[len(ps)-1].PTSTime, 64)
	return last - first
}

// toneHz estimates the dominant frequency of the file's audio from zero
// crossings of its decoded samples.
func toneHz(t *testing.T, file string) float64 {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", file, "-vn", "-ac", "1", "-ar", "44100", "-f", "s16le", "-").Output()
	require.NoError(t, err)
	r := bufio.NewReader(bytes.NewReader(out))
	var prev int16
	crossings, n := 0, 0
	for {
		var s int16
		if err := binary.Read(r, binary.LittleEndian, &s); err != nil {
			break
		}
		if n > 44100 && n < len(out)/2-4410 { // skip the edges
			if (prev < 0) != (s < 0) {
				crossings++
			}
		}
		prev = s
		n++
	}
	seconds := float64(len(out)/2-44100-4410) / 44100
	return float64(crossings) / 2 / seconds
}

func TestTranscodeSpeexTimingAndCopiedVideo(t *testing.T) {
	p := startPodium(t, transcodeVhosts)
	in := speexFixture(t)
	out := filepath.Join(t.TempDir(), "out.flv")
	rec := record(t, p.RTMPURL("live/sync?vhost=transcode"), out)
	time.Sleep(500 * time.Millisecond)
	// Publish the 10 s file once (no loop), then the stream ends.
	pub := exec.Command("ffmpeg", "-v", "error", "-re", "-i", in, "-c", "copy", "-f", "flv", p.RTMPURL("live/sync"))
	require.NoError(t, pub.Run())
	done := make(chan error, 1)
	go func() { done <- rec.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("recorder did not end with the stream")
	}

	inAudio := duration(t, in, "a")
	outAudio := duration(t, out, "a")
	require.InDelta(t, inAudio, outAudio, inAudio*0.01+0.03, "output audio duration within 1%% of input")
	require.InDelta(t, 440, toneHz(t, out), 4, "the 440 Hz tone is still 440 Hz")

	// Copied video is byte-identical, packet for packet.
	inV, outV := packets(t, in, "v"), packets(t, out, "v")
	require.GreaterOrEqual(t, len(outV), len(inV)-2)
	for i := range min(len(inV), len(outV)) {
		require.Equal(t, inV[i].DataHash, outV[i].DataHash, "video packet %d", i)
	}

	// A/V sync: audio starts within 50 ms of where it started in the input.
	outA := packets(t, out, "a")
	inA := packets(t, in, "a")
	offIn := ptsf(inA[0].PTSTime) - ptsf(inV[0].PTSTime)
	offOut := ptsf(outA[0].PTSTime) - ptsf(outV[0].PTSTime)
	require.InDelta(t, offIn, offOut, 0.05, "audio/video offset preserved")
	require.Equal(t, "aac", codecOf(t, out, "a"))
}

func ptsf(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

func codecOf(t *testing.T, file, stream string) string {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", stream, "-show_entries", "stream=codec_name", "-of", "csv=p=0", file).Output()
	require.NoError(t, err)
	return strings.TrimSpace(string(out))
}

func TestTranscodeVideoToH264Scaled(t *testing.T) {
	p := startPodium(t, `
hwaccel: {prefer: [none]}
rtmp: {play_wait: 15s}
vhosts:
  - name: __defaultVhost__
    transcode: {to: transcode, video: {codec: h264, width: 640, height: 360, bitrate: 800k, gop: 1s}}
  - name: transcode
`)
	src := fixture(t, "h264-720p-speex", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000",
		"-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
		"-c:a", "libspeex", "-ar", "16000", "-ac", "1")
	publish(t, src, p.RTMPURL("live/scaled"))
	res := probeUntil(t, p.RTMPURL("live/scaled?vhost=transcode"), 30*time.Second, "video", "audio")
	for _, s := range res.Streams {
		if s.CodecType == "video" {
			require.Equal(t, "h264", s.CodecName)
			require.Equal(t, 640, s.Width)
			require.Equal(t, 360, s.Height)
		} else {
			require.Equal(t, "aac", s.CodecName)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	counted, err := ffprobe(ctx, p.RTMPURL("live/scaled?vhost=transcode"), "-count_packets", "-read_intervals", "%+3")
	require.NoError(t, err)
	for _, s := range counted.Streams {
		n, _ := strconv.Atoi(s.NbReadPackets)
		require.Greater(t, n, 40, "%s keeps flowing in real time", s.CodecName)
	}
	require.Contains(t, p.Logs.String(), "transcode started")
}
