// Package uitest builds the load the dashboard and API are measured
// against: a hub full of live streams with their transcode and forward
// stats, as the default config runs them.
package uitest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/podiumlive/podium/forward"
	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/internal/avstat"
)

// LiveHub publishes n encoder streams (live/classNNN) each transcoded into
// vhost "transcode" (so 2n hub streams), each output with a player and two
// forwards, and feeds every stream 25 fps of video and audio until the
// test ends. It returns the hub and the transcode and forward stats a
// dashboard would show for it.
func LiveHub(tb testing.TB, n int) (*stream.Hub, []avstat.Transcode, []forward.Stats) {
	tb.Helper()
	hub := stream.NewHub(stream.DefaultOptions(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	drain := func(r *stream.Reader) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var batch []media.Packet
			for {
				var err error
				if batch, err = r.ReadBatch(ctx, batch[:0]); err != nil {
					return
				}
			}
		}()
	}
	must := func(err error) {
		if err != nil {
			cancel()
			tb.Fatalf("live hub: %v", err)
		}
	}
	var pubs []*stream.Publisher
	var trans []avstat.Transcode
	var fwds []forward.Stats
	for i := range n {
		in := stream.Key{Vhost: "__defaultVhost__", App: "live", Name: fmt.Sprintf("class%03d", i)}
		out := stream.Key{Vhost: "transcode", App: "live", Name: in.Name}
		p, err := hub.Publish(in, stream.ClientInfo{Protocol: "rtmp", Remote: fmt.Sprintf("10.0.%d.%d:50000", i/250, i%250+1), Kick: func() {}})
		must(err)
		q, err := hub.Publish(out, stream.ClientInfo{Protocol: "transcode", Remote: in.String()})
		must(err)
		pubs = append(pubs, p, q)
		r, err := hub.Subscribe(ctx, in, stream.ClientInfo{Protocol: "transcode", Remote: out.String()}, 0)
		must(err)
		drain(r)
		r, err = hub.Subscribe(ctx, out, stream.ClientInfo{Protocol: "rtmp", Remote: "10.9.0.1:40000"}, 0)
		must(err)
		drain(r)
		trans = append(trans, avstat.Transcode{
			Input: in, Output: out, State: avstat.StateRunning, InputVideo: "h264 1280x720", InputAudio: "speex 16000 Hz mono",
			OutputVideo: "h264 1280x720 (copy)", OutputAudio: "aac 44100 Hz mono 64k", Encoder: "copy", Speed: 1, Since: time.Now(),
		})
		for _, d := range []string{"192.168.1.6:1935", "192.168.1.7:1935"} {
			fwds = append(fwds, forward.Stats{Stream: out.String(), Destination: "rtmp://" + d + "/live/" + out.Name,
				State: forward.StateForwarding, Bytes: 1 << 20, Bitrate: 1_500_000, Since: time.Now()})
		}
	}
	video := &media.Track{Kind: media.KindVideo, Codec: media.CodecH264, Config: []byte{1}, Width: 1280, Height: 720}
	speex := &media.Track{Kind: media.KindAudio, Codec: media.CodecSpeex, SampleRate: 16000, Channels: 1, SampleBits: 16}
	aac := &media.Track{Kind: media.KindAudio, Codec: media.CodecAAC, SampleRate: 44100, Channels: 1, SampleBits: 16}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		payload := make([]byte, 4000)
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			ts := time.Duration(i) * 40 * time.Millisecond
			for j, p := range pubs {
				a := speex
				if j%2 == 1 {
					a = aac
				}
				p.WritePacket(media.Packet{Track: video, DTS: ts, PTS: ts, Key: i%50 == 0, Data: payload})
				p.WritePacket(media.Packet{Track: a, DTS: ts, PTS: ts, Key: true, Data: payload[:100]})
			}
		}
	}()
	tb.Cleanup(func() {
		cancel()
		wg.Wait()
		hub.Close()
	})
	return hub, trans, fwds
}
