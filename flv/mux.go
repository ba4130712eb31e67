package flv

import (
	"fmt"

	"github.com/podiumlive/podium/ingest/media"
)

// AudioConfig returns the AAC sequence header (0xAF 0x00 +
// AudioSpecificConfig) of t, and false for tracks without one (every other
// audio codec, or an AAC track without Config).
func AudioConfig(t *media.Track) ([]byte, bool) {
	if t == nil || t.Codec != media.CodecAAC || len(t.Config) == 0 {
		return nil, false
	}
	b := make([]byte, 0, 2+len(t.Config))
	return append(append(b, 0xAF, aacSequenceHeader), t.Config...), true
}

// VideoConfig returns the sequence header of t, and false for tracks
// without one. H.264 is written as legacy FLV (codec id 7, which every
// player reads); H.265, AV1 and VP9 as Enhanced RTMP SequenceStart with
// FourCC hvc1, av01, vp09 (what OBS, FFmpeg 6.1+, SRS 6 and YouTube read;
// the legacy id 12 for HEVC is accepted by the Demuxer but never written).
func VideoConfig(t *media.Track) ([]byte, bool) {
	if t == nil || len(t.Config) == 0 {
		return nil, false
	}
	var b []byte
	switch t.Codec {
	case media.CodecH264:
		b = make([]byte, 0, 5+len(t.Config))
		b = append(b, frameKey<<4|videoAVC, avcSequenceHeader, 0, 0, 0)
	case media.CodecH265, media.CodecAV1, media.CodecVP9:
		b = make([]byte, 0, 5+len(t.Config))
		b = appendExHeader(b, t.Codec, frameKey, exSequenceStart)
	default:
		return nil, false
	}
	return append(b, t.Config...), true
}

func appendExHeader(dst []byte, c media.Codec, frameType, packetType byte) []byte {
	dst = append(dst, exHeaderBit|frameType<<4|packetType)
	for _, f := range fourCCs {
		if f.codec == c {
			return append(dst, f.fourCC...)
		}
	}
	return dst
}

// AudioFlags returns the first byte of an FLV audio body for t, the same
// byte FFmpeg's flv muxer writes for the codec:
//
//	AAC                     0xAF (44 kHz, 16 bit, stereo: fixed by the spec)
//	Speex                   0xB6 (11 kHz, 16 bit, mono; readers assume 16 kHz)
//	MP3 at 8000 Hz          0xE2 | ch (SoundFormat 14)
//	MP3                     0x22 | rate | ch (48000 Hz is written as 44 kHz)
//	Nellymoser at 16000 Hz  0x42 | ch
//	Nellymoser at 8000 Hz   0x52 | ch
//	Nellymoser              0x62 | rate | ch
//	G.711 A-law             0x72 | ch (rate bits 0; readers assume 8 kHz)
//	G.711 µ-law             0x82 | ch
//	ADPCM                   0x12 | rate | ch
//	PCM (platform endian)   0x00 | rate | size | ch
//	PCM little endian       0x30 | rate | size | ch
//
// rate is 0x0C for 44100 Hz and up, 0x08 from 22050, 0x04 from 11025, 0x00
// below; size is 0x02 unless SampleBits is 8; ch is 0x01 for two or more
// channels. (FFmpeg never sets ch for G.711; we do for a stereo G.711
// track so that it round-trips.) ok is false for codecs FLV cannot carry.
func AudioFlags(t *media.Track) (flags byte, ok bool) {
	if t == nil {
		return 0, false
	}
	var ch byte
	if t.Channels >= 2 {
		ch = 1
	}
	var rate byte
	switch {
	case t.SampleRate >= 44100:
		rate = 3 << 2
	case t.SampleRate >= 22050:
		rate = 2 << 2
	case t.SampleRate >= 11025:
		rate = 1 << 2
	}
	const size16 = 0x02
	switch t.Codec {
	case media.CodecAAC:
		return soundAAC<<4 | 3<<2 | size16 | 1, true
	case media.CodecSpeex:
		return soundSpeex<<4 | 1<<2 | size16, true
	case media.CodecMP3:
		if t.SampleRate == 8000 {
			return soundMP38k<<4 | size16 | ch, true
		}
		return soundMP3<<4 | rate | size16 | ch, true
	case media.CodecNellymoser:
		switch t.SampleRate {
		case 16000:
			return soundNelly16k<<4 | size16 | ch, true
		case 8000:
			return soundNelly8k<<4 | size16 | ch, true
		}
		return soundNelly<<4 | rate | size16 | ch, true
	case media.CodecG711A:
		return soundG711A<<4 | size16 | ch, true
	case media.CodecG711U:
		return soundG711U<<4 | size16 | ch, true
	case media.CodecADPCM:
		return soundADPCM<<4 | rate | size16 | ch, true
	case media.CodecPCM, media.CodecPCMLE:
		size := byte(size16)
		if t.SampleBits == 8 {
			size = 0
		}
		format := byte(soundPCM)
		if t.Codec == media.CodecPCMLE {
			format = soundPCMLE
		}
		return format<<4 | rate | size | ch, true
	}
	return 0, false
}

// AppendAudio appends the FLV audio body of p to dst: the flags byte of
// AudioFlags, for AAC the packet type byte 1, then p.Data.
func AppendAudio(dst []byte, p *media.Packet) ([]byte, error) {
	flags, ok := AudioFlags(p.Track)
	if !ok {
		return dst, fmt.Errorf("flv: audio codec %s not supported", codecOf(p.Track))
	}
	dst = append(dst, flags)
	if p.Track.Codec == media.CodecAAC {
		dst = append(dst, aacRaw)
	}
	return append(dst, p.Data...), nil
}

// AudioBody returns a new FLV audio body for p (see AppendAudio).
func AudioBody(p *media.Packet) ([]byte, error) {
	return AppendAudio(make([]byte, 0, 2+len(p.Data)), p)
}

// AppendVideo appends the FLV video body of p to dst: for H.264 the legacy
// AVC header (FrameType, codec id 7, AVCPacketType 1, composition time);
// for H.265 the Enhanced RTMP header with FourCC hvc1, PacketType
// CodedFrames and composition time; for AV1 and VP9 the Enhanced RTMP
// header with CodedFrames; for the other legacy codecs the FrameType/codec
// byte. p.Data follows as it is. FrameType is 1 (key) or 2 (inter). The
// composition time is Timestamp(p.PTS) - Timestamp(p.DTS), clamped to 24
// bits. With a dst of enough capacity, AppendVideo does not allocate.
func AppendVideo(dst []byte, p *media.Packet) ([]byte, error) {
	frameType := byte(frameInter)
	if p.Key {
		frameType = frameKey
	}
	codec := codecOf(p.Track)
	switch codec {
	case media.CodecH264:
		dst = append(dst, frameType<<4|videoAVC, avcNALU)
		dst = appendInt24(dst, cts(p))
	case media.CodecH265:
		dst = appendExHeader(dst, codec, frameType, exCodedFrames)
		dst = appendInt24(dst, cts(p))
	case media.CodecAV1, media.CodecVP9:
		dst = appendExHeader(dst, codec, frameType, exCodedFrames)
	case media.CodecH263:
		dst = append(dst, frameType<<4|videoH263)
	case media.CodecScreen:
		dst = append(dst, frameType<<4|videoScreen)
	case media.CodecVP6:
		dst = append(dst, frameType<<4|videoVP6)
	case media.CodecVP6A:
		dst = append(dst, frameType<<4|videoVP6A)
	case media.CodecScreen2:
		dst = append(dst, frameType<<4|videoScreen2)
	default:
		return dst, fmt.Errorf("flv: video codec %s not supported", codec)
	}
	return append(dst, p.Data...), nil
}

// VideoBody returns a new FLV video body for p (see AppendVideo).
func VideoBody(p *media.Packet) ([]byte, error) {
	return AppendVideo(make([]byte, 0, 8+len(p.Data)), p)
}

func cts(p *media.Packet) int64 {
	return p.PTS.Milliseconds() - p.DTS.Milliseconds()
}

func codecOf(t *media.Track) media.Codec {
	if t == nil {
		return media.CodecUnknown
	}
	return t.Codec
}
