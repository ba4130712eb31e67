package transcode

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/podiumlive/podium/flv"
	"github.com/podiumlive/podium/hwaccel"
	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/transcode/av"
)

// loadFLV encodes a fixture with the ffmpeg CLI and demuxes it with the
// flv package into the packets an RTMP publisher would produce.
func loadFLV(t testing.TB, args ...string) []media.Packet {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in.flv")
	full := append([]string{"-v", "error", "-y"}, args...)
	out, err := exec.Command("ffmpeg", append(full, "-f", "flv", path)...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var d flv.Demuxer
	var pkts []media.Packet
	pos := 13
	for pos+11 <= len(b) {
		typ := b[pos] & 0x1f
		size := int(b[pos+1])<<16 | int(b[pos+2])<<8 | int(b[pos+3])
		ts := uint32(b[pos+4])<<16 | uint32(b[pos+5])<<8 | uint32(b[pos+6]) | uint32(b[pos+7])<<24
		body := b[pos+11 : pos+11+size]
		var p media.Packet
		var ok bool
		switch typ {
		case 8:
			p, ok, err = d.Audio(ts, body)
		case 9:
			p, ok, err = d.Video(ts, body)
		}
		require.NoError(t, err)
		if ok {
			pkts = append(pkts, p)
		}
		pos += 11 + size + 4
	}
	return pkts
}

func speexH264(t testing.TB, seconds string) []media.Packet {
	return loadFLV(t, "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000",
		"-t", seconds, "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
		"-c:a", "libspeex", "-ar", "16000", "-ac", "1")
}

func defaultSettings() Settings {
	return Settings{
		To: "out", AudioCodec: "aac", AudioBitrate: 64000, SampleRate: 44100,
		VideoCodec: "copy", VideoBitrate: 500000, GOP: time.Second,
		Backends: hwaccel.Chain([]string{"none"}),
	}
}

type rig struct {
	hub *stream.Hub
	eng *Engine
	ctx context.Context
	end context.CancelFunc
}

func newRig(t testing.TB, s Settings) *rig {
	hub := stream.NewHub(stream.DefaultOptions(), nil)
	eng := NewEngine(hub, func(vhost string) (Settings, bool) { return s, vhost == "in" }, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	eng.Start(ctx)
	r := &rig{hub: hub, eng: eng, ctx: ctx, end: cancel}
	t.Cleanup(func() { cancel(); eng.Wait() })
	return r
}

// transcode publishes pkts on in/live/name and returns everything the
// output stream carried until it ended.
func (r *rig) transcode(t testing.TB, name string, pkts []media.Packet) []media.Packet {
	t.Helper()
	pub, err := r.hub.Publish(stream.Key{Vhost: "in", App: "live", Name: name}, stream.ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	out, err := r.hub.Subscribe(r.ctx, stream.Key{Vhost: "out", App: "live", Name: name}, stream.ClientInfo{}, time.Second)
	require.NoError(t, err)
	defer out.Close()
	var got []media.Packet
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			p, err := out.Read(r.ctx)
			if err != nil {
				return
			}
			got = append(got, p)
		}
	}()
	for i, p := range pkts {
		pub.WritePacket(p)
		// Let the pipeline keep up: queues are bounded and drop by design.
		for i%64 == 0 && queued(pub.Stream()) > 256 {
			time.Sleep(time.Millisecond)
		}
	}
	pub.Close()
	wg.Wait()
	return got
}

func queued(st *stream.Stream) int {
	n := 0
	for _, r := range st.Readers() {
		n = max(n, r.Stats().Queued)
	}
	return n
}

func split(pkts []media.Packet) (video, audio []media.Packet) {
	for _, p := range pkts {
		if p.Track.Kind == media.KindVideo {
			video = append(video, p)
		} else {
			audio = append(audio, p)
		}
	}
	return
}

func TestSpeexToAACWithVideoCopy(t *testing.T) {
	in := speexH264(t, "4")
	r := newRig(t, defaultSettings())
	out := r.transcode(t, "s1", in)
	inV, inA := split(in)
	outV, outA := split(out)

	require.Len(t, outV, len(inV), "every video packet passes")
	for i := range inV {
		require.Equal(t, inV[i].Data, outV[i].Data, "copied video is byte-identical")
		require.Equal(t, inV[i].PTS, outV[i].PTS)
	}
	require.NotEmpty(t, outA)
	tr := outA[0].Track
	require.Equal(t, media.CodecAAC, tr.Codec)
	require.Equal(t, 44100, tr.SampleRate)
	require.Equal(t, 1, tr.Channels)
	require.NotEmpty(t, tr.Config, "AudioSpecificConfig from the encoder")

	inDur := inA[len(inA)-1].PTS - inA[0].PTS
	outDur := time.Duration(len(outA)) * time.Second * 1024 / 44100
	require.InDelta(t, inDur.Seconds(), outDur.Seconds(), inDur.Seconds()*0.02+0.05)
	for i := 1; i < len(outA); i++ {
		require.Greater(t, outA[i].DTS, outA[i-1].DTS, "AAC time from the sample counter is monotonic")
	}
	require.InDelta(t, inA[0].PTS.Seconds(), outA[0].PTS.Seconds(), 0.05, "audio starts where it started")
}

func TestAACInputMatchingIsCopied(t *testing.T) {
	in := loadFLV(t, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "2", "-c:a", "aac", "-ac", "1")
	r := newRig(t, defaultSettings())
	out := r.transcode(t, "aac", in)
	require.Len(t, out, len(in))
	for i := range in {
		require.Equal(t, in[i].Data, out[i].Data)
		require.Same(t, in[i].Track, out[i].Track)
	}
}

func TestBadInputNeverCrashes(t *testing.T) {
	good := speexH264(t, "2")
	goodV, _ := split(good)
	cases := map[string][]media.Packet{}

	unknown := &media.Track{Kind: media.KindAudio, Codec: media.CodecUnknown}
	empty := &media.Track{Kind: media.KindAudio, Codec: media.CodecMP3, SampleRate: 44100, Channels: 1}
	badASC := &media.Track{Kind: media.KindAudio, Codec: media.CodecAAC, Config: []byte{0xff, 0xff, 0xff}, SampleRate: 48000, Channels: 2}
	var mixed []media.Packet
	for i, v := range goodV {
		mixed = append(mixed, v,
			media.Packet{Track: unknown, DTS: v.DTS, PTS: v.PTS, Key: true, Data: []byte{1, 2, 3}},
			media.Packet{Track: empty, DTS: v.DTS, PTS: v.PTS, Key: true, Data: nil})
		if i%3 == 0 {
			mixed = append(mixed, media.Packet{Track: badASC, DTS: v.DTS, PTS: v.PTS, Key: true, Data: []byte{9, 9}})
		}
	}
	cases["undecodable audio"] = mixed

	noSPS := &media.Track{Kind: media.KindVideo, Codec: media.CodecH264}
	var nosps []media.Packet
	for _, v := range goodV {
		nosps = append(nosps, media.Packet{Track: noSPS, DTS: v.DTS, PTS: v.PTS, Key: v.Key, Data: v.Data})
	}
	cases["avc without sps, transcoded"] = nosps

	garbage := &media.Track{Kind: media.KindVideo, Codec: media.CodecH264, Config: goodV[0].Track.Config}
	var junk []media.Packet
	for i, v := range goodV {
		junk = append(junk, media.Packet{Track: garbage, DTS: v.DTS, PTS: v.PTS, Key: i == 0, Data: []byte{0, 0, 0, 2, 0xff, 0xff}})
	}
	cases["garbage frames, transcoded"] = junk

	s := defaultSettings()
	s.VideoCodec = "h264"
	s.Width, s.Height = 160, 120
	r := newRig(t, s)
	for name, pkts := range cases {
		t.Run(name, func(t *testing.T) {
			out := r.transcode(t, "bad", pkts)
			_ = out // the point: no crash, the job ends with the input
		})
	}
	for _, st := range r.eng.Stats() {
		require.NotEqual(t, StateRunning, st.State)
	}
}

func TestVideoTranscodeScales(t *testing.T) {
	in := speexH264(t, "2")
	s := defaultSettings()
	s.VideoCodec, s.Width, s.Height = "h264", 96, 64
	r := newRig(t, s)
	out := r.transcode(t, "scale", in)
	outV, _ := split(out)
	require.NotEmpty(t, outV)
	require.True(t, outV[0].Key, "starts on a keyframe")
	require.Equal(t, 96, outV[0].Track.Width)
	require.Equal(t, 64, outV[0].Track.Height)
	require.NotEmpty(t, outV[0].Track.Config)
	inV, _ := split(in)
	require.InDelta(t, len(inV), len(outV), 3, "every frame encoded")
}

// No libav object outlives its pipeline, over many start/stop cycles.
func TestNoLeaksOverManyCycles(t *testing.T) {
	in := speexH264(t, "1")
	in = in[:min(len(in), 40)]
	r := newRig(t, defaultSettings())
	before := av.Live()
	var heap [3]uint64 // C memory in use after 100, 550 and 1000 cycles
	for i := range 1000 {
		r.transcode(t, "cycle", in)
		switch i + 1 {
		case 100, 550, 1000:
			heap[i/450] = av.CHeap().InUse
		}
	}
	r.end()
	r.eng.Wait()
	require.Equal(t, before, av.Live(), "libav objects alive after 1,000 pipelines")
	t.Logf("C heap in use after 100, 550, 1000 pipelines: %d, %d, %d bytes", heap[0], heap[1], heap[2])
	// libav's own caches settle in the first hundreds (measured: +149 KB
	// from 100 to 550, +61 KB from 550 to 1000); a pipeline that left a
	// frame or a context behind would add kilobytes each.
	require.Less(t, int64(heap[2])-int64(heap[1]), int64(200<<10), "C memory in use grew over the last 450 pipelines")
	goleak.VerifyNone(t, goleak.IgnoreCurrent())
}

func TestWatchdogAndRestart(t *testing.T) {
	// A pipeline whose output stalls is restarted: feed video that decodes
	// to nothing (no keyframe ever) while transcoding.
	good := speexH264(t, "8")
	goodV, _ := split(good)
	var nokey []media.Packet
	for _, v := range goodV {
		v.Key = false
		nokey = append(nokey, v)
	}
	s := defaultSettings()
	s.VideoCodec = "h264"
	r := newRig(t, s)
	pub, err := r.hub.Publish(stream.Key{Vhost: "in", App: "live", Name: "stall"}, stream.ClientInfo{})
	require.NoError(t, err)
	deadline := time.Now().Add(20 * time.Second)
	i := 0
	for time.Now().Before(deadline) {
		p := nokey[i%len(nokey)]
		p.DTS += time.Duration(i/len(nokey)) * 8 * time.Second
		p.PTS += time.Duration(i/len(nokey)) * 8 * time.Second
		pub.WritePacket(p)
		i++
		time.Sleep(20 * time.Millisecond)
		st := r.eng.Stats()
		if len(st) == 1 && st[0].Restarts > 0 {
			require.Contains(t, st[0].LastError, "no output")
			pub.Close()
			return
		}
	}
	t.Fatal("the watchdog never restarted the stalled pipeline")
}

// Ten minutes of Speex in, AAC out: the sample-counted timeline ends where
// the input ends (no drift), and a gap in the input is carried over.
func TestNoDriftOverTenMinutes(t *testing.T) {
	in := loadFLV(t, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000", "-t", "600",
		"-c:a", "libspeex", "-ar", "16000", "-ac", "1")
	// A 3 s hole at 5 minutes: the encoder clock must jump with it.
	for i := range in {
		if in[i].PTS >= 300*time.Second {
			in[i].PTS += 3 * time.Second
			in[i].DTS += 3 * time.Second
		}
	}
	r := newRig(t, defaultSettings())
	out := r.transcode(t, "drift", in)
	require.NotEmpty(t, out)
	frame := time.Second * 1024 / 44100
	inEnd := in[len(in)-1].PTS + 20*time.Millisecond
	outEnd := out[len(out)-1].PTS + frame
	require.InDelta(t, inEnd.Seconds(), outEnd.Seconds(), 0.05, "in ends %s, out ends %s", inEnd, outEnd)
	// Around the hole: output time jumps by about 3 s too.
	for i := 1; i < len(out); i++ {
		if d := out[i].PTS - out[i-1].PTS; d > time.Second {
			require.InDelta(t, 3.0, d.Seconds(), 0.1)
			require.InDelta(t, 303.0, out[i].PTS.Seconds(), 0.1)
			return
		}
	}
	t.Fatal("the 3 s input gap did not show in the output")
}

// A hardware encoder that fails to open (here: no GPU at all) falls back to
// the next backend, and the stats say so.
func TestEncoderFallback(t *testing.T) {
	in := speexH264(t, "2")
	s := defaultSettings()
	s.VideoCodec, s.Width, s.Height = "h264", 96, 64
	s.Backends = hwaccel.Chain([]string{"nvenc", "vaapi"})
	require.Len(t, s.Backends, 3, "nvenc, vaapi, then software")
	r := newRig(t, s)
	pub, err := r.hub.Publish(stream.Key{Vhost: "in", App: "live", Name: "fb"}, stream.ClientInfo{})
	require.NoError(t, err)
	for _, p := range in {
		pub.WritePacket(p)
		time.Sleep(200 * time.Microsecond)
	}
	st := r.eng.Stats()
	require.Len(t, st, 1)
	require.Equal(t, "libx264", st[0].Encoder)
	require.False(t, st[0].Hardware)
	require.Len(t, st[0].Fallbacks, 2)
	require.Contains(t, st[0].Fallbacks[0], "h264_nvenc")
	require.Contains(t, st[0].Fallbacks[1], "h264_vaapi")
	require.Positive(t, st[0].FramesEncoded)
	pub.Close()
}
