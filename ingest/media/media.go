// Package media holds the codec-level types that cross package boundaries:
// a Track describes one elementary stream, a Packet carries one access unit.
// Nothing here knows about FLV, RTMP, MPEG-TS or libav.
package media

import (
	"fmt"
	"time"
)

// Kind tells audio from video.
type Kind uint8

const (
	KindVideo Kind = iota + 1
	KindAudio
)

func (k Kind) String() string {
	switch k {
	case KindVideo:
		return "video"
	case KindAudio:
		return "audio"
	}
	return "unknown"
}

// Codec names an elementary stream format.
type Codec uint8

const (
	CodecUnknown Codec = iota
	// video
	CodecH264
	CodecH265
	CodecH263 // Sorenson H.263 (FLV codec 2)
	CodecScreen
	CodecVP6
	CodecVP6A
	CodecScreen2
	CodecAV1
	CodecVP9
	// audio
	CodecAAC
	CodecMP3
	CodecSpeex
	CodecNellymoser // any of FLV's three Nellymoser ids; SampleRate tells them apart
	CodecPCM        // linear PCM, platform endian as FLV codec 0 (little endian in practice)
	CodecPCMLE      // linear PCM, little endian (FLV codec 3)
	CodecADPCM      // Flash ADPCM (FLV codec 1)
	CodecG711A
	CodecG711U
	CodecOpus
)

var codecNames = map[Codec]string{
	CodecUnknown:    "unknown",
	CodecH264:       "h264",
	CodecH265:       "hevc",
	CodecH263:       "flv1",
	CodecScreen:     "flashsv",
	CodecVP6:        "vp6f",
	CodecVP6A:       "vp6a",
	CodecScreen2:    "flashsv2",
	CodecAV1:        "av1",
	CodecVP9:        "vp9",
	CodecAAC:        "aac",
	CodecMP3:        "mp3",
	CodecSpeex:      "speex",
	CodecNellymoser: "nellymoser",
	CodecPCM:        "pcm_s16le",
	CodecPCMLE:      "pcm_s16le",
	CodecADPCM:      "adpcm_swf",
	CodecG711A:      "pcm_alaw",
	CodecG711U:      "pcm_mulaw",
	CodecOpus:       "opus",
}

// String returns the name ffprobe uses for the codec.
func (c Codec) String() string {
	if n, ok := codecNames[c]; ok {
		return n
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// Kind tells whether the codec is audio or video.
func (c Codec) Kind() Kind {
	switch {
	case c >= CodecH264 && c <= CodecVP9:
		return KindVideo
	case c >= CodecAAC && c <= CodecOpus:
		return KindAudio
	}
	return 0
}

// Track describes one elementary stream. A Track is immutable once a packet
// refers to it: a change of codec configuration makes a new Track, so a
// consumer sees a configuration change as a different *Track.
type Track struct {
	Kind  Kind
	Codec Codec
	// Config is the codec's out-of-band configuration: the
	// AVCDecoderConfigurationRecord (H.264), HEVCDecoderConfigurationRecord
	// (H.265) or AudioSpecificConfig (AAC). Empty for codecs that have none.
	Config []byte

	// Audio, as declared by the sender (for AAC, as in Config).
	SampleRate int
	Channels   int
	SampleBits int // 8 or 16 for PCM; 16 otherwise

	// Video, when known (parsed from the SPS); 0 when not.
	Width  int
	Height int
}

// Packet is one access unit. Packets are immutable once written to a stream:
// Data is never modified after that, by anyone.
type Packet struct {
	Track *Track
	// DTS and PTS are relative to the stream's epoch (the publisher's own
	// clock, as sent).
	DTS time.Duration
	PTS time.Duration
	// Key marks a video keyframe (IDR); audio packets are always decodable
	// on their own and have Key set too.
	Key bool
	// Data is the payload: length-prefixed NAL units (AVCC/HVCC, as in FLV
	// and MP4) for H.264/H.265, a raw frame for audio (no container header).
	Data []byte
	// Discontinuity marks the first packet after the source switched (an
	// edge failing over to another origin): the timeline stays monotonic,
	// but the content jumps. Segmenters start a new period (HLS's
	// #EXT-X-DISCONTINUITY).
	Discontinuity bool
}

// Kind is the packet's track's kind.
func (p *Packet) Kind() Kind { return p.Track.Kind }

// IsVideoKey reports whether p is a video keyframe: where a new reader, or a
// reader that dropped packets, may start.
func (p *Packet) IsVideoKey() bool { return p.Track.Kind == KindVideo && p.Key }

// Metadata is the publisher's stream description (RTMP onMetaData), as
// ordered name/value pairs. Values are float64, bool, string or nil.
type Metadata []Property

// Property is one name/value pair of Metadata.
type Property struct {
	Name  string
	Value any
}

// Get returns the value of the named property, if present.
func (m Metadata) Get(name string) (any, bool) {
	for _, p := range m {
		if p.Name == name {
			return p.Value, true
		}
	}
	return nil, false
}
