package rtsp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/podiumlive/podium/ingest/media"
	"github.com/podiumlive/podium/internal/safe"
)

// errUnsupported marks a track whose codec Podium does not carry over RTSP.
var errUnsupported = errors.New("codec not supported over rtsp")

// avcConfig builds an AVCDecoderConfigurationRecord from one SPS and one PPS.
func avcConfig(sps, pps []byte) ([]byte, error) {
	rec, err := media.AVCConfig([][]byte{sps}, [][]byte{pps})
	if err != nil {
		return nil, fmt.Errorf("avc config: %w", err)
	}
	return rec, nil
}

// hevcConfig builds an HEVCDecoderConfigurationRecord (ISO 14496-15
// 8.3.3.1) from one VPS, SPS and PPS. The profile fields are copied from
// the SPS's profile_tier_level; decoders read the parameter sets anyway.
func hevcConfig(vps, sps, pps []byte) ([]byte, error) {
	if len(vps) == 0 || len(pps) == 0 || len(sps) < 15 {
		return nil, fmt.Errorf("hevc config: vps %d, sps %d, pps %d bytes", len(vps), len(sps), len(pps))
	}
	for _, ps := range [][]byte{vps, sps, pps} {
		if len(ps) > 0xffff {
			return nil, errors.New("hevc config: parameter set over 64 KiB")
		}
	}
	raw := h264.EmulationPreventionRemove(sps[:min(len(sps), 32)])
	if len(raw) < 15 {
		return nil, errors.New("hevc config: sps too short")
	}
	ptl := raw[3:15] // profile space/tier/idc, 32 compat flags, 48 constraint flags, level
	b := make([]byte, 0, 23+3*5+len(vps)+len(sps)+len(pps))
	b = append(b, 1)
	b = append(b, ptl...)
	b = append(b, 0xf0, 0x00, // min_spatial_segmentation_idc
		0xfc,       // parallelismType
		0xfd,       // chroma_format_idc 4:2:0
		0xf8, 0xf8, // bit depths 8
		0, 0, // avgFrameRate
		0x0f, // constantFrameRate 0, numTemporalLayers 1, temporalIdNested 1, lengthSizeMinusOne 3
		3)
	for _, a := range []struct {
		typ h265.NALUType
		ps  []byte
	}{{h265.NALUType_VPS_NUT, vps}, {h265.NALUType_SPS_NUT, sps}, {h265.NALUType_PPS_NUT, pps}} {
		b = append(b, 0x80|byte(a.typ))
		b = binary.BigEndian.AppendUint16(b, 1)
		b = binary.BigEndian.AppendUint16(b, uint16(len(a.ps)))
		b = append(b, a.ps...)
	}
	return b, nil
}

// paramSets reads the parameter sets of an AVC or HEVC decoder
// configuration record: VPS, SPS, PPS (the first of each kind; no VPS for
// H.264). Missing ones are nil.
func paramSets(codec media.Codec, rec []byte) ([3][]byte, error) {
	vc, err := media.ParseVideoConfig(codec, rec)
	if err != nil {
		return [3][]byte{}, err
	}
	return [3][]byte{vc.VPS, vc.SPS, vc.PPS}, nil
}

// trackFor maps an SDP format to the hub track a publisher writes; nil
// with errUnsupported for codecs Podium does not carry. H.264/H.265 tracks
// may lack Config until the parameter sets arrive in band.
func trackFor(f format.Format) (*media.Track, error) {
	switch f := f.(type) {
	case *format.H264:
		t := &media.Track{Kind: media.KindVideo, Codec: media.CodecH264}
		if sps, pps := f.SafeParams(); sps != nil && pps != nil {
			if cfg, err := avcConfig(sps, pps); err == nil {
				t.Config = cfg
				t.Width, t.Height = media.VideoSize(media.CodecH264, sps)
			}
		}
		return t, nil
	case *format.H265:
		t := &media.Track{Kind: media.KindVideo, Codec: media.CodecH265}
		if vps, sps, pps := f.SafeParams(); vps != nil && sps != nil && pps != nil {
			if cfg, err := hevcConfig(vps, sps, pps); err == nil {
				t.Config = cfg
				t.Width, t.Height = media.VideoSize(media.CodecH265, sps)
			}
		}
		return t, nil
	case *format.MPEG4Audio:
		if f.Config == nil {
			return nil, fmt.Errorf("mpeg-4 audio without config: %w", errUnsupported)
		}
		cfg, err := f.Config.Marshal()
		if err != nil {
			return nil, fmt.Errorf("mpeg-4 audio config: %w", err)
		}
		rate := f.Config.SampleRate
		if f.Config.ExtensionSampleRate != 0 {
			rate = f.Config.ExtensionSampleRate
		}
		return &media.Track{Kind: media.KindAudio, Codec: media.CodecAAC, Config: cfg,
			SampleRate: rate, Channels: f.Config.ChannelCount, SampleBits: 16}, nil
	case *format.G711:
		c := media.CodecG711A
		if f.MULaw {
			c = media.CodecG711U
		}
		return &media.Track{Kind: media.KindAudio, Codec: c, SampleRate: f.SampleRate,
			Channels: max(f.ChannelCount, 1), SampleBits: 16}, nil
	case *format.Opus:
		return &media.Track{Kind: media.KindAudio, Codec: media.CodecOpus, SampleRate: 48000,
			Channels: max(f.ChannelCount, 1), SampleBits: 16}, nil
	case *format.LPCM:
		switch f.BitDepth {
		case 8, 16, 24:
		default:
			return nil, fmt.Errorf("lpcm of %d bits: %w", f.BitDepth, errUnsupported)
		}
		bits := 16
		if f.BitDepth == 8 {
			bits = 8
		}
		// Converted to little endian (and 24 bits to 16) on the way in.
		return &media.Track{Kind: media.KindAudio, Codec: media.CodecPCMLE, SampleRate: f.SampleRate,
			Channels: max(f.ChannelCount, 1), SampleBits: bits}, nil
	}
	return nil, fmt.Errorf("%s: %w", f.Codec(), errUnsupported)
}

// lpcmToLE converts RTP's big-endian L16/L24 samples to 16-bit little
// endian (24-bit samples keep their top 16 bits); L8 is kept as is.
func lpcmToLE(depth int, b []byte) []byte {
	switch depth {
	case 16:
		out := make([]byte, len(b)&^1)
		for i := 0; i+1 < len(b); i += 2 {
			out[i], out[i+1] = b[i+1], b[i]
		}
		return out
	case 24:
		n := len(b) / 3
		out := make([]byte, n*2)
		for i := 0; i < n; i++ {
			out[2*i], out[2*i+1] = b[3*i+1], b[3*i]
		}
		return out
	}
	return bytes.Clone(b)
}

// lpcmFromLE converts 16-bit little-endian samples to RTP's L16.
func lpcmFromLE(b []byte) []byte {
	out := make([]byte, len(b)&^1)
	for i := 0; i+1 < len(b); i += 2 {
		out[i], out[i+1] = b[i+1], b[i]
	}
	return out
}

// formatFor maps a hub track to an SDP format for RTSP players, with the
// given dynamic payload type; errUnsupported for codecs RTSP cannot carry
// here (Speex, MP3, Nellymoser, ADPCM, legacy Flash video...).
func formatFor(t *media.Track, pt uint8) (format.Format, error) {
	switch t.Codec {
	case media.CodecH264:
		f := &format.H264{PayloadTyp: pt, PacketizationMode: 1}
		if sets, err := paramSets(t.Codec, t.Config); err == nil {
			f.SPS, f.PPS = sets[1], sets[2]
		}
		return f, nil
	case media.CodecH265:
		f := &format.H265{PayloadTyp: pt}
		if sets, err := paramSets(t.Codec, t.Config); err == nil {
			f.VPS, f.SPS, f.PPS = sets[0], sets[1], sets[2]
		}
		return f, nil
	case media.CodecAAC:
		var c mpeg4audio.AudioSpecificConfig
		if err := safe.Parse(func() error { return c.Unmarshal(t.Config) }); err != nil {
			return nil, fmt.Errorf("aac config: %w", err)
		}
		return &format.MPEG4Audio{PayloadTyp: pt, ProfileLevelID: 1, Config: &c,
			SizeLength: 13, IndexLength: 3, IndexDeltaLength: 3}, nil
	case media.CodecG711A, media.CodecG711U:
		rate, ch := orDefault(t.SampleRate, 8000), max(t.Channels, 1)
		f := &format.G711{PayloadTyp: pt, MULaw: t.Codec == media.CodecG711U, SampleRate: rate, ChannelCount: ch}
		if rate == 8000 && ch == 1 { // static payload types 0 (PCMU) and 8 (PCMA)
			f.PayloadTyp = 8
			if f.MULaw {
				f.PayloadTyp = 0
			}
		}
		return f, nil
	case media.CodecOpus:
		return &format.Opus{PayloadTyp: pt, ChannelCount: max(t.Channels, 1)}, nil
	case media.CodecPCM, media.CodecPCMLE:
		if t.SampleRate <= 0 {
			return nil, fmt.Errorf("pcm without sample rate: %w", errUnsupported)
		}
		depth := 16
		if t.SampleBits == 8 {
			depth = 8
		}
		return &format.LPCM{PayloadTyp: pt, BitDepth: depth, SampleRate: t.SampleRate,
			ChannelCount: max(t.Channels, 1)}, nil
	}
	return nil, fmt.Errorf("%s: %w", t.Codec, errUnsupported)
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}
