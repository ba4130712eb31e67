package rtsp

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtplpcm"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtpmpeg4audio"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtpsimpleaudio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/rtp"

	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/internal/safe"
)

// maxAccessUnit bounds one reassembled access unit: a camera that
// fragments forever must not grow a buffer without end.
const maxAccessUnit = 8 << 20

// depacketizer turns the RTP packets of one format into hub packets.
// Its decode method is called from one goroutine at a time per format.
type depacketizer struct {
	medi  *description.Media
	forma format.Format
	clock *trackClock
	track *media.Track

	decode func(pkt *rtp.Packet, pts time.Duration, emit func(media.Packet)) error
}

// newDepacketizer prepares the conversion of one format; errUnsupported
// for codecs Podium does not carry.
func newDepacketizer(medi *description.Media, forma format.Format, tl *timeline) (*depacketizer, error) {
	t, err := trackFor(forma)
	if err != nil {
		return nil, err
	}
	d := &depacketizer{medi: medi, forma: forma, track: t,
		clock: tl.track(forma.ClockRate(), t.Kind == media.KindVideo)}
	switch f := forma.(type) {
	case *format.H264:
		err = d.initH264(f)
	case *format.H265:
		err = d.initH265(f)
	case *format.MPEG4Audio:
		err = d.initAAC(f)
	case *format.G711:
		var dec *rtplpcm.Decoder
		if dec, err = f.CreateDecoder(); err == nil {
			d.decode = d.samples(func(p *rtp.Packet) ([]byte, error) {
				b, err := dec.Decode(p)
				return bytes.Clone(b), err
			})
		}
	case *format.LPCM:
		var dec *rtplpcm.Decoder
		if dec, err = f.CreateDecoder(); err == nil {
			depth := f.BitDepth
			d.decode = d.samples(func(p *rtp.Packet) ([]byte, error) {
				b, err := dec.Decode(p)
				if err != nil {
					return nil, err
				}
				return lpcmToLE(depth, b), nil
			})
		}
	case *format.Opus:
		var dec *rtpsimpleaudio.Decoder
		if dec, err = f.CreateDecoder(); err == nil {
			d.decode = d.samples(func(p *rtp.Packet) ([]byte, error) {
				b, err := dec.Decode(p)
				return bytes.Clone(b), err
			})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s decoder: %w", forma.Codec(), err)
	}
	return d, nil
}

// handle converts one RTP packet; emit is called for each complete access
// unit. Errors describe bad input (counted by the caller); a packet that
// only needs more packets is no error.
func (d *depacketizer) handle(pkt *rtp.Packet, ntp time.Time, hasNTP bool, emit func(media.Packet)) error {
	pts := d.clock.pts(pkt.Timestamp, ntp, hasNTP)
	return safe.Parse(func() error { return d.decode(pkt, pts, emit) })
}

// samples is the decode of audio codecs whose RTP payload is whole frames
// or samples.
func (d *depacketizer) samples(dec func(*rtp.Packet) ([]byte, error)) func(*rtp.Packet, time.Duration, func(media.Packet)) error {
	return func(pkt *rtp.Packet, pts time.Duration, emit func(media.Packet)) error {
		b, err := dec(pkt)
		if err != nil {
			return err
		}
		if len(b) == 0 {
			return nil
		}
		emit(media.Packet{Track: d.track, DTS: pts, PTS: pts, Key: true, Data: b})
		return nil
	}
}

func (d *depacketizer) initAAC(f *format.MPEG4Audio) error {
	dec, err := f.CreateDecoder()
	if err != nil {
		return err
	}
	rate := int64(f.ClockRate())
	d.decode = func(pkt *rtp.Packet, pts time.Duration, emit func(media.Packet)) error {
		aus, err := dec.Decode(pkt)
		if errors.Is(err, rtpmpeg4audio.ErrMorePacketsNeeded) {
			return nil
		}
		if err != nil {
			return err
		}
		for i, au := range aus {
			t := pts + ticksToDur(int64(i)*mpeg4audio.SamplesPerAccessUnit, rate)
			emit(media.Packet{Track: d.track, DTS: t, PTS: t, Key: true, Data: bytes.Clone(au)})
		}
		return nil
	}
	return nil
}

// videoState is what H.264 and H.265 depacketizing share: the parameter
// sets seen so far, the DTS extractor, and whether a random access point
// has been seen since the start or the last error.
type videoState struct {
	vps, sps, pps []byte
	synced        bool
	lastDTS       time.Duration
}

// naluKind is what the video depacketizer needs to know of a NAL unit.
type naluKind int

const (
	naluOther naluKind = iota
	naluVPS
	naluSPS
	naluPPS
	naluSkip // access unit delimiters, filler: dropped
)

// dtsExtractor is h264.DTSExtractor or h265.DTSExtractor.
type dtsExtractor interface {
	Extract(au [][]byte, pts int64) (int64, error)
}

// videoCodec is what differs between H.264 and H.265 depacketizing.
type videoCodec struct {
	codec  media.Codec
	name   string
	decode func(*rtp.Packet) ([][]byte, error)
	// more reports a decode error that only means "more packets needed".
	more         func(error) bool
	kind         func(nalu []byte) naluKind
	randomAccess func(au [][]byte) bool
	newDTS       func() dtsExtractor
	// config builds the track's decoder configuration; ok is false while
	// a parameter set is still missing.
	config func(st *videoState) (cfg []byte, ok bool, err error)
	// paramSets are prepended, in this order, to a random access point
	// that does not carry them.
	paramSets func(st *videoState) [][]byte
}

func (d *depacketizer) initH264(f *format.H264) error {
	dec, err := f.CreateDecoder()
	if err != nil {
		return err
	}
	var st videoState
	st.sps, st.pps = f.SafeParams()
	d.initVideo(&st, videoCodec{
		codec: media.CodecH264, name: "h264",
		decode: dec.Decode,
		more: func(err error) bool {
			return errors.Is(err, rtph264.ErrMorePacketsNeeded) || errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious)
		},
		kind: func(n []byte) naluKind {
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS:
				return naluSPS
			case h264.NALUTypePPS:
				return naluPPS
			case h264.NALUTypeAccessUnitDelimiter, h264.NALUTypeFillerData:
				return naluSkip
			}
			return naluOther
		},
		randomAccess: h264.IsRandomAccess,
		newDTS: func() dtsExtractor {
			x := &h264.DTSExtractor{}
			x.Initialize()
			return x
		},
		config: func(st *videoState) ([]byte, bool, error) {
			if st.sps == nil || st.pps == nil {
				return nil, false, nil
			}
			cfg, err := avcConfig(st.sps, st.pps)
			return cfg, true, err
		},
		paramSets: func(st *videoState) [][]byte { return [][]byte{st.sps, st.pps} },
	})
	return nil
}

func (d *depacketizer) initH265(f *format.H265) error {
	dec, err := f.CreateDecoder()
	if err != nil {
		return err
	}
	var st videoState
	st.vps, st.sps, st.pps = f.SafeParams()
	d.initVideo(&st, videoCodec{
		codec: media.CodecH265, name: "h265",
		decode: dec.Decode,
		more: func(err error) bool {
			return errors.Is(err, rtph265.ErrMorePacketsNeeded) || errors.Is(err, rtph265.ErrNonStartingPacketAndNoPrevious)
		},
		kind: func(n []byte) naluKind {
			if len(n) < 2 {
				return naluSkip // not even a NAL unit header
			}
			switch h265.NALUType((n[0] >> 1) & 0x3f) {
			case h265.NALUType_VPS_NUT:
				return naluVPS
			case h265.NALUType_SPS_NUT:
				return naluSPS
			case h265.NALUType_PPS_NUT:
				return naluPPS
			case h265.NALUType_AUD_NUT:
				return naluSkip
			}
			return naluOther
		},
		randomAccess: h265.IsRandomAccess,
		newDTS: func() dtsExtractor {
			x := &h265.DTSExtractor{}
			x.Initialize()
			return x
		},
		config: func(st *videoState) ([]byte, bool, error) {
			if st.vps == nil || st.sps == nil || st.pps == nil {
				return nil, false, nil
			}
			cfg, err := hevcConfig(st.vps, st.sps, st.pps)
			return cfg, true, err
		},
		paramSets: func(st *videoState) [][]byte { return [][]byte{st.vps, st.sps, st.pps} },
	})
	return nil
}

// initVideo sets d.decode for H.264 or H.265: reassemble the access unit,
// track in-band parameter set changes (a new track when they change),
// wait for a random access point, and give it a DTS.
func (d *depacketizer) initVideo(st *videoState, vc videoCodec) {
	var dtsx dtsExtractor
	d.decode = func(pkt *rtp.Packet, pts time.Duration, emit func(media.Packet)) error {
		au, err := vc.decode(pkt)
		if vc.more(err) {
			return nil
		}
		if err != nil {
			st.synced = false
			return err
		}
		keep := au[:0]
		size := 0
		changed := false
		for _, n := range au {
			if len(n) == 0 {
				continue
			}
			k := vc.kind(n)
			var set *[]byte
			switch k {
			case naluSkip:
				continue
			case naluVPS:
				set = &st.vps
			case naluSPS:
				set = &st.sps
			case naluPPS:
				set = &st.pps
			}
			if set != nil && !bytes.Equal(n, *set) {
				if k == naluSPS {
					if w, _ := media.VideoSize(vc.codec, n); w == 0 {
						return fmt.Errorf("%s: in-band sps does not parse", vc.name)
					}
				}
				*set, changed = bytes.Clone(n), true
			}
			size += 4 + len(n)
			keep = append(keep, n)
		}
		if len(keep) == 0 {
			return nil
		}
		if size > maxAccessUnit {
			st.synced = false
			return fmt.Errorf("%s access unit of %d bytes", vc.name, size)
		}
		if changed || d.track.Config == nil {
			cfg, ok, err := vc.config(st)
			if !ok {
				return nil // nothing decodable before the parameter sets
			}
			if err != nil {
				return err
			}
			w, h := media.VideoSize(vc.codec, st.sps)
			d.track = &media.Track{Kind: media.KindVideo, Codec: vc.codec, Config: cfg, Width: w, Height: h}
		}
		key := vc.randomAccess(keep)
		if key && !hasParamSets(vc.codec, keep) {
			// The DTS extractor (and late decoders) want them in band.
			keep = append(vc.paramSets(st), keep...)
		}
		if !st.synced {
			if !key {
				return nil // wait for a random access point
			}
			dtsx = vc.newDTS()
			st.synced = true
		}
		rawDTS, err := dtsx.Extract(keep, durToTicks(pts, 90000))
		if err != nil {
			st.synced = false
			return fmt.Errorf("%s dts: %w", vc.name, err)
		}
		return st.emit(d.track, keep, key, pts, ticksToDur(rawDTS, 90000), emit)
	}
}

// emit writes one video access unit with a DTS that never goes back and
// never passes the PTS.
func (st *videoState) emit(t *media.Track, au [][]byte, key bool, pts, dts time.Duration, emit func(media.Packet)) error {
	dts = max(dts, 0)
	if dts < st.lastDTS {
		dts = st.lastDTS
	}
	if dts > pts {
		pts = dts
	}
	st.lastDTS = dts
	data, err := h264.AVCC(au).Marshal() // HVCC has the same 4-byte length prefixes
	if err != nil {
		return err
	}
	emit(media.Packet{Track: t, DTS: dts, PTS: pts, Key: key, Data: data})
	return nil
}
