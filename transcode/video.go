package transcode

import (
	"fmt"
	"strings"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/podiumlive/podium/hwaccel"
	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/transcode/av"
)

type videoChain struct {
	in      *media.Track
	copy    bool
	dropped string
	waitKey bool

	dec    *av.Decoder
	scl    *av.Filter
	sclFmt av.VideoFormat
	enc    *av.VideoEncoder
	cfg    av.VideoEncoderConfig
	out    *media.Track
}

func (p *pipeline) videoPacket(pkt *media.Packet) error {
	v := &p.video
	if pkt.Track != v.in {
		v.close()
		*v = videoChain{in: pkt.Track, waitKey: true}
		if err := p.openVideo(pkt.Track); err != nil {
			v.dropped = err.Error()
			p.log.Warn("transcode: dropping video track", "codec", pkt.Track.Codec.String(), "reason", v.dropped)
			p.stats.update(func(s *Stats) {
				s.OutputVideo = "none (" + v.dropped + ")"
				s.LastError = "video: " + v.dropped
			})
		}
	}
	if v.dropped != "" {
		return nil
	}
	if v.copy {
		p.write(*pkt)
		return nil
	}
	if v.waitKey {
		if !pkt.Key {
			return nil
		}
		v.waitKey = false
	}
	return v.dec.Decode(pkt.Data, millis(pkt.PTS), millis(pkt.DTS), func(f *astiav.Frame) error {
		p.stats.update(func(s *Stats) { s.FramesDecoded++ })
		if f.Pts() == astiav.NoPtsValue {
			f.SetPts(f.PktDts())
		}
		return p.scaleEncode(f)
	})
}

func (p *pipeline) openVideo(t *media.Track) error {
	v := &p.video
	desc := describeVideo(t)
	if p.s.VideoCodec == "copy" && t.Codec == media.CodecH264 {
		v.copy = true
		p.stats.update(func(s *Stats) {
			s.InputVideo, s.OutputVideo, s.Encoder, s.Hardware = desc, desc+" (copy)", "copy", false
		})
		return nil
	}
	dec, err := av.OpenDecoder(t)
	if err != nil {
		return err
	}
	v.dec = dec
	p.stats.update(func(s *Stats) { s.InputVideo = desc })
	return nil
}

// scaleEncode opens the encoder on the first decoded frame (its size
// decides the output size when the config keeps it), then scales and
// encodes every frame.
func (p *pipeline) scaleEncode(f *astiav.Frame) error {
	v := &p.video
	if v.enc == nil {
		if err := p.openEncoder(f.Width(), f.Height()); err != nil {
			return err
		}
	}
	if now := av.FrameVideoFormat(f); v.scl == nil || now != v.sclFmt {
		if v.scl != nil {
			v.scl.Close()
		}
		scl, err := av.NewScaler(now, v.cfg.Width, v.cfg.Height, v.cfg.PixelFormat, float64(p.s.FPS))
		if err != nil {
			v.scl = nil
			return fmt.Errorf("video scaler: %w", err)
		}
		v.scl, v.sclFmt = scl, now
	}
	return v.scl.Push(f, p.encodeVideo)
}

func (p *pipeline) encodeVideo(f *astiav.Frame) error {
	return p.video.enc.Encode(f, p.emitVideo)
}

func (p *pipeline) emitVideo(ep av.EncodedPacket) error {
	v := &p.video
	if v.out == nil {
		v.out = &media.Track{Kind: media.KindVideo, Codec: media.CodecH264, Config: v.enc.Config(),
			Width: v.cfg.Width, Height: v.cfg.Height}
	}
	p.write(media.Packet{Track: v.out, DTS: time.Duration(ep.DTS) * time.Millisecond,
		PTS: time.Duration(ep.PTS) * time.Millisecond, Key: ep.Key, Data: ep.Data})
	p.stats.update(func(s *Stats) { s.FramesEncoded++ })
	return nil
}

// outputSize is the configured size, or the input's (keeping the aspect
// when only one side is set), rounded to even numbers as encoders need.
func outputSize(cw, ch, iw, ih int) (int, int) {
	w, h := cw, ch
	switch {
	case w == 0 && h == 0:
		w, h = iw, ih
	case w == 0 && ih > 0:
		w = iw * h / ih
	case h == 0 && iw > 0:
		h = ih * w / iw
	}
	return max(2, w&^1), max(2, h&^1)
}

// frameRate is the configured rate, else the publisher's metadata, else 30.
func (p *pipeline) frameRate() float64 {
	if p.s.FPS > 0 {
		return float64(p.s.FPS)
	}
	m, _ := p.in.Metadata()
	for _, name := range []string{"framerate", "fps", "videoframerate"} {
		if v, ok := m.Get(name); ok {
			if f, ok := v.(float64); ok && f > 0 && f <= 240 {
				return f
			}
		}
	}
	return 30
}

// openEncoder tries each backend of the chain in order: a hardware encoder
// that fails to open (no device, session limit) falls back to the next,
// and the fallback is logged and kept in the stats.
func (p *pipeline) openEncoder(iw, ih int) error {
	v := &p.video
	w, h := outputSize(p.s.Width, p.s.Height, iw, ih)
	fps := p.frameRate()
	gop := int(p.s.GOP.Seconds()*fps + 0.5)
	if gop <= 0 {
		gop = int(2*fps + 0.5)
	}
	set := hwaccel.Settings{Width: w, Height: h, FPS: fps, GOP: gop, Bitrate: p.s.VideoBitrate,
		Profile: p.s.Profile, Preset: p.s.Preset}
	var fails []string
	for _, b := range p.s.Backends {
		cfg := b.EncoderConfig(set, p.s.Device)
		enc, err := av.OpenVideoEncoder(cfg)
		if err != nil {
			fails = append(fails, fmt.Sprintf("%s: %v", b.Encoder(), err))
			p.log.Warn("transcode: video encoder unavailable, trying the next", "encoder", b.Encoder(), "err", err)
			continue
		}
		v.enc, v.cfg = enc, cfg
		hw := b.Name() != "software"
		p.stats.update(func(s *Stats) {
			s.Encoder, s.Hardware, s.Fallbacks = b.Encoder(), hw, fails
			s.OutputVideo = fmt.Sprintf("h264 %dx%d %gfps %dk (%s)", w, h, fps, p.s.VideoBitrate/1000, b.Encoder())
		})
		if len(fails) > 0 {
			p.log.Warn("transcode: fell back to another video encoder", "encoder", b.Encoder(), "failed", strings.Join(fails, "; "))
		}
		return nil
	}
	return fmt.Errorf("no usable h264 encoder: %s", strings.Join(fails, "; "))
}

func (v *videoChain) flush(p *pipeline) error {
	if v.dec == nil || v.enc == nil {
		return nil
	}
	_ = v.dec.Flush(func(f *astiav.Frame) error { return p.scaleEncode(f) })
	if v.scl != nil {
		_ = v.scl.Push(nil, p.encodeVideo)
	}
	return v.enc.Encode(nil, p.emitVideo)
}

func (v *videoChain) close() {
	if v.scl != nil {
		v.scl.Close()
	}
	if v.enc != nil {
		v.enc.Close()
	}
	if v.dec != nil {
		v.dec.Close()
	}
	v.scl, v.enc, v.dec = nil, nil, nil
}

func describeVideo(t *media.Track) string {
	if t.Width > 0 {
		return fmt.Sprintf("%s %dx%d", t.Codec, t.Width, t.Height)
	}
	return t.Codec.String()
}
