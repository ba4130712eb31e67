package rtsp

import (
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"

	"github.com/podiumlive/podium/ingest/media"
)

// packetizer turns the hub packets of one track into RTP packets.
type packetizer struct {
	forma  format.Format
	codec  media.Codec
	rate   int64
	encode func(p *media.Packet) ([]*rtp.Packet, error)
	base   uint32 // random start of the RTP timestamps

	setsOf *media.Track // the track sets was read from
	sets   [][]byte
}

func newPacketizer(t *media.Track, forma format.Format) (*packetizer, error) {
	pz := &packetizer{forma: forma, codec: t.Codec, rate: int64(forma.ClockRate())}
	v, err := randUint32()
	if err != nil {
		return nil, err
	}
	pz.base = v
	switch f := forma.(type) {
	case *format.H264:
		enc, err := f.CreateEncoder()
		if err != nil {
			return nil, err
		}
		pz.encode = pz.video(func(au [][]byte) ([]*rtp.Packet, error) { return enc.Encode(au) })
	case *format.H265:
		enc, err := f.CreateEncoder()
		if err != nil {
			return nil, err
		}
		pz.encode = pz.video(func(au [][]byte) ([]*rtp.Packet, error) { return enc.Encode(au) })
	case *format.MPEG4Audio:
		enc, err := f.CreateEncoder()
		if err != nil {
			return nil, err
		}
		pz.encode = func(p *media.Packet) ([]*rtp.Packet, error) { return enc.Encode([][]byte{p.Data}) }
	case *format.G711:
		enc, err := f.CreateEncoder()
		if err != nil {
			return nil, err
		}
		pz.encode = func(p *media.Packet) ([]*rtp.Packet, error) { return enc.Encode(p.Data) }
	case *format.LPCM:
		enc, err := f.CreateEncoder()
		if err != nil {
			return nil, err
		}
		depth := f.BitDepth
		pz.encode = func(p *media.Packet) ([]*rtp.Packet, error) {
			if depth == 16 {
				return enc.Encode(lpcmFromLE(p.Data))
			}
			return enc.Encode(p.Data)
		}
	case *format.Opus:
		enc, err := f.CreateEncoder()
		if err != nil {
			return nil, err
		}
		pz.encode = func(p *media.Packet) ([]*rtp.Packet, error) {
			pkt, err := enc.Encode(p.Data)
			if err != nil {
				return nil, err
			}
			return []*rtp.Packet{pkt}, nil
		}
	default:
		return nil, fmt.Errorf("%s: %w", forma.Codec(), errUnsupported)
	}
	return pz, nil
}

// paramSets are t's parameter sets, in order, read from its configuration
// once per track.
func (pz *packetizer) paramSets(t *media.Track) [][]byte {
	if t != pz.setsOf {
		pz.setsOf, pz.sets = t, nil
		if sets, err := paramSets(pz.codec, t.Config); err == nil {
			for _, s := range sets {
				if s != nil {
					pz.sets = append(pz.sets, s)
				}
			}
		}
	}
	return pz.sets[:len(pz.sets):len(pz.sets)] // the caller appends: never into ours
}

// video wraps an H.264/H.265 encoder: AVCC to NALUs, with the track's
// parameter sets put in front of every keyframe that lacks them (players
// that joined late, or whose SDP was built from another configuration).
func (pz *packetizer) video(enc func([][]byte) ([]*rtp.Packet, error)) func(*media.Packet) ([]*rtp.Packet, error) {
	return func(p *media.Packet) ([]*rtp.Packet, error) {
		var au h264.AVCC
		if err := au.Unmarshal(p.Data); err != nil {
			return nil, fmt.Errorf("avcc: %w", err)
		}
		if p.Key && !hasParamSets(pz.codec, au) {
			au = append(pz.paramSets(p.Track), au...)
		}
		if len(au) == 0 {
			return nil, errors.New("empty access unit")
		}
		return enc(au)
	}
}

func hasParamSets(codec media.Codec, au [][]byte) bool {
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		if codec == media.CodecH264 && h264.NALUType(n[0]&0x1f) == h264.NALUTypeSPS {
			return true
		}
		if codec == media.CodecH265 && h265.NALUType((n[0]>>1)&0x3f) == h265.NALUType_SPS_NUT {
			return true
		}
	}
	return false
}

// packets encodes p, stamping the packets with its PTS.
func (pz *packetizer) packets(p *media.Packet) ([]*rtp.Packet, error) {
	pkts, err := pz.encode(p)
	if err != nil {
		return nil, err
	}
	ts := pz.base + uint32(durToTicks(p.PTS, pz.rate))
	for _, pkt := range pkts {
		pkt.Timestamp += ts
	}
	return pkts, nil
}

// ntpOf is the sender time sent with a packet: the stream's start plus its
// PTS, so players can sync the tracks through RTCP sender reports.
func ntpOf(start time.Time, p *media.Packet) time.Time { return start.Add(p.PTS) }
