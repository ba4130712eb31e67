package rtmp

import (
	"testing"

	"github.com/stretchr/testify/require"
)

type gotMedia struct {
	typ uint8
	ts  uint32
	n   int
}

// pullInspector is the inspector as a Pull runs it: past the handshake,
// media allowed, every audio and video message handed out.
func pullInspector(l Limits) (*inspector, *[]gotMedia) {
	in := newInspector(l.withDefaults())
	in.st = stBasic
	in.published = true
	var got []gotMedia
	in.onMedia = func(typ uint8, ts uint32, body []byte) error {
		got = append(got, gotMedia{typ, ts, len(body)})
		return nil
	}
	return &in, &got
}

// TestPullMediaTimestamps: absolute timestamps from fmt 0, deltas from
// fmt 1 and 2, a fmt 3 message reusing the last delta, extended
// timestamps, and aggregate sub-messages.
func TestPullMediaTimestamps(t *testing.T) {
	in, got := pullInspector(Limits{})
	var b []byte
	b = append(b, message(6, 8, 1000, []byte{0xaf, 1, 2}, 128)...)
	b = append(b, basicHeader(1, 6)...)
	b = put24(b, 40)
	b = put24(b, 3)
	b = append(b, 8, 0xaf, 1, 3)
	b = append(b, basicHeader(3, 6)...) // a new message, the same delta
	b = append(b, 0xaf, 1, 4)
	b = append(b, basicHeader(2, 6)...)
	b = put24(b, 20)
	b = append(b, 0xaf, 1, 5)
	b = append(b, message(7, 9, 0x1000000, video(300), 128)...)
	agg := append(aggregateSub(9, video(10)), aggregateSub(8, []byte{0xaf, 1})...)
	b = append(b, message(8, typeAggregate, 5000, agg, 128)...)
	require.NoError(t, feedSplit(in, b, 7))
	require.Equal(t, []gotMedia{
		{8, 1000, 3}, {8, 1040, 3}, {8, 1080, 3}, {8, 1100, 3}, {9, 0x1000000, 300},
		{9, 5000, 10}, {8, 5000, 2},
	}, *got)
}

// FuzzPullMedia feeds arbitrary chunk bytes to a pull's inspector: no
// panic, and every message it hands out is audio or video within the
// media size limit.
func FuzzPullMedia(f *testing.F) {
	f.Add(message(6, 9, 0x1000000, video(300), 4096))
	f.Add(cat(message(6, 8, 10, []byte{0xaf, 1}, 128), message(6, 22, 40, aggregateSub(8, []byte{0xaf, 1}), 4096)))
	f.Add(cat(setChunkSize(64), message(7, 9, 0, video(500), 64)))
	lim := Limits{MaxCommandSize: 4096, MaxMediaSize: 8192, MaxChunkStreams: 8, MaxAMFDepth: 8, MaxChunkSize: 1 << 16}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, got := pullInspector(lim)
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 11)
			if err := in.feed(rest[:n]); err != nil {
				require.ErrorIs(t, err, ErrViolation)
				break
			}
			rest = rest[n:]
		}
		for _, m := range *got {
			require.Contains(t, []uint8{8, 9}, m.typ)
			require.LessOrEqual(t, m.n, lim.MaxMediaSize)
		}
		for _, s := range in.streams {
			require.LessOrEqual(t, cap(s.media), lim.MaxMediaSize)
		}
	})
}
