package flv

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/ingest/media"
)

// TestFFmpegRoundTrip encodes a real stream per FLV audio format (and per
// legacy video codec) with the ffmpeg CLI, demuxes every tag body, checks
// tracks, packets, timestamps and keyframes against ffprobe, re-muxes every
// packet and sequence header to the byte, and has ffprobe read the
// re-muxed file.
func TestFFmpegRoundTrip(t *testing.T) {
	tests := []struct {
		name       string
		video      []string
		audio      []string
		videoCodec media.Codec
		audioCodec media.Codec
		audioName  string // ffprobe's codec_name, when not audioCodec.String()
		rate       int
		channels   int
		bits       int
		flags      byte // FLV audio flags byte ffmpeg writes
	}{
		{"h264_speex", h264Args, []string{"-c:a", "libspeex", "-ar", "16000"},
			media.CodecH264, media.CodecSpeex, "", 16000, 1, 16, 0xB6},
		{"h264_aac_stereo", h264Args, []string{"-c:a", "aac", "-ar", "44100", "-ac", "2"},
			media.CodecH264, media.CodecAAC, "", 44100, 2, 16, 0xAF},
		{"h264_aac_mono_48k", h264Args, []string{"-c:a", "aac", "-ar", "48000", "-ac", "1"},
			media.CodecH264, media.CodecAAC, "", 48000, 1, 16, 0xAF},
		{"h264_mp3_44k_stereo", h264Args, []string{"-c:a", "libmp3lame", "-ar", "44100", "-ac", "2"},
			media.CodecH264, media.CodecMP3, "", 44100, 2, 16, 0x2F},
		{"h264_mp3_48k", h264Args, []string{"-c:a", "libmp3lame", "-ar", "48000", "-ac", "1"},
			media.CodecH264, media.CodecMP3, "", 48000, 1, 16, 0x2E},
		{"flv1_mp3_22k_mono", flv1Args, []string{"-c:a", "libmp3lame", "-ar", "22050", "-ac", "1"},
			media.CodecH263, media.CodecMP3, "", 22050, 1, 16, 0x2A},
		{"flv1_nellymoser_22k", flv1Args, []string{"-c:a", "nellymoser", "-ar", "22050"},
			media.CodecH263, media.CodecNellymoser, "", 22050, 1, 16, 0x6A},
		{"flv1_nellymoser_16k", flv1Args, []string{"-c:a", "nellymoser", "-ar", "16000"},
			media.CodecH263, media.CodecNellymoser, "", 16000, 1, 16, 0x42},
		{"flv1_nellymoser_8k", flv1Args, []string{"-c:a", "nellymoser", "-ar", "8000"},
			media.CodecH263, media.CodecNellymoser, "", 8000, 1, 16, 0x52},
		{"h264_alaw", h264Args, []string{"-c:a", "pcm_alaw", "-ar", "8000"},
			media.CodecH264, media.CodecG711A, "", 8000, 1, 16, 0x72},
		{"h264_mulaw", h264Args, []string{"-c:a", "pcm_mulaw", "-ar", "8000"},
			media.CodecH264, media.CodecG711U, "", 8000, 1, 16, 0x82},
		{"flv1_adpcm_22k_stereo", flv1Args, []string{"-c:a", "adpcm_swf", "-ar", "22050", "-ac", "2"},
			media.CodecH263, media.CodecADPCM, "", 22050, 2, 16, 0x1B},
		{"h264_pcm_s16le_44k", h264Args, []string{"-c:a", "pcm_s16le", "-ar", "44100"},
			media.CodecH264, media.CodecPCMLE, "", 44100, 1, 16, 0x3E},
		{"flashsv_pcm_u8_11k", []string{"-c:v", "flashsv"}, []string{"-c:a", "pcm_u8", "-ar", "11025", "-ac", "2"},
			media.CodecScreen, media.CodecPCM, "pcm_u8", 11025, 2, 8, 0x05},
		{"flashsv2_adpcm_11k", []string{"-c:v", "flashsv2", "-g", "10"}, []string{"-c:a", "adpcm_swf", "-ar", "11025"},
			media.CodecScreen2, media.CodecADPCM, "", 11025, 1, 16, 0x16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
				"-f", "lavfi", "-i", "sine=f=440:sample_rate=44100", "-t", "2"}
			args = append(append(append(args, tt.video...), tt.audio...), "-f", "flv")
			src := ffmpeg(t, "in.flv", args...)
			probe := ffprobe(t, src)
			tags := readFLV(t, src)

			var d Demuxer
			var out []flvTag
			var audio, video []media.Packet
			var meta media.Metadata
			for i, tag := range tags {
				switch tag.Type {
				case tagScript:
					m, err := ParseMetadata(tag.Body)
					require.NoError(t, err, "tag %d", i)
					meta = m
					out = append(out, flvTag{tagScript, tag.TS, MetadataBody(m, false)})
				case tagAudio:
					before := d.AudioTrack()
					pkt, ok, err := d.Audio(tag.TS, tag.Body)
					require.NoError(t, err, "tag %d", i)
					require.Equal(t, tt.flags, tag.Body[0], "ffmpeg's audio flags byte")
					var body []byte
					if ok {
						audio = append(audio, pkt)
						body, err = AudioBody(&pkt)
						require.NoError(t, err)
					} else {
						require.NotSame(t, before, d.AudioTrack(), "tag %d: not a packet, not a new track", i)
						body, ok = AudioConfig(d.AudioTrack())
						require.True(t, ok)
					}
					require.Equal(t, tag.Body, body, "tag %d: audio body re-muxed", i)
					out = append(out, flvTag{tagAudio, tag.TS, body})
				case tagVideo:
					before := d.VideoTrack()
					pkt, ok, err := d.Video(tag.TS, tag.Body)
					require.NoError(t, err, "tag %d", i)
					var body []byte
					switch {
					case ok:
						video = append(video, pkt)
						body, err = VideoBody(&pkt)
						require.NoError(t, err)
					case before != d.VideoTrack():
						body, ok = VideoConfig(d.VideoTrack())
						require.True(t, ok)
					default: // end of sequence
						require.Equal(t, []byte{0x17, 2, 0, 0, 0}, tag.Body, "tag %d", i)
						continue
					}
					require.Equal(t, tag.Body, body, "tag %d: video body re-muxed", i)
					out = append(out, flvTag{tagVideo, tag.TS, body})
				}
			}

			// Tracks against ffprobe.
			at, vt := d.AudioTrack(), d.VideoTrack()
			require.NotNil(t, at)
			require.NotNil(t, vt)
			pa, pv := probe.stream(t, "audio"), probe.stream(t, "video")
			require.Equal(t, tt.audioCodec, at.Codec)
			name := tt.audioName
			if name == "" {
				name = at.Codec.String()
			}
			require.Equal(t, pa.CodecName, name)
			require.Equal(t, pa.SampleRate, strconv.Itoa(at.SampleRate))
			require.Equal(t, tt.rate, at.SampleRate)
			require.Equal(t, pa.Channels, at.Channels)
			require.Equal(t, tt.channels, at.Channels)
			require.Equal(t, tt.bits, at.SampleBits)
			require.Equal(t, tt.videoCodec, vt.Codec)
			require.Equal(t, pv.CodecName, vt.Codec.String())
			require.Equal(t, 320, vt.Width)
			require.Equal(t, 240, vt.Height)
			require.Equal(t, pv.Width, vt.Width)
			require.Equal(t, pv.Height, vt.Height)
			if at.Codec == media.CodecAAC {
				require.NotEmpty(t, at.Config)
			}
			if vt.Codec == media.CodecH264 {
				require.NotEmpty(t, vt.Config)
			}

			// Packets, timestamps, keyframes against ffprobe.
			comparePackets(t, "audio", probe.packets("audio"), audio, at)
			comparePackets(t, "video", probe.packets("video"), video, vt)
			require.Equal(t, pa.NbReadPackets, strconv.Itoa(len(audio)))
			require.Equal(t, pv.NbReadPackets, strconv.Itoa(len(video)))

			// Metadata from ffmpeg's onMetaData.
			w, ok := meta.Get("width")
			require.True(t, ok, "metadata %v", meta)
			require.Equal(t, 320.0, w)

			// The re-muxed file reads the same.
			dst := filepath.Join(t.TempDir(), "out.flv")
			writeFLV(t, dst, out)
			again := ffprobe(t, dst)
			for _, kind := range []string{"audio", "video"} {
				require.Equal(t, probe.stream(t, kind), again.stream(t, kind), kind)
			}
			require.Equal(t, probe.packets("audio"), again.packets("audio"))
			require.Equal(t, probe.packets("video"), again.packets("video"))
		})
	}
}

var (
	h264Args = []string{"-c:v", "libx264", "-preset", "veryfast", "-g", "10", "-bf", "2"}
	flv1Args = []string{"-c:v", "flv1", "-g", "12"}
)

func comparePackets(t *testing.T, kind string, want []probePacket, got []media.Packet, track *media.Track) {
	t.Helper()
	require.Len(t, got, len(want), kind)
	keys, wantKeys := 0, 0
	for i, p := range got {
		require.Same(t, track, p.Track, "%s packet %d: track changed", kind, i)
		require.Equal(t, want[i].DTS, p.DTS.Milliseconds(), "%s packet %d dts", kind, i)
		require.Equal(t, want[i].PTS, p.PTS.Milliseconds(), "%s packet %d pts", kind, i)
		if p.Key {
			keys++
		}
		if len(want[i].Flags) > 0 && want[i].Flags[0] == 'K' {
			wantKeys++
		}
	}
	require.Equal(t, wantKeys, keys, "%s keyframes", kind)
	if kind == "video" {
		require.Greater(t, keys, 1, "video keyframes")
	}
}
