package rtsp

import (
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/ingest/media"
)

// A real x264 SPS (1920x1080 High) and slices, from mediacommon's tests.
var (
	testSPS = []byte{0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0x84, 0x00, 0x00,
		0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc6, 0x58}
	testPPS   = []byte{0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0}
	testIDR   = []byte{0x65, 0x88, 0x84, 0x00, 0x33, 0xff}
	testSlice = [][]byte{{0x41, 0x9a, 0x21, 0x6c, 0x45, 0xff}, {0x41, 0x9a, 0x42, 0x3c, 0x21, 0x93}}
)

func avcc(t *testing.T, nalus ...[]byte) []byte {
	t.Helper()
	b, err := h264.AVCC(nalus).Marshal()
	require.NoError(t, err)
	return b
}

func TestAVCConfigRoundTrip(t *testing.T) {
	cfg, err := avcConfig(testSPS, testPPS)
	require.NoError(t, err)
	sets, err := paramSets(media.CodecH264, cfg)
	require.NoError(t, err)
	require.Nil(t, sets[0])
	require.Equal(t, testSPS, sets[1])
	require.Equal(t, testPPS, sets[2])
	w, h := media.VideoSize(media.CodecH264, testSPS)
	require.Equal(t, 1920, w)
	require.Equal(t, 1080, h)

	_, err = paramSets(media.CodecH264, cfg[:len(cfg)-2])
	require.Error(t, err, "a truncated record")
}

func TestHEVCConfigRoundTrip(t *testing.T) {
	vps := []byte{0x40, 0x01, 0x0c, 0x01, 0xff, 0xff}
	sps := []byte{0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x78}
	pps := []byte{0x44, 0x01, 0xc1, 0x72}
	cfg, err := hevcConfig(vps, sps, pps)
	require.NoError(t, err)
	require.Equal(t, byte(1), cfg[0])
	sets, err := paramSets(media.CodecH265, cfg)
	require.NoError(t, err)
	require.Equal(t, [3][]byte{vps, sps, pps}, sets)
}

// Hub packets go out as RTP and come back as the same access units, with
// the SPS/PPS sent in band in front of keyframes.
func TestH264PacketizeDepacketize(t *testing.T) {
	cfg, err := avcConfig(testSPS, testPPS)
	require.NoError(t, err)
	track := &media.Track{Kind: media.KindVideo, Codec: media.CodecH264, Config: cfg}
	forma, err := formatFor(track, 96)
	require.NoError(t, err)
	pz, err := newPacketizer(track, forma)
	require.NoError(t, err)

	medi := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}
	now := time.Unix(1000, 0)
	tl := newTimeline(func() time.Time { return now })
	dp, err := newDepacketizer(medi, forma, tl)
	require.NoError(t, err)
	require.Equal(t, cfg, dp.track.Config, "config from the SDP's sprop-parameter-sets")

	in := []media.Packet{
		{Track: track, PTS: 0, DTS: 0, Key: true, Data: avcc(t, testIDR)},
		{Track: track, PTS: 40 * time.Millisecond, DTS: 40 * time.Millisecond, Data: avcc(t, testSlice[0])},
		{Track: track, PTS: 80 * time.Millisecond, DTS: 80 * time.Millisecond, Data: avcc(t, testSlice[1])},
	}
	var out []media.Packet
	for i := range in {
		pkts, err := pz.packets(&in[i])
		require.NoError(t, err)
		for _, p := range pkts {
			require.NoError(t, dp.handle(roundTrip(t, p), time.Time{}, false, func(p media.Packet) { out = append(out, p) }))
		}
	}
	require.Len(t, out, 3)
	require.True(t, out[0].Key)
	require.Equal(t, avcc(t, testSPS, testPPS, testIDR), out[0].Data)
	require.Equal(t, avcc(t, testSlice[0]), out[1].Data)
	for i, p := range out {
		require.Equal(t, in[i].PTS, p.PTS.Round(time.Millisecond), "packet %d", i)
		require.Equal(t, p.PTS, p.DTS)
	}
}

// roundTrip marshals and parses an RTP packet as the network would.
func roundTrip(t *testing.T, p *rtp.Packet) *rtp.Packet {
	t.Helper()
	b, err := p.Marshal()
	require.NoError(t, err)
	var q rtp.Packet
	require.NoError(t, q.Unmarshal(b))
	return &q
}

func TestAudioPacketizeDepacketize(t *testing.T) {
	tracks := []*media.Track{
		{Kind: media.KindAudio, Codec: media.CodecAAC, Config: []byte{0x12, 0x10}, SampleRate: 44100, Channels: 2},
		{Kind: media.KindAudio, Codec: media.CodecG711A, SampleRate: 8000, Channels: 1},
		{Kind: media.KindAudio, Codec: media.CodecG711U, SampleRate: 8000, Channels: 1},
		{Kind: media.KindAudio, Codec: media.CodecOpus, SampleRate: 48000, Channels: 2},
		{Kind: media.KindAudio, Codec: media.CodecPCMLE, SampleRate: 16000, Channels: 1, SampleBits: 16},
	}
	for _, track := range tracks {
		t.Run(track.Codec.String(), func(t *testing.T) {
			forma, err := formatFor(track, 97)
			require.NoError(t, err)
			pz, err := newPacketizer(track, forma)
			require.NoError(t, err)
			medi := &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{forma}}
			dp, err := newDepacketizer(medi, forma, newTimeline(nil))
			require.NoError(t, err)
			require.Equal(t, track.Codec, dp.track.Codec)
			require.Equal(t, track.SampleRate, dp.track.SampleRate)

			data := []byte{1, 2, 3, 4, 5, 6, 7, 8}
			pkt := media.Packet{Track: track, PTS: 20 * time.Millisecond, DTS: 20 * time.Millisecond, Key: true, Data: data}
			pkts, err := pz.packets(&pkt)
			require.NoError(t, err)
			var got []byte
			for _, p := range pkts {
				require.NoError(t, dp.handle(roundTrip(t, p), time.Time{}, false, func(p media.Packet) {
					got = append(got, p.Data...)
				}))
			}
			require.Equal(t, data, got)
		})
	}
}

func TestLPCMConversions(t *testing.T) {
	require.Equal(t, []byte{2, 1, 4, 3}, lpcmToLE(16, []byte{1, 2, 3, 4}))
	require.Equal(t, []byte{2, 1, 5, 4}, lpcmToLE(24, []byte{1, 2, 0xff, 4, 5, 0xff}))
	require.Equal(t, []byte{1, 2, 3, 4}, lpcmFromLE(lpcmToLE(16, []byte{1, 2, 3, 4})))
	require.Equal(t, []byte{7, 8}, lpcmToLE(8, []byte{7, 8}))
}

func TestUnsupportedCodecs(t *testing.T) {
	for _, c := range []media.Codec{media.CodecSpeex, media.CodecMP3, media.CodecNellymoser, media.CodecH263} {
		_, err := formatFor(&media.Track{Kind: c.Kind(), Codec: c}, 96)
		require.ErrorIs(t, err, errUnsupported, c.String())
	}
}

// Garbage RTP payloads are errors (or ignored), never panics, and the
// depacketizer recovers at the next keyframe.
func TestDepacketizerSurvivesGarbage(t *testing.T) {
	cfg, err := avcConfig(testSPS, testPPS)
	require.NoError(t, err)
	track := &media.Track{Kind: media.KindVideo, Codec: media.CodecH264, Config: cfg}
	forma, err := formatFor(track, 96)
	require.NoError(t, err)
	medi := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}
	dp, err := newDepacketizer(medi, forma, newTimeline(nil))
	require.NoError(t, err)
	var out []media.Packet
	emit := func(p media.Packet) { out = append(out, p) }
	for i := range 2000 {
		payload := make([]byte, i%300)
		for j := range payload {
			payload[j] = byte(i*31 + j*7)
		}
		_ = dp.handle(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(i * 977),
			Timestamp: uint32(i * 123457), Marker: i%3 == 0}, Payload: payload}, time.Time{}, false, emit)
	}
	out = out[:0]
	pz, err := newPacketizer(track, forma)
	require.NoError(t, err)
	good := media.Packet{Track: track, Key: true, Data: avcc(t, testIDR)}
	pkts, err := pz.packets(&good)
	require.NoError(t, err)
	for range 2 { // the first may carry the garbage's leftovers
		for _, p := range pkts {
			_ = dp.handle(p, time.Time{}, false, emit)
		}
	}
	require.NotEmpty(t, out, "a keyframe after garbage decodes")
	require.True(t, out[len(out)-1].Key)
}
