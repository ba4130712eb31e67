package flv

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/ingest/media"
)

// x265Stream encodes one second of 320x240 HEVC with libx265 and returns
// its HEVCDecoderConfigurationRecord and access units (4-byte
// length-prefixed NAL units) with their keyframe flags.
func x265Stream(t testing.TB) (config []byte, aus [][]byte, keys []bool) {
	t.Helper()
	path := ffmpeg(t, "in.hevc", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "1",
		"-c:v", "libx265", "-x265-params", "aud=1:log-level=error:keyint=10", "-f", "hevc")
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var nalus h264.AnnexB
	require.NoError(t, nalus.Unmarshal(raw))

	params := map[h265.NALUType][][]byte{}
	var au []byte
	key := false
	flush := func() {
		if len(au) > 0 {
			aus, keys = append(aus, au), append(keys, key)
		}
		au, key = nil, false
	}
	for _, n := range nalus {
		typ := h265.NALUType((n[0] >> 1) & 0x3F)
		switch {
		case typ == h265.NALUType_AUD_NUT:
			flush()
			continue
		case typ >= h265.NALUType_VPS_NUT && typ <= h265.NALUType_PPS_NUT:
			if len(params[typ]) == 0 || !bytes.Equal(params[typ][0], n) {
				params[typ] = append(params[typ], n) // x265 repeats them at keyframes
			}
			continue
		case typ >= h265.NALUType_BLA_W_LP && typ <= h265.NALUType_CRA_NUT:
			key = true
		}
		au = binary.BigEndian.AppendUint32(au, uint32(len(n)))
		au = append(au, n...)
	}
	flush()

	config = make([]byte, 22, 64)
	config[0], config[21] = 1, 0x0F // version, lengthSizeMinusOne = 3
	config = append(config, 3)
	for _, typ := range []h265.NALUType{h265.NALUType_VPS_NUT, h265.NALUType_SPS_NUT, h265.NALUType_PPS_NUT} {
		require.Len(t, params[typ], 1, "parameter set %v", typ)
		config = append(config, 0x80|byte(typ), 0, 1)
		config = binary.BigEndian.AppendUint16(config, uint16(len(params[typ][0])))
		config = append(config, params[typ][0]...)
	}
	return config, aus, keys
}

// TestHEVC demuxes real libx265 output in the three framings publishers use
// (Enhanced RTMP CodedFrames and CodedFramesX, legacy codec id 12) and
// re-muxes it as Enhanced RTMP.
func TestHEVC(t *testing.T) {
	config, aus, keys := x265Stream(t)
	require.Greater(t, len(aus), 20)

	frameType := func(key bool) byte {
		if key {
			return 1
		}
		return 2
	}
	tests := []struct {
		name   string
		config []byte
		frame  func(i int, au []byte, cts int32) []byte
		hasCTS bool
	}{
		{"enhanced_coded_frames", append([]byte{0x90, 'h', 'v', 'c', '1'}, config...),
			func(i int, au []byte, cts int32) []byte {
				b := []byte{0x80 | frameType(keys[i])<<4 | 1, 'h', 'v', 'c', '1'}
				return append(appendInt24(b, int64(cts)), au...)
			}, true},
		{"enhanced_coded_frames_x", append([]byte{0x90, 'h', 'v', 'c', '1'}, config...),
			func(i int, au []byte, _ int32) []byte {
				return append([]byte{0x80 | frameType(keys[i])<<4 | 3, 'h', 'v', 'c', '1'}, au...)
			}, false},
		{"legacy_id_12", append([]byte{0x1C, 0, 0, 0, 0}, config...),
			func(i int, au []byte, cts int32) []byte {
				b := []byte{frameType(keys[i])<<4 | 12, 1}
				return append(appendInt24(b, int64(cts)), au...)
			}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Demuxer
			_, ok, err := d.Video(0, tt.config)
			require.NoError(t, err)
			require.False(t, ok)
			track := d.VideoTrack()
			require.Equal(t, media.CodecH265, track.Codec)
			require.Equal(t, 320, track.Width)
			require.Equal(t, 240, track.Height)
			require.Equal(t, config, track.Config)
			cfg, ok := VideoConfig(track)
			require.True(t, ok)
			require.Equal(t, append([]byte{0x90, 'h', 'v', 'c', '1'}, config...), cfg)

			nkeys := 0
			for i, au := range aus {
				var cts int32
				if tt.hasCTS {
					cts = int32(i%3-1) * 40 // signed, both ways
				}
				ts := uint32(i * 40)
				pkt, ok, err := d.Video(ts, tt.frame(i, au, cts))
				require.NoError(t, err)
				require.True(t, ok)
				require.Same(t, track, pkt.Track)
				require.Equal(t, au, pkt.Data)
				require.Equal(t, keys[i], pkt.Key)
				require.Equal(t, time.Duration(ts)*time.Millisecond, pkt.DTS)
				require.Equal(t, time.Duration(int32(ts)+cts)*time.Millisecond, pkt.PTS)
				if pkt.Key {
					nkeys++
				}
				body, err := VideoBody(&pkt)
				require.NoError(t, err)
				want := []byte{0x80 | frameType(keys[i])<<4 | 1, 'h', 'v', 'c', '1'}
				require.Equal(t, append(appendInt24(want, int64(cts)), au...), body)
			}
			require.Equal(t, 3, nkeys)
		})
	}
}

// TestEnhancedVideo covers AV1 and VP9 (no composition time), avc1, and the
// Enhanced RTMP packets that carry no frame.
func TestEnhancedVideo(t *testing.T) {
	for _, tc := range []struct {
		fourCC string
		codec  media.Codec
	}{{"av01", media.CodecAV1}, {"vp09", media.CodecVP9}} {
		t.Run(tc.fourCC, func(t *testing.T) {
			var d Demuxer
			cfg := append([]byte{0x90}, tc.fourCC...)
			cfg = append(cfg, 0x81, 0x04, 0x0C, 0x00)
			_, ok, err := d.Video(0, cfg)
			require.NoError(t, err)
			require.False(t, ok)
			require.Equal(t, tc.codec, d.VideoTrack().Codec)
			got, ok := VideoConfig(d.VideoTrack())
			require.True(t, ok)
			require.Equal(t, cfg, got)

			frame := append(append([]byte{0x91}, tc.fourCC...), 0x12, 0x00, 0x0A, 0x0B)
			pkt, ok, err := d.Video(40, frame)
			require.NoError(t, err)
			require.True(t, ok)
			require.True(t, pkt.Key)
			require.Equal(t, pkt.DTS, pkt.PTS)
			require.Equal(t, frame[5:], pkt.Data)
			body, err := VideoBody(&pkt)
			require.NoError(t, err)
			require.Equal(t, frame, body)

			frameX := append(append([]byte{0xA3}, tc.fourCC...), 0x30, 0x31)
			pkt, ok, err = d.Video(80, frameX)
			require.NoError(t, err)
			require.True(t, ok)
			require.False(t, pkt.Key)
			require.Equal(t, []byte{0x30, 0x31}, pkt.Data)

			for _, b := range [][]byte{
				append([]byte{0x92}, tc.fourCC...),                       // SequenceEnd
				append(append([]byte{0x94}, tc.fourCC...), 2, 0, 1, 'x'), // Metadata
				append(append([]byte{0xD1}, tc.fourCC...), 0),            // command frame
			} {
				_, ok, err := d.Video(120, b)
				require.NoError(t, err)
				require.False(t, ok)
			}
		})
	}

	t.Run("avc1", func(t *testing.T) {
		var d Demuxer
		legacy := avcConfigBody(t)
		_, _, err := d.Video(0, append([]byte{0x90, 'a', 'v', 'c', '1'}, legacy[5:]...))
		require.NoError(t, err)
		require.Equal(t, media.CodecH264, d.VideoTrack().Codec)
		require.Equal(t, 320, d.VideoTrack().Width)
		pkt, ok, err := d.Video(100, []byte{0x91, 'a', 'v', 'c', '1', 0, 0, 40, 0, 0, 0, 1, 0x65})
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, 140*time.Millisecond, pkt.PTS)
		body, err := VideoBody(&pkt)
		require.NoError(t, err)
		require.Equal(t, []byte{0x17, 1, 0, 0, 40, 0, 0, 0, 1, 0x65}, body, "avc1 is re-muxed as legacy AVC")
	})
}

// avcConfigBody returns the AVC sequence header ffmpeg writes for 320x240.
func avcConfigBody(t testing.TB) []byte {
	t.Helper()
	path := ffmpeg(t, "in.flv", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "0.2",
		"-c:v", "libx264", "-f", "flv")
	for _, tag := range readFLV(t, path) {
		if tag.Type == tagVideo && tag.Body[1] == 0 {
			return tag.Body
		}
	}
	require.FailNow(t, "no AVC sequence header")
	return nil
}

func TestLegacyOpaqueVideo(t *testing.T) {
	for _, body := range [][]byte{
		{0x14, 0x00, 0x80, 0x11, 0x22},             // VP6 key, adjustment byte
		{0x15, 0x00, 0x00, 0x02, 0x07, 0xAA, 0xBB}, // VP6A key, alpha offset
		{0x13, 0x01, 0x40, 0x00, 0xF0, 0x00},       // Screen, 320x240
	} {
		var d Demuxer
		pkt, ok, err := d.Video(7, body)
		require.NoError(t, err)
		require.True(t, ok)
		require.True(t, pkt.Key)
		require.Equal(t, body[1:], pkt.Data)
		out, err := VideoBody(&pkt)
		require.NoError(t, err)
		require.Equal(t, body, out)

		inter := bytes.Clone(body)
		inter[0] = 0x20 | body[0]&0x0F
		pkt2, ok, err := d.Video(47, inter)
		require.NoError(t, err)
		require.True(t, ok)
		require.False(t, pkt2.Key)
		require.Same(t, pkt.Track, pkt2.Track)
		out, err = VideoBody(&pkt2)
		require.NoError(t, err)
		require.Equal(t, inter, out)
	}
	var d Demuxer
	_, _, err := d.Video(0, []byte{0x13, 0x01, 0x40, 0x00, 0xF0})
	require.NoError(t, err)
	require.Equal(t, [2]int{320, 240}, [2]int{d.VideoTrack().Width, d.VideoTrack().Height})
	first := d.VideoTrack()
	_, _, err = d.Video(0, []byte{0x13, 0x01, 0x40, 0x00, 0xF0})
	require.NoError(t, err)
	require.Same(t, first, d.VideoTrack(), "same size: same track")
	_, _, err = d.Video(0, []byte{0x13, 0x02, 0x80, 0x01, 0xE0})
	require.NoError(t, err)
	require.NotSame(t, first, d.VideoTrack(), "new size: new track")
	require.Equal(t, [2]int{640, 480}, [2]int{d.VideoTrack().Width, d.VideoTrack().Height})
}

func TestAudioTracks(t *testing.T) {
	var d Demuxer
	mp3 := []byte{0xFF, 0xFB, 0x90, 0xC4, 0, 0} // MPEG-1 layer 3, 44.1 kHz, mono
	_, _, err := d.Audio(0, append([]byte{0x2F}, mp3...))
	require.NoError(t, err)
	first := d.AudioTrack()
	require.Equal(t, media.Track{Kind: media.KindAudio, Codec: media.CodecMP3, SampleRate: 44100, Channels: 1, SampleBits: 16}, *first)
	_, _, err = d.Audio(26, append([]byte{0x2F}, mp3...))
	require.NoError(t, err)
	require.Same(t, first, d.AudioTrack(), "same parameters: same track")

	tests := []struct {
		name string
		body []byte
		want media.Track
	}{
		{"mp3_8k_id14", []byte{0xE2, 0xFF, 0xE3, 0x08, 0xC4}, media.Track{Codec: media.CodecMP3, SampleRate: 8000, Channels: 1, SampleBits: 16}},
		{"mp3_8k_id14_no_header", []byte{0xE3, 1}, media.Track{Codec: media.CodecMP3, SampleRate: 8000, Channels: 2, SampleBits: 16}},
		{"mp3_flags_only", []byte{0x2B, 1}, media.Track{Codec: media.CodecMP3, SampleRate: 22050, Channels: 2, SampleBits: 16}},
		{"speex_flash_flags", []byte{0xB2, 1}, media.Track{Codec: media.CodecSpeex, SampleRate: 16000, Channels: 1, SampleBits: 16}},
		{"speex_stereo_flag_ignored", []byte{0xBF, 1}, media.Track{Codec: media.CodecSpeex, SampleRate: 16000, Channels: 1, SampleBits: 16}},
		{"pcm_5512_8bit", []byte{0x00, 1}, media.Track{Codec: media.CodecPCM, SampleRate: 5512, Channels: 1, SampleBits: 8}},
		{"pcm_le_stereo", []byte{0x3F, 1}, media.Track{Codec: media.CodecPCMLE, SampleRate: 44100, Channels: 2, SampleBits: 16}},
		{"nellymoser_16k", []byte{0x4E, 1}, media.Track{Codec: media.CodecNellymoser, SampleRate: 16000, Channels: 1, SampleBits: 16}},
		{"nellymoser_8k", []byte{0x5E, 1}, media.Track{Codec: media.CodecNellymoser, SampleRate: 8000, Channels: 1, SampleBits: 16}},
		{"nellymoser_11k", []byte{0x66, 1}, media.Track{Codec: media.CodecNellymoser, SampleRate: 11025, Channels: 1, SampleBits: 16}},
		{"alaw_stereo", []byte{0x73, 1}, media.Track{Codec: media.CodecG711A, SampleRate: 8000, Channels: 2, SampleBits: 16}},
		{"mulaw", []byte{0x82, 1}, media.Track{Codec: media.CodecG711U, SampleRate: 8000, Channels: 1, SampleBits: 16}},
		{"adpcm_5k", []byte{0x12, 1}, media.Track{Codec: media.CodecADPCM, SampleRate: 5512, Channels: 1, SampleBits: 16}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := d.AudioTrack()
			pkt, ok, err := d.Audio(1000, tt.body)
			require.NoError(t, err)
			require.True(t, ok)
			tt.want.Kind = media.KindAudio
			require.Equal(t, tt.want, *pkt.Track)
			if tt.name == "speex_stereo_flag_ignored" {
				require.Same(t, before, pkt.Track, "same parameters: same track")
			} else {
				require.NotSame(t, before, pkt.Track, "new parameters: new track")
			}
			require.Equal(t, tt.body[1:], pkt.Data)
			require.True(t, pkt.Key)
			require.Equal(t, time.Second, pkt.DTS)
			require.Equal(t, time.Second, pkt.PTS)
			// Muxing back gives a flags byte that demuxes to the same track.
			body, err := AudioBody(&pkt)
			require.NoError(t, err)
			var d2 Demuxer
			again, ok, err := d2.Audio(0, body)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, *pkt.Track, *again.Track, "flags %#02x", body[0])
		})
	}
}

func TestSequenceHeaders(t *testing.T) {
	var d Demuxer
	asc := []byte{0x12, 0x10} // AAC LC, 44.1 kHz, stereo
	_, ok, err := d.Audio(0, append([]byte{0xAF, 0}, asc...))
	require.NoError(t, err)
	require.False(t, ok)
	aac := d.AudioTrack()
	require.Equal(t, media.Track{Kind: media.KindAudio, Codec: media.CodecAAC, Config: asc, SampleRate: 44100, Channels: 2, SampleBits: 16}, *aac)
	_, _, err = d.Audio(0, append([]byte{0xAF, 0}, asc...))
	require.NoError(t, err)
	require.Same(t, aac, d.AudioTrack(), "repeated sequence header: same track")
	_, _, err = d.Audio(0, []byte{0xAF, 0, 0x11, 0x88}) // 48 kHz mono
	require.NoError(t, err)
	require.NotSame(t, aac, d.AudioTrack())
	require.Equal(t, 48000, d.AudioTrack().SampleRate)
	require.Equal(t, 1, d.AudioTrack().Channels)
	_, _, err = d.Audio(0, []byte{0xAF, 0, 0x0A, 0x10}) // AAC Main: fallback parser
	require.NoError(t, err)
	require.Equal(t, 44100, d.AudioTrack().SampleRate)
	require.Equal(t, 2, d.AudioTrack().Channels)

	avc := avcConfigBody(t)
	_, ok, err = d.Video(0, avc)
	require.NoError(t, err)
	require.False(t, ok)
	vt := d.VideoTrack()
	require.Equal(t, 320, vt.Width)
	_, _, err = d.Video(0, avc)
	require.NoError(t, err)
	require.Same(t, vt, d.VideoTrack(), "repeated sequence header: same track")
	_, ok, err = d.Video(0, []byte{0x17, 2, 0, 0, 0})
	require.NoError(t, err)
	require.False(t, ok, "end of sequence")
	require.Same(t, vt, d.VideoTrack())
	_, ok, err = d.Video(0, []byte{0x57, 0})
	require.NoError(t, err)
	require.False(t, ok, "command frame")
}

// TestPacketsOwnData checks that nothing the Demuxer returns aliases the
// caller's buffer, which the RTMP layer reuses.
func TestPacketsOwnData(t *testing.T) {
	var d Demuxer
	buf := append([]byte{0xAF, 0}, 0x12, 0x10)
	_, _, err := d.Audio(0, buf)
	require.NoError(t, err)
	buf[2] = 0
	require.Equal(t, []byte{0x12, 0x10}, d.AudioTrack().Config)

	buf = []byte{0xAF, 1, 0x21, 0x22}
	pkt, ok, err := d.Audio(0, buf)
	require.NoError(t, err)
	require.True(t, ok)
	buf[2] = 0
	require.Equal(t, []byte{0x21, 0x22}, pkt.Data)

	buf = avcConfigBody(t)
	_, _, err = d.Video(0, buf)
	require.NoError(t, err)
	want := bytes.Clone(buf[5:])
	clear(buf)
	require.Equal(t, want, d.VideoTrack().Config)

	buf = []byte{0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41}
	pkt, ok, err = d.Video(0, buf)
	require.NoError(t, err)
	require.True(t, ok)
	clear(buf)
	require.Equal(t, []byte{0, 0, 0, 1, 0x41}, pkt.Data)
}

func TestDemuxErrors(t *testing.T) {
	h264 := func(d *Demuxer) {
		_, _, err := d.Video(0, avcConfigBody(t))
		require.NoError(t, err)
	}
	tests := []struct {
		name  string
		video bool
		setup func(*Demuxer)
		body  []byte
		err   string
	}{
		{"empty audio", false, nil, nil, "flv: empty audio body"},
		{"aac header", false, nil, []byte{0xAF}, "flv: audio body of 1 bytes: too short for AAC header"},
		{"aac packet type", false, nil, []byte{0xAF, 7}, "flv: aac packet type 7 invalid"},
		{"aac before config", false, nil, []byte{0xAF, 1, 0x21}, "flv: aac frame before sequence header"},
		{"aac bad config", false, nil, []byte{0xAF, 0, 0x17}, "flv: aac sequence header: config of 1 bytes: too short"},
		{"aac empty frame", false, func(d *Demuxer) {
			_, _, err := d.Audio(0, []byte{0xAF, 0, 0x12, 0x10})
			require.NoError(t, err)
		}, []byte{0xAF, 1}, "flv: aac audio body without payload"},
		{"device specific", false, nil, []byte{0xF2, 1}, "flv: device-specific sound format 15 not supported"},
		{"format 9", false, nil, []byte{0x92, 1}, "flv: sound format 9 not supported"},
		{"speex empty", false, nil, []byte{0xB2}, "flv: speex audio body without payload"},
		{"empty video", true, nil, []byte{}, "flv: empty video body"},
		{"avc header", true, nil, []byte{0x17, 1, 0}, "flv: video body of 3 bytes: too short for AVC header"},
		{"hevc header", true, nil, []byte{0x1C, 1, 0}, "flv: video body of 3 bytes: too short for HEVC header"},
		{"avc packet type", true, nil, []byte{0x17, 3, 0, 0, 0}, "flv: AVC packet type 3 invalid"},
		{"avc before config", true, nil, []byte{0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65}, "flv: h264 frame before sequence header"},
		{"hevc frame on avc track", true, h264, []byte{0x1C, 1, 0, 0, 0, 0, 0, 0, 1, 0x26}, "flv: hevc frame before sequence header"},
		{"avc empty frame", true, h264, []byte{0x17, 1, 0, 0, 0}, "flv: empty h264 frame"},
		{"avc short record", true, nil, []byte{0x17, 0, 0, 0, 0, 1, 2}, "flv: h264 sequence header: record of 2 bytes: too short"},
		{"avc record version", true, nil, []byte{0x17, 0, 0, 0, 0, 2, 0x64, 0, 0x1F, 0xFF, 0xE1, 0}, "flv: h264 sequence header: record version 2: not 1"},
		{"avc sps truncated", true, nil, []byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 9, 0x67}, "flv: h264 sequence header: sps 0: nal unit of 9 bytes: 1 left in record"},
		{"hevc no sps", true, nil, append([]byte{0x1C, 0, 0, 0, 0, 1}, make([]byte, 22)...), "flv: hevc sequence header: record has no SPS"},
		{"codec id", true, nil, []byte{0x1F, 0}, "flv: video codec id 15 not supported"},
		{"frame type 0", true, nil, []byte{0x02, 0}, "flv: video frame type 0 invalid"},
		{"h263 empty", true, nil, []byte{0x12}, "flv: empty flv1 frame"},
		{"ex header", true, nil, []byte{0x90, 'h', 'v'}, "flv: video body of 3 bytes: too short for enhanced RTMP header"},
		{"ex fourcc", true, nil, []byte{0x90, 'v', 'p', '0', '8'}, `flv: enhanced RTMP video fourcc "vp08" not supported`},
		{"ex packet type", true, nil, []byte{0x96, 'h', 'v', 'c', '1'}, "flv: enhanced RTMP video packet type 6 not supported"},
		{"ex cts", true, nil, []byte{0x91, 'h', 'v', 'c', '1', 0}, "flv: video body of 6 bytes: too short for hevc composition time"},
		{"ex empty config", true, nil, []byte{0x90, 'a', 'v', '0', '1'}, "flv: av1 sequence header: empty"},
		{"ex frame type", true, nil, []byte{0xF1, 'a', 'v', '0', '1'}, "flv: video frame type 7 invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Demuxer
			if tt.setup != nil {
				tt.setup(&d)
			}
			var err error
			var ok bool
			if tt.video {
				_, ok, err = d.Video(0, tt.body)
			} else {
				_, ok, err = d.Audio(0, tt.body)
			}
			require.EqualError(t, err, tt.err)
			require.False(t, ok)
		})
	}
}

func TestMuxing(t *testing.T) {
	opus := &media.Track{Kind: media.KindAudio, Codec: media.CodecOpus, SampleRate: 48000, Channels: 2}
	_, err := AudioBody(&media.Packet{Track: opus, Data: []byte{1}})
	require.EqualError(t, err, "flv: audio codec opus not supported")
	_, err = VideoBody(&media.Packet{Data: []byte{1}})
	require.EqualError(t, err, "flv: video codec unknown not supported")
	_, ok := AudioConfig(opus)
	require.False(t, ok)
	_, ok = AudioConfig(&media.Track{Codec: media.CodecSpeex})
	require.False(t, ok)
	_, ok = VideoConfig(&media.Track{Codec: media.CodecVP6, Config: []byte{1}})
	require.False(t, ok)
	_, ok = VideoConfig(nil)
	require.False(t, ok)

	h := &media.Track{Kind: media.KindVideo, Codec: media.CodecH264, Config: []byte{1}}
	for _, tc := range []struct {
		dts, pts time.Duration
		cts      []byte
	}{
		{1500 * time.Microsecond, 2400 * time.Microsecond, []byte{0, 0, 1}}, // Timestamp(pts)-Timestamp(dts)
		{time.Second, 0, []byte{0xFF, 0xFC, 0x18}},                          // -1000
		{0, 3 * time.Hour, []byte{0x7F, 0xFF, 0xFF}},                        // clamped
	} {
		body, err := AppendVideo(nil, &media.Packet{Track: h, DTS: tc.dts, PTS: tc.pts, Data: []byte{9}})
		require.NoError(t, err)
		require.Equal(t, append(append([]byte{0x27, 1}, tc.cts...), 9), body)
	}
	require.Equal(t, uint32(1), Timestamp(1500*time.Microsecond))

	// AppendVideo appends.
	p := &media.Packet{Track: h, Key: true, Data: []byte{7, 8}}
	b, err := AppendVideo([]byte{0xEE}, p)
	require.NoError(t, err)
	require.Equal(t, []byte{0xEE, 0x17, 1, 0, 0, 0, 7, 8}, b)
	a := &media.Packet{Track: &media.Track{Codec: media.CodecAAC}, Data: []byte{5}}
	b, err = AppendAudio(b[:1], a)
	require.NoError(t, err)
	require.Equal(t, []byte{0xEE, 0xAF, 1, 5}, b)
}

// A legacy-codec frame (Speex, the classroom encoders' codec) costs no
// allocation of its own: the track is made once, not per frame, and the
// payload is cut from the demuxer's slab.
func TestDemuxLegacyAudioDoesNotAllocatePerFrame(t *testing.T) {
	var d Demuxer
	body := []byte{0xB2, 1, 2, 3, 4, 5}
	first, ok, err := d.Audio(0, body)
	require.NoError(t, err)
	require.True(t, ok)
	allocs := testing.AllocsPerRun(100, func() {
		pkt, ok, err := d.Audio(20, body)
		if err != nil || !ok || pkt.Track != first.Track {
			panic("track changed")
		}
	})
	require.Zero(t, allocs)
}

// Payloads cut from one slab are each the bytes they were given, and none
// can grow into its neighbour.
func TestDemuxPayloadsFromOneSlab(t *testing.T) {
	var d Demuxer
	var pkts [][]byte
	for i := range 3000 { // several slabs
		n := 1 + i%700
		if i%500 == 0 {
			n = slabSize/4 + 1 // a big one, copied on its own
		}
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(i + j)
		}
		p := d.payload(b)
		require.Equal(t, b, p)
		if n <= slabSize/4 {
			require.Equal(t, len(p), cap(p), "capacity ends at the length")
		}
		b[0]++ // the caller reuses its buffer
		pkts = append(pkts, p)
	}
	for i, p := range pkts {
		_ = append(p, 0xEE) // a consumer appending must get a new array
		for j := range p {
			require.Equal(t, byte(i+j), p[j], "packet %d byte %d", i, j)
		}
	}
}
