package rtmp

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	lalrtmp "github.com/q191201771/lal/pkg/rtmp"
	"github.com/stretchr/testify/require"
)

type seenMsg struct {
	csid uint32
	typ  uint8
	n    uint32
}

func newTestInspector(l Limits) (*inspector, *[]seenMsg) {
	in := newInspector(l.withDefaults())
	var seen []seenMsg
	in.onMessage = func(csid uint32, typ uint8, n uint32) { seen = append(seen, seenMsg{csid, typ, n}) }
	return &in, &seen
}

// feedSplit feeds b in pieces of at most size bytes (0: at once).
func feedSplit(in *inspector, b []byte, size int) error {
	if size == 0 {
		size = len(b) + 1
	}
	for len(b) > 0 {
		n := min(size, len(b))
		if err := in.feed(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

func video(n int) []byte {
	p := bytes.Repeat([]byte{0x27}, n)
	p[0] = 0x17
	return p
}

func aggregateSub(typ uint8, body []byte) []byte {
	b := []byte{typ}
	b = put24(b, uint32(len(body)))
	b = append(b, 0, 0, 0, 0, 0, 0, 1)
	b = append(b, body...)
	return put32(b, uint32(11+len(body)))
}

func TestInspectorRules(t *testing.T) {
	pub := publishSession()
	short := Limits{MaxChunkStreams: 40000}
	cases := []struct {
		name    string
		lim     Limits
		b       []byte
		wantErr string // "" accepts
	}{
		{"publish session", Limits{}, pub, ""},
		{"handshake version", Limits{}, []byte{6, 0, 0}, "handshake version 6"},
		{"declared 16 MiB command (header only)", Limits{},
			cat(handshakeBytes(), basicHeader(0, 3), []byte{0, 0, 0, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0}),
			"rtmp guard: command message of 16777215 bytes exceeds 65536"},
		{"audio before publish", Limits{}, cat(handshakeBytes(), message(4, 8, 0, []byte{0xaf, 1}, 128)), "audio message before publish"},
		{"video before publish", Limits{}, cat(handshakeBytes(), message(4, 9, 0, video(10), 128)), "video message before publish"},
		{"aggregate before publish", Limits{}, cat(handshakeBytes(), message(4, 22, 0, aggregateSub(9, video(5)), 128)), "aggregate message before publish"},
		{"video after publish", Limits{}, cat(pub, message(6, 9, 40, video(10000), 4096)), ""},
		{"video too large", Limits{MaxMediaSize: 5000}, cat(pub, message(6, 9, 40, video(10000), 4096)), "video message of 10000 bytes exceeds 5000"},
		{"video of 1 byte", Limits{}, cat(pub, message(6, 9, 40, video(1), 4096)), "video message of 1 bytes"},
		{"aggregate of a/v", Limits{}, cat(pub, message(6, 22, 40, cat(aggregateSub(9, video(300)), aggregateSub(8, []byte{0xaf, 1, 2})), 4096)), ""},
		{"aggregate hiding a command", Limits{}, cat(pub, message(6, 22, 40, aggregateSub(20, connectCmd()), 4096)), "aggregate sub-message of type 20"},
		{"aggregate overrun", Limits{}, cat(pub, message(6, 22, 40, aggregateSub(9, video(300))[:200], 4096)), "overruns its message"},
		{"aggregate ends in a header", Limits{}, cat(pub, message(6, 22, 40, cat(aggregateSub(9, video(30)), []byte{9, 0, 0}), 4096)), "ends inside a sub-message"},
		{"new header before message complete", Limits{},
			cat(handshakeBytes(), message(3, 20, 0, cat(connectCmd(), amfStr(string(make([]byte, 200)))), 128)[:12+128],
				message(3, 20, 0, connectCmd(), 128)),
			"new message header on chunk stream 3 before its"},
		{"fmt 3 on a fresh csid", Limits{}, cat(handshakeBytes(), basicHeader(3, 5), []byte{1, 2}), "fmt 3 chunk on chunk stream 5, which has no message header"},
		{"fmt 2 on a fresh csid", Limits{}, cat(handshakeBytes(), basicHeader(2, 70), []byte{0, 0, 1}), "fmt 2 chunk on chunk stream 70"},
		{"user control of 1 byte", Limits{}, cat(handshakeBytes(), message(2, 4, 0, []byte{0}, 128)), "user control message of 1 bytes, want at least 2"},
		{"user control empty", Limits{}, cat(handshakeBytes(), message(2, 4, 0, nil, 128)), "user control message of 0 bytes"},
		{"ping request of 4 bytes", Limits{}, cat(handshakeBytes(), message(2, 4, 0, []byte{0, 6, 0, 0}, 128)), "want at least 6"},
		{"ping request of 6 bytes", Limits{}, cat(handshakeBytes(), message(2, 4, 0, []byte{0, 6, 0, 0, 0, 1}, 128)), ""},
		{"stream begin", Limits{}, cat(handshakeBytes(), message(2, 4, 0, []byte{0, 0, 0, 0, 0, 1}, 128)), ""},
		{"window ack size of 3 bytes", Limits{}, cat(handshakeBytes(), message(2, 5, 0, []byte{0, 0, 1}, 128)), "window acknowledgement size message of 3 bytes"},
		{"chunk size 0", Limits{}, cat(handshakeBytes(), setChunkSize(0)), "chunk size 0 outside"},
		{"chunk size top bit", Limits{}, cat(handshakeBytes(), setChunkSize(0x80000000)), "chunk size 2147483648 outside"},
		{"chunk size above limit", Limits{MaxChunkSize: 65536}, cat(handshakeBytes(), setChunkSize(65537)), "chunk size 65537 outside 1..65536"},
		{"chunk size message of 2 bytes", Limits{}, cat(handshakeBytes(), message(2, 1, 0, []byte{0, 1}, 128)), "set chunk size message of 2 bytes"},
		{"chunk size raised mid-message", Limits{},
			cat(handshakeBytes(), message(3, 20, 0, cat(connectCmd(), amfStr(string(make([]byte, 200)))), 128)[:12+128],
				setChunkSize(4096), basicHeader(3, 3)),
			"chunk size raised to 4096 in the middle"},
		{"too many chunk streams", Limits{MaxChunkStreams: 3},
			cat(handshakeBytes(), message(2, 5, 0, put32(nil, 1), 128), message(3, 5, 0, put32(nil, 1), 128),
				message(4, 5, 0, put32(nil, 1), 128), message(5, 5, 0, put32(nil, 1), 128)),
			"chunk stream 5 is one more than the 3 allowed"},
		{"unknown type", Limits{}, cat(handshakeBytes(), message(3, 7, 0, []byte{1}, 128)), "message type 7 on chunk stream 3 is not allowed"},
		{"malformed command", Limits{}, cat(handshakeBytes(), message(3, 20, 0, cat(amfStr("connect"), []byte{amfNumber, 1}), 128)), "truncated"},
		{"command without name", Limits{}, cat(handshakeBytes(), message(3, 20, 0, amfNum(1), 128)), "does not start with a name"},
		{"empty amf3 command", Limits{}, cat(handshakeBytes(), message(3, 17, 0, nil, 128)), "empty amf3 command message"},
		{"amf3 switch marker", Limits{}, cat(handshakeBytes(), message(3, 20, 0, cat(amfStr("connect"), []byte{0x11, 1}), 128)), "marker 0x11 not allowed"},
		{"amf depth 32", Limits{}, cat(handshakeBytes(), setChunkSize(65536), message(3, 20, 0, nestedConnect(32)[:len(nestedConnect(32))-1], 65536)), "truncated"},
		{"amf depth 33", Limits{}, cat(handshakeBytes(), setChunkSize(65536), message(3, 20, 0, nestedConnect(33), 65536)), "nesting too deep"},
		{"unfinished messages over budget", Limits{},
			cat(handshakeBytes(), setChunkSize(1000), message(3, 18, 0, make([]byte, 40000), 1000)[:12+1000],
				message(4, 18, 0, make([]byte, 30000), 1000)),
			"unfinished messages of 70000 bytes exceed 65536"},
		{"many csids encodings", short,
			cat(handshakeBytes(), message(2, 5, 0, put32(nil, 1), 128), message(63, 5, 0, put32(nil, 1), 128),
				message(64, 5, 0, put32(nil, 1), 128), message(319, 5, 0, put32(nil, 1), 128),
				message(320, 5, 0, put32(nil, 1), 128), message(65599, 5, 0, put32(nil, 1), 128)), ""},
	}
	for _, tc := range cases {
		for _, split := range []int{0, 1, 7, 4096} {
			in, _ := newTestInspector(tc.lim)
			err := feedSplit(in, tc.b, split)
			if tc.wantErr == "" {
				require.NoError(t, err, "%s split %d", tc.name, split)
				continue
			}
			require.ErrorIs(t, err, ErrViolation, "%s split %d", tc.name, split)
			require.ErrorContains(t, err, tc.wantErr, "%s split %d", tc.name, split)
		}
	}
}

func TestInspectorHeaderRejectedBeforePayload(t *testing.T) {
	// The violation must come with the header's last byte, before lal could
	// grow a buffer: feeding only the header fails.
	in, _ := newTestInspector(Limits{})
	require.NoError(t, in.feed(cat(handshakeBytes(), basicHeader(0, 3), []byte{0, 0, 0, 0xff, 0xff, 0xff})))
	require.NoError(t, in.feed([]byte{20, 0, 0, 0}))
	require.ErrorIs(t, in.feed([]byte{0}), ErrViolation)
}

func TestInspectorSessionMessages(t *testing.T) {
	for _, split := range []int{0, 1, 3, 100} {
		in, seen := newTestInspector(Limits{})
		require.NoError(t, feedSplit(in, publishSession(), split))
		require.True(t, in.published)
		require.Equal(t, []seenMsg{{2, 1, 4}, {3, 20, uint32(len(connectCmd()))}, {3, 20, 25}, {8, 20, uint32(len(publishCmd()))}}, *seen)
		require.Equal(t, uint32(4096), in.chunkSize)
		require.Zero(t, in.pending)
	}
}

func TestInspectorPublishViaAMF3(t *testing.T) {
	in, _ := newTestInspector(Limits{})
	b := cat(handshakeBytes(), message(3, 17, 0, cat([]byte{0}, publishCmd()), 128), message(6, 9, 0, video(500), 128))
	require.NoError(t, feedSplit(in, b, 1))
	require.True(t, in.published)
}

func TestInspectorExtendedTimestamps(t *testing.T) {
	// fmt 0 with an extended timestamp, fmt 3 continuations that repeat it
	// (lal reads it again because the csid's timestamp stays >= 0xFFFFFF),
	// then fmt 1 and fmt 2 deltas, small and extended, and a fmt 3 that
	// starts a new message.
	b := cat(publishSession(), setChunkSize(128), message(6, 9, 0x1000000, video(1000), 128))
	b = append(b, basicHeader(1, 6)...)
	b = put24(b, 40)
	b = put24(b, 300)
	b = append(b, 9)
	b = append(b, video(128)...)
	b = append(b, basicHeader(3, 6)...) // timestamp 40: no extended field
	b = append(b, video(128)...)
	b = append(b, basicHeader(3, 6)...)
	b = append(b, video(44)...)
	b = append(b, basicHeader(2, 6)...)
	b = put24(b, 0xffffff)
	b = put32(b, 0x01000000) // delta >= 0xFFFFFF: extended on every chunk
	b = append(b, video(128)...)
	b = append(b, basicHeader(3, 6)...)
	b = put32(b, 0x01000000)
	b = append(b, video(128)...)
	b = append(b, basicHeader(3, 6)...)
	b = put32(b, 0x00000010) // lal now stores 0x10: the next fmt 3 has none
	b = append(b, video(44)...)
	b = append(b, basicHeader(3, 6)...) // a new 300-byte message on fmt 3
	b = append(b, video(128)...)
	for _, split := range []int{0, 1, 5} {
		in, seen := newTestInspector(Limits{})
		require.NoError(t, feedSplit(in, b, split))
		require.Len(t, *seen, 4+1+1+1+1)
		require.True(t, in.streams[in.cur].active)
		require.Equal(t, uint32(128), in.streams[in.cur].got)
	}
	require.Equal(t, 8, lalMessageCount(t, b[1+2*handshakeLen:]))
}

// lalMessageCount runs lal's own ChunkComposer over chunk bytes and counts
// the messages it completes: the inspector must agree with it.
func lalMessageCount(t *testing.T, chunks []byte) int {
	t.Helper()
	n := 0
	err := lalrtmp.NewChunkComposer().RunLoop(bytes.NewReader(chunks), func(*lalrtmp.Stream) error {
		n++
		return nil
	})
	require.True(t, errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF), "lal: %v", err)
	return n
}

func TestInspectorAgreesWithLalOnRandomSplits(t *testing.T) {
	b := cat(publishSession(), message(3, 18, 0, cat(amfStr("@setDataFrame"), amfStr("onMetaData"), amfObj(amfKey("width"), amfNum(320))), 4096))
	for i := range 50 {
		b = append(b, message(6, 9, uint32(i*40), video(100+i*97), 4096)...)
		b = append(b, message(4, 8, uint32(i*40), []byte{0xb2, 1, 2, 3}, 4096)...)
	}
	want := lalMessageCount(t, b[1+2*handshakeLen:])
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		in, seen := newTestInspector(Limits{})
		rest := b
		for len(rest) > 0 {
			n := min(1+r.IntN(300), len(rest))
			require.NoError(t, in.feed(rest[:n]))
			rest = rest[n:]
		}
		require.Len(t, *seen, want)
	}
}

func TestInspectorAMFLyingECMACount(t *testing.T) {
	// A data message that is one shallow ECMA array by the spec, but whose
	// count of 0 makes lal read a string's contents as 255 nested objects.
	c := []byte{0, amfObject}
	for len(c) < 0x300 {
		c = append(c, 0, 0, amfObject)
	}
	c = c[:0x300]
	body := cat(amfStr("onMetaData"), []byte{amfECMAArray, 0, 0, 0, 0}, amfKey("kkkkkk"),
		[]byte{amfString, 3, 0}, c, []byte{0, 0, amfObjectEnd})
	_, err := walkAMF0(body, make([]amfFrame, 32), amfStandard)
	require.NoError(t, err)
	in, _ := newTestInspector(Limits{})
	err = feedSplit(in, cat(handshakeBytes(), setChunkSize(4096), message(3, 18, 0, body, 4096)), 0)
	require.ErrorContains(t, err, "nesting too deep as lal reads it")

	// OBS-style count that does not match: accepted.
	obs := cat(amfStr("@setDataFrame"), amfStr("onMetaData"), []byte{amfECMAArray, 0, 0, 0, 20},
		amfKey("width"), amfNum(1280), amfKey("height"), amfNum(720), []byte{0, 0, amfObjectEnd})
	in, _ = newTestInspector(Limits{})
	require.NoError(t, feedSplit(in, cat(handshakeBytes(), message(3, 18, 0, obs, 128)), 0))
}

// mediaStream is 2 s of a 2.5 Mbit/s publish after the session: 25 fps
// video in 4096-byte chunks, audio in between.
func mediaStream() []byte {
	var b []byte
	for i := range 50 {
		b = append(b, message(6, 9, uint32(i*40), video(12500), 4096)...)
		b = append(b, message(4, 8, uint32(i*40), make([]byte, 200), 4096)...)
	}
	return b
}

func TestInspectorMediaDoesNotAllocate(t *testing.T) {
	in, _ := newTestInspector(Limits{})
	require.NoError(t, in.feed(publishSession()))
	media := mediaStream()
	allocs := testing.AllocsPerRun(10, func() {
		for b := media; len(b) > 0; b = b[min(len(b), 4096):] {
			if err := in.feed(b[:min(len(b), 4096)]); err != nil {
				panic(err)
			}
		}
	})
	require.Zero(t, allocs)
}

func BenchmarkInspectorMedia(b *testing.B) {
	in := newInspector(Limits{}.withDefaults())
	require.NoError(b, in.feed(publishSession()))
	media := mediaStream()
	b.SetBytes(int64(len(media)))
	b.ReportAllocs()
	for b.Loop() {
		for p := media; len(p) > 0; p = p[min(len(p), 4096):] {
			if err := in.feed(p[:min(len(p), 4096)]); err != nil {
				b.Fatal(err)
			}
		}
	}
}
