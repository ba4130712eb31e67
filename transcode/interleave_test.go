package transcode

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/ingest/media"
)

// requireMonotonic fails at the first packet whose DTS is before the one
// written before it, whatever its track.
func requireMonotonic(t *testing.T, pkts []media.Packet) {
	t.Helper()
	for i := 1; i < len(pkts); i++ {
		require.GreaterOrEqual(t, pkts[i].DTS, pkts[i-1].DTS,
			"packet %d (%s at %s) after %s at %s", i, pkts[i].Track.Kind, pkts[i].DTS, pkts[i-1].Track.Kind, pkts[i-1].DTS)
	}
}

// The transcoded twin of H.264 + Speex (audio encoded to AAC, video
// copied) leaves in DTS order across tracks: before, audio came up to
// ~40 ms behind the video written before it.
func TestOutputInterleavedInDTSOrder(t *testing.T) {
	in := speexH264(t, "4")
	r := newRig(t, defaultSettings())
	out := r.transcode(t, "mix", in)
	inV, _ := split(in)
	outV, outA := split(out)
	require.Len(t, outV, len(inV), "every video packet passes")
	require.NotEmpty(t, outA)
	requireMonotonic(t, out)
	for i := range inV {
		require.Equal(t, inV[i].DTS, outV[i].DTS, "video times untouched")
		require.Equal(t, inV[i].PTS, outV[i].PTS)
	}
}

func TestInterleaver(t *testing.T) {
	v := &media.Track{Kind: media.KindVideo}
	a := &media.Track{Kind: media.KindAudio}
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	run := func(in []media.Packet) (out []media.Packet, il *interleaver) {
		il = &interleaver{emit: func(p media.Packet) { out = append(out, p) }}
		for _, p := range in {
			il.push(p)
		}
		il.flush()
		return out, il
	}

	t.Run("audio behind video is put in order, nothing moved", func(t *testing.T) {
		var in []media.Packet
		for i := range 100 {
			in = append(in, media.Packet{Track: v, DTS: ms(i * 40), PTS: ms(i * 40)})
			if i >= 1 { // audio 37 ms late
				in = append(in, media.Packet{Track: a, DTS: ms(i*40 - 37), PTS: ms(i*40 - 37)})
			}
		}
		out, il := run(in)
		require.Len(t, out, len(in))
		requireMonotonic(t, out)
		require.Zero(t, il.late)
	})

	t.Run("one track alone waits only once, at the start", func(t *testing.T) {
		var out []media.Packet
		il := &interleaver{emit: func(p media.Packet) { out = append(out, p) }}
		for i := range 11 { // 0 to 400 ms
			il.push(media.Packet{Track: v, DTS: ms(i * 40)})
		}
		require.Empty(t, out, "held for maxHold of media time")
		il.push(media.Packet{Track: v, DTS: ms(11 * 40)})
		require.Len(t, out, 12)
		for i := 12; i < 50; i++ {
			il.push(media.Packet{Track: v, DTS: ms(i * 40)})
			require.Len(t, out, i+1, "then each packet as it comes")
		}
	})

	t.Run("a stalled track holds nothing up; its late packets are moved forward", func(t *testing.T) {
		var in []media.Packet
		for i := range 40 {
			in = append(in, media.Packet{Track: v, DTS: ms(i * 40), PTS: ms(i*40 + 80)})
			if i < 5 || i > 30 {
				in = append(in, media.Packet{Track: a, DTS: ms(i * 40), PTS: ms(i * 40)})
			}
		}
		// Audio comes back 600 ms behind: written at the last time written.
		in = append(in, media.Packet{Track: a, DTS: ms(40*40 - 600), PTS: ms(40*40 - 600)})
		out, il := run(in)
		require.Len(t, out, len(in))
		requireMonotonic(t, out)
		require.Equal(t, uint64(1), il.late)
	})

	t.Run("a jump back of the input clock starts anew", func(t *testing.T) {
		var in []media.Packet
		for i := range 20 {
			in = append(in, media.Packet{Track: v, DTS: ms(100000 + i*40)}, media.Packet{Track: a, DTS: ms(100000 + i*40 - 20)})
		}
		for i := range 20 {
			in = append(in, media.Packet{Track: v, DTS: ms(i * 40)}, media.Packet{Track: a, DTS: ms(i*40 - 20 + 40)})
		}
		out, il := run(in)
		require.Len(t, out, len(in))
		require.Zero(t, il.late, "times kept across the jump")
		requireMonotonic(t, out[:40])
		requireMonotonic(t, out[40:])
	})
}
