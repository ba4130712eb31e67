package av

import (
	"errors"
	"fmt"

	"github.com/asticode/go-astiav"

	"github.com/podiumlive/podium/ingest/media"
)

// ErrCorrupt marks a packet the decoder rejected: skip it, count it, go on.
var ErrCorrupt = errors.New("corrupt packet")

// MillisTimeBase is the time base of every PTS the wrappers exchange with
// the pipeline: media.Packet times are converted to milliseconds.
var millis = astiav.NewRational(1, 1000)

// decoderFor picks the libav decoder for a track and sets what FLV/RTSP
// declare out of band (rate, channels, extradata).
func decoderFor(t *media.Track) (*astiav.Codec, func(cc *astiav.CodecContext) error, error) {
	var id astiav.CodecID
	var name string
	audio := func(rate, channels int) func(cc *astiav.CodecContext) error {
		return func(cc *astiav.CodecContext) error {
			if rate <= 0 {
				rate = 44100
			}
			if channels <= 0 {
				channels = 1
			}
			cc.SetSampleRate(rate)
			cc.SetChannelLayout(layout(channels))
			if len(t.Config) > 0 {
				return cc.SetExtraData(t.Config)
			}
			return nil
		}
	}
	setup := audio(t.SampleRate, t.Channels)
	switch t.Codec {
	case media.CodecAAC:
		id = astiav.CodecIDAac
	case media.CodecMP3:
		id = astiav.CodecIDMp3
	case media.CodecSpeex:
		// FLV Speex is 16 kHz mono without extradata, whatever the flags say.
		id, setup = astiav.CodecIDSpeex, audio(16000, 1)
	case media.CodecNellymoser:
		id = astiav.CodecIDNellymoser
	case media.CodecPCM, media.CodecPCMLE:
		id = astiav.CodecIDPcmS16Le
		if t.SampleBits == 8 {
			id = astiav.CodecIDPcmU8
		}
	case media.CodecADPCM:
		id = astiav.CodecIDAdpcmSwf
	case media.CodecG711A:
		id, setup = astiav.CodecIDPcmAlaw, audio(orDefault(t.SampleRate, 8000), t.Channels)
	case media.CodecG711U:
		id, setup = astiav.CodecIDPcmMulaw, audio(orDefault(t.SampleRate, 8000), t.Channels)
	case media.CodecOpus:
		id, setup = astiav.CodecIDOpus, audio(48000, t.Channels)
	case media.CodecH264, media.CodecH265:
		id = astiav.CodecIDH264
		if t.Codec == media.CodecH265 {
			id = astiav.CodecIDHevc
		}
		if len(t.Config) == 0 {
			return nil, nil, fmt.Errorf("%s track has no decoder configuration (no sequence header)", t.Codec)
		}
		setup = func(cc *astiav.CodecContext) error { return cc.SetExtraData(t.Config) }
	case media.CodecH263:
		name = "flv"
	case media.CodecVP6:
		name = "vp6f"
	case media.CodecVP6A:
		name = "vp6a"
	case media.CodecScreen:
		name = "flashsv"
	case media.CodecScreen2:
		name = "flashsv2"
	case media.CodecVP9:
		id, setup = astiav.CodecIDVp9, func(*astiav.CodecContext) error { return nil }
	case media.CodecAV1:
		name = "libdav1d"
	default:
		return nil, nil, fmt.Errorf("no decoder for %s", t.Codec)
	}
	if t.Kind == media.KindVideo && name != "" {
		setup = func(*astiav.CodecContext) error { return nil }
	}
	var c *astiav.Codec
	if name != "" {
		c = astiav.FindDecoderByName(name)
	} else {
		c = astiav.FindDecoder(id)
	}
	if c == nil {
		return nil, nil, fmt.Errorf("no decoder for %s in this FFmpeg build", t.Codec)
	}
	return c, setup, nil
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

func layout(channels int) astiav.ChannelLayout {
	if channels >= 2 {
		return astiav.ChannelLayoutStereo
	}
	return astiav.ChannelLayoutMono
}

// Decoder decodes the packets of one track.
type Decoder struct {
	cc    *astiav.CodecContext
	pkt   *astiav.Packet
	frame *astiav.Frame
}

// OpenDecoder opens a decoder for t.
func OpenDecoder(t *media.Track) (d *Decoder, err error) {
	c, setup, err := decoderFor(t)
	if err != nil {
		return nil, err
	}
	x := &Decoder{}
	defer func() {
		if err != nil {
			x.Close() // the results were set to nil by the return
		}
	}()
	d = x
	if d.cc = allocCodecContext(c); d.cc == nil {
		return nil, fmt.Errorf("alloc %s decoder", c.Name())
	}
	if err = setup(d.cc); err != nil {
		return nil, fmt.Errorf("configure %s decoder: %w", c.Name(), err)
	}
	d.cc.SetTimeBase(millis)
	d.cc.SetThreadCount(1) // one goroutine per stream; hundreds of streams share the cores
	if err = d.cc.Open(c, nil); err != nil {
		return nil, fmt.Errorf("open %s decoder: %w", c.Name(), err)
	}
	d.pkt = allocPacket()
	d.frame = allocFrame()
	return d, nil
}

// Decode decodes one packet (pts in milliseconds) and calls emit for each
// frame it yields; the frame is only valid during the call. A packet the
// decoder rejects returns an error wrapping ErrCorrupt.
func (d *Decoder) Decode(data []byte, pts, dts int64, emit func(*astiav.Frame) error) error {
	if len(data) == 0 {
		return fmt.Errorf("empty packet: %w", ErrCorrupt)
	}
	if err := d.pkt.FromData(data); err != nil {
		return fmt.Errorf("packet: %w", err)
	}
	d.pkt.SetPts(pts)
	d.pkt.SetDts(dts)
	err := d.cc.SendPacket(d.pkt)
	d.pkt.Unref()
	if err != nil && !errors.Is(err, astiav.ErrEagain) {
		return fmt.Errorf("decode: %w: %w", ErrCorrupt, err)
	}
	return d.drain(emit)
}

// Flush drains the decoder at the end of a stream.
func (d *Decoder) Flush(emit func(*astiav.Frame) error) error {
	if err := d.cc.SendPacket(nil); err != nil && !errors.Is(err, astiav.ErrEof) {
		return fmt.Errorf("flush decoder: %w", err)
	}
	return d.drain(emit)
}

func (d *Decoder) drain(emit func(*astiav.Frame) error) error {
	for {
		if err := d.cc.ReceiveFrame(d.frame); err != nil {
			if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
				return nil
			}
			return fmt.Errorf("decode: %w: %w", ErrCorrupt, err)
		}
		err := emit(d.frame)
		d.frame.Unref()
		if err != nil {
			return err
		}
	}
}

// Close frees everything; safe on a partly opened decoder.
func (d *Decoder) Close() {
	freeFrame(d.frame)
	freePacket(d.pkt)
	freeCodecContext(d.cc)
	d.frame, d.pkt, d.cc = nil, nil, nil
}
