package transcode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/ingest/stream"
	"github.com/podiumlive/podium/transcode/av"
)

// errStalled is the watchdog's verdict: input flows, nothing comes out.
var errStalled = errors.New("no output for 5 s while input flows")

// stallAfter is the watchdog's patience.
const stallAfter = 5 * time.Second

// resyncAfter is how far input audio time may jump before the AAC
// timeline (counted in samples) is re-anchored to it.
const resyncAfter = 100 * time.Millisecond

// pipeline normalizes one stream: it reads the input reader and writes the
// output publisher. One goroutine owns it and every libav object in it.
type pipeline struct {
	s     Settings
	in    *stream.Reader
	out   *stream.Publisher
	log   *slog.Logger
	stats *jobStats

	audio audioChain
	video videoChain
	mix   interleaver // the output, in DTS order across tracks

	started   time.Time
	lastOut   time.Time
	directErr error // a direct call's fatal error, for run to return
}

func newPipeline(s Settings, in *stream.Reader, out *stream.Publisher, log *slog.Logger, st *jobStats) *pipeline {
	p := &pipeline{s: s, in: in, out: out, log: log, stats: st}
	p.mix.emit = p.emit
	return p
}

// run transcodes until the input ends (io.EOF), ctx ends, or a fatal error.
//
// Packets that need no video decoding (audio, copied video) are handled on
// the publisher's goroutine while the pipeline keeps up (the hub's direct
// path): a hand-off to this goroutine per packet costs more than the
// codec work itself. Everything else, and whatever queued meanwhile, is
// handled here. The hub guarantees the two never run at once, so the libav
// objects still have one owner at a time.
func (p *pipeline) run(ctx context.Context) error {
	defer p.close()
	p.started, p.lastOut = time.Now(), time.Now()
	p.in.SetDirect(p.direct)
	defer p.in.SetDirect(nil) // before close: no direct call after this returns
	var (
		batch []media.Packet
		err   error
	)
	for {
		batch, err = p.in.ReadBatch(ctx, batch[:0])
		herr := p.directErr
		for i := 0; herr == nil && i < len(batch); i++ {
			herr = p.handle(&batch[i])
		}
		clear(batch)
		p.in.Done()
		if herr != nil {
			return herr
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				p.flush()
				return io.EOF
			}
			return err
		}
	}
}

// direct is the hub's DirectFunc: it takes what is cheap to do inline.
func (p *pipeline) direct(pkt *media.Packet, _ media.Metadata, _ uint64) stream.DirectResult {
	if p.directErr != nil {
		return stream.DirectPending
	}
	if pkt.Track.Kind == media.KindVideo && !(pkt.Track == p.video.in && (p.video.copy || p.video.dropped != "")) {
		return stream.DirectRefused // decoding (or opening) video: the pipeline's goroutine
	}
	if err := p.handle(pkt); err != nil {
		p.directErr = err
		return stream.DirectPending // wake the goroutine to return it
	}
	return stream.DirectSent
}

// handle processes one packet; a corrupt one is counted and skipped.
func (p *pipeline) handle(pkt *media.Packet) error {
	var err error
	switch pkt.Track.Kind {
	case media.KindAudio:
		err = p.audioPacket(pkt)
	case media.KindVideo:
		err = p.videoPacket(pkt)
	}
	if err != nil {
		if !errors.Is(err, av.ErrCorrupt) {
			return err
		}
		p.stats.update(func(s *Stats) { s.Errors++ })
	}
	if time.Since(p.lastOut) > stallAfter {
		return errStalled
	}
	return nil
}

// write takes one output packet; the interleaver publishes it in order.
func (p *pipeline) write(pkt media.Packet) {
	p.lastOut = time.Now()
	p.mix.push(pkt)
}

func (p *pipeline) emit(pkt media.Packet) {
	p.out.WritePacket(pkt)
	p.stats.media(pkt.DTS)
}

func (p *pipeline) flush() {
	_ = p.audio.flush(p)
	_ = p.video.flush(p)
	p.mix.flush()
	if p.mix.late > 0 {
		p.log.Info("transcode: output packets came too late to interleave; written at the last time written",
			"packets", p.mix.late)
	}
}

func (p *pipeline) close() {
	p.audio.close()
	p.video.close()
	av.TrimCHeap()
}

func millis(d time.Duration) int64 { return d.Milliseconds() }

// ---- audio ----------------------------------------------------------------

type audioChain struct {
	in      *media.Track
	copy    bool
	dropped string // why this input track is dropped ("" = not dropped)

	dec    *av.Decoder
	res    *av.Filter
	resFmt av.AudioFormat
	enc    *av.AACEncoder
	out    *media.Track

	anchor     time.Duration // output time of sample 0
	samples    int64         // samples encoded so far
	decoded    int64         // samples decoded so far: the resampler's clock
	sent       int64         // samples sent to the encoder: the encoder's clock
	nextIn     time.Duration // expected time of the next input packet
	anchored   bool
	rate, chns int
}

func (p *pipeline) audioPacket(pkt *media.Packet) error {
	a := &p.audio
	if pkt.Track != a.in {
		a.close()
		*a = audioChain{in: pkt.Track}
		if err := p.openAudio(pkt.Track); err != nil {
			// Undecodable audio: drop the track, keep the video.
			a.dropped = err.Error()
			p.log.Warn("transcode: dropping audio track", "codec", pkt.Track.Codec.String(), "reason", a.dropped)
			p.stats.update(func(s *Stats) {
				s.OutputAudio = "none (" + a.dropped + ")"
				s.LastError = "audio: " + a.dropped
			})
		}
	}
	if a.dropped != "" {
		return nil
	}
	if a.copy {
		p.write(*pkt)
		return nil
	}
	// Re-anchor the sample-counted timeline when input time jumps.
	if a.anchored {
		if d := pkt.PTS - a.nextIn; d > resyncAfter || d < -resyncAfter {
			a.anchor += d
		}
	}
	err := a.dec.Decode(pkt.Data, millis(pkt.PTS), millis(pkt.DTS), func(f *astiav.Frame) error {
		p.stats.update(func(s *Stats) { s.FramesDecoded++ })
		if !a.anchored {
			a.anchor, a.anchored = pkt.PTS, true
		}
		if rate := f.SampleRate(); rate > 0 {
			a.nextIn = pkt.PTS + time.Duration(f.NbSamples())*time.Second/time.Duration(rate)
		}
		// Frames carry sample-counted times (in 1/rate): the filters and
		// the encoder see one steady clock, whatever the input's jitter.
		f.SetPts(a.decoded)
		a.decoded += int64(f.NbSamples())
		return p.resampleEncode(f)
	})
	return err
}

func (p *pipeline) openAudio(t *media.Track) error {
	a := &p.audio
	rate, chns := p.s.SampleRate, p.s.Channels
	if chns == 0 {
		chns = max(1, min(t.Channels, 2))
	}
	if p.s.AudioCodec == "copy" || (t.Codec == media.CodecAAC && len(t.Config) > 0 &&
		(rate == 0 || rate == t.SampleRate) && (p.s.Channels == 0 || p.s.Channels == t.Channels)) {
		a.copy = true
		p.stats.update(func(s *Stats) {
			s.InputAudio = describeAudio(t)
			s.OutputAudio = describeAudio(t) + " (copy)"
		})
		return nil
	}
	if rate == 0 {
		rate = 44100
	}
	dec, err := av.OpenDecoder(t)
	if err != nil {
		return err
	}
	enc, err := av.OpenAACEncoder(rate, chns, p.s.AudioBitrate)
	if err != nil {
		dec.Close()
		return err
	}
	a.dec, a.enc, a.rate, a.chns = dec, enc, rate, chns
	a.out = &media.Track{Kind: media.KindAudio, Codec: media.CodecAAC, Config: enc.Config(),
		SampleRate: rate, Channels: chns, SampleBits: 16}
	p.stats.update(func(s *Stats) {
		s.InputAudio = describeAudio(t)
		s.OutputAudio = fmt.Sprintf("%s %dk", describeAudio(a.out), p.s.AudioBitrate/1000)
	})
	return nil
}

// resampleEncode feeds a decoded frame through the resampler (built from
// the first frame: the decoder's sample format is unknown before) and the
// AAC encoder.
func (p *pipeline) resampleEncode(f *astiav.Frame) error {
	a := &p.audio
	if fmtNow := av.FrameAudioFormat(f); a.res == nil || fmtNow != a.resFmt {
		if a.res != nil {
			a.res.Close()
		}
		res, err := av.NewResampler(fmtNow, a.rate, a.chns, a.enc.FrameSize())
		if err != nil {
			a.res = nil
			return fmt.Errorf("audio resampler: %w", err)
		}
		a.res, a.resFmt = res, fmtNow
	}
	return a.res.Push(f, p.encodeAudio)
}

func (p *pipeline) encodeAudio(f *astiav.Frame) error {
	a := &p.audio
	f.SetPts(a.sent)
	a.sent += int64(f.NbSamples())
	return a.enc.Encode(f, p.emitAAC)
}

// emitAAC publishes one AAC frame (data is Go-owned). AAC time comes from
// the sample counter, not the jittery input.
func (p *pipeline) emitAAC(data []byte) error {
	a := &p.audio
	t := a.anchor + time.Duration(a.samples)*time.Second/time.Duration(a.rate)
	a.samples += int64(a.enc.FrameSize())
	p.write(media.Packet{Track: a.out, DTS: t, PTS: t, Key: true, Data: data})
	p.stats.update(func(s *Stats) { s.FramesEncoded++ })
	return nil
}

func (a *audioChain) flush(p *pipeline) error {
	if a.dec == nil || a.copy {
		return nil
	}
	_ = a.dec.Flush(func(f *astiav.Frame) error {
		f.SetPts(a.decoded)
		a.decoded += int64(f.NbSamples())
		return p.resampleEncode(f)
	})
	if a.res != nil {
		_ = a.res.Push(nil, p.encodeAudio)
	}
	return a.enc.Encode(nil, p.emitAAC)
}

func (a *audioChain) close() {
	if a.res != nil {
		a.res.Close()
	}
	if a.enc != nil {
		a.enc.Close()
	}
	if a.dec != nil {
		a.dec.Close()
	}
	a.res, a.enc, a.dec = nil, nil, nil
}

func describeAudio(t *media.Track) string {
	ch := "mono"
	if t.Channels >= 2 {
		ch = "stereo"
	}
	return fmt.Sprintf("%s %d Hz %s", t.Codec, t.SampleRate, ch)
}
