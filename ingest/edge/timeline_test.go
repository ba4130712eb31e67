package edge

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/ingest/media"
)

var (
	tv = &media.Track{Kind: media.KindVideo, Codec: media.CodecH264}
	ta = &media.Track{Kind: media.KindAudio, Codec: media.CodecAAC}
)

// av makes 40 ms video frames (a keyframe every gop) with audio between,
// from ms on.
func av(from, n, gop int) []media.Packet {
	var out []media.Packet
	for i := range n {
		d := time.Duration(from+40*i) * time.Millisecond
		out = append(out, media.Packet{Track: tv, DTS: d, PTS: d + 80*time.Millisecond, Key: i%gop == 0})
		out = append(out, media.Packet{Track: ta, DTS: d + 20*time.Millisecond, PTS: d + 20*time.Millisecond, Key: true})
	}
	return out
}

func run(t *testing.T, tl *timeline, in []media.Packet) []media.Packet {
	t.Helper()
	var out []media.Packet
	for _, p := range in {
		if tl.apply(&p) {
			out = append(out, p)
		}
	}
	return out
}

func requireMonotonic(t *testing.T, out []media.Packet) {
	t.Helper()
	last := map[media.Kind]time.Duration{}
	seen := map[media.Kind]bool{}
	for i, p := range out {
		k := p.Track.Kind
		if seen[k] {
			require.Greater(t, p.DTS, last[k], "packet %d (%s)", i, k)
		}
		last[k], seen[k] = p.DTS, true
		require.GreaterOrEqual(t, p.PTS, p.DTS)
	}
}

// TestTimelineSameTimelineDropsWhatWasSent: the second origin carries the
// same timeline and starts at its GOP cache's keyframe (already sent):
// output resumes at its next keyframe, timestamps unchanged.
func TestTimelineSameTimelineDropsWhatWasSent(t *testing.T) {
	var tl timeline
	first := run(t, &tl, av(0, 60, 25)) // up to 2360 ms
	tl.switched()
	// The second origin's GOP cache starts at the keyframe at 2000 ms.
	second := run(t, &tl, av(2000, 60, 25))
	require.NotEmpty(t, second)
	require.True(t, second[0].IsVideoKey())
	require.True(t, second[0].Discontinuity)
	require.Equal(t, 3000*time.Millisecond, second[0].DTS, "the next keyframe after what was sent")
	for _, p := range second[1:] {
		require.False(t, p.Discontinuity)
	}
	requireMonotonic(t, append(first, second...))
}

// TestTimelineOtherTimelineRebases: the second origin's clock is elsewhere
// (another encoder): its first keyframe goes out one frame after the last
// packet, and the rest keeps its spacing.
func TestTimelineOtherTimelineRebases(t *testing.T) {
	var tl timeline
	first := run(t, &tl, av(0, 50, 25)) // video up to 1960 ms, audio 1980 ms
	tl.switched()
	in := av(500_000, 50, 25)
	in = append(in[1:3], in...) // starts with a non-key frame: dropped
	second := run(t, &tl, in)
	require.True(t, second[0].IsVideoKey() && second[0].Discontinuity)
	require.Equal(t, 1980*time.Millisecond+40*time.Millisecond, second[0].DTS)
	require.Equal(t, second[0].DTS+80*time.Millisecond, second[0].PTS)
	requireMonotonic(t, append(first, second...))

	// Back to an earlier clock (an origin restarted at 0): rebased again.
	tl.switched()
	third := run(t, &tl, av(0, 30, 25))
	require.True(t, third[0].Discontinuity)
	requireMonotonic(t, append(append(first, second...), third...))
}

// TestTimelineDropsBackwardsWithinAnOrigin: a packet going back in time on
// its track (an origin's own glitch) is dropped, not sent.
func TestTimelineDropsBackwardsWithinAnOrigin(t *testing.T) {
	var tl timeline
	in := av(0, 10, 5)
	in = append(in, media.Packet{Track: ta, DTS: 100 * time.Millisecond, PTS: 100 * time.Millisecond, Key: true})
	in = append(in, av(400, 10, 5)...)
	out := run(t, &tl, in)
	require.Len(t, out, len(in)-1)
	requireMonotonic(t, out)
}

// TestTimelineAudioOnly: with no video, a switch resumes on audio.
func TestTimelineAudioOnly(t *testing.T) {
	var tl timeline
	var in []media.Packet
	for i := range 20 {
		d := time.Duration(23*i) * time.Millisecond
		in = append(in, media.Packet{Track: ta, DTS: d, PTS: d, Key: true})
	}
	first := run(t, &tl, in)
	tl.switched()
	second := run(t, &tl, in) // the same frames again (same timeline): all sent already
	require.Empty(t, second)
	tl.switched()
	var later []media.Packet
	for i := range 5 {
		d := time.Duration(60_000+23*i) * time.Millisecond
		later = append(later, media.Packet{Track: ta, DTS: d, PTS: d, Key: true})
	}
	third := run(t, &tl, later)
	require.Len(t, third, 5)
	require.True(t, third[0].Discontinuity)
	requireMonotonic(t, append(first, third...))
}
