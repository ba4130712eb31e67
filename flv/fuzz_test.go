package flv

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The seed corpora under testdata/fuzz/ hold real bodies written by ffmpeg
// (every audio format, H.264, Sorenson, Screen video 1 and 2), libx265
// output in Enhanced RTMP and legacy id 12 framing, and hand-made AV1, VP9,
// VP6 and metadata bodies.

// FuzzDemuxAudio: no panic, and every packet re-muxes to a body that
// demuxes to the same track and payload.
func FuzzDemuxAudio(f *testing.F) {
	f.Add([]byte{0xAF, 1, 0x21, 0x10})
	f.Add([]byte{0x2F, 0xFF, 0xFB, 0x90, 0xC4, 0})
	f.Fuzz(func(t *testing.T, body []byte) {
		var d Demuxer
		_, _, err := d.Audio(0, []byte{0xAF, 0, 0x12, 0x10}) // so raw AAC frames parse
		require.NoError(t, err)
		pkt, ok, err := d.Audio(1, body)
		if err != nil || !ok {
			require.False(t, ok)
			return
		}
		require.Same(t, d.AudioTrack(), pkt.Track)
		out, err := AudioBody(&pkt)
		require.NoError(t, err)

		var d2 Demuxer
		if cfg, ok := AudioConfig(pkt.Track); ok {
			_, _, err := d2.Audio(0, cfg)
			require.NoError(t, err)
		}
		again, ok, err := d2.Audio(1, out)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, *pkt.Track, *again.Track, "track after re-mux as %#02x", out[0])
		require.Equal(t, pkt.Data, again.Data)
		require.Equal(t, pkt.DTS, again.DTS)
	})
}

// FuzzDemuxVideo feeds two messages (typically a sequence header, then a
// frame): no panic, every packet re-muxes to a body that demuxes to the same
// packet, and every track's sequence header demuxes to the same track.
func FuzzDemuxVideo(f *testing.F) {
	f.Add([]byte{0x17, 0, 0, 0, 0}, []byte{0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41})
	f.Fuzz(func(t *testing.T, first, second []byte) {
		var d Demuxer
		_, _, _ = d.Video(0, first)
		pkt, ok, err := d.Video(40, second)
		if track := d.VideoTrack(); track != nil {
			if cfg, ok := VideoConfig(track); ok {
				var d3 Demuxer
				_, ok, err := d3.Video(0, cfg)
				require.NoError(t, err)
				require.False(t, ok)
				require.Equal(t, *track, *d3.VideoTrack())
			}
		}
		if err != nil || !ok {
			require.False(t, ok)
			return
		}
		require.Same(t, d.VideoTrack(), pkt.Track)
		out, err := VideoBody(&pkt)
		require.NoError(t, err)

		var d2 Demuxer
		_, _, _ = d2.Video(0, first)
		again, ok, err := d2.Video(40, out)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, *pkt.Track, *again.Track)
		require.Equal(t, pkt.Data, again.Data)
		require.Equal(t, pkt.Key, again.Key)
		require.Equal(t, pkt.DTS, again.DTS)
		require.Equal(t, pkt.PTS, again.PTS)
	})
}

// FuzzParseMetadata: no panic, and whatever parses survives
// MetadataBody -> ParseMetadata -> MetadataBody unchanged (compared as
// bytes, so that NaN values compare equal).
func FuzzParseMetadata(f *testing.F) {
	f.Add(MetadataBody(kv("width", 320.0, "stereo", true, "encoder", "x", "n", nil), true))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := ParseMetadata(body)
		if err != nil {
			require.Nil(t, m)
			return
		}
		require.LessOrEqual(t, len(m), MaxMetadataProperties)
		out := MetadataBody(m, true)
		m2, err := ParseMetadata(out)
		require.NoError(t, err)
		require.Equal(t, out, MetadataBody(m2, true))
	})
}
