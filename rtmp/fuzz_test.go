package rtmp

import (
	"bytes"
	"testing"

	lalrtmp "github.com/q191201771/lal/pkg/rtmp"
	"github.com/stretchr/testify/require"
)

// FuzzGuard feeds arbitrary chunk bytes after a valid handshake. The guard
// must not panic, its state must stay within its limits, and on every prefix
// it accepts, lal's own ChunkComposer must complete exactly the messages the
// guard completed: the two never read the stream differently.
func FuzzGuard(f *testing.F) {
	pub := publishSession()[1+2*handshakeLen:]
	f.Add(pub)
	f.Add(cat(pub, message(6, 9, 0x1000000, video(300), 4096), message(6, 22, 40, aggregateSub(8, []byte{0xaf, 1}), 4096)))
	f.Add(cat(setChunkSize(64), message(3, 20, 0, connectCmd(), 64), message(70, 4, 0, []byte{0, 6, 0, 0, 0, 1}, 64)))
	f.Add(cat(basicHeader(1, 400), []byte{0xff, 0xff, 0xff, 0, 0, 4, 5, 1, 2, 3, 4, 5, 6, 7, 8}))
	lim := Limits{MaxCommandSize: 4096, MaxMediaSize: 8192, MaxChunkStreams: 8, MaxAMFDepth: 8, MaxChunkSize: 1 << 16}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, seen := newTestInspector(lim)
		require.NoError(t, in.feed(handshakeBytes()))
		var accepted []byte
		acceptedMsgs, aggregates := 0, false
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 13)
			err := in.feed(rest[:n])
			if err != nil {
				require.ErrorIs(t, err, ErrViolation)
				break
			}
			accepted = append(accepted, rest[:n]...)
			rest = rest[n:]
			acceptedMsgs = len(*seen)
			for _, m := range *seen {
				aggregates = aggregates || m.typ == typeAggregate
			}
			l := in.lim
			require.LessOrEqual(t, len(in.streams), l.MaxChunkStreams)
			require.LessOrEqual(t, in.pending, uint64(l.MaxCommandSize+l.MaxMediaSize))
			require.LessOrEqual(t, in.chunkLeft, in.chunkSize)
			for _, s := range in.streams {
				require.LessOrEqual(t, cap(s.amf), l.MaxCommandSize)
				require.LessOrEqual(t, s.got, s.msgLen)
			}
		}
		if aggregates { // lal reports the sub-messages instead
			return
		}
		got := 0
		_ = lalrtmp.NewChunkComposer().RunLoop(bytes.NewReader(accepted), func(*lalrtmp.Stream) error {
			got++
			return nil
		})
		require.Equal(t, acceptedMsgs, got)
	})
}

// FuzzAMF0 checks that the walker never panics and that, in lal mode, it
// accepts an object exactly when lal's own decoder does.
func FuzzAMF0(f *testing.F) {
	f.Add(connectCmd())
	f.Add(publishCmd())
	f.Add(amfObj(amfKey("a"), []byte{amfECMAArray, 0, 0, 0, 1}, amfKey("b"), amfNum(2), []byte{0, 0, amfObjectEnd}))
	f.Add(amfObj(amfKey("s"), []byte{amfStrictArray, 0, 0, 0, 2, amfNull, amfUndefined}))
	f.Add(nestedConnect(40))
	f.Fuzz(func(t *testing.T, b []byte) {
		stack := make([]amfFrame, 8)
		for _, mode := range []amfMode{amfStandard, amfLal} {
			name, err := walkAMF0(b, stack, mode)
			if err == nil && name != nil {
				require.True(t, len(b) > 0 && (b[0] == amfString || b[0] == amfLongString))
			}
		}
		if len(b) == 0 || b[0] != amfObject || len(b) > 1<<14 {
			return
		}
		// lal recurses, but at most len(b)/3 levels here: safe.
		_, l, lalErr := lalrtmp.Amf0.ReadObject(b)
		deep := make([]amfFrame, len(b))
		if lalErr == nil {
			_, err := walkAMF0(b[:l], deep, amfLal)
			require.NoError(t, err, "lal read %d bytes", l)
		}
		if _, err := walkAMF0(b, deep, amfLal); err == nil {
			require.NoError(t, lalErr)
		}
	})
}
