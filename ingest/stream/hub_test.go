package stream

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/podiumlive/podium/ingest/media"
)

var (
	testVideo = &media.Track{Kind: media.KindVideo, Codec: media.CodecH264, Config: []byte{1, 2, 3}}
	testAudio = &media.Track{Kind: media.KindAudio, Codec: media.CodecSpeex, SampleRate: 16000, Channels: 1}
)

func vpkt(i int, key bool) media.Packet {
	d := time.Duration(i) * 40 * time.Millisecond
	return media.Packet{Track: testVideo, DTS: d, PTS: d, Key: key, Data: []byte{byte(i), byte(i >> 8)}}
}

func apkt(i int) media.Packet {
	d := time.Duration(i) * 20 * time.Millisecond
	return media.Packet{Track: testAudio, DTS: d, PTS: d, Key: true, Data: []byte{0xA0, byte(i)}}
}

func key(name string) Key { return Key{Vhost: "__defaultVhost__", App: "live", Name: name} }

func readN(t *testing.T, r *Reader, n int) []media.Packet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out := make([]media.Packet, 0, n)
	for len(out) < n {
		p, err := r.Read(ctx)
		require.NoError(t, err, "after %d packets", len(out))
		out = append(out, p)
	}
	return out
}

func TestOrderingAndEOF(t *testing.T) {
	h := NewHub(DefaultOptions(), nil)
	pub, err := h.Publish(key("s1"), ClientInfo{Protocol: "rtmp"})
	require.NoError(t, err)
	r, err := h.Subscribe(context.Background(), key("s1"), ClientInfo{Protocol: "test"}, 0)
	require.NoError(t, err)

	for i := range 300 {
		pub.WritePacket(vpkt(i, i%30 == 0))
		pub.WritePacket(apkt(i))
	}
	pub.Close()
	got := readN(t, r, 600)
	for i := range 300 {
		require.Equal(t, vpkt(i, i%30 == 0).DTS, got[2*i].DTS)
		require.Equal(t, media.KindVideo, got[2*i].Track.Kind)
		require.Equal(t, byte(i), got[2*i+1].Data[1])
	}
	_, err = r.Read(context.Background())
	require.ErrorIs(t, err, io.EOF)
	st := r.Stats()
	require.EqualValues(t, 600, st.Out.Packets)
	require.Zero(t, st.Dropped)
	require.Nil(t, h.Get(key("s1")), "stream unregistered after unpublish")
}

func TestSecondPublisherRejected(t *testing.T) {
	h := NewHub(DefaultOptions(), nil)
	pub, err := h.Publish(key("s1"), ClientInfo{Remote: "1.2.3.4:5"})
	require.NoError(t, err)
	_, err = h.Publish(key("s1"), ClientInfo{})
	require.ErrorIs(t, err, ErrAlreadyPublishing)
	require.Contains(t, err.Error(), "1.2.3.4:5")

	// The first publisher is unaffected.
	r, err := h.Subscribe(context.Background(), key("s1"), ClientInfo{}, 0)
	require.NoError(t, err)
	pub.WritePacket(vpkt(0, true))
	require.Len(t, readN(t, r, 1), 1)

	pub.Close()
	_, err = h.Publish(key("s1"), ClientInfo{})
	require.NoError(t, err, "the name is free again after unpublish")
}

func TestSlowReaderResyncsAtKeyframe(t *testing.T) {
	opts := DefaultOptions()
	opts.QueuePackets = 8
	h := NewHub(opts, nil)
	pub, err := h.Publish(key("s1"), ClientInfo{})
	require.NoError(t, err)
	slow, err := h.Subscribe(context.Background(), key("s1"), ClientInfo{Protocol: "slow"}, 0)
	require.NoError(t, err)
	fast, err := h.Subscribe(context.Background(), key("s1"), ClientInfo{Protocol: "fast"}, 0)
	require.NoError(t, err)

	ctx := context.Background()
	i := 0
	// GOP 1: a keyframe, then 19 frames with audio. The fast reader keeps up.
	for ; i < 20; i++ {
		pub.WritePacket(vpkt(i, i == 0))
		pub.WritePacket(apkt(i))
		for range 2 {
			_, err := fast.Read(ctx)
			require.NoError(t, err)
		}
	}
	// GOP 2 starts at a keyframe.
	pub.WritePacket(vpkt(i, true))
	pub.WritePacket(vpkt(i+1, false))
	pub.Close()

	got, err := slow.ReadBatch(ctx, nil)
	require.NoError(t, err)
	require.Len(t, got, 2, "the backlog is gone; only GOP 2 remains")
	require.True(t, got[0].IsVideoKey(), "resumes on a keyframe")
	require.Equal(t, []byte{1, 2, 3}, got[0].Track.Config, "codec config travels with the packet")
	st := slow.Stats()
	require.EqualValues(t, 40, st.Dropped, "every lost packet is counted")
	require.Zero(t, fast.Stats().Dropped)

	rest, err := fast.ReadBatch(ctx, nil)
	require.NoError(t, err)
	require.Len(t, rest, 2)
}

func TestQueueBytesBound(t *testing.T) {
	opts := DefaultOptions()
	opts.QueueBytes = 1000
	h := NewHub(opts, nil)
	pub, _ := h.Publish(key("s1"), ClientInfo{})
	r, _ := h.Subscribe(context.Background(), key("s1"), ClientInfo{}, 0)
	big := func(i int, k bool) media.Packet {
		p := vpkt(i, k)
		p.Data = make([]byte, 300)
		return p
	}
	for i := range 10 {
		pub.WritePacket(big(i, i == 0))
	}
	r.mu.Lock()
	queued := r.bytes
	r.mu.Unlock()
	require.LessOrEqual(t, queued, 1000)
	require.Positive(t, r.Stats().Dropped)
}

// TestMaxLag: a reader whose queue spans more than its max lag loses the
// backlog and resumes at the next keyframe, the drops counted.
func TestMaxLag(t *testing.T) {
	h := NewHub(DefaultOptions(), nil)
	pub, _ := h.Publish(key("s1"), ClientInfo{})
	r, _ := h.Subscribe(context.Background(), key("s1"), ClientInfo{}, 0)
	r.SetMaxLag(time.Second)
	// 2 s of video (40 ms frames), a keyframe every 10 frames, not read.
	for i := range 50 {
		pub.WritePacket(vpkt(i, i%10 == 0))
	}
	pub.Close()
	got, err := r.ReadBatch(context.Background(), nil)
	require.NoError(t, err)
	require.True(t, got[0].IsVideoKey(), "resumes on a keyframe")
	require.LessOrEqual(t, got[len(got)-1].DTS-got[0].DTS, time.Second, "never more than the max lag behind")
	require.Equal(t, uint64(50-len(got)), r.Stats().Dropped, "every lost packet is counted")
}

func TestLateJoinerStartsAtKeyframe(t *testing.T) {
	for _, cache := range []bool{true, false} {
		t.Run(map[bool]string{true: "gop-cache", false: "no-cache"}[cache], func(t *testing.T) {
			opts := DefaultOptions()
			opts.GOPCache = cache
			h := NewHub(opts, nil)
			pub, _ := h.Publish(key("s1"), ClientInfo{})
			for i := range 6 { // K P P K P P
				pub.WritePacket(vpkt(i, i%3 == 0))
				pub.WritePacket(apkt(i))
			}
			r, err := h.Subscribe(context.Background(), key("s1"), ClientInfo{}, 0)
			require.NoError(t, err)
			pub.WritePacket(apkt(6))
			pub.WritePacket(vpkt(6, true))
			pub.Close()
			got, err := r.ReadBatch(context.Background(), nil)
			require.NoError(t, err)
			require.True(t, got[0].IsVideoKey())
			if cache {
				require.Equal(t, 3*40*time.Millisecond, got[0].DTS, "starts at the last keyframe")
				require.Len(t, got, 8) // K a P a P a cached, then a K live
			} else {
				require.Equal(t, 6*40*time.Millisecond, got[0].DTS, "waits for the next keyframe")
				require.Len(t, got, 1)
				require.Zero(t, r.Stats().Dropped, "waiting for the first keyframe is not a drop")
			}
		})
	}
}

func TestAudioOnlyAndVideoOnly(t *testing.T) {
	h := NewHub(DefaultOptions(), nil)
	pa, _ := h.Publish(key("a"), ClientInfo{})
	pv, _ := h.Publish(key("v"), ClientInfo{})
	for i := range 3 {
		pa.WritePacket(apkt(i))
		pv.WritePacket(vpkt(i, i == 0))
	}
	ra, err := h.Subscribe(context.Background(), key("a"), ClientInfo{}, 0)
	require.NoError(t, err)
	rv, err := h.Subscribe(context.Background(), key("v"), ClientInfo{}, 0)
	require.NoError(t, err)
	pa.WritePacket(apkt(3))
	pv.WritePacket(vpkt(3, false))
	require.Equal(t, media.KindAudio, readN(t, ra, 1)[0].Track.Kind, "audio-only readers start at once")
	got := readN(t, rv, 4)
	require.True(t, got[0].IsVideoKey())
	v, a := h.Get(key("v")).Tracks()
	require.NotNil(t, v)
	require.Nil(t, a)
}

func TestPlayerWaitsForPublisher(t *testing.T) {
	h := NewHub(DefaultOptions(), nil)
	_, err := h.Subscribe(context.Background(), key("s1"), ClientInfo{}, 0)
	require.ErrorIs(t, err, ErrNotFound)
	start := time.Now()
	_, err = h.Subscribe(context.Background(), key("s1"), ClientInfo{}, 100*time.Millisecond)
	require.ErrorIs(t, err, ErrNotFound)
	require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)

	done := make(chan *Reader)
	go func() {
		r, err := h.Subscribe(context.Background(), key("s1"), ClientInfo{}, 5*time.Second)
		if err != nil {
			close(done)
			return
		}
		done <- r
	}()
	time.Sleep(50 * time.Millisecond)
	other, _ := h.Publish(key("other"), ClientInfo{}) // wakes the waiter, which waits on
	defer other.Close()
	pub, _ := h.Publish(key("s1"), ClientInfo{})
	r := <-done
	require.NotNil(t, r)
	pub.WritePacket(vpkt(0, true))
	require.Len(t, readN(t, r, 1), 1)
}

func TestMetadata(t *testing.T) {
	h := NewHub(DefaultOptions(), nil)
	pub, _ := h.Publish(key("s1"), ClientInfo{})
	pub.WriteMetadata(media.Metadata{{Name: "width", Value: 320.0}})
	r, _ := h.Subscribe(context.Background(), key("s1"), ClientInfo{}, 0)
	m, v1 := r.Metadata()
	require.Equal(t, 320.0, m[0].Value)
	pub.WriteMetadata(media.Metadata{{Name: "width", Value: 640.0}})
	m, v2 := r.Metadata()
	require.Greater(t, v2, v1)
	require.Equal(t, 640.0, m[0].Value)
}

func TestEvents(t *testing.T) {
	h := NewHub(DefaultOptions(), nil)
	var mu sync.Mutex
	var evs []EventType
	h.Listen(func(ev Event) {
		mu.Lock()
		evs = append(evs, ev.Type)
		mu.Unlock()
	})
	pub, _ := h.Publish(key("s1"), ClientInfo{})
	pub.Close()
	pub.Close()
	require.Equal(t, []EventType{EventPublish, EventUnpublish}, evs)
}

func TestStats(t *testing.T) {
	h := NewHub(DefaultOptions(), nil)
	pub, _ := h.Publish(key("s1"), ClientInfo{Protocol: "rtmp"})
	r, _ := h.Subscribe(context.Background(), key("s1"), ClientInfo{Protocol: "play"}, 0)
	t0 := time.Now()
	h.Sample(t0)
	for i := range 25 {
		pub.WritePacket(vpkt(i, i == 0))
	}
	readN(t, r, 25)
	h.Sample(t0.Add(time.Second))
	st := h.Get(key("s1")).Stats()
	require.EqualValues(t, 50, st.In.Bytes)
	require.EqualValues(t, 25, st.In.Packets)
	require.InDelta(t, 400, st.In.Bitrate, 1)
	require.InDelta(t, 25, st.In.FPS, 0.01)
	require.Len(t, st.Readers, 1)
	require.EqualValues(t, 25, st.Readers[0].Out.Packets)
	require.Equal(t, media.CodecH264, st.Video.Codec)
}

func TestCloseWhileWriting(t *testing.T) {
	defer goleak.VerifyNone(t)
	h := NewHub(DefaultOptions(), nil)
	pub, _ := h.Publish(key("s1"), ClientInfo{})
	var wg sync.WaitGroup
	for range 4 {
		r, err := h.Subscribe(context.Background(), key("s1"), ClientInfo{}, 0)
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, err := r.Read(context.Background()); err != nil {
					if !errors.Is(err, io.EOF) {
						t.Errorf("read: %v", err)
					}
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // a reader that closes itself mid-stream
		defer wg.Done()
		r, err := h.Subscribe(context.Background(), key("s1"), ClientInfo{}, 0)
		if err != nil {
			return
		}
		time.Sleep(time.Millisecond)
		r.Close()
		_, err = r.Read(context.Background())
		if !errors.Is(err, ErrReaderClosed) {
			t.Errorf("read after close: %v", err)
		}
	}()
	for i := range 5000 {
		pub.WritePacket(vpkt(i, i%50 == 0))
	}
	pub.Close()
	wg.Wait()
}

func TestNoLeakAfterManyCycles(t *testing.T) {
	defer goleak.VerifyNone(t)
	h := NewHub(DefaultOptions(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	var runWG sync.WaitGroup
	runWG.Add(1)
	go func() { defer runWG.Done(); h.Run(ctx) }()
	for c := range 1000 {
		pub, err := h.Publish(key("s1"), ClientInfo{})
		require.NoError(t, err)
		r, err := h.Subscribe(ctx, key("s1"), ClientInfo{}, 0)
		require.NoError(t, err)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, err := r.Read(ctx); err != nil {
					return
				}
			}
		}()
		for i := range 10 {
			pub.WritePacket(vpkt(i, i == 0))
		}
		if c%2 == 0 {
			r.Close()
		}
		pub.Close()
		wg.Wait()
	}
	require.Empty(t, h.Streams())
	cancel()
	runWG.Wait()
	h.Close()
}

func TestDirectConsumer(t *testing.T) {
	h := NewHub(DefaultOptions(), nil)
	pub, _ := h.Publish(key("s1"), ClientInfo{})
	pub.WriteMetadata(media.Metadata{{Name: "fps", Value: 25.0}})
	r, err := h.Subscribe(context.Background(), key("s1"), ClientInfo{}, 0)
	require.NoError(t, err)

	var direct []media.Packet
	var sawMeta uint64
	result := DirectSent
	r.SetDirect(func(p *media.Packet, _ media.Metadata, ver uint64) DirectResult {
		direct = append(direct, *p)
		sawMeta = ver
		return result
	})
	pub.WritePacket(vpkt(0, true))
	pub.WritePacket(apkt(0))
	require.Len(t, direct, 2, "taken on the publisher's goroutine")
	require.EqualValues(t, 1, sawMeta, "with the current metadata version")

	// The socket is full: the consumer's goroutine must finish; meanwhile
	// the hub queues.
	result = DirectPending
	pub.WritePacket(vpkt(1, false))
	pub.WritePacket(vpkt(2, false))
	pub.WritePacket(vpkt(3, false))
	require.Len(t, direct, 3, "no direct calls while the consumer is busy")
	batch, err := r.ReadBatch(context.Background(), nil)
	require.NoError(t, err)
	require.Len(t, batch, 2, "packets queued while busy, in order")
	require.Equal(t, vpkt(2, false).DTS, batch[0].DTS)
	pub.WritePacket(vpkt(4, false))
	require.Len(t, direct, 3, "still busy until Done")
	r.Done()
	batch, _ = r.ReadBatch(context.Background(), nil)
	require.Len(t, batch, 1)
	r.Done()
	result = DirectSent
	pub.WritePacket(vpkt(5, false))
	require.Len(t, direct, 4, "direct again once caught up")
	require.EqualValues(t, 7, r.Stats().Out.Packets)

	// A pending write with nothing queued: ReadBatch returns at once, empty.
	result = DirectPending
	pub.WritePacket(vpkt(6, false))
	batch, err = r.ReadBatch(context.Background(), nil)
	require.NoError(t, err)
	require.Empty(t, batch)
	r.Done()
}

func TestDemandWhenWaitingForMissingStream(t *testing.T) {
	h := NewHub(DefaultOptions(), nil)
	demanded := make(chan Key, 4)
	h.Listen(func(ev Event) {
		if ev.Type == EventDemand {
			demanded <- ev.Key
		}
	})

	// A subscribe that does not wait is no demand.
	_, err := h.Subscribe(context.Background(), key("s1"), ClientInfo{Protocol: "test"}, 0)
	require.ErrorIs(t, err, ErrNotFound)
	require.Empty(t, demanded)

	// A waiting subscribe announces its key once; the source it wakes
	// publishes, and the subscriber gets the stream.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		pub, err := h.Publish(<-demanded, ClientInfo{Protocol: "rtsp"})
		if err != nil {
			return
		}
		for i := 0; ; i++ {
			pub.WritePacket(apkt(i))
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	defer func() { close(stop); <-done }()
	r, err := h.Subscribe(context.Background(), key("s1"), ClientInfo{Protocol: "test"}, 2*time.Second)
	require.NoError(t, err)
	require.Len(t, readN(t, r, 1), 1)

	// A live stream is no demand either.
	_, err = h.Subscribe(context.Background(), key("s1"), ClientInfo{Protocol: "test"}, time.Second)
	require.NoError(t, err)
	require.Empty(t, demanded)
}

func TestShared(t *testing.T) {
	h := NewHub(DefaultOptions(), nil)
	pub, _ := h.Publish(key("s1"), ClientInfo{})
	type k1 struct{}
	type k2 struct{}
	made := 0
	mk := func() any { made++; return new(int) }
	a := pub.Stream().Shared(k1{}, mk)
	require.Same(t, a, pub.Stream().Shared(k1{}, mk), "one value per key and stream")
	require.Equal(t, 1, made)
	require.NotSame(t, a, pub.Stream().Shared(k2{}, mk))
	pub.Close()
	pub2, _ := h.Publish(key("s1"), ClientInfo{})
	require.NotSame(t, a, pub2.Stream().Shared(k1{}, mk), "a new publish is a new stream")
	require.Equal(t, 3, made)
}
