package rtmp

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/ingest/stream"
)

var (
	testVideo  = &media.Track{Kind: media.KindVideo, Codec: media.CodecH264, Config: []byte{1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 0}}
	testVideo2 = &media.Track{Kind: media.KindVideo, Codec: media.CodecH264, Config: []byte{1, 0x4d, 0, 0x1f, 0xff, 0xe1, 0, 0}}
	testAudio  = &media.Track{Kind: media.KindAudio, Codec: media.CodecAAC, Config: []byte{0x12, 0x10}, SampleRate: 44100, Channels: 2, SampleBits: 16}
)

func testPackets() []media.Packet {
	big := make([]byte, 3*ChunkSize+100) // several chunks
	for i := range big {
		big[i] = byte(i)
	}
	return []media.Packet{
		{Track: testVideo, DTS: 0, PTS: 40 * time.Millisecond, Key: true, Data: big},
		{Track: testAudio, DTS: 10 * time.Millisecond, Key: true, Data: []byte{1, 2, 3}},
		{Track: testVideo, DTS: 40 * time.Millisecond, PTS: 80 * time.Millisecond, Data: []byte{0, 0, 0, 1, 9}},
		// The same times, another payload: must not reuse the last message.
		{Track: testVideo, DTS: 40 * time.Millisecond, PTS: 80 * time.Millisecond, Data: []byte{0, 0, 0, 1, 7}},
		// A new track: a sequence header, then the message.
		{Track: testVideo2, DTS: 80 * time.Millisecond, PTS: 80 * time.Millisecond, Key: true, Data: []byte{0, 0, 0, 1, 5}},
		{Track: testAudio, DTS: 0xFFFFFF * time.Millisecond, Key: true, Data: []byte{4}}, // extended timestamp
	}
}

// tcpPair returns both ends of a loopback TCP connection: the sink needs a
// real socket for its direct path.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	server = <-accepted
	require.NotNil(t, server)
	t.Cleanup(func() { _ = server.Close(); _ = client.Close() })
	return server, client
}

// Every sink of a stream writes the bytes its own PacketWriter would, while
// each packet's message is chunked once for all of them.
func TestSinksShareEachPacketsEncoding(t *testing.T) {
	hub := stream.NewHub(stream.DefaultOptions(), nil)
	key := stream.Key{Vhost: "__defaultVhost__", App: "live", Name: "s"}
	pub, err := hub.Publish(key, stream.ClientInfo{})
	require.NoError(t, err)
	meta := media.Metadata{{Name: "width", Value: 1280.0}}
	pub.WriteMetadata(meta)

	var clients []net.Conn
	for range 3 {
		r, err := hub.Subscribe(context.Background(), key, stream.ClientInfo{}, 0)
		require.NoError(t, err)
		srv, cli := tcpPair(t)
		NewSink(srv, time.Second, false).Attach(r)
		clients = append(clients, cli)
	}

	var w PacketWriter
	want := w.AppendMetadata(nil, meta, 1)
	cache := streamPacketCache(pub.Stream())
	for _, p := range testPackets() {
		want = w.AppendPacket(want, &p)
		pub.WritePacket(p)
		var own PacketWriter
		require.Equal(t, own.appendMessage(nil, &p), cache.msg, "the cached message is this packet's")
	}
	for i, c := range clients {
		got := make([]byte, len(want))
		require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, err := io.ReadFull(c, got)
		require.NoError(t, err, "client %d", i)
		require.Equal(t, want, got, "client %d", i)
	}
}

func TestPacketCacheReusesOnlyTheSamePacket(t *testing.T) {
	var c PacketCache
	ps := testPackets()
	raw := c.message(&ps[2])
	again := c.message(&ps[2])
	require.Same(t, &raw[0], &again[0], "the same packet: the same bytes, not chunked again")
	first := bytes.Clone(raw) // message's result is valid until the next call

	copied := ps[2]
	copied.Data = bytes.Clone(ps[2].Data)
	require.Equal(t, first, c.message(&copied), "an equal packet elsewhere in memory: equal bytes")

	diff := bytes.Clone(c.message(&ps[3]))
	require.NotEqual(t, first, diff, "same times, other payload")
	var w PacketWriter
	require.Equal(t, w.appendMessage(nil, &ps[3]), diff)
	keyed := ps[3]
	keyed.Key = true
	require.NotEqual(t, diff, c.message(&keyed), "same payload, other key flag")
}

// An audio message of a stream with live video waits for the next message
// and goes out with it (one send(2) for both); audio is held for at most
// holdSpan, and an audio-only stream's goes out at once.
func TestSinkSendsAudioWithTheNextMessage(t *testing.T) {
	hub := stream.NewHub(stream.DefaultOptions(), nil)
	play := func(name string) (*stream.Publisher, net.Conn) {
		key := stream.Key{Vhost: "__defaultVhost__", App: "live", Name: name}
		pub, err := hub.Publish(key, stream.ClientInfo{})
		require.NoError(t, err)
		r, err := hub.Subscribe(context.Background(), key, stream.ClientInfo{}, 0)
		require.NoError(t, err)
		srv, cli := tcpPair(t)
		NewSink(srv, time.Second, false).Attach(r)
		return pub, cli
	}
	var w PacketWriter
	expect := func(c net.Conn, ps ...media.Packet) {
		t.Helper()
		var want []byte
		for i := range ps {
			want = w.AppendPacket(want, &ps[i])
		}
		got := make([]byte, len(want))
		require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, err := io.ReadFull(c, got)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	nothing := func(c net.Conn) {
		t.Helper()
		require.NoError(t, c.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
		n, err := c.Read(make([]byte, 1))
		require.Zero(t, n, "bytes on the wire while audio should be held")
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	}
	ms := time.Millisecond
	v := func(dts time.Duration) media.Packet {
		return media.Packet{Track: testVideo, DTS: dts, PTS: dts, Key: dts == 0, Data: []byte{0, 0, 0, 1, byte(dts / ms)}}
	}
	a := func(dts time.Duration) media.Packet {
		return media.Packet{Track: testAudio, DTS: dts, PTS: dts, Key: true, Data: []byte{byte(dts / ms)}}
	}

	pub, c := play("av")
	pub.WritePacket(v(0))
	expect(c, v(0))
	pub.WritePacket(a(10 * ms))
	pub.WritePacket(a(30 * ms))
	nothing(c)
	pub.WritePacket(v(33 * ms))
	expect(c, a(10*ms), a(30*ms), v(33*ms))
	// Video stops: audio is held for holdSpan at most.
	for d := 50 * ms; d <= 150*ms; d += 20 * ms {
		pub.WritePacket(a(d))
	}
	nothing(c)
	pub.WritePacket(a(170 * ms)) // over holdSpan since the first held: all go
	expect(c, a(50*ms), a(70*ms), a(90*ms), a(110*ms), a(130*ms), a(150*ms), a(170*ms))
	pub.WritePacket(a(250 * ms)) // no video for over videoLive: sent at once
	expect(c, a(250*ms))
	pub.Close()

	w = PacketWriter{}
	pub, c = play("audio")
	pub.WritePacket(a(0))
	expect(c, a(0))
	pub.WritePacket(a(23 * ms))
	expect(c, a(23*ms))
}
